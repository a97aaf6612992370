// The AWS half of the node chain (test/contract/node-chain.sh): one ECR event through the
// SYNTHESIZED rule's event pattern and input transformer, as EventBridge would, then through the
// push rollout's SendCommand task, as Step Functions would.
//   ts-node test/contract/chain.ts --event event.json --out DIR [--contract CACHE.json]
// Writes DIR/document.json (the synthesized SSM document) and, when the rule matches,
// DIR/params.json (the SendCommand request's Parameters: what SSM hands the document) and
// DIR/send-command.json (the whole request). Exit 0 = matched, 3 = the rule does not match.
// With --contract, the synthesized contract is read from that file (written on first use), so
// that a run of many events synthesizes once.
// With --central, the event is one of a central registry account: it goes first through the
// forwarder's synthesized pattern there (exit 4 when it is not forwarded), then arrives on the
// workload account's bus, whose prefetcher's repository is the registry account's (central.ts).
import * as fs from 'fs';
import * as path from 'path';
import { forwarded, synthesizeCentralContract, synthesizeForwarder } from './central';
import { matchesPattern, transformInput } from './eventbridge';
import { Contract, sendCommandRequest, synthesizeContract } from './synthesized';

function main(argv: string[]): number {
  const arg = (name: string): string => {
    const i = argv.indexOf(name);
    if (i < 0 || i + 1 >= argv.length) throw new Error(`usage: chain.ts --event FILE --out DIR (missing ${name})`);
    return argv[i + 1];
  };
  const central = argv.includes('--central');
  let event = JSON.parse(fs.readFileSync(arg('--event'), 'utf8'));
  const out = arg('--out');
  const cache = argv.includes('--contract') ? arg('--contract') : undefined;
  let contract: Contract;
  if (cache && fs.existsSync(cache)) {
    contract = JSON.parse(fs.readFileSync(cache, 'utf8'));
  } else {
    contract = central ? synthesizeCentralContract() : synthesizeContract();
    if (cache) fs.writeFileSync(cache, JSON.stringify(contract));
  }
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'document.json'), JSON.stringify(contract.document, null, 2));
  if (central) {
    const forwarder = synthesizeForwarder();
    event = matchesPattern(forwarder.eventPattern, event) ? forwarded(forwarder, event) : undefined;
    if (!event) {
      process.stdout.write('forwarder: not forwarded\n');
      return 4;
    }
  }
  if (!matchesPattern(contract.eventPattern, event)) {
    process.stdout.write('rule: no match\n');
    return 3;
  }
  const input = transformInput(contract.inputTransformer, event);
  const request = sendCommandRequest(contract, input);
  fs.writeFileSync(path.join(out, 'send-command.json'), JSON.stringify(request, null, 2));
  fs.writeFileSync(path.join(out, 'params.json'), JSON.stringify(request.Parameters));
  process.stdout.write(`rule: match\nexecution input: ${input}\nSendCommand: MaxConcurrency=${request.MaxConcurrency} MaxErrors=${request.MaxErrors} TimeoutSeconds=${request.TimeoutSeconds} Targets=${JSON.stringify(request.Targets)} Comment=${request.Comment}\n`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
