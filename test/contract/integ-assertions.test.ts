// integ-runner's snapshot verification diffs the test stacks only: the assertion stacks
// (*DeployAssert*) carry a fresh salt on every synthesis, so it skips them, and a changed
// assertion would not fail `npx projen integ`. This closes that gap: each integ app is
// synthesized and its assertion stack compared with the committed one, salts aside.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.join(__dirname, '..', '..');
const INTEG = path.join(ROOT, 'integ');
const apps = fs.readdirSync(INTEG).filter(f => /^integ\..*\.ts$/.test(f));

function withoutSalts(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutSalts);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).filter(([k]) => k !== 'salt').map(([k, v]) => [k, withoutSalts(v)]));
  }
  return value;
}

test('there are integ apps', () => {
  expect(apps.length).toBeGreaterThanOrEqual(3);
});

test.each(apps)('%s: the committed assertion stack is what the app synthesizes (run `npx projen integ:update`)', (app) => {
  const snapshot = path.join(INTEG, `${app}.snapshot`);
  const committed = fs.readdirSync(snapshot).filter(f => f.includes('DeployAssert') && f.endsWith('.template.json'));
  expect(committed).toHaveLength(1);

  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'integ-assert-'));
  try {
    execFileSync(path.join(ROOT, 'node_modules', '.bin', 'ts-node'), ['--prefer-ts-exts', path.join(INTEG, app)], {
      cwd: ROOT,
      env: { ...process.env, CDK_OUTDIR: out, TS_NODE_TRANSPILE_ONLY: '1', AWS_EC2_METADATA_DISABLED: 'true' },
      stdio: 'pipe',
    });
    const read = (dir: string) => withoutSalts(JSON.parse(fs.readFileSync(path.join(dir, committed[0]), 'utf8')));
    expect(read(out)).toEqual(read(snapshot));
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}, 60_000);
