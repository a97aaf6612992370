// Prints the node check the integ tests send with SSM Run Command (integ/support.ts,
// nodeImagesCheck), for node-chain.sh to run against a real containerd offline.
//   ts-node test/contract/integ-check.ts SPEC_JSON OUT_DIR
// SPEC_JSON: {"expected": [{"reference": "...", "digest": "sha256:..."}], "waitFor": {...},
//             "settleSeconds": 1, "absentDigests": ["sha256:..."]}
// Writes OUT_DIR/commands.sh (the commands, one a line, as AWS-RunShellScript runs them) and
// OUT_DIR/stdout (the exact output the integ assertion expects).
import * as fs from 'fs';
import * as path from 'path';
import { Duration } from 'aws-cdk-lib';
import { nodeImagesCheck } from '../../integ/support';

const [specText, out] = process.argv.slice(2);
const spec = JSON.parse(specText);
const { commands, stdout } = nodeImagesCheck(spec.expected, {
  waitFor: spec.waitFor,
  settle: spec.settleSeconds !== undefined ? Duration.seconds(spec.settleSeconds) : undefined,
  absentDigests: spec.absentDigests,
});
fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(path.join(out, 'commands.sh'), commands.join('\n') + '\n');
fs.writeFileSync(path.join(out, 'stdout'), stdout);
