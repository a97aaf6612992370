import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PrefetchDocument } from '../src';

// The document carries the node script without its comment lines (SSM's 64 KB limit). A line that
// starts with '#' inside a multi-line string (an awk or jq program) would be code, not a comment:
// dropping it would change the program. bash prints every function back without its comments but
// with its strings (`declare -f`), so the script and its stripped form must print the same.
const SCRIPT = path.join(__dirname, '..', 'assets', 'prefetch-image.sh');

/** Every function of the script as bash reads it (the final `main "$@"` is not run). */
function functionsOf(text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prefetch-doc-'));
  try {
    const file = path.join(dir, 'script.sh');
    fs.writeFileSync(file, text.replace(/\nmain "\$@"\s*$/, '\n'));
    return execFileSync('bash', ['-c', 'source "$1" >/dev/null 2>&1; declare -f', 'bash', file], { encoding: 'utf8' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('the script in the document, without its comment lines', () => {
  const original = fs.readFileSync(SCRIPT, 'utf8');
  const [shebang, ...rest] = original.replace(/\n+$/, '').split('\n');
  const stripped = [shebang, ...PrefetchDocument._withoutCommentLines(rest)].join('\n') + '\n';

  test('defines the same functions, byte for byte', () => {
    const before = functionsOf(original);
    expect(before).toContain('prefetch_one ()');
    expect(functionsOf(stripped)).toEqual(before);
  });

  test('is a third smaller or more', () => {
    expect(stripped.length).toBeLessThan(original.length * 0.75);
  });

  test('the check fails when a stripped line was code (a "#" line inside a quoted string)', () => {
    const withString = "f() {\n  x='a\n# not a comment\nb'\n  echo \"$x\"\n}\nmain \"$@\"\n";
    const [first, ...lines] = withString.split('\n');
    const strippedString = [first, ...PrefetchDocument._withoutCommentLines(lines)].join('\n');
    expect(functionsOf(strippedString)).not.toEqual(functionsOf(withString));
  });
});
