import { App, Duration, Stack, Token } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { ImagePushForwarder, ImagePushForwarderProps } from '../src';

const REGISTRY = { account: '999988887777', region: 'eu-west-1' };
const WORKLOADS = ['111122223333', '444455556666'];

function givenRegistry(): { stack: Stack; trainer: ecr.Repository; inference: ecr.Repository } {
  const app = new App();
  const stack = new Stack(app, 'Registry', { env: REGISTRY });
  const trainer = new ecr.Repository(stack, 'Trainer', { repositoryName: 'ml/trainer' });
  const inference = new ecr.Repository(stack, 'Inference', { repositoryName: 'ml/inference' });
  return { stack, trainer, inference };
}

function synth(props: Partial<ImagePushForwarderProps> = {}): { stack: Stack; template: Template; forwarder: ImagePushForwarder } {
  const { stack, trainer, inference } = givenRegistry();
  const forwarder = new ImagePushForwarder(stack, 'ToWorkloads', { repositories: [trainer, inference], accounts: WORKLOADS, ...props });
  return { stack, template: Template.fromStack(stack), forwarder };
}

const partitionArn = (rest: string) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, rest]] });
const bus = (account: string) => partitionArn(`:events:eu-west-1:${account}:event-bus/default`);

describe('ImagePushForwarder with two workload accounts', () => {
  // GIVEN two repositories in the registry account WHEN they are forwarded to two accounts
  const { stack, template, forwarder } = synth();

  test('deploys one rule, one role with its policy, one queue with its policy, and changes no other resource type', () => {
    template.resourceCountIs('AWS::Events::Rule', 1);
    template.resourceCountIs('AWS::IAM::Role', 1);
    template.resourceCountIs('AWS::IAM::Policy', 1);
    template.resourceCountIs('AWS::SQS::Queue', 1);
    template.resourceCountIs('AWS::SQS::QueuePolicy', 1);
    template.resourceCountIs('AWS::Events::EventBusPolicy', 0);
    expect(Object.values(template.toJSON().Resources).map((r: any) => r.Type).sort()).toEqual([
      'AWS::ECR::Repository', 'AWS::ECR::Repository', 'AWS::Events::Rule', 'AWS::IAM::Policy', 'AWS::IAM::Role', 'AWS::SQS::Queue', 'AWS::SQS::QueuePolicy',
    ]);
  });

  test('the rule matches successful tagged pushes and replications of these repositories only', () => {
    const [rule] = Object.values(template.findResources('AWS::Events::Rule'));
    expect(rule.Properties.EventPattern).toEqual({
      'source': ['aws.ecr'],
      'detail-type': ['ECR Image Action', 'ECR Replication Action'],
      'detail': {
        'action-type': ['PUSH', 'REPLICATE'],
        'result': ['SUCCESS'],
        'repository-name': [{ Ref: expect.stringMatching(/^Trainer/) }, { Ref: expect.stringMatching(/^Inference/) }],
        'image-tag': [{ 'anything-but': [''] }],
      },
    });
  });

  test('one target per workload account: its default bus, through the role, with the dead-letter queue, EventBridge\'s default retries', () => {
    const [rule] = Object.values(template.findResources('AWS::Events::Rule'));
    expect(rule.Properties.Targets).toEqual(WORKLOADS.map((account, i) => ({
      Id: `Target${i}`,
      Arn: bus(account),
      RoleArn: { 'Fn::GetAtt': [expect.stringMatching(/^ToWorkloadsForwardRole/), 'Arn'] },
      DeadLetterConfig: { Arn: { 'Fn::GetAtt': [expect.stringMatching(/^ImagePrefetcherDeadLetterQueue/), 'Arn'] } },
    })));
  });

  test('the role trusts EventBridge only for this rule in this account', () => {
    const [rule] = Object.values(template.findResources('AWS::Events::Rule'));
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [{
          Action: 'sts:AssumeRole',
          Effect: 'Allow',
          Principal: { Service: 'events.amazonaws.com' },
          Condition: {
            StringEquals: { 'aws:SourceAccount': REGISTRY.account },
            ArnEquals: { 'aws:SourceArn': partitionArn(`:events:eu-west-1:${REGISTRY.account}:rule/${rule.Properties.Name}`) },
          },
        }],
      },
    });
  });

  test('the role may only put events on the workload accounts\' default buses', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('ToWorkloadsForwardRole') }],
      PolicyDocument: {
        Statement: WORKLOADS.map(account => ({ Action: 'events:PutEvents', Effect: 'Allow', Resource: bus(account) })),
      },
    });
  });

  test('the repository policies let the workload accounts pull and describe images, nothing else', () => {
    for (const name of ['ml/trainer', 'ml/inference']) {
      template.hasResourceProperties('AWS::ECR::Repository', {
        RepositoryName: name,
        RepositoryPolicyText: {
          Version: '2012-10-17',
          Statement: [{
            Sid: Match.stringLikeRegexp('^ImagePrefetcherPull[0-9A-F]{8}$'),
            Effect: 'Allow',
            Action: ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage', 'ecr:DescribeImages'],
            Principal: { AWS: WORKLOADS.map(account => partitionArn(`:iam::${account}:root`)) },
          }],
        },
      });
    }
  });

  test('the dead-letter queue accepts messages only from this rule, and only over TLS', () => {
    const [policy] = Object.values(template.findResources('AWS::SQS::QueuePolicy'));
    expect(policy.Properties.PolicyDocument.Statement).toEqual([
      expect.objectContaining({ Effect: 'Deny', Action: 'sqs:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
      expect.objectContaining({
        Effect: 'Allow',
        Action: 'sqs:SendMessage',
        Principal: { Service: 'events.amazonaws.com' },
        Condition: { ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': [expect.stringMatching(/^ToWorkloadsForwardRule/), 'Arn'] } } },
      }),
    ]);
  });

  test('exposes its rule, role, queue and repository policy statement', () => {
    expect(forwarder.rules).toHaveLength(1);
    expect(forwarder.eventRoles).toHaveLength(1);
    expect(stack.resolve(forwarder.deadLetterQueue.queueArn)).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^ImagePrefetcherDeadLetterQueue/), 'Arn'] });
    expect(forwarder.repositoryPolicyStatement.sid).toMatch(/^ImagePrefetcherPull[0-9A-F]{8}$/);
  });

  test('no warning', () => {
    Annotations.fromStack(stack).hasNoWarning('*', Match.anyValue());
  });
});

