// The example app: one ECR repository of big ML images, kept warm on every node of an EKS
// cluster, and a second repository kept warm on two GPU node groups for release tags only.
import { App, Duration, Stack, StackProps } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { ImagePrefetcher, NodeSelector, ReconcileSchedule, TagFilter } from '../src';

export class ExampleStack extends Stack {
  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);

    const trainer = new ecr.Repository(this, 'Trainer', { repositoryName: 'ml/trainer', imageScanOnPush: true });
    const inference = new ecr.Repository(this, 'Inference', { repositoryName: 'ml/inference', imageScanOnPush: true });

    // Every node of the cluster: managed node groups, self-managed and Karpenter nodes.
    const all = new ImagePrefetcher(this, 'TrainerOnCluster', {
      repository: trainer,
      nodes: NodeSelector.eksCluster('ml-cluster'),
    });

    // Two GPU node groups, release tags only, reconciled every 6 hours.
    new ImagePrefetcher(this, 'InferenceOnGpuNodes', {
      repository: inference,
      nodes: NodeSelector.tag('eks:nodegroup-name', 'gpu-a', 'gpu-b'),
      tagFilter: TagFilter.prefix('release-'),
      reconcileSchedule: ReconcileSchedule.rate(Duration.hours(6)),
    });

    // The node role (normally your node group's or Karpenter's) needs to pull and describe images.
    const nodeRole = new iam.Role(this, 'NodeRole', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
    all.grantNodeAccess(nodeRole);
  }
}

export function buildApp(outdir?: string): { app: App; stack: ExampleStack } {
  const app = new App({ outdir });
  const stack = new ExampleStack(app, 'ImagePrefetcherExample', {
    env: { account: process.env.CDK_DEFAULT_ACCOUNT ?? '123456789012', region: process.env.CDK_DEFAULT_REGION ?? 'us-east-1' },
  });
  return { app, stack };
}

if (require.main === module) {
  buildApp().app.synth();
}
