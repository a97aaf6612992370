// Writes the dashboard body the library synthesizes, for scripts/render-dashboard.py (the README's
// picture): a stack with one prefetcher (with the nodes' output logs) added to a dashboard, the
// DashboardBody of the template with every CloudFormation reference replaced by a readable stand-in.
//   ts-node --transpile-only scripts/dashboard-body.ts <out.json>
import * as fs from 'fs';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import { ImagePrefetcher, NodeSelector } from '../src';

/** Readable stand-ins for what CloudFormation names at deploy time, by resource type. */
const STAND_INS: { [type: string]: string } = {
  'AWS::SSM::Document': 'Prefetch-ImagePrefetcherDocument-Xk2f9Qw1',
  'AWS::Logs::LogGroup': 'Prefetch-LogGroup',
  'AWS::SQS::Queue': 'Prefetch-ImagePrefetcherDeadLetterQueue',
  'AWS::SSM::Association': '0b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b',
};

function main(): void {
  const out = process.argv[2];
  if (!out) throw new Error('usage: dashboard-body.ts <out.json>');
  const app = new App();
  const stack = new Stack(app, 'Prefetch', { env: { account: '123456789012', region: 'us-east-1' } });
  const repository = new ecr.Repository(stack, 'Trainer', { repositoryName: 'ml/trainer' });
  const prefetcher = new ImagePrefetcher(stack, 'Prefetch', {
    repository,
    nodes: NodeSelector.eksCluster('ml-cluster'),
    nodeOutputLogs: true,
  });
  prefetcher.addToDashboard(new cloudwatch.Dashboard(stack, 'Fleet'));

  const template = Template.fromStack(stack).toJSON();
  const resources: { [id: string]: any } = template.Resources;
  const dashboards = Object.values(resources).filter(r => r.Type === 'AWS::CloudWatch::Dashboard');
  if (dashboards.length !== 1) throw new Error(`expected one dashboard, found ${dashboards.length}`);
  const name = (id: string): string => {
    const r = resources[id];
    if (!r) throw new Error(`reference to unknown ${id}`);
    if (r.Type === 'AWS::ECR::Repository') return r.Properties.RepositoryName;
    if (r.Type === 'AWS::Events::Rule') return r.Properties.Name;
    if (r.Type === 'AWS::StepFunctions::StateMachine') return `arn:aws:states:us-east-1:123456789012:stateMachine:${r.Properties.StateMachineName}`;
    return STAND_INS[r.Type] ?? id;
  };
  const parts: any[] = dashboards[0].Properties.DashboardBody['Fn::Join'][1];
  const text = parts.map(p => {
    if (typeof p === 'string') return p;
    if (p.Ref === 'AWS::Region') return 'us-east-1';
    if (p.Ref) return name(p.Ref);
    if (p['Fn::GetAtt']) return name(p['Fn::GetAtt'][0]);
    throw new Error(`unexpected part of the dashboard body: ${JSON.stringify(p)}`);
  }).join('');
  fs.writeFileSync(out, JSON.stringify(JSON.parse(text), undefined, 1));
  console.log(`dashboard body with ${JSON.parse(text).widgets.length} widgets in ${out}`);
}

main();
