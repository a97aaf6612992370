import { App, Aspects, Stack, Token } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ImagePrefetcher, ImagePushForwarder, NodeSelector, ReconcileSchedule, TagFilter } from '../src';
import { ENV } from './util';

function nagged(build: (stack: Stack) => void, env: { account: string; region: string } = ENV): Stack {
  const app = new App();
  const stack = new Stack(app, 'Stack', { env });
  build(stack);
  Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
  app.synth();
  return stack;
}

describe('cdk-nag AwsSolutions', () => {
  test.each([
    ['one prefetcher on a cluster', (stack: Stack) => {
      const repository = new ecr.Repository(stack, 'Repo', { imageScanOnPush: true });
      new ImagePrefetcher(stack, 'Prefetch', { repository, nodes: NodeSelector.eksCluster('ml') });
    }],
    ['several prefetchers with every option and a cluster name Token', (stack: Stack) => {
      const repository = new ecr.Repository(stack, 'Repo', { imageScanOnPush: true });
      new ImagePrefetcher(stack, 'A', { repository, nodes: NodeSelector.eksCluster(Token.asString({ Ref: 'AWS::StackName' })) });
      new ImagePrefetcher(stack, 'B', {
        repository,
        nodes: NodeSelector.tag('eks:nodegroup-name', 'gpu-a', 'gpu-b'),
        tagFilter: TagFilter.prefix('release-'),
        reconcileSchedule: ReconcileSchedule.cron('cron(0 3 ? * * *)'),
      });
    }],
    ['monitoring with the nodes\' output logs and a dashboard', (stack: Stack) => {
      const repository = new ecr.Repository(stack, 'Repo', { imageScanOnPush: true });
      new ImagePrefetcher(stack, 'Prefetch', { repository, nodes: NodeSelector.eksCluster('ml'), nodeOutputLogs: true })
        .addToDashboard(new cloudwatch.Dashboard(stack, 'Dashboard'));
    }],
  ])('reports nothing unsuppressed for %s', (_name, build) => {
    const stack = nagged(build);
    const errors = Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*'));
    const warnings = Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*'));
    expect(errors.map(e => `${e.id}: ${e.entry.data}`)).toEqual([]);
    expect(warnings.map(e => `${e.id}: ${e.entry.data}`)).toEqual([]);
  });

  test('the suppressions are narrow: another wildcard on the event role is still reported', () => {
    const stack = nagged((s) => {
      const repository = new ecr.Repository(s, 'Repo', { imageScanOnPush: true });
      const prefetcher = new ImagePrefetcher(s, 'Prefetch', { repository, nodes: NodeSelector.eksCluster('ml') });
      prefetcher.eventRole.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['ssm:SendCommand'], resources: ['arn:aws:ssm:us-east-1:123456789012:document/*'] }));
    });
    const errors = Annotations.fromStack(stack).findError('/Stack/Prefetch/EventRole/DefaultPolicy/Resource', Match.stringLikeRegexp('AwsSolutions-IAM5'));
    expect(errors.map(e => e.entry.data)).toEqual([expect.stringContaining('Resource::arn:aws:ssm:us-east-1:123456789012:document/*')]);
  });

  test('the checks do run: an unsuppressed finding elsewhere is reported', () => {
    const stack = nagged((s) => {
      new ecr.Repository(s, 'Repo', { imageScanOnPush: true });
      new sqs.Queue(s, 'PlainQueue');
    });
    const errors = Annotations.fromStack(stack).findError('/Stack/PlainQueue/Resource', Match.stringLikeRegexp('AwsSolutions-SQS'));
    expect(errors.length).toBeGreaterThan(0);
  });
});

describe('cdk-nag AwsSolutions: central registry account', () => {
  test.each([
    ['a forwarder to 7 accounts (two rules) in the registry account', ENV, (stack: Stack) => {
      const trainer = new ecr.Repository(stack, 'Trainer', { imageScanOnPush: true });
      const inference = new ecr.Repository(stack, 'Inference', { imageScanOnPush: true });
      new ImagePushForwarder(stack, 'ToWorkloads', {
        repositories: [trainer, inference],
        accounts: Array.from({ length: 7 }, (_, i) => `${111122223333 + i}`),
        retryAttempts: 10,
      });
    }],
    ['prefetchers of two registry accounts\' repositories with their node role', { account: '111122223333', region: ENV.region }, (stack: Stack) => {
      const trainer = ecr.Repository.fromRepositoryArn(stack, 'Trainer', `arn:aws:ecr:${ENV.region}:999988887777:repository/ml/trainer`);
      const other = ecr.Repository.fromRepositoryArn(stack, 'Other', `arn:aws:ecr:${ENV.region}:555566667777:repository/team/app`);
      const nodeRole = new iam.Role(stack, 'NodeRole', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
      new ImagePrefetcher(stack, 'A', { repository: trainer, nodes: NodeSelector.eksCluster('ml') }).grantNodeAccess(nodeRole);
      new ImagePrefetcher(stack, 'B', { repository: other, nodes: NodeSelector.eksCluster('ml') }).grantNodeAccess(nodeRole);
    }],
  ])('reports nothing unsuppressed for %s', (_name, env, build) => {
    const stack = nagged(build, env);
    const errors = Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*'));
    const warnings = Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*'));
    // The node role is the user's: the only finding is grantPull's ecr:GetAuthorizationToken on "*"
    // (the action has no resource type), which the user suppresses on their role as for any pull.
    expect(errors.map(e => `${e.id}: ${String(e.entry.data).split(':')[0]}`)).toEqual(
      (env === ENV ? [] : ['/Stack/NodeRole/DefaultPolicy/Resource: AwsSolutions-IAM5[Resource']));
    expect(errors.every(e => String(e.entry.data).startsWith('AwsSolutions-IAM5[Resource::*]'))).toBe(true);
    expect(warnings.map(e => `${e.id}: ${e.entry.data}`)).toEqual([]);
  });
});
