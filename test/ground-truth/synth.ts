// Synthesizes the templates the ground-truth tools judge (scripts/ground-truth.sh): a stack for
// every prop combination that changes the template's shape, the example app and the consumers'
// reference app, each into its own cloud assembly under the directory given as the argument.
//   ts-node --transpile-only test/ground-truth/synth.ts <outdir>
import * as fs from 'fs';
import * as path from 'path';
import { App, CfnParameter, Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { buildApp } from '../../examples/app';
import {
  ComplianceSeverity, ImagePrefetcher, ImagePrefetcherProps, ImagePushForwarder, NodeSelector, ReconcileSchedule, RunCommandTarget,
  TagFilter, Threshold,
} from '../../src';

const ENV = { account: '123456789012', region: 'us-east-1' };

/** One stack per shape: `build` adds the constructs to a stack that holds a repository. */
interface Shape {
  readonly name: string;
  readonly env?: boolean;
  readonly build: (stack: Stack, repository: ecr.IRepository) => void;
}

/** One prefetcher with a node role that receives `grantNodeAccess` (and nothing else). */
function prefetcher(stack: Stack, repository: ecr.IRepository, props: Partial<ImagePrefetcherProps> = {}, id = 'Prefetch'): ImagePrefetcher {
  const p = new ImagePrefetcher(stack, id, { repository, nodes: NodeSelector.eksCluster('ml-cluster'), ...props });
  p.grantNodeAccess(new iam.Role(stack, `${id}NodeRole`, { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') }));
  return p;
}

const SHAPES: Shape[] = [
  { name: 'defaults', build: (s, r) => prefetcher(s, r) },
  { name: 'defaults-env-agnostic', env: false, build: (s, r) => prefetcher(s, r) },
  {
    name: 'every-option',
    build: (s, r) => prefetcher(s, r, {
      nodes: NodeSelector.tag('eks:nodegroup-name', 'gpu-a', 'gpu-b'),
      tagFilter: TagFilter.anyOf(TagFilter.exact('stable', 'latest'), TagFilter.prefix('release-', 'rc-')),
      newNodeImageTags: ['stable'],
      reconcileSchedule: ReconcileSchedule.rate(Duration.days(1)),
      maxConcurrency: Threshold.count(25),
      maxErrors: Threshold.percentage(5),
      deliveryTimeout: Duration.minutes(30),
      complianceSeverity: ComplianceSeverity.HIGH,
      jitter: Duration.minutes(5),
      maxDiskUsagePercent: 90,
      pinImages: true,
      maxAttempts: 3,
      executionTimeout: Duration.minutes(30),
      deadLetterQueue: new sqs.Queue(s, 'OwnDlq', { encryption: sqs.QueueEncryption.SQS_MANAGED, enforceSSL: true }),
      retryAttempts: 10,
      maxEventAge: Duration.hours(2),
      ruleName: 'prefetch-every-option',
      associationName: 'prefetch-every-option',
    }),
  },
  {
    // A cluster name known only at deploy time: the tag condition's key goes through CfnJson.
    name: 'token-cluster-name',
    build: (s, r) => prefetcher(s, r, { nodes: NodeSelector.eksCluster(new CfnParameter(s, 'ClusterName', { default: 'ml-cluster' }).valueAsString) }),
  },
  {
    // Props known only at deploy time (not validated at synth): Refs in the rule name, the trust
    // policy's source ARN and the association's parameters.
    name: 'token-props',
    build: (s, r) => {
      const param = (id: string, value: string) => new CfnParameter(s, id, { default: value }).valueAsString;
      prefetcher(s, r, {
        ruleName: param('RuleName', 'prefetch-rule'),
        associationName: param('AssociationName', 'prefetch-association'),
        newNodeImageTags: [param('NewNodeTag', 'stable')],
        maxDiskUsagePercent: new CfnParameter(s, 'MaxDiskUsagePercent', { type: 'Number', default: 80 }).valueAsNumber,
      });
    },
  },
  {
    // Shared document and dead-letter queue; another repository; more than five tag values (a warning).
    name: 'several-prefetchers',
    build: (s, r) => {
      prefetcher(s, r, {}, 'Cluster');
      prefetcher(s, r, { nodes: NodeSelector.eksNodeGroup('a', 'b', 'c', 'd', 'e', 'f'), tagFilter: TagFilter.exact('latest') }, 'NodeGroups');
      const other = new ecr.Repository(s, 'OtherRepo', { repositoryName: 'ml/inference' });
      prefetcher(s, other, { nodes: NodeSelector.karpenterNodePool('gpu'), tagFilter: TagFilter.prefix('v') }, 'Karpenter');
    },
  },
  { name: 'custom-dlq', build: (s, r) => prefetcher(s, r, { deadLetterQueue: new sqs.Queue(s, 'OwnDlq', { encryption: sqs.QueueEncryption.SQS_MANAGED, enforceSSL: true }) }) },
  { name: 'reconcile-cron', build: (s, r) => prefetcher(s, r, { reconcileSchedule: ReconcileSchedule.cron('cron(0 3 ? * * *)') }) },
  { name: 'reconcile-rate', build: (s, r) => prefetcher(s, r, { reconcileSchedule: ReconcileSchedule.rate(Duration.minutes(45)) }) },
  { name: 'pin-images', build: (s, r) => prefetcher(s, r, { pinImages: true }) },
  { name: 'tag-filter-exact', build: (s, r) => prefetcher(s, r, { tagFilter: TagFilter.exact('latest', 'stable') }) },
  { name: 'tag-filter-prefix', build: (s, r) => prefetcher(s, r, { tagFilter: TagFilter.prefix('release-') }) },
  { name: 'tag-filter-any-of', build: (s, r) => prefetcher(s, r, { tagFilter: TagFilter.anyOf(TagFilter.exact('stable'), TagFilter.prefix('v')) }) },
  {
    name: 'imported-repositories',
    build: (s) => {
      prefetcher(s, ecr.Repository.fromRepositoryName(s, 'RepoByName', 'team/app'), {}, 'ByName');
      prefetcher(s, ecr.Repository.fromRepositoryArn(s, 'RepoByArn', 'arn:aws:ecr:us-east-1:123456789012:repository/team/other'), {}, 'ByArn');
    },
  },
  {
    // The Run Command target on its own: its own role, a given role, a dead-letter queue.
    name: 'run-command-target',
    build: (s) => {
      const rule = new events.Rule(s, 'Rule', { eventPattern: { source: ['my.app'] } });
      rule.addTarget(new RunCommandTarget({ documentName: 'MyDocument', nodes: NodeSelector.tag('role', 'worker') }));
      const other = new events.Rule(s, 'OtherRule', { eventPattern: { source: ['my.app'] } });
      other.addTarget(new RunCommandTarget({
        documentName: 'MyDocument',
        nodes: NodeSelector.eksCluster('ml-cluster'),
        role: new iam.Role(s, 'GivenRole', { assumedBy: new iam.ServicePrincipal('events.amazonaws.com') }),
        deadLetterQueue: new sqs.Queue(s, 'Dlq', { encryption: sqs.QueueEncryption.SQS_MANAGED, enforceSSL: true }),
        retryAttempts: 0,
        maxEventAge: Duration.minutes(5),
      }));
    },
  },
  // Monitoring (issue 13): off; the nodes' output logs with their outcome filters and a dashboard.
  { name: 'monitoring-off', build: (s, r) => prefetcher(s, r, { monitoring: false }) },
  {
    name: 'node-output-logs',
    build: (s, r) => {
      const dashboard = new cloudwatch.Dashboard(s, 'Dashboard');
      prefetcher(s, r, { nodeOutputLogs: true, monitoringLogRetention: logs.RetentionDays.ONE_MONTH }, 'A').addToDashboard(dashboard);
      prefetcher(s, r, { nodes: NodeSelector.karpenterNodePool('gpu') }, 'B').addToDashboard(dashboard);
    },
  },
  {
    // Central registry account: the forwarder to 7 workload accounts (two rules), with retries.
    name: 'central-registry-forwarder',
    build: (s, r) => new ImagePushForwarder(s, 'ToWorkloads', {
      repositories: [r, new ecr.Repository(s, 'Inference', { repositoryName: 'ml/inference', imageScanOnPush: true })],
      accounts: Array.from({ length: 7 }, (_, i) => `${111122223333 + i}`),
      retryAttempts: 10,
      maxEventAge: Duration.hours(2),
    }),
  },
  {
    // A workload account: prefetchers on repositories of two registry accounts (one bus policy each).
    name: 'central-registry-workload',
    build: (s) => {
      const foreign = (id: string, account: string, name: string) => ecr.Repository.fromRepositoryArn(s, id, `arn:aws:ecr:${ENV.region}:${account}:repository/${name}`);
      prefetcher(s, foreign('TrainerRepo', '999988887777', 'ml/trainer'), {}, 'Trainer');
      prefetcher(s, foreign('InferenceRepo', '999988887777', 'ml/inference'), {}, 'Inference');
      prefetcher(s, foreign('OtherRepo', '555566667777', 'team/app'), {}, 'Other');
    },
  },
];

function main(): void {
  const outdir = process.argv[2];
  if (!outdir) throw new Error('usage: synth.ts <outdir>');
  fs.rmSync(outdir, { recursive: true, force: true });

  for (const shape of SHAPES) {
    const app = new App({ outdir: path.join(outdir, 'shapes', shape.name) });
    const stack = new Stack(app, `GroundTruth-${shape.name}`, shape.env === false ? {} : { env: ENV });
    shape.build(stack, new ecr.Repository(stack, 'Repo', { repositoryName: 'ml/trainer', imageScanOnPush: true }));
    app.synth();
  }

  buildApp(path.join(outdir, 'example')).app.synth();

  // The consumers' reference app synthesizes on import, into CDK_OUTDIR.
  process.env.CDK_OUTDIR = path.join(outdir, 'consumer-reference');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('../../examples/consumers/reference');

  console.log(`synthesized ${SHAPES.length} shapes, the example app and the consumers' reference app into ${outdir}`);
}

main();
