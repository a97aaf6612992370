import { App, Aspects, Stack, Token } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ImagePrefetcher, NodeSelector, ReconcileSchedule, TagFilter } from '../src';
import { ENV } from './util';

function nagged(build: (stack: Stack) => void): Stack {
  const app = new App();
  const stack = new Stack(app, 'Stack', { env: ENV });
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
