// The status-events cases RuleCheck.java gives to event-ruler: the synthesized status-events rule
// (test/contract/status-synthesized.ts) against SSM's documented status-change events and their
// variations (test/contract/ssm-events.ts), each with the verdict of our own evaluator
// (test/contract/eventbridge.ts) and of the table, which must agree with event-ruler.
//   ts-node --transpile-only test/ground-truth/status-rule-cases.ts <cases.json>
import * as fs from 'fs';
import { matchesPattern } from '../contract/eventbridge';
import { statusEventTable } from '../contract/ssm-events';
import { ASSOCIATION_ID, DOCUMENT_NAME, synthesizeStatusEvents } from '../contract/status-synthesized';

function main(): void {
  const out = process.argv[2];
  if (!out) throw new Error('usage: status-rule-cases.ts <cases.json>');
  const pattern = synthesizeStatusEvents().eventPattern;
  const cases = statusEventTable(DOCUMENT_NAME, ASSOCIATION_ID).map(([name, event, expected]) => {
    if (matchesPattern(pattern, event) !== expected) throw new Error(`our evaluator and the table disagree on: ${name}`);
    return { name: `status events: ${name}`, pattern, event, expected };
  });
  fs.writeFileSync(out, JSON.stringify(cases, undefined, 1));
  console.log(`${cases.length} cases (the status-events pattern x ${cases.length} SSM events) in ${out}`);
}

main();
