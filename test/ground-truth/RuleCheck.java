// Decides event-pattern cases with event-ruler, AWS's open-source EventBridge matching engine, and
// compares with the verdict our own evaluator gave (test/contract/eventbridge.ts). Each case is
// decided twice: by the static Ruler.matchesRule(event, pattern), and by a Machine holding the
// pattern as a rule (Machine.rulesForJSONEvent), the engine's main API.
//   java -cp <event-ruler classpath> test/ground-truth/RuleCheck.java <cases.json>
// cases.json: [{"name": "...", "pattern": {...}, "event": {...}, "expected": true|false}, ...]
// Prints each disagreement, then `N passed, N failed`; exits 1 on any disagreement.

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import software.amazon.event.ruler.Machine;
import software.amazon.event.ruler.Ruler;

public class RuleCheck {
  public static void main(String[] args) throws Exception {
    if (args.length != 1) {
      System.err.println("usage: RuleCheck <cases.json>");
      System.exit(2);
    }
    ObjectMapper json = new ObjectMapper();
    JsonNode cases = json.readTree(new File(args[0]));
    int passed = 0;
    int failed = 0;
    for (JsonNode c : cases) {
      String name = c.get("name").asText();
      String pattern = json.writeValueAsString(c.get("pattern"));
      String event = json.writeValueAsString(c.get("event"));
      boolean expected = c.get("expected").asBoolean();
      String outcome;
      try {
        boolean byRuler = Ruler.matchesRule(event, pattern);
        Machine machine = Machine.builder().build();
        machine.addRule("rule", pattern);
        boolean byMachine = !machine.rulesForJSONEvent(event).isEmpty();
        outcome = byRuler == expected && byMachine == expected ? null
            : "our evaluator: " + expected + ", Ruler.matchesRule: " + byRuler + ", Machine: " + byMachine;
      } catch (Exception e) {
        outcome = "event-ruler refused it: " + e;
      }
      if (outcome == null) {
        passed++;
      } else {
        failed++;
        System.out.println("DISAGREE " + name + ": " + outcome);
        System.out.println("  pattern " + pattern);
        System.out.println("  event   " + event);
      }
    }
    System.out.println("event-ruler: " + (passed + failed) + " cases");
    System.out.println(passed + " passed, " + failed + " failed");
    System.exit(failed == 0 ? 0 : 1);
  }
}
