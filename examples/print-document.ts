// Prints the synthesized SSM document Content (JSON) of the example app: the exact script and
// parameters that nodes receive. Used by the node-side tests, which run what the document carries.
// With PRINT_ROLLOUT_FILE set, also writes there the push rollout's settings of an ImagePrefetcher
// with default props, as its rule and state machine send them ({"maxConcurrency", "maxErrors",
// "jitterSeconds"}): the local fleet test (test/fleet/run.sh) runs its new path with them.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import { buildApp } from './app';
import { ImagePrefetcher, NodeSelector } from '../src';
import { definitionOf } from '../test/util';

const { stack } = buildApp(path.join(os.tmpdir(), 'cdk-image-prefetcher-print-document'));
const documents = Template.fromStack(stack).findResources('AWS::SSM::Document');
const [document] = Object.values(documents);
process.stdout.write(`${JSON.stringify(document.Properties.Content, undefined, 2)}\n`);

if (process.env.PRINT_ROLLOUT_FILE) {
  const defaults = new Stack(new App(), 'Defaults', { env: { account: '123456789012', region: 'eu-west-1' } });
  new ImagePrefetcher(defaults, 'Prefetcher', {
    repository: ecr.Repository.fromRepositoryName(defaults, 'Repository', 'team/app'),
    nodes: NodeSelector.eksCluster('fleet'),
  });
  const resources: any[] = Object.values(Template.fromStack(defaults).toJSON().Resources);
  const machine = resources.find(r => r.Type === 'AWS::StepFunctions::StateMachine');
  const rule = resources.find(r => r.Type === 'AWS::Events::Rule');
  const send = definitionOf(machine).States.SendCommand.Parameters;
  const input = JSON.parse(rule.Properties.Targets[0].InputTransformer.InputTemplate.replace(/<[^>]+>/g, '"x"'));
  fs.writeFileSync(process.env.PRINT_ROLLOUT_FILE, JSON.stringify({
    maxConcurrency: send.MaxConcurrency,
    maxErrors: send.MaxErrors,
    jitterSeconds: Number(input.jitterSeconds[0]),
  }));
}
