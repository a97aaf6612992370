import { App, Duration, Stack, Token } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { ComplianceSeverity, ImagePrefetcher, ImagePrefetcherProps, NodeSelector, ReconcileSchedule, TagFilter, Threshold } from '../src';
import { definitionOf, givenStack, stateMachineDefinition } from './util';

function synth(props: Partial<ImagePrefetcherProps> = {}): { stack: Stack; template: Template; prefetcher: ImagePrefetcher } {
  const { stack, repository } = givenStack();
  const prefetcher = new ImagePrefetcher(stack, 'Prefetch', {
    repository,
    nodes: NodeSelector.eksCluster('ml-cluster'),
    ...props,
  });
  return { stack, template: Template.fromStack(stack), prefetcher };
}

describe('ImagePrefetcher with defaults', () => {
  // GIVEN a repository and a cluster WHEN one prefetcher is added
  const { stack, template, prefetcher } = synth();

  test('deploys one rule, two roles with their policies, one state machine, one document, one association and one queue', () => {
    template.resourcePropertiesCountIs('AWS::Events::Rule', { EventPattern: { source: ['aws.ecr'] } }, 1);
    template.resourceCountIs('AWS::IAM::Role', 2);
    template.resourceCountIs('AWS::IAM::Policy', 2);
    template.resourceCountIs('AWS::StepFunctions::StateMachine', 1);
    template.resourceCountIs('AWS::SSM::Document', 1);
    template.resourceCountIs('AWS::SSM::Association', 1);
    template.resourceCountIs('AWS::SQS::Queue', 1);
    template.resourceCountIs('AWS::SQS::QueuePolicy', 1);
  });

  test('the rule matches successful tagged pushes and replications of container images to this repository only', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      State: 'ENABLED',
      EventPattern: {
        'source': ['aws.ecr'],
        'detail-type': ['ECR Image Action', 'ECR Replication Action'],
        'detail': {
          'action-type': ['PUSH', 'REPLICATE'],
          'result': ['SUCCESS'],
          'repository-name': [{ Ref: Match.stringLikeRegexp('Repo') }],
          'image-tag': [{ 'anything-but': { wildcard: ['', 'sha256-*.sig', 'sha256-*.att', 'sha256-*.sbom'] } }],
          '$or': [
            { 'manifest-media-type': ['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'] },
            { 'artifact-media-type': [{ exists: false }, '', 'application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json'] },
          ],
        },
      },
    });
  });

  test('the rule has a name fixed before deployment', () => {
    const rule = Object.values(template.findResources('AWS::Events::Rule'))[0];
    expect(rule.Properties.Name).toMatch(/^[.\-_A-Za-z0-9]{1,64}$/);
    expect(rule.Properties.Name).toContain('Prefetch');
  });

  test('the target starts the push rollout with the pushed tag and digest as the document parameters', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      Targets: [Match.objectLike({
        Arn: { Ref: Match.stringLikeRegexp('PrefetchPushRolloutStateMachine') },
        RoleArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('PrefetchEventRole'), 'Arn'] },
        RunCommandParameters: Match.absent(),
        InputTransformer: {
          InputPathsMap: {
            'account': '$.account',
            'region': '$.region',
            'detail-repository-name': '$.detail.repository-name',
            'detail-image-tag': '$.detail.image-tag',
            'detail-image-digest': '$.detail.image-digest',
            'time': '$.time',
          },
          InputTemplate: '{"accountId":[<account>],"region":[<region>],"repositoryName":[<detail-repository-name>],"imageTags":[<detail-image-tag>],"imageDigest":[<detail-image-digest>],"eventTime":[<time>],"jitterSeconds":["90"],"maxDiskUsagePercent":["80"],"pinImages":["false"],"maxAttempts":["5"],"executionTimeout":["3600"]}',
        },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('ImagePrefetcherDeadLetterQueue'), 'Arn'] } },
      })],
    });
  });

  test('the target keeps EventBridge default retries (185 attempts, 24 hours)', () => {
    const rule = Object.values(template.findResources('AWS::Events::Rule'))[0];
    expect(rule.Properties.Targets[0].RetryPolicy).toBeUndefined();
  });

  test('the association targets the same nodes and pulls the most recently pushed tagged image', () => {
    template.hasResourceProperties('AWS::SSM::Association', {
      Name: { Ref: Match.stringLikeRegexp('ImagePrefetcherDocument') },
      Targets: [{ Key: 'tag:kubernetes.io/cluster/ml-cluster', Values: ['owned'] }],
      Parameters: {
        accountId: ['123456789012'],
        region: ['us-east-1'],
        repositoryName: [{ Ref: Match.stringLikeRegexp('Repo') }],
        imageTags: [''],
        tagPrefixes: [''],
        jitterSeconds: ['90'],
        maxDiskUsagePercent: ['80'],
        pinImages: ['false'],
        maxAttempts: ['5'],
        executionTimeout: ['3600'],
      },
      MaxConcurrency: '100%',
      MaxErrors: '100%',
      ComplianceSeverity: 'MEDIUM',
      SyncCompliance: 'AUTO',
      ScheduleExpression: Match.absent(),
      ApplyOnlyAtCronInterval: Match.absent(),
      WaitForSuccessTimeoutSeconds: Match.absent(),
    });
  });

  test('the event role trusts EventBridge only for this rule in this account', () => {
    const rule = Object.values(template.findResources('AWS::Events::Rule'))[0];
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [{
          Action: 'sts:AssumeRole',
          Effect: 'Allow',
          Principal: { Service: 'events.amazonaws.com' },
          Condition: {
            StringEquals: { 'aws:SourceAccount': '123456789012' },
            ArnEquals: {
              'aws:SourceArn': {
                'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:events:us-east-1:123456789012:rule/${rule.Properties.Name}`]],
              },
            },
          },
        }],
      },
    });
  });

  test('the event role may only start this prefetcher\'s rollout', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('PrefetchEventRole') }],
      PolicyDocument: {
        Statement: [{
          Action: 'states:StartExecution',
          Effect: 'Allow',
          Resource: { Ref: Match.stringLikeRegexp('PrefetchPushRolloutStateMachine') },
        }],
      },
    });
  });

  test('the rollout role trusts Step Functions only for this state machine in this account', () => {
    const machine = Object.values(template.findResources('AWS::StepFunctions::StateMachine'))[0];
    expect(machine.Properties.StateMachineName).toMatch(/^[A-Za-z0-9_-]{1,80}$/);
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [{
          Action: 'sts:AssumeRole',
          Effect: 'Allow',
          Principal: { Service: 'states.amazonaws.com' },
          Condition: {
            StringEquals: { 'aws:SourceAccount': '123456789012' },
            ArnEquals: {
              'aws:SourceArn': {
                'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:states:us-east-1:123456789012:stateMachine:${machine.Properties.StateMachineName}`]],
              },
            },
          },
        }],
      },
    });
  });

  test('the rollout role may send only this document, only to instances carrying the selected tag, and pass no role', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('PrefetchPushRolloutRole') }],
      PolicyDocument: {
        Statement: [
          {
            Action: 'ssm:SendCommand',
            Effect: 'Allow',
            Resource: {
              'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ssm:us-east-1:123456789012:document/', { Ref: Match.stringLikeRegexp('ImagePrefetcherDocument') }]],
            },
          },
          {
            Action: 'ssm:SendCommand',
            Effect: 'Allow',
            Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ec2:us-east-1:123456789012:instance/*']] },
            Condition: { StringEquals: { 'ssm:resourceTag/kubernetes.io/cluster/ml-cluster': ['owned'] } },
          },
          {
            Action: 'dynamodb:UpdateItem',
            Effect: 'Allow',
            Resource: {
              'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':dynamodb:us-east-1:123456789012:table/', { Ref: Match.stringLikeRegexp('ImagePrefetcherNewestImagesTable') }]],
            },
          },
        ],
      },
    });
    expect(JSON.stringify(template.findResources('AWS::IAM::Policy'))).not.toContain('iam:PassRole');
  });

  test('the state machine sends the document with the rollout settings and the execution input as parameters', () => {
    const definition = stateMachineDefinition(template);
    expect(definition.StartAt).toBe('SendCommand');
    expect(definition.TimeoutSeconds).toBe(900);
    const task = definition.States.SendCommand;
    expect(task).toMatchObject({
      Type: 'Task',
      Next: 'RecordTag',
      ResultPath: '$.command',
      Resource: 'arn:${AWS::Partition}:states:::aws-sdk:ssm:sendCommand',
      Parameters: {
        'DocumentName': expect.stringMatching(/^\$\{ImagePrefetcherDocument[0-9A-F]+\}$/),
        'Targets': [{ Key: 'tag:kubernetes.io/cluster/ml-cluster', Values: ['owned'] }],
        'MaxConcurrency': '100%',
        'MaxErrors': '100%',
        'TimeoutSeconds': 3600,
        'Parameters.$': '$',
        'Comment.$': "States.Format('cdk-image-prefetcher {}', $.imageDigest[0])",
      },
    });
    expect(task.Retry).toEqual([{
      ErrorEquals: ['Ssm.ThrottlingException', 'Ssm.InternalServerErrorException', 'Ssm.TooManyUpdatesException'],
      IntervalSeconds: 2,
      MaxAttempts: 6,
      BackoffRate: 2,
      JitterStrategy: 'FULL',
    }]);
    expect(task.Catch).toBeUndefined();
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineType: 'STANDARD',
      RoleArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('PrefetchPushRolloutRole'), 'Arn'] },
    });
  });

  test('no statement allows AWS-RunShellScript or SendCommand on *', () => {
    const json = JSON.stringify(template.findResources('AWS::IAM::Policy'));
    expect(json).not.toContain('AWS-RunShellScript');
    for (const policy of Object.values(template.findResources('AWS::IAM::Policy'))) {
      for (const statement of policy.Properties.PolicyDocument.Statement) {
        expect(statement.Resource).not.toEqual('*');
      }
    }
  });

  test('the dead-letter queue is encrypted, TLS-only, and accepts messages only from this rule', () => {
    template.hasResourceProperties('AWS::SQS::Queue', {
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 1209600,
    });
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          Match.objectLike({
            Effect: 'Allow',
            Action: 'sqs:SendMessage',
            Principal: { Service: 'events.amazonaws.com' },
            Condition: { ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': [Match.stringLikeRegexp('PrefetchPushRule'), 'Arn'] } } },
          }),
        ]),
      },
    });
  });

  test('exposes what it creates', () => {
    expect(stack.resolve(prefetcher.rule.ruleArn)).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/PrefetchPushRule/), 'Arn'] });
    expect(stack.resolve(prefetcher.association.ref)).toEqual({ Ref: expect.stringMatching(/PrefetchNewNodeAssociation/) });
    expect(stack.resolve(prefetcher.document.ref)).toEqual({ Ref: expect.stringMatching(/ImagePrefetcherDocument/) });
    expect(stack.resolve(prefetcher.eventRole.roleArn)).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/PrefetchEventRole/), 'Arn'] });
    expect(stack.resolve(prefetcher.deadLetterQueue.queueArn)).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/ImagePrefetcherDeadLetterQueue/), 'Arn'] });
    expect(stack.resolve(prefetcher.stateMachine.stateMachineArn)).toEqual({ Ref: expect.stringMatching(/PrefetchPushRolloutStateMachine/) });
    expect(stack.resolve(prefetcher.pushRollout.role.roleArn)).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/PrefetchPushRolloutRole/), 'Arn'] });
    expect([prefetcher.pushRollout.maxConcurrency, prefetcher.pushRollout.maxErrors]).toEqual(['100%', '100%']);
  });

  test('metricPushesFailed is the rollout state machine\'s ExecutionsFailed', () => {
    const metric = prefetcher.metricPushesFailed();
    expect(metric.namespace).toBe('AWS/States');
    expect(metric.metricName).toBe('ExecutionsFailed');
    expect(metric.statistic).toBe('Sum');
    expect(stack.resolve(metric.dimensions)).toEqual({ StateMachineArn: { Ref: expect.stringMatching(/PrefetchPushRolloutStateMachine/) } });
  });

  test('metrics are the rule\'s EventBridge metrics', () => {
    const metrics = [
      [prefetcher.metricInvocations(), 'Invocations'],
      [prefetcher.metricFailedInvocations(), 'FailedInvocations'],
      [prefetcher.metricInvocationsSentToDlq(), 'InvocationsSentToDlq'],
      [prefetcher.metricMatchedEvents(), 'MatchedEvents'],
    ] as const;
    for (const [metric, name] of metrics) {
      expect(metric.namespace).toBe('AWS/Events');
      expect(metric.metricName).toBe(name);
      expect(metric.statistic).toBe('Sum');
      expect(stack.resolve(metric.dimensions)).toEqual({ RuleName: { Ref: expect.stringMatching(/PrefetchPushRule/) } });
    }
    expect(prefetcher.metricFailedInvocations({ period: Duration.minutes(1) }).period.toMinutes()).toBe(1);
  });
});

describe('ImagePrefetcher options', () => {
  test('a tag filter limits the rule, and its exact tags are what new nodes pull', () => {
    const { template } = synth({ tagFilter: TagFilter.anyOf(TagFilter.exact('stable'), TagFilter.prefix('release-')) });
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { detail: Match.objectLike({ 'image-tag': ['stable', { prefix: 'release-' }] }) },
    });
    template.hasResourceProperties('AWS::SSM::Association', {
      Parameters: Match.objectLike({ imageTags: ['stable'], tagPrefixes: [''] }),
    });
  });

  test('a prefix-only filter makes new nodes pull the newest image among those prefixes', () => {
    const { template } = synth({ tagFilter: TagFilter.prefix('release-', 'rc-') });
    template.hasResourceProperties('AWS::SSM::Association', {
      Parameters: Match.objectLike({ imageTags: [''], tagPrefixes: ['release-,rc-'] }),
    });
  });

  test('newNodeImageTags names what new nodes pull', () => {
    const { template } = synth({ tagFilter: TagFilter.prefix('release-'), newNodeImageTags: ['release-1', 'latest'] });
    template.hasResourceProperties('AWS::SSM::Association', {
      Parameters: Match.objectLike({ imageTags: ['release-1,latest'], tagPrefixes: [''] }),
    });
  });

  test('every option reaches the rule target, the association and the queue', () => {
    const { stack, repository } = givenStack();
    const queue = new sqs.Queue(stack, 'MyDlq', { enforceSSL: true });
    new ImagePrefetcher(stack, 'Prefetch', {
      repository,
      nodes: NodeSelector.tag('eks:nodegroup-name', 'gpu-a', 'gpu-b'),
      reconcileSchedule: ReconcileSchedule.rate(Duration.hours(6)),
      maxConcurrency: Threshold.count(5),
      maxErrors: Threshold.percentage(10),
      deliveryTimeout: Duration.minutes(30),
      complianceSeverity: ComplianceSeverity.HIGH,
      jitter: Duration.seconds(0),
      maxDiskUsagePercent: 70,
      pinImages: true,
      maxAttempts: 3,
      executionTimeout: Duration.minutes(20),
      deadLetterQueue: queue,
      retryAttempts: 10,
      maxEventAge: Duration.hours(2),
      ruleName: 'prefetch-trainer',
      associationName: 'prefetch-trainer',
    });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::SQS::Queue', 1);
    template.hasResourceProperties('AWS::Events::Rule', {
      Name: 'prefetch-trainer',
      Targets: [Match.objectLike({
        RetryPolicy: { MaximumRetryAttempts: 10, MaximumEventAgeInSeconds: 7200 },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('MyDlq'), 'Arn'] } },
        InputTransformer: Match.objectLike({
          InputTemplate: Match.stringLikeRegexp('"jitterSeconds":\\["0"\\],"maxDiskUsagePercent":\\["70"\\],"pinImages":\\["true"\\],"maxAttempts":\\["3"\\],"executionTimeout":\\["1200"\\]'),
        }),
      })],
    });
    expect(stateMachineDefinition(template).States.SendCommand.Parameters).toMatchObject({
      Targets: [{ Key: 'tag:eks:nodegroup-name', Values: ['gpu-a', 'gpu-b'] }],
      MaxConcurrency: '5',
      MaxErrors: '10%',
      TimeoutSeconds: 1800,
    });
    template.hasResourceProperties('AWS::SSM::Association', {
      AssociationName: 'prefetch-trainer',
      Targets: [{ Key: 'tag:eks:nodegroup-name', Values: ['gpu-a', 'gpu-b'] }],
      ScheduleExpression: 'rate(6 hours)',
      MaxConcurrency: '5',
      MaxErrors: '10%',
      ComplianceSeverity: 'HIGH',
      Parameters: Match.objectLike({ jitterSeconds: ['0'], maxDiskUsagePercent: ['70'], pinImages: ['true'], maxAttempts: ['3'], executionTimeout: ['1200'] }),
    });
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({
          Condition: { StringEquals: { 'ssm:resourceTag/eks:nodegroup-name': ['gpu-a', 'gpu-b'] } },
        })]),
      },
    });
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: Match.stringLikeRegexp('MyDlq') }],
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: 'sqs:SendMessage', Principal: { Service: 'events.amazonaws.com' } })]) },
    });
  });

  test('a cron schedule is passed as is', () => {
    const { template } = synth({ reconcileSchedule: ReconcileSchedule.cron('cron(0 3 ? * * *)') });
    template.hasResourceProperties('AWS::SSM::Association', { ScheduleExpression: 'cron(0 3 ? * * *)' });
  });

  test('a cluster name known only at deploy time goes into the IAM condition through CfnJson', () => {
    const { stack, repository } = givenStack();
    const clusterName = Token.asString({ Ref: 'ClusterName' });
    new ImagePrefetcher(stack, 'Prefetch', { repository, nodes: NodeSelector.eksCluster(clusterName) });
    const template = Template.fromStack(stack);
    expect(stateMachineDefinition(template).States.SendCommand.Parameters.Targets).toEqual([{ Key: 'tag:kubernetes.io/cluster/${ClusterName}', Values: ['owned'] }]);
    template.hasResourceProperties('AWS::SSM::Association', {
      Targets: [{ Key: { 'Fn::Join': ['', ['tag:kubernetes.io/cluster/', { Ref: 'ClusterName' }]] }, Values: ['owned'] }],
    });
    template.hasResourceProperties('Custom::AWSCDKCfnJson', {
      Value: { 'Fn::Join': ['', ['{"ssm:resourceTag/kubernetes.io/cluster/', { Ref: 'ClusterName' }, '":["owned"]}']] },
    });
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({
          Condition: { StringEquals: { 'Fn::GetAtt': [Match.stringLikeRegexp('NodeTagCondition'), 'Value'] } },
        })]),
      },
    });
  });

  test('an imported repository in the same account and region works', () => {
    const app = new App();
    const stack = new Stack(app, 'Stack', { env: { account: '123456789012', region: 'us-east-1' } });
    const repository = ecr.Repository.fromRepositoryArn(stack, 'Repo', 'arn:aws:ecr:us-east-1:123456789012:repository/team/app');
    new ImagePrefetcher(stack, 'Prefetch', { repository, nodes: NodeSelector.eksCluster('c') });
    Template.fromStack(stack).hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { detail: Match.objectLike({ 'repository-name': ['team/app'] }) },
    });
  });

  test('more than five tag values: a warning that the Run Command guide says five per key', () => {
    const { stack, repository } = givenStack();
    new ImagePrefetcher(stack, 'Prefetch', { repository, nodes: NodeSelector.eksNodeGroup('a', 'b', 'c', 'd', 'e', 'f') });
    Annotations.fromStack(stack).hasWarning('/Stack/Prefetch/PushRollout', Match.stringLikeRegexp('The selector has 6 tag values'));
    const five = givenStack();
    new ImagePrefetcher(five.stack, 'Prefetch', { repository: five.repository, nodes: NodeSelector.eksNodeGroup('a', 'b', 'c', 'd', 'e') });
    Annotations.fromStack(five.stack).hasNoWarning('/Stack/Prefetch/PushRollout', Match.anyValue());
  });

  test('an environment-agnostic stack warns that the repository environment cannot be checked', () => {
    const app = new App();
    const stack = new Stack(app, 'Stack');
    const repository = ecr.Repository.fromRepositoryArn(stack, 'Repo', 'arn:aws:ecr:us-east-1:123456789012:repository/team/app');
    new ImagePrefetcher(stack, 'Prefetch', { repository, nodes: NodeSelector.eksCluster('c') });
    Annotations.fromStack(stack).hasWarning('/Stack/Prefetch', Match.stringLikeRegexp("Cannot verify at synth that the repository's account is the stack's"));
  });
});

describe('several prefetchers in one stack', () => {
  test('share one document and one dead-letter queue; each has its own rule, state machine, roles and association', () => {
    const { stack, repository } = givenStack();
    const other = new ecr.Repository(stack, 'Other');
    new ImagePrefetcher(stack, 'A', { repository, nodes: NodeSelector.eksCluster('c') });
    new ImagePrefetcher(stack, 'B', { repository: other, nodes: NodeSelector.eksCluster('c') });
    new ImagePrefetcher(stack, 'C', { repository: other, nodes: NodeSelector.karpenterNodePool('gpu') });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::SSM::Document', 1);
    template.resourceCountIs('AWS::SQS::Queue', 1);
    template.resourceCountIs('AWS::SQS::QueuePolicy', 1);
    template.resourcePropertiesCountIs('AWS::Events::Rule', { EventPattern: { source: ['aws.ecr'] } }, 3);
    template.resourceCountIs('AWS::IAM::Role', 6);
    template.resourceCountIs('AWS::IAM::Policy', 6);
    template.resourceCountIs('AWS::StepFunctions::StateMachine', 3);
    template.resourceCountIs('AWS::SSM::Association', 3);
    const statements = Object.values(template.findResources('AWS::SQS::QueuePolicy'))[0].Properties.PolicyDocument.Statement;
    expect(statements.filter((s: any) => s.Action === 'sqs:SendMessage')).toHaveLength(3);
    const names = Object.values(template.findResources('AWS::Events::Rule', { Properties: { EventPattern: { source: ['aws.ecr'] } } })).map((r: any) => r.Properties.Name);
    expect(new Set(names).size).toBe(3);
  });
});

describe('grantNodeAccess', () => {
  test('grants the node role ECR pull and DescribeImages on this repository, and the token on *', () => {
    const { stack, repository } = givenStack();
    const nodeRole = new iam.Role(stack, 'NodeRole', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
    const prefetcher = new ImagePrefetcher(stack, 'Prefetch', { repository, nodes: NodeSelector.eksCluster('c') });
    prefetcher.grantNodeAccess(nodeRole);
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('NodeRole') }],
      PolicyDocument: {
        Statement: [
          {
            Action: ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage'],
            Effect: 'Allow',
            Resource: { 'Fn::GetAtt': [Match.stringLikeRegexp('Repo'), 'Arn'] },
          },
          { Action: 'ecr:GetAuthorizationToken', Effect: 'Allow', Resource: '*' },
          {
            Action: 'ecr:DescribeImages',
            Effect: 'Allow',
            Resource: { 'Fn::GetAtt': [Match.stringLikeRegexp('Repo'), 'Arn'] },
          },
          {
            Action: 'dynamodb:GetItem',
            Effect: 'Allow',
            Resource: { 'Fn::GetAtt': [Match.stringLikeRegexp('ImagePrefetcherNewestImagesTable'), 'Arn'] },
            Condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [prefetcher.recordKey] } },
          },
        ],
      },
    });
    expect(prefetcher.recordKey).toBe('StackPrefetch782FFB78');
  });

  test('with named tags for joining nodes, no record and no read of it', () => {
    const { stack, repository } = givenStack();
    const nodeRole = new iam.Role(stack, 'NodeRole', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
    const prefetcher = new ImagePrefetcher(stack, 'Prefetch', { repository, nodes: NodeSelector.eksCluster('c'), tagFilter: TagFilter.exact('stable') });
    prefetcher.grantNodeAccess(nodeRole);
    const template = Template.fromStack(stack);
    expect(prefetcher.newestImageRecord).toBeUndefined();
    template.resourceCountIs('AWS::DynamoDB::Table', 0);
    expect(JSON.stringify(template.toJSON())).not.toContain('dynamodb:');
    template.hasResourceProperties('AWS::SSM::Association', { Parameters: Match.objectLike({ recordTable: [''], recordKey: [''] }) });
    expect(stateMachineDefinition(template).States.SendCommand.End).toBe(true);
  });
});

describe('the newest-image record', () => {
  const { stack, repository } = givenStack();
  const first = new ImagePrefetcher(stack, 'First', { repository, nodes: NodeSelector.eksCluster('c') });
  new ImagePrefetcher(stack, 'Second', { repository, nodes: NodeSelector.eksCluster('c'), tagFilter: TagFilter.prefix('release-') });
  const template = Template.fromStack(stack);

  test('one on-demand table per stack, keyed by prefetcher, removed with the stack', () => {
    template.resourceCountIs('AWS::DynamoDB::Table', 1);
    template.hasResource('AWS::DynamoDB::Table', {
      Properties: {
        KeySchema: [{ AttributeName: 'prefetcher', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'prefetcher', AttributeType: 'S' }],
        BillingMode: 'PAY_PER_REQUEST',
      },
      DeletionPolicy: 'Delete',
    });
  });

  test('the association reads the prefetcher\'s own item', () => {
    template.hasResourceProperties('AWS::SSM::Association', {
      Parameters: Match.objectLike({
        imageTags: [''],
        recordTable: [{ Ref: Match.stringLikeRegexp('ImagePrefetcherNewestImagesTable') }],
        recordKey: [first.recordKey],
      }),
    });
    template.hasResourceProperties('AWS::SSM::Association', { Parameters: Match.objectLike({ tagPrefixes: ['release-'], recordKey: ['StackSecond4D9FD3F5'] }) });
  });

  test('after sending, the push adds its tag to the recorded digest, else records itself only if newer, else stops', () => {
    const machines = template.findResources('AWS::StepFunctions::StateMachine');
    expect(Object.keys(machines)).toHaveLength(2);
    const definition = definitionOf(machines[Object.keys(machines).find(id => id.startsWith('First'))!]);
    const { RecordTag, RecordNewer, OlderPush } = definition.States;
    expect(RecordTag).toMatchObject({
      Type: 'Task',
      Resource: 'arn:${AWS::Partition}:states:::dynamodb:updateItem',
      Parameters: {
        Key: { prefetcher: { S: first.recordKey } },
        ConditionExpression: 'digest = :digest',
        UpdateExpression: 'ADD tags :tags',
        ExpressionAttributeValues: { ':digest': { 'S.$': '$.imageDigest[0]' }, ':tags': { 'SS.$': '$.imageTags' } },
      },
      ResultPath: null,
      End: true,
      Catch: [{ ErrorEquals: ['DynamoDB.ConditionalCheckFailedException'], ResultPath: null, Next: 'RecordNewer' }],
    });
    expect(RecordNewer).toMatchObject({
      Parameters: {
        Key: { prefetcher: { S: first.recordKey } },
        ConditionExpression: 'attribute_not_exists(pushedAt) OR pushedAt < :pushedAt',
        UpdateExpression: 'SET digest = :digest, tags = :tags, pushedAt = :pushedAt, repositoryName = :repository',
        ExpressionAttributeValues: {
          ':digest': { 'S.$': '$.imageDigest[0]' },
          ':tags': { 'SS.$': '$.imageTags' },
          ':pushedAt': { 'S.$': '$.eventTime[0]' },
          ':repository': { 'S.$': '$.repositoryName[0]' },
        },
      },
      End: true,
      Catch: [{ ErrorEquals: ['DynamoDB.ConditionalCheckFailedException'], ResultPath: null, Next: 'OlderPush' }],
    });
    expect(OlderPush).toEqual({ Type: 'Succeed', Comment: 'A newer push is recorded: nothing to do' });
    for (const task of [RecordTag, RecordNewer]) {
      expect(task.Retry).toEqual([{
        ErrorEquals: ['DynamoDB.ThrottlingException', 'DynamoDB.ProvisionedThroughputExceededException', 'DynamoDB.RequestLimitExceeded', 'DynamoDB.InternalServerErrorException'],
        IntervalSeconds: 1,
        MaxAttempts: 6,
        BackoffRate: 2,
        JitterStrategy: 'FULL',
      }]);
    }
  });
});

describe('bad input', () => {
  const crossRegion = 'arn:aws:ecr:eu-west-1:123456789012:repository/app';
  test.each<[string, (stack: Stack, repository: ecr.IRepository) => Partial<ImagePrefetcherProps>, string]>([
    ['a repository in another region', (stack) => ({ repository: ecr.Repository.fromRepositoryArn(stack, 'X', crossRegion) }),
      '`repository`: the repository must be in the stack\'s region (us-east-1): ECR sends its events only in its own region, and the nodes would pull across regions; replicate the repository into this region with ECR replication and prefetch the replica, got: "eu-west-1"'],
    ['an invalid new-node tag', () => ({ newNodeImageTags: ['ok', 'not ok'] }), '`newNodeImageTags`: a tag must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127} (OCI tag syntax), got: "not ok"'],
    ['more than 20 new-node tags', () => ({ newNodeImageTags: Array.from({ length: 21 }, (_, i) => `t${i}`) }), '`newNodeImageTags`: at most 20 tags are supported, got: 21'],
    ['a jitter over an hour', () => ({ jitter: Duration.minutes(61) }), '`jitter`: must be a whole number of seconds from 0 to 3600, got: "3660 seconds"'],
    ['a fractional jitter', () => ({ jitter: Duration.millis(1500) }), '`jitter`: must be a whole number of seconds from 0 to 3600, got: "1.5 seconds"'],
    ['a zero execution timeout', () => ({ executionTimeout: Duration.seconds(0) }), '`executionTimeout`: must be a whole number of seconds from 1 to 172800, got: "0 seconds"'],
    ['an execution timeout over 48 hours', () => ({ executionTimeout: Duration.hours(49) }), '`executionTimeout`: must be a whole number of seconds from 1 to 172800, got: "176400 seconds"'],
    ['a disk threshold of 0', () => ({ maxDiskUsagePercent: 0 }), '`maxDiskUsagePercent`: must be a whole number from 1 to 100, got: 0'],
    ['a disk threshold over 100', () => ({ maxDiskUsagePercent: 101 }), '`maxDiskUsagePercent`: must be a whole number from 1 to 100, got: 101'],
    ['0 attempts', () => ({ maxAttempts: 0 }), '`maxAttempts`: must be a whole number from 1 to 10, got: 0'],
    ['11 attempts', () => ({ maxAttempts: 11 }), '`maxAttempts`: must be a whole number from 1 to 10, got: 11'],
    ['a zero concurrency', () => ({ maxConcurrency: Threshold.count(0) }), '`maxConcurrency`: a node count must be a whole number from 1 to 9999999, got: 0'],
    ['an error threshold over 100%', () => ({ maxErrors: Threshold.percentage(150) }), '`maxErrors`: a percentage must be a whole number from 0 to 100, got: 150'],
    ['a delivery timeout under 30 seconds', () => ({ deliveryTimeout: Duration.seconds(29) }), '`deliveryTimeout`: must be a whole number of seconds from 30 to 2592000 (30 days), got: "29 seconds"'],
    ['a delivery timeout over 30 days', () => ({ deliveryTimeout: Duration.days(31) }), '`deliveryTimeout`: must be a whole number of seconds from 30 to 2592000 (30 days), got: "2678400 seconds"'],
    ['186 retries', () => ({ retryAttempts: 186 }), '`retryAttempts`: must be a whole number from 0 to 185, got: 186'],
    ['an event age under a minute', () => ({ maxEventAge: Duration.seconds(59) }), '`maxEventAge`: must be a whole number of seconds from 60 to 86400 (24 hours), got: "59 seconds"'],
    ['an event age over a day', () => ({ maxEventAge: Duration.hours(25) }), '`maxEventAge`: must be a whole number of seconds from 60 to 86400 (24 hours), got: "90000 seconds"'],
    ['an invalid rule name', () => ({ ruleName: 'my rule' }), '`ruleName`: an EventBridge rule name is 1-64 characters of letters, digits, . - _, got: "my rule"'],
    ['a rule name over 64 characters', () => ({ ruleName: 'r'.repeat(65) }), `\`ruleName\`: an EventBridge rule name is 1-64 characters of letters, digits, . - _, got: "${'r'.repeat(65)}"`],
    ['an association name too short', () => ({ associationName: 'ab' }), '`associationName`: an association name is 3-128 characters of letters, digits, _ - ., got: "ab"'],
    ['an association name with a slash', () => ({ associationName: 'a/b/c' }), '`associationName`: an association name is 3-128 characters of letters, digits, _ - ., got: "a/b/c"'],
  ])('refuses %s and creates nothing', (_name, makeProps, message) => {
    const { stack, repository } = givenStack();
    const props = makeProps(stack, repository);
    const constructsBefore = stack.node.findAll().length;
    expect(() => new ImagePrefetcher(stack, 'Prefetch', {
      repository,
      nodes: NodeSelector.eksCluster('ml-cluster'),
      ...props,
    })).toThrow(message);
    expect(stack.node.tryFindChild('Prefetch')).toBeUndefined();
    expect(stack.node.findAll().length).toBe(constructsBefore);
    expect(Object.keys(Template.fromStack(stack).toJSON().Resources)).toEqual([expect.stringMatching(/^Repo/)]);
  });

  test('Token values are not validated at synth', () => {
    const { stack, repository } = givenStack();
    expect(() => new ImagePrefetcher(stack, 'Prefetch', {
      repository,
      nodes: NodeSelector.eksCluster('c'),
      maxDiskUsagePercent: Token.asNumber({ Ref: 'Pct' }),
      ruleName: Token.asString({ Ref: 'Name' }),
      newNodeImageTags: [Token.asString({ Ref: 'Tag' })],
    })).not.toThrow();
  });
});

describe('a repository in a central registry account (same region)', () => {
  const REGISTRY = '999988887777';
  const WORKLOAD = { account: '111122223333', region: 'eu-west-1' };
  const TRAINER = `arn:aws:ecr:eu-west-1:${REGISTRY}:repository/ml/trainer`;

  function workload(build: (stack: Stack) => void): { stack: Stack; template: Template } {
    const app = new App();
    const stack = new Stack(app, 'Workload', { env: WORKLOAD });
    build(stack);
    return { stack, template: Template.fromStack(stack) };
  }

  // GIVEN a workload stack WHEN a prefetcher takes a repository of the registry account
  const { stack, template } = workload((s) => {
    const prefetcher = new ImagePrefetcher(s, 'Prefetch', {
      repository: ecr.Repository.fromRepositoryArn(s, 'Trainer', TRAINER),
      nodes: NodeSelector.eksCluster('ml-cluster'),
    });
    prefetcher.grantNodeAccess(new iam.Role(s, 'NodeRole', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') }));
  });

  test('the rule matches the forwarded events of that repository only: account = the registry account', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        account: [REGISTRY],
        source: ['aws.ecr'],
        detail: Match.objectLike({ 'repository-name': ['ml/trainer'] }),
      },
    });
  });

  test('the stack lets the registry account, and only it, put events on its default bus', () => {
    template.resourceCountIs('AWS::Events::EventBusPolicy', 1);
    const [policy] = Object.values(template.findResources('AWS::Events::EventBusPolicy'));
    expect(policy.Properties).toEqual({
      EventBusName: 'default',
      StatementId: expect.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
      Statement: {
        Sid: policy.Properties.StatementId,
        Effect: 'Allow',
        Principal: { AWS: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:iam::${REGISTRY}:root`]] } },
        Action: 'events:PutEvents',
        Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':events:eu-west-1:111122223333:event-bus/default']] },
      },
    });
    expect(policy.Properties.StatementId).toContain('Workload');
  });

  test('the association makes joining nodes look up the registry account\'s repository', () => {
    template.hasResourceProperties('AWS::SSM::Association', {
      Parameters: Match.objectLike({ accountId: [REGISTRY], region: ['eu-west-1'], repositoryName: ['ml/trainer'] }),
    });
  });

  test('grantNodeAccess grants pull and DescribeImages on the foreign repository, and the token on *', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('NodeRole') }],
      PolicyDocument: {
        Statement: [
          { Action: ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage'], Effect: 'Allow', Resource: TRAINER },
          { Action: 'ecr:GetAuthorizationToken', Effect: 'Allow', Resource: '*' },
          { Action: 'ecr:DescribeImages', Effect: 'Allow', Resource: TRAINER },
          // The newest-image record lives in the workload account: its push leg writes it.
          {
            Action: 'dynamodb:GetItem',
            Effect: 'Allow',
            Resource: { 'Fn::GetAtt': [Match.stringLikeRegexp('ImagePrefetcherNewestImagesTable'), 'Arn'] },
            Condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [Match.anyValue()] } },
          },
        ],
      },
    });
  });

  test('no warning: both accounts are known', () => {
    Annotations.fromStack(stack).hasNoWarning('*', Match.anyValue());
  });

  test('prefetchers of the same registry account share one bus policy; another registry account gets its own', () => {
    const { template: t } = workload((s) => {
      const trainer = ecr.Repository.fromRepositoryArn(s, 'Trainer', TRAINER);
      const inference = ecr.Repository.fromRepositoryArn(s, 'Inference', `arn:aws:ecr:eu-west-1:${REGISTRY}:repository/ml/inference`);
      const other = ecr.Repository.fromRepositoryArn(s, 'Other', 'arn:aws:ecr:eu-west-1:555566667777:repository/team/app');
      new ImagePrefetcher(s, 'A', { repository: trainer, nodes: NodeSelector.eksCluster('c') });
      new ImagePrefetcher(s, 'B', { repository: inference, nodes: NodeSelector.eksCluster('c') });
      new ImagePrefetcher(s, 'C', { repository: other, nodes: NodeSelector.eksCluster('c') });
    });
    const principals = Object.values(t.findResources('AWS::Events::EventBusPolicy')).map((p: any) => p.Properties.Statement.Principal.AWS['Fn::Join'][1][2]);
    expect(principals.sort()).toEqual([':iam::555566667777:root', `:iam::${REGISTRY}:root`]);
    const ids = Object.values(t.findResources('AWS::Events::EventBusPolicy')).map((p: any) => p.Properties.StatementId);
    expect(new Set(ids).size).toBe(2);
  });

  test('the prefetcher exposes the shared bus policy', () => {
    const app = new App();
    const s = new Stack(app, 'Workload', { env: WORKLOAD });
    const a = new ImagePrefetcher(s, 'A', { repository: ecr.Repository.fromRepositoryArn(s, 'T', TRAINER), nodes: NodeSelector.eksCluster('c') });
    const b = new ImagePrefetcher(s, 'B', { repository: ecr.Repository.fromRepositoryArn(s, 'U', TRAINER), nodes: NodeSelector.eksCluster('d') });
    expect(a.registryEventBusPolicy).toBeDefined();
    expect(a.registryEventBusPolicy).toBe(b.registryEventBusPolicy);
    expect(a.registryEventBusPolicy!.registryAccount).toBe(REGISTRY);
  });

  test('a repository of the stack\'s own account: account = the stack\'s, and no bus policy', () => {
    const { stack: s, repository } = givenStack();
    const prefetcher = new ImagePrefetcher(s, 'Prefetch', { repository, nodes: NodeSelector.eksCluster('c') });
    const t = Template.fromStack(s);
    t.resourceCountIs('AWS::Events::EventBusPolicy', 0);
    t.hasResourceProperties('AWS::Events::Rule', { EventPattern: Match.objectLike({ account: ['123456789012'] }) });
    expect(prefetcher.registryEventBusPolicy).toBeUndefined();
  });

  test('an environment-agnostic stack: the account is the stack\'s own (a Ref), no bus policy, no warning for a repository of the stack', () => {
    const app = new App();
    const s = new Stack(app, 'Stack');
    new ImagePrefetcher(s, 'Prefetch', { repository: new ecr.Repository(s, 'Repo'), nodes: NodeSelector.eksCluster('c') });
    const t = Template.fromStack(s);
    t.resourceCountIs('AWS::Events::EventBusPolicy', 0);
    t.hasResourceProperties('AWS::Events::Rule', { EventPattern: Match.objectLike({ account: [{ Ref: 'AWS::AccountId' }] }) });
    Annotations.fromStack(s).hasNoWarning('*', Match.anyValue());
  });

  test('an environment-agnostic stack with a literal foreign ARN: a warning that the bus policy needs both accounts known, and no bus policy', () => {
    const app = new App();
    const s = new Stack(app, 'Stack');
    new ImagePrefetcher(s, 'Prefetch', { repository: ecr.Repository.fromRepositoryArn(s, 'T', TRAINER), nodes: NodeSelector.eksCluster('c') });
    Template.fromStack(s).resourceCountIs('AWS::Events::EventBusPolicy', 0);
    Annotations.fromStack(s).hasWarning('/Stack/Prefetch', Match.stringLikeRegexp('a repository in another account \\(a central registry account\\), the stack must let that account put events on its default event bus'));
  });

  test('a repository imported by attributes with a literal ARN of another account: that account (aws-cdk-lib leaves its env at the stack\'s)', () => {
    const { template: t } = workload((s) => {
      const repository = ecr.Repository.fromRepositoryAttributes(s, 'T', { repositoryArn: TRAINER, repositoryName: 'ml/trainer' });
      expect(repository.env.account).toBe(WORKLOAD.account);
      new ImagePrefetcher(s, 'Prefetch', { repository, nodes: NodeSelector.eksCluster('c') });
    });
    t.resourceCountIs('AWS::Events::EventBusPolicy', 1);
    t.hasResourceProperties('AWS::Events::Rule', { EventPattern: Match.objectLike({ account: [REGISTRY] }) });
    t.hasResourceProperties('AWS::SSM::Association', { Parameters: Match.objectLike({ accountId: [REGISTRY] }) });
  });

  test('a repository imported by attributes with a literal ARN of another region is refused', () => {
    const app = new App();
    const s = new Stack(app, 'Workload', { env: WORKLOAD });
    const repository = ecr.Repository.fromRepositoryAttributes(s, 'T', { repositoryArn: `arn:aws:ecr:us-east-1:${REGISTRY}:repository/ml/trainer`, repositoryName: 'ml/trainer' });
    expect(() => new ImagePrefetcher(s, 'Prefetch', { repository, nodes: NodeSelector.eksCluster('c') })).toThrow(/`repository`: the repository must be in the stack's region \(eu-west-1\)/);
  });

  test('a repository of another account AND region is refused, pointing to ECR replication, and creates nothing', () => {
    const app = new App();
    const s = new Stack(app, 'Workload', { env: WORKLOAD });
    const repository = ecr.Repository.fromRepositoryArn(s, 'T', `arn:aws:ecr:us-east-1:${REGISTRY}:repository/ml/trainer`);
    expect(() => new ImagePrefetcher(s, 'Prefetch', { repository, nodes: NodeSelector.eksCluster('c') }))
      .toThrow('`repository`: the repository must be in the stack\'s region (eu-west-1): ECR sends its events only in its own region, and the nodes would pull across regions; replicate the repository into this region with ECR replication and prefetch the replica, got: "us-east-1"');
    expect(Object.keys(Template.fromStack(s).toJSON().Resources ?? {})).toEqual([]);
  });
});
