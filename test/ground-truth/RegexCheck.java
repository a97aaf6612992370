// Java's verdicts on SSM allowedPattern values, for test/document-limits.test.ts (SSM does not
// document its regular-expression engine; a pattern must mean the same in JavaScript and Java).
//   java test/ground-truth/RegexCheck.java < cases.json
// stdin: [["pattern", "value"], ...]   stdout: [[find, matches], ...], one pair of booleans per case:
// Matcher.find() (a search, like JavaScript's RegExp.test) and Matcher.matches() (the whole value).
// A pattern Java cannot compile gives [null, null]. No dependencies: a small JSON reader for this shape.

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

public class RegexCheck {
  private final String text;
  private int at;

  private RegexCheck(String text) {
    this.text = text;
  }

  public static void main(String[] args) throws IOException {
    String input = new String(System.in.readAllBytes(), StandardCharsets.UTF_8);
    List<String[]> cases = new RegexCheck(input).readCases();
    StringBuilder out = new StringBuilder("[");
    for (int i = 0; i < cases.size(); i++) {
      String[] c = cases.get(i);
      String verdict;
      try {
        Pattern p = Pattern.compile(c[0]);
        verdict = "[" + p.matcher(c[1]).find() + "," + p.matcher(c[1]).matches() + "]";
      } catch (PatternSyntaxException e) {
        verdict = "[null,null]";
      }
      out.append(i == 0 ? "" : ",").append(verdict);
    }
    System.out.println(out.append("]"));
  }

  private List<String[]> readCases() {
    List<String[]> cases = new ArrayList<>();
    expect('[');
    if (peek() == ']') {
      at++;
      return cases;
    }
    do {
      expect('[');
      String pattern = readString();
      expect(',');
      String value = readString();
      expect(']');
      cases.add(new String[] {pattern, value});
    } while (next() == ',');
    if (text.charAt(at - 1) != ']') throw new IllegalArgumentException("expected ] at " + (at - 1));
    return cases;
  }

  private String readString() {
    expect('"');
    StringBuilder s = new StringBuilder();
    while (true) {
      char c = text.charAt(at++);
      if (c == '"') return s.toString();
      if (c != '\\') {
        s.append(c);
        continue;
      }
      char e = text.charAt(at++);
      switch (e) {
        case 'b': s.append('\b'); break;
        case 'f': s.append('\f'); break;
        case 'n': s.append('\n'); break;
        case 'r': s.append('\r'); break;
        case 't': s.append('\t'); break;
        case 'u': s.append((char) Integer.parseInt(text.substring(at, at + 4), 16)); at += 4; break;
        default: s.append(e);
      }
    }
  }

  private char peek() {
    while (Character.isWhitespace(text.charAt(at))) at++;
    return text.charAt(at);
  }

  private char next() {
    char c = peek();
    at++;
    return c;
  }

  private void expect(char c) {
    if (next() != c) throw new IllegalArgumentException("expected " + c + " at " + (at - 1));
  }
}
