import * as fs from 'fs';
import * as path from 'path';

// The node script claims bash 4.2 (Amazon Linux 2). The real proof is the node suite under a GNU bash
// 4.2 built from source (`E2E_BASH=... bash test/node/run.sh`, README), which CI cannot run: no
// registry reachable here serves bash 4.2. This check runs in CI and stops the constructs that need
// a newer bash from coming back (bash's own CHANGES file says where each arrived):
//   EPOCHREALTIME, EPOCHSECONDS (5.0), SRANDOM (5.1), BASH_ARGV0 (5.0); a negative array subscript
//   (4.3); namerefs `declare -n` / `local -n` (4.3); `wait -n` (4.3); ${var@op} transformations (4.4);
//   `mapfile -d` (4.4); `shopt -s inherit_errexit` (4.4), `localvar_inherit` (5.0);
//   and, under `set -u`, "${a[@]}" of an empty array, which 4.2 reports as an unbound variable (4.4
//   changed it): every array expansion is guarded (${a[@]+"${a[@]}"}, ${a[*]:-}) unless the array is
//   below, with why it is never empty where it is expanded.
const SCRIPT = path.join(__dirname, '..', 'assets', 'prefetch-image.sh');

const NEVER_EMPTY: Record<string, string> = {
  CTR: 'set to (ctr) at the top of the script',
  filters: 'image_state starts it with the digest reference',
  WANTED_LABELS: 'main starts it with the CRI managed label',
  add: 'move_tags expands it only after checking its length',
  cas: 'write_hosts_dir expands it only after checking its length, on the same line',
  pairs: 'write_hosts_dir expands it only after checking its length, on the same line',
  drop: 'discard_layers returns before expanding it when it is empty',
  pull: 'prefetch_one builds it with the pull arguments',
  TAGS: 'mode_tags runs only when TAGS has an element',
  tags: "mode_newest's pick carries at least one tag (the record and the search keep tagged images only)",
};

export interface Bash42Finding {
  readonly line: number;
  readonly text: string;
  readonly why: string;
}

/** Constructs of `text` (a bash script) that bash 4.2 does not run as bash 5 does. */
export function bash42Findings(text: string, neverEmpty: Record<string, string> = NEVER_EMPTY): Bash42Finding[] {
  const findings: Bash42Finding[] = [];
  const rules: Array<[RegExp, string]> = [
    [/\$\{?(EPOCHREALTIME|EPOCHSECONDS)(?!:-)/, 'EPOCHREALTIME/EPOCHSECONDS are bash 5.0: use ${EPOCHREALTIME:-$(date +%s.%N)}'],
    [/\b(SRANDOM|BASH_ARGV0)\b/, 'SRANDOM and BASH_ARGV0 are bash 5'],
    [/\[\s*-\s*[0-9]+\s*\]/, 'a negative array subscript is bash 4.3'],
    [/\b(declare|local|typeset)\s+(-[a-zA-Z]*n[a-zA-Z]*)\b/, 'namerefs (-n) are bash 4.3'],
    [/\bwait\s+-[a-z]*[nfp]/, 'wait -n/-f/-p are bash 4.3 and later'],
    [/\$\{[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?@[QEPAaULuK]\}/, '${var@op} is bash 4.4'],
    [/\b(mapfile|readarray)\b[^|;&]*\s-d\b/, 'mapfile -d is bash 4.4'],
    [/\b(inherit_errexit|localvar_inherit|localvar_unset|assoc_expand_once|noexpand_translation|patsub_replacement|varredir_close)\b/, 'a shopt option newer than 4.2'],
  ];
  text.split('\n').forEach((raw, i) => {
    if (/^\s*#/.test(raw)) return;
    const line = raw;
    for (const [re, why] of rules) {
      if (re.test(line)) findings.push({ line: i + 1, text: raw.trim(), why });
    }
    // Guarded forms first, then any array expansion left.
    const unguarded = line
      .replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\[[@*]\]\+"\$\{\1\[[@*]\][^}]*\}"\}/g, '')
      .replace(/\$\{[A-Za-z_][A-Za-z0-9_]*\[[@*]\]:-[^}]*\}/g, '');
    for (const m of unguarded.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\[[@*]\]/g)) {
      if (!(m[1] in neverEmpty)) {
        findings.push({
          line: i + 1,
          text: raw.trim(),
          why: `"\${${m[1]}[@]}" fails under set -u in bash 4.2 when ${m[1]} is empty: guard it (\${${m[1]}[@]+"\${${m[1]}[@]}"}) or say in NEVER_EMPTY why it cannot be empty`,
        });
      }
    }
  });
  return findings;
}

describe('the node script runs on bash 4.2 (Amazon Linux 2)', () => {
  test('no construct that needs a newer bash', () => {
    expect(bash42Findings(fs.readFileSync(SCRIPT, 'utf8'))).toEqual([]);
  });

  test('every array said to be never empty is still expanded unguarded in the script', () => {
    // An entry whose array is gone (or now guarded) would hide a new array of the same name.
    const text = fs.readFileSync(SCRIPT, 'utf8');
    const stale = Object.keys(NEVER_EMPTY).filter(
      (name) => bash42Findings(text, Object.fromEntries(Object.entries(NEVER_EMPTY).filter(([n]) => n !== name))).length === 0,
    );
    expect(stale).toEqual([]);
  });

  test.each([
    ['t="$EPOCHREALTIME"', 'bash 5.0'],
    ['echo "${a[-1]}"', 'negative array subscript'],
    ['local -n ref=x', 'namerefs'],
    ['wait -n', 'wait -n'],
    ['echo "${x@Q}"', 'bash 4.4'],
    ['mapfile -d "" -t a < f', 'mapfile -d'],
    ['shopt -s inherit_errexit', 'shopt option'],
    ['for x in "${list[@]}"; do :; done', 'fails under set -u in bash 4.2 when list is empty'],
    ['echo "${list[*]}"', 'when list is empty'],
  ])('finds %s', (snippet, why) => {
    const found = bash42Findings(`#!/bin/bash\n${snippet}\n`);
    expect(found).toHaveLength(1);
    expect(found[0].why).toContain(why);
    expect(found[0].line).toBe(2);
  });

  test.each([
    ['t="${EPOCHREALTIME:-$(date +%s.%N)}"'],
    ['for x in ${list[@]+"${list[@]}"}; do :; done'],
    ['echo "${list[*]:-}"'],
    ['echo "${#list[@]}"'],
    ['# a comment may say "${list[@]}" or $EPOCHREALTIME'],
    ['echo "${s: -1}"'],
  ])('lets %s through', (snippet) => {
    expect(bash42Findings(`#!/bin/bash\n${snippet}\n`)).toEqual([]);
  });
});
