import { Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { NodeSelector, RunCommandTarget } from '../src';
import { givenStack } from './util';

describe('RunCommandTarget on its own', () => {
  test('creates a role trusted by EventBridge for this account\'s rules when none is given', () => {
    // GIVEN a rule WHEN the target is added without a role
    const { stack } = givenStack();
    const rule = new events.Rule(stack, 'Rule', { eventPattern: { source: ['my.app'] } });
    rule.addTarget(new RunCommandTarget({ documentName: 'MyDocument', nodes: NodeSelector.tag('role', 'worker') }));
    const template = Template.fromStack(stack);

    // THEN the target runs the document on the tagged instances, with a new least-privilege role
    template.hasResourceProperties('AWS::Events::Rule', {
      Targets: [{
        Id: 'Target0',
        Arn: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ssm:us-east-1:123456789012:document/MyDocument']] },
        RoleArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('RuleRunCommandRole'), 'Arn'] },
        RunCommandParameters: { RunCommandTargets: [{ Key: 'tag:role', Values: ['worker'] }] },
      }],
    });
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [{
          Action: 'sts:AssumeRole',
          Effect: 'Allow',
          Principal: { Service: 'events.amazonaws.com' },
          Condition: {
            StringEquals: { 'aws:SourceAccount': '123456789012' },
            ArnLike: { 'aws:SourceArn': { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':events:us-east-1:123456789012:rule/*']] } },
          },
        }],
      },
    });
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: [
          Match.objectLike({ Action: 'ssm:SendCommand', Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ssm:us-east-1:123456789012:document/MyDocument']] } }),
          Match.objectLike({ Action: 'ssm:SendCommand', Condition: { StringEquals: { 'ssm:resourceTag/role': ['worker'] } } }),
        ],
      },
    });
  });

  test('passes input, retry policy and dead-letter queue through', () => {
    const { stack } = givenStack();
    const queue = new sqs.Queue(stack, 'Dlq');
    const rule = new events.Rule(stack, 'Rule', { eventPattern: { source: ['my.app'] } });
    rule.addTarget(new RunCommandTarget({
      documentName: 'MyDocument',
      nodes: NodeSelector.tag('role', 'worker'),
      input: events.RuleTargetInput.fromObject({ message: [events.EventField.fromPath('$.detail.message')] }),
      deadLetterQueue: queue,
      retryAttempts: 0,
      maxEventAge: Duration.minutes(5),
    }));
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::Events::Rule', {
      Targets: [Match.objectLike({
        InputTransformer: { InputPathsMap: { 'detail-message': '$.detail.message' }, InputTemplate: '{"message":[<detail-message>]}' },
        RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 300 },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('Dlq'), 'Arn'] } },
      })],
    });
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: [Match.objectLike({
          Action: 'sqs:SendMessage',
          Principal: { Service: 'events.amazonaws.com' },
          Condition: { ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': [Match.stringLikeRegexp('Rule'), 'Arn'] } } },
        })],
      },
    });
  });

  test.each([
    ['retryAttempts: -1', { retryAttempts: -1 }, '`retryAttempts`: must be a whole number from 0 to 185, got: -1'],
    ['retryAttempts: 2.5', { retryAttempts: 2.5 }, '`retryAttempts`: must be a whole number from 0 to 185, got: 2.5'],
    ['maxEventAge: 30 s', { maxEventAge: Duration.seconds(30) }, '`maxEventAge`: must be a whole number of seconds from 60 to 86400 (24 hours), got: "30 seconds"'],
  ])('refuses %s', (_name, props, message) => {
    expect(() => new RunCommandTarget({ documentName: 'D', nodes: NodeSelector.tag('k', 'v'), ...props })).toThrow(message);
  });
});
