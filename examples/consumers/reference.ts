// The TypeScript reference for the consumer apps: the same stack, built from src/ with ts-node.
// The Python, Java and Go apps must synthesize the same template (see compare.js).
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import { ImagePrefetcher, NodeSelector, ReconcileSchedule, TagFilter } from '../../src';

const app = new App({
  outdir: process.env.CDK_OUTDIR ?? 'cdk.out',
  // The analytics metadata names the language of the app: leave it out so that templates compare.
  analyticsReporting: false,
});
const stack = new Stack(app, 'PrefetchConsumer', {
  env: { account: '123456789012', region: 'us-east-1' },
});

const repository = new ecr.Repository(stack, 'Repo');

const cluster = new ImagePrefetcher(stack, 'ClusterPrefetch', {
  repository,
  nodes: NodeSelector.eksCluster('ml-cluster'),
});

new ImagePrefetcher(stack, 'GpuPrefetch', {
  repository,
  nodes: NodeSelector.tag('eks:nodegroup-name', 'gpu-a', 'gpu-b'),
  tagFilter: TagFilter.prefix('release-'),
  reconcileSchedule: ReconcileSchedule.rate(Duration.hours(6)),
});

const nodeRole = new iam.Role(stack, 'NodeRole', {
  assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
});
cluster.grantNodeAccess(nodeRole);

app.synth();