describe('ImagePushForwarder options', () => {
  test('retries: each target gets the retry policy', () => {
    const { template } = synth({ retryAttempts: 10, maxEventAge: Duration.hours(2) });
    const [rule] = Object.values(template.findResources('AWS::Events::Rule'));
    expect(rule.Properties.Targets.map((t: any) => t.RetryPolicy)).toEqual([
      { MaximumRetryAttempts: 10, MaximumEventAgeInSeconds: 7200 },
      { MaximumRetryAttempts: 10, MaximumEventAgeInSeconds: 7200 },
    ]);
  });

  test('zero retries is rendered', () => {
    const { template } = synth({ retryAttempts: 0 });
    const [rule] = Object.values(template.findResources('AWS::Events::Rule'));
    expect(rule.Properties.Targets[0].RetryPolicy).toEqual({ MaximumRetryAttempts: 0 });
  });

  test('a queue of one\'s own', () => {
    const { stack, trainer } = givenRegistry();
    const queue = new sqs.Queue(stack, 'OwnDlq', { enforceSSL: true });
    new ImagePushForwarder(stack, 'F', { repositories: [trainer], accounts: WORKLOADS, deadLetterQueue: queue });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::SQS::Queue', 1);
    const [rule] = Object.values(template.findResources('AWS::Events::Rule'));
    expect(rule.Properties.Targets[0].DeadLetterConfig).toEqual({ Arn: { 'Fn::GetAtt': [expect.stringMatching(/^OwnDlq/), 'Arn'] } });
  });

  test('more than 5 accounts: one rule and one role per 5 accounts, each role only for its rule and its buses', () => {
    const accounts = Array.from({ length: 12 }, (_, i) => `${100000000000 + i}`);
    const { template, forwarder } = synth({ accounts });
    expect(forwarder.rules).toHaveLength(3);
    const rules = Object.values(template.findResources('AWS::Events::Rule'));
    expect(rules.map((r: any) => r.Properties.Targets.map((t: any) => t.Arn['Fn::Join'][1][2].split(':')[3]))).toEqual([
      accounts.slice(0, 5), accounts.slice(5, 10), accounts.slice(10),
    ]);
    const names = rules.map((r: any) => r.Properties.Name);
    expect(new Set(names).size).toBe(3);
    for (const name of names) expect(name).toMatch(/^[.\-_A-Za-z0-9]{1,64}$/);
    const roles = template.findResources('AWS::IAM::Role');
    expect(Object.keys(roles)).toHaveLength(3);
    for (const rule of rules) {
      const roleId = rule.Properties.Targets[0].RoleArn['Fn::GetAtt'][0];
      expect(rule.Properties.Targets.every((t: any) => t.RoleArn['Fn::GetAtt'][0] === roleId)).toBe(true);
      const trust = roles[roleId].Properties.AssumeRolePolicyDocument.Statement[0];
      expect(trust.Condition.ArnEquals['aws:SourceArn']['Fn::Join'][1][2]).toBe(`:events:eu-west-1:${REGISTRY.account}:rule/${rule.Properties.Name}`);
      const [policy] = Object.values(template.findResources('AWS::IAM::Policy')).filter((p: any) => p.Properties.Roles[0].Ref === roleId);
      expect(policy.Properties.PolicyDocument.Statement.map((s: any) => s.Resource)).toEqual(rule.Properties.Targets.map((t: any) => t.Arn));
    }
    // One repository statement for every account.
    template.hasResourceProperties('AWS::ECR::Repository', {
      RepositoryName: 'ml/trainer',
      RepositoryPolicyText: { Statement: [Match.objectLike({ Principal: { AWS: accounts.map(a => partitionArn(`:iam::${a}:root`)) } })] },
    });
  });

  test('metrics: one rule gives its metric; several rules give their sum', () => {
    const one = synth();
    const failed = one.stack.resolve((one.forwarder.metricFailedInvocations() as any).toMetricConfig().metricStat);
    expect(failed).toMatchObject({
      namespace: 'AWS/Events',
      metricName: 'FailedInvocations',
      statistic: 'Sum',
      dimensions: [{ name: 'RuleName', value: { Ref: Object.keys(one.template.findResources('AWS::Events::Rule'))[0] } }],
    });
    const many = synth({ accounts: Array.from({ length: 7 }, (_, i) => `${100000000000 + i}`) });
    const sum = (many.forwarder.metricInvocationsSentToDlq() as any).toMetricConfig().mathExpression;
    expect(sum.expression).toBe('m0 + m1');
    expect(Object.values(sum.usingMetrics).map((m: any) => many.stack.resolve(m.dimensions.RuleName))).toEqual(
      Object.keys(many.template.findResources('AWS::Events::Rule')).map(id => ({ Ref: id })));
  });

  test('an imported repository: the events are forwarded, and a warning says its policy must be changed where it is defined', () => {
    const { stack } = givenRegistry();
    const imported = ecr.Repository.fromRepositoryName(stack, 'Imported', 'team/app');
    const forwarder = new ImagePushForwarder(stack, 'F', { repositories: [imported], accounts: WORKLOADS });
    Template.fromStack(stack).hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { detail: Match.objectLike({ 'repository-name': ['team/app'] }) },
    });
    Annotations.fromStack(stack).hasWarning('/Registry/F', Match.stringLikeRegexp(
      'Repository Registry/Imported is imported: its policy cannot be changed here, so the accounts cannot pull it yet. Add the statement of `repositoryPolicyStatement`'));
    expect(stack.resolve(forwarder.repositoryPolicyStatement.toStatementJson()).Action).toEqual(
      ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage', 'ecr:DescribeImages']);
  });

  test('an environment-agnostic stack warns that the repositories\' environment cannot be checked', () => {
    const app = new App();
    const stack = new Stack(app, 'Registry');
    const repository = ecr.Repository.fromRepositoryArn(stack, 'R', 'arn:aws:ecr:eu-west-1:999988887777:repository/ml/trainer');
    new ImagePushForwarder(stack, 'F', { repositories: [repository], accounts: WORKLOADS });
    Annotations.fromStack(stack).hasWarning('/Registry/F', Match.stringLikeRegexp("Cannot verify at synth that repository Registry/R's account is the stack's"));
  });
});

