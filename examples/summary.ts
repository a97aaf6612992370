// `npx projen example`: synthesizes the example app offline (no AWS account, no credentials) into
// examples/cdk.out and explains, for someone who has never used SSM, what it would deploy.
import * as path from 'path';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from './app';
import { definitionOf } from '../test/util';

const outdir = path.join(__dirname, 'cdk.out');
const { app, stack } = buildApp(outdir);
app.synth();
const template = Template.fromStack(stack).toJSON();
const resources: { [id: string]: any } = template.Resources;

const out: string[] = [];
const say = (line = '') => out.push(line);
const show = (value: any): string => (typeof value === 'string' ? value : JSON.stringify(stack.resolve(value)));
const nameOf = (value: any): string => {
  // Ref/GetAtt of a resource in this template: print its logical ID (what `cdk deploy` lists).
  if (value && typeof value === 'object' && 'Ref' in value) {
    const name = resources[value.Ref]?.Properties?.RepositoryName;
    return name ? `${name} (${value.Ref})` : `<${value.Ref}>`;
  }
  return show(value);
};

say(`Synthesized ${stack.stackName} to ${path.relative(process.cwd(), outdir)} (offline).`);
say();
say('Resources it would deploy:');
const counts = new Map<string, number>();
for (const resource of Object.values(resources)) counts.set(resource.Type, (counts.get(resource.Type) ?? 0) + 1);
for (const [type, count] of [...counts.entries()].sort()) say(`  ${String(count).padStart(2)} x ${type}`);

const isPushRule = (r: any) => r.Type === 'AWS::Events::Rule' && JSON.stringify(r.Properties.EventPattern.source) === '["aws.ecr"]';
for (const [id, rule] of Object.entries(resources).filter(([, r]) => isPushRule(r))) {
  const p = rule.Properties;
  const detail = p.EventPattern.detail;
  const target = p.Targets[0];
  const machineId: string = target.Arn.Ref;
  const send = definitionOf(resources[machineId]).States.SendCommand;
  const selector = send.Parameters.Targets[0];
  say();
  say(`EventBridge rule ${p.Name} (${id})`);
  say(`  fires when ECR reports a successful push or replication (${p.EventPattern['detail-type'].map((t: string) => `"${t}"`).join(' or ')}, action ${detail['action-type'].join(' or ')}, result ${detail.result[0]})`);
  say(`  to repository ${detail['repository-name'].map(nameOf).join(', ')} of account ${(p.EventPattern.account ?? ['(any)']).map(show).join(', ')}`);
  say(`  with an image tag matching ${JSON.stringify(detail['image-tag'])} (untagged pushes never match)`);
  say(`  of a container image: ${JSON.stringify(detail.$or)} (any one of them)`);
  say(`  and then starts Step Functions state machine ${machineId}, which calls SSM SendCommand once to run`);
  say(`  document ${send.Parameters.DocumentName} (named by CloudFormation) on every EC2 instance whose tag`);
  say(`  ${selector.Key.replace(/^tag:/, '')} is one of ${JSON.stringify(selector.Values)}: SSM starts with one node and doubles up to`);
  say(`  ${send.Parameters.MaxConcurrency} of them at once (MaxConcurrency), stops sending after ${send.Parameters.MaxErrors} failed nodes (MaxErrors),`);
  say(`  and gives up on a node that does not answer within ${send.Parameters.TimeoutSeconds} s (TimeoutSeconds)`);
  say('  Each node receives these parameters (<x> = taken from the push event):');
  const template_ = JSON.parse(target.InputTransformer.InputTemplate.replace(/<([^>]+)>/g, '"<$1>"'));
  for (const [name, values] of Object.entries(template_)) {
    const value = (values as string[])[0];
    const from = value.startsWith('<') ? `  (event ${target.InputTransformer.InputPathsMap[value.slice(1, -1)]})` : '';
    say(`    ${name.padEnd(20)} ${value}${from}`);
  }
  say(`  Undeliverable events go to queue ${nameOf(target.DeadLetterConfig.Arn['Fn::GetAtt'][0])} after EventBridge's retries.`);
}

for (const [id, rule] of Object.entries(resources).filter(([, r]) => r.Type === 'AWS::Events::Rule' && !isPushRule(r))) {
  say();
  say(`EventBridge rule ${id}: ${rule.Properties.Description}`);
  say(`  matches ${JSON.stringify(rule.Properties.EventPattern)}`);
}

for (const [id, association] of Object.entries(resources).filter(([, r]) => r.Type === 'AWS::SSM::Association')) {
  const p = association.Properties;
  say();
  say(`State Manager association ${id}`);
  say(`  runs the same document on every instance whose tag ${p.Targets[0].Key.replace(/^tag:/, '')} is one of ${JSON.stringify(p.Targets[0].Values)}:`);
  say('  once when deployed, then on every such node as soon as it registers with SSM'
    + (p.ScheduleExpression ? `, and again ${p.ScheduleExpression}` : ' (no reconcile schedule)'));
  say(`  at most ${p.MaxConcurrency} of the nodes at a time; stops after ${p.MaxErrors} failed nodes; compliance severity ${p.ComplianceSeverity}`);
  const tags = p.Parameters.imageTags[0];
  const prefixes = p.Parameters.tagPrefixes[0];
  say(`  pulls: ${tags ? `tags ${tags}` : `the newest pushed image${prefixes ? ` among tags starting with ${prefixes}` : ''}, as the push leg recorded it in ${nameOf(p.Parameters.recordTable[0])} (the repository is searched while nothing is recorded)`}`);
  say(`  parameters: ${Object.entries(p.Parameters).map(([k, v]) => `${k}=${nameOf((v as any[])[0])}`).join(' ')}`);
}

const [documentId, document] = Object.entries(resources).find(([, r]) => r.Type === 'AWS::SSM::Document')!;
say();
say(`SSM Command document ${documentId} (shared by every prefetcher of the stack)`);
say(`  runs the node script (${document.Properties.Content.mainSteps[0].inputs.runCommand.length} lines) as root; SSM refuses any parameter that fails its pattern:`);
for (const [name, parameter] of Object.entries<any>(document.Properties.Content.parameters)) {
  say(`    ${name.padEnd(20)} ${parameter.allowedPattern}${parameter.default !== undefined ? `  (default "${parameter.default}")` : ''}`);
}
say();
say('Nothing was deployed. `cdk deploy` from this app would create the resources above.');
process.stdout.write(`${out.join('\n')}\n`);
