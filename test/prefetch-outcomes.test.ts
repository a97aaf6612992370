import * as fs from 'fs';
import * as path from 'path';
import { PrefetchOutcome } from '../src';

// PrefetchOutcome.ALL drives the per-outcome metric filters and the dashboard: an outcome the
// script prints but ALL lacks is never counted. So ALL is read against the script itself and
// against the README's exit-code table, both ways.
const ROOT = path.join(__dirname, '..');

/** Every `outcome=` word the node script can print, from its code (comment lines left out). */
export function scriptOutcomes(text: string): string[] {
  const code = text.split('\n').filter(l => !/^\s*#/.test(l)).join('\n');
  const found = new Set<string>();
  const add = (re: RegExp, prefix = '') => {
    for (const m of code.matchAll(re)) found.add(prefix + m[1]);
  };
  add(/\bfail "\$EXIT_[A-Z_]+" ([a-z][a-z-]*)/g);
  add(/\bOUTCOME=([a-z][a-z-]*)/g);
  add(/outcome=([a-z][a-z-]*)/g);
  add(/(?:^|[|&;{]|\bthen)\s*skip ([a-z][a-z-]*) /gm, 'skipped-');
  add(/\bskip_image "\$lockfd" ([a-z][a-z-]*)/g, 'skipped-');
  add(/\bSKIP_REASON=([a-z][a-z-]*)/g, 'skipped-');
  return [...found].sort();
}

/** The README's exit-code table: [exit code, outcome] rows. */
function readmeOutcomes(text: string): Array<[number, string]> {
  const rows: Array<[number, string]> = [];
  for (const m of text.matchAll(/^\| (\d+) \| (`[a-z-]+`(?:, `[a-z-]+`)*) \|/gm)) {
    for (const o of m[2].matchAll(/`([a-z-]+)`/g)) rows.push([Number(m[1]), o[1]]);
  }
  return rows;
}

describe('PrefetchOutcome.ALL is every outcome the node script prints', () => {
  const script = fs.readFileSync(path.join(ROOT, 'assets', 'prefetch-image.sh'), 'utf8');

  test('the same set as the script', () => {
    expect(PrefetchOutcome.ALL.map(o => o.value).sort()).toEqual(scriptOutcomes(script));
  });

  test("the README's exit-code table lists each once, with exit 0 exactly when it is not a failure", () => {
    const rows = readmeOutcomes(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
    expect(rows.map(([, o]) => o)).toEqual(PrefetchOutcome.ALL.map(o => o.value));
    for (const [code, value] of rows) {
      expect([value, code === 0]).toEqual([value, !PrefetchOutcome.ALL.find(o => o.value === value)!.isFailure]);
    }
  });

  test('the reading of the script finds each way an outcome is printed', () => {
    const sample = [
      '#!/bin/bash',
      '# fail "$EXIT_FAIL" commented-out',
      'x || fail "$EXIT_AUTH" auth-failed "no token"',
      'OUTCOME=pulled',
      "printf 'prefetch: summary outcome=unsupported-shell exit=1\\n'",
      '  tag_is_newer && skip superseded "newer"',
      '  disk_guard 0 || skip disk "$SKIP_MESSAGE"',
      '  skip_image "$lockfd" locked "held"',
      '  SKIP_REASON=platform',
    ].join('\n');
    expect(scriptOutcomes(sample)).toEqual([
      'auth-failed', 'pulled', 'skipped-disk', 'skipped-locked', 'skipped-platform', 'skipped-superseded', 'unsupported-shell',
    ]);
  });
});