describe('ImagePushForwarder bad input', () => {
  test.each<[string, (stack: Stack, repository: ecr.IRepository) => Partial<ImagePushForwarderProps>, string]>([
    ['no repository', () => ({ repositories: [] }), '`repositories`: at least one repository is needed, got: []'],
    ['a repository of another account', (s) => ({ repositories: [ecr.Repository.fromRepositoryArn(s, 'X', 'arn:aws:ecr:eu-west-1:222233334444:repository/a')] }),
      '`repositories`: a repository must be in the stack\'s account (999988887777): ECR sends its push events only to the default event bus of its own account and region; deploy the forwarder in the repository\'s account, got: "222233334444"'],
    ['a repository of another region', (s) => ({ repositories: [ecr.Repository.fromRepositoryArn(s, 'X', 'arn:aws:ecr:us-east-1:999988887777:repository/a')] }),
      '`repositories`: a repository must be in the stack\'s region (eu-west-1): ECR sends its push events only to the default event bus of its own account and region; deploy the forwarder in the repository\'s region, got: "us-east-1"'],
    ['a repository imported by attributes with an ARN of another account', (s) => ({
      repositories: [ecr.Repository.fromRepositoryAttributes(s, 'X', { repositoryArn: 'arn:aws:ecr:eu-west-1:222233334444:repository/a', repositoryName: 'a' })],
    }), '`repositories`: a repository must be in the stack\'s account (999988887777): ECR sends its push events only to the default event bus of its own account and region; deploy the forwarder in the repository\'s account, got: "222233334444"'],
    ['the same repository twice', (_s, r) => ({ repositories: [r, r] }), '`repositories`: each repository once, got: "Registry/Trainer"'],
    ['the same repository name twice', (s) => ({ repositories: ['a', 'b'].map(id => ecr.Repository.fromRepositoryName(s, id, 'team/app')) }), '`repositories`: each repository once, got: "team/app"'],
    ['no account', () => ({ accounts: [] }), '`accounts`: at least one workload account is needed, got: []'],
    ['an account of 11 digits', () => ({ accounts: ['11112222333'] }), '`accounts`: an AWS account ID is 12 digits, got: "11112222333"'],
    ['an account with letters', () => ({ accounts: ['11112222333a'] }), '`accounts`: an AWS account ID is 12 digits, got: "11112222333a"'],
    ['an account ARN', () => ({ accounts: ['arn:aws:iam::111122223333:root'] }), '`accounts`: an AWS account ID is 12 digits, got: "arn:aws:iam::111122223333:root"'],
    ['the same account twice', () => ({ accounts: ['111122223333', '111122223333'] }), '`accounts`: each account once, got: "111122223333"'],
    ['the stack\'s own account', () => ({ accounts: ['999988887777'] }),
      '`accounts`: the stack\'s own account receives its ECR events directly: an ImagePrefetcher there needs no forwarder, got: "999988887777"'],
    ['186 retries', () => ({ retryAttempts: 186 }), '`retryAttempts`: must be a whole number from 0 to 185, got: 186'],
    ['an event age over a day', () => ({ maxEventAge: Duration.hours(25) }), '`maxEventAge`: must be a whole number of seconds from 60 to 86400 (24 hours), got: "90000 seconds"'],
  ])('refuses %s and creates nothing', (_name, makeProps, message) => {
    const { stack, trainer } = givenRegistry();
    const props = makeProps(stack, trainer);
    const before = Object.keys(Template.fromStack(stack).toJSON().Resources);
    expect(() => new ImagePushForwarder(stack, 'F', { repositories: [trainer], accounts: WORKLOADS, ...props })).toThrow(message);
    expect(stack.node.tryFindChild('F')).toBeUndefined();
    expect(stack.node.tryFindChild('ImagePrefetcherDeadLetterQueue')).toBeUndefined();
    expect(Object.keys(Template.fromStack(stack).toJSON().Resources)).toEqual(before);
  });

  test('Token accounts are not validated at synth', () => {
    const { stack, trainer } = givenRegistry();
    expect(() => new ImagePushForwarder(stack, 'F', { repositories: [trainer], accounts: [Token.asString({ Ref: 'Workload' })] })).not.toThrow();
  });
});
