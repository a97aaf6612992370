import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { ImagePrefetcher, ImagePrefetcherProps, NodeSelector, NodeStatus, PrefetchOutcome } from '../src';
import { givenStack, stateMachineDefinition } from './util';

function synth(props: Partial<ImagePrefetcherProps> = {}, more?: (stack: Stack, prefetcher: ImagePrefetcher) => void) {
  const { stack, repository } = givenStack();
  const prefetcher = new ImagePrefetcher(stack, 'Prefetch', { repository, nodes: NodeSelector.eksCluster('ml-cluster'), ...props });
  const nodeRole = new iam.Role(stack, 'NodeRole', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
  prefetcher.grantNodeAccess(nodeRole);
  more?.(stack, prefetcher);
  return { stack, prefetcher, nodeRole, template: Template.fromStack(stack) };
}

const INVOCATION = 'EC2 Command Invocation Status-change Notification';
const INSTANCE_ASSOCIATION = 'EC2 State Manager Instance Association State Change';

describe('monitoring by default: SSM status events', () => {
  const { stack, prefetcher, template } = synth();
  const events = prefetcher.statusEvents!;
  const documentId = stack.resolve(prefetcher.document.logicalId);
  const logGroupId = stack.resolve((events.logGroup.node.defaultChild as logs.CfnLogGroup).logicalId);

  test('a rule keeps the final per-node statuses of the prefetch document (by its CloudFormation name)', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        'source': ['aws.ssm'],
        'detail-type': [INVOCATION, INSTANCE_ASSOCIATION],
        'detail': {
          'document-name': [{ Ref: documentId }],
          'status': [{ 'anything-but': ['Pending', 'InProgress', 'Delayed', 'Cancelling'] }],
        },
      },
      Targets: [{
        Arn: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':logs:us-east-1:123456789012:log-group:', { Ref: logGroupId }]] },
        Id: 'Target0',
      }],
    });
  });

  test('the log group keeps the events two weeks and goes with the stack', () => {
    template.hasResource('AWS::Logs::LogGroup', {
      Properties: { RetentionInDays: 14 },
      DeletionPolicy: 'Delete',
      UpdateReplacePolicy: 'Delete',
    });
  });

  test('the log group is named under the prefix the resource policy covers', () => {
    template.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: '/aws/events/cdk-image-prefetcher/Stack' });
  });

  test('EventBridge may write to the prefetchers\' status log groups only (one policy can serve every stack), and the rule waits for it', () => {
    const policies = template.findResources('AWS::Logs::ResourcePolicy');
    expect(Object.keys(policies)).toHaveLength(1);
    const [policyId, policy] = Object.entries<any>(policies)[0];
    const document = JSON.parse(stack.resolve(policy.Properties.PolicyDocument)['Fn::Join'][1]
      .map((p: any) => (typeof p === 'string' ? p : `\${${p.Ref}}`)).join(''));
    expect(document.Statement).toEqual([{
      Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      Effect: 'Allow',
      Principal: { Service: 'events.amazonaws.com' },
      Resource: 'arn:${AWS::Partition}:logs:us-east-1:123456789012:log-group:/aws/events/cdk-image-prefetcher/*',
      Condition: { StringEquals: { 'aws:SourceAccount': '123456789012' } },
    }]);
    const rule = Object.values<any>(template.findResources('AWS::Events::Rule', { Properties: { EventPattern: { source: ['aws.ssm'] } } }))[0];
    expect(rule.DependsOn).toEqual([policyId]);
  });

  test('monitoringLogResourcePolicy: false leaves the policy to another stack (10 per account and region)', () => {
    const { template: other } = synth({ monitoringLogResourcePolicy: false });
    other.resourceCountIs('AWS::Logs::ResourcePolicy', 0);
    other.resourceCountIs('AWS::Logs::LogGroup', 1);
    const rule = Object.values<any>(other.findResources('AWS::Events::Rule', { Properties: { EventPattern: { source: ['aws.ssm'] } } }))[0];
    expect(rule.DependsOn).toBeUndefined();
  });

  test('two metric filters count the events, by document and status, and by association and status', () => {
    template.resourceCountIs('AWS::Logs::MetricFilter', 2);
    template.hasResourceProperties('AWS::Logs::MetricFilter', {
      LogGroupName: { Ref: logGroupId },
      FilterPattern: `{ $.detail-type = "${INVOCATION}" }`,
      MetricTransformations: [{
        MetricNamespace: 'CdkImagePrefetcher',
        MetricName: 'CommandNodes',
        MetricValue: '1',
        Unit: 'Count',
        Dimensions: [{ Key: 'DocumentName', Value: '$.detail.document-name' }, { Key: 'Status', Value: '$.detail.status' }],
      }],
    });
    template.hasResourceProperties('AWS::Logs::MetricFilter', {
      LogGroupName: { Ref: logGroupId },
      FilterPattern: `{ $.detail-type = "${INSTANCE_ASSOCIATION}" }`,
      MetricTransformations: [{
        MetricNamespace: 'CdkImagePrefetcher',
        MetricName: 'AssociationNodes',
        MetricValue: '1',
        Unit: 'Count',
        Dimensions: [{ Key: 'AssociationId', Value: '$.detail.association-id' }, { Key: 'Status', Value: '$.detail.status' }],
      }],
    });
    // no default value: a filter publishes only when a node reports, so an idle metric costs nothing
    for (const filter of Object.values<any>(template.findResources('AWS::Logs::MetricFilter'))) {
      expect(filter.Properties.MetricTransformations[0].DefaultValue).toBeUndefined();
    }
  });

  test.each<[string, (p: ImagePrefetcher) => cloudwatch.Metric, string, { [k: string]: unknown }]>([
    ['metricNodesSucceeded', p => p.metricNodesSucceeded(), 'CommandNodes', { Status: 'Success' }],
    ['metricNodesFailed', p => p.metricNodesFailed(), 'CommandNodes', { Status: 'Failed' }],
    ['metricNodesTimedOut', p => p.metricNodesTimedOut(), 'CommandNodes', { Status: 'TimedOut' }],
    ['metricJoinNodes(FAILED)', p => p.metricJoinNodes(NodeStatus.FAILED), 'AssociationNodes', { Status: 'Failed' }],
  ])('%s reads the metric the filters publish, summed', (_name, metric, metricName, dimensions) => {
    const m = metric(prefetcher);
    expect(m.namespace).toBe('CdkImagePrefetcher');
    expect(m.metricName).toBe(metricName);
    expect(m.statistic).toBe('Sum');
    expect(stack.resolve(m.dimensions)).toEqual({
      ...dimensions,
      ...(metricName === 'CommandNodes'
        ? { DocumentName: { Ref: documentId } }
        : { AssociationId: { 'Fn::GetAtt': [stack.resolve(prefetcher.association.logicalId), 'AssociationId'] } }),
    });
  });

  test('an alarm on failed nodes synthesizes against that metric', () => {
    const alarmed = synth({}, (s, p) => p.metricNodesFailed().createAlarm(s, 'NodesFailed', { threshold: 1, evaluationPeriods: 1 }));
    alarmed.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'CdkImagePrefetcher',
      MetricName: 'CommandNodes',
      Statistic: 'Sum',
      Dimensions: Match.arrayWith([{ Name: 'Status', Value: 'Failed' }]),
    });
  });

  test('the push command does not send output to CloudWatch Logs, and the node role gets no Logs permission', () => {
    expect(stateMachineDefinition(template).States.SendCommand.Parameters.CloudWatchOutputConfig).toBeUndefined();
    expect(JSON.stringify(template.findResources('AWS::IAM::Policy'))).not.toContain('logs:');
  });
});

describe('the status events are the stack\'s, shared by its prefetchers', () => {
  test('one rule, one log group, one resource policy and two filters for three prefetchers', () => {
    const { stack, repository } = givenStack();
    const a = new ImagePrefetcher(stack, 'A', { repository, nodes: NodeSelector.eksCluster('c'), monitoringLogRetention: logs.RetentionDays.ONE_WEEK });
    new ImagePrefetcher(stack, 'B', { repository, nodes: NodeSelector.eksCluster('d') });
    new ImagePrefetcher(stack, 'C', { repository, nodes: NodeSelector.eksCluster('e'), monitoring: false });
    const template = Template.fromStack(stack);
    template.resourcePropertiesCountIs('AWS::Events::Rule', { EventPattern: { source: ['aws.ssm'] } }, 1);
    template.resourceCountIs('AWS::Logs::LogGroup', 1);
    template.resourceCountIs('AWS::Logs::ResourcePolicy', 1);
    template.resourceCountIs('AWS::Logs::MetricFilter', 2);
    // the first prefetcher's retention applies to the shared group
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 7 });
    expect(a.statusEvents).toBeDefined();
  });
});

describe('monitoring: false', () => {
  const { prefetcher, template } = synth({ monitoring: false });

  test('deploys no status rule, log group, resource policy or metric filter', () => {
    template.resourcePropertiesCountIs('AWS::Events::Rule', { EventPattern: { source: ['aws.ssm'] } }, 0);
    template.resourceCountIs('AWS::Logs::LogGroup', 0);
    template.resourceCountIs('AWS::Logs::ResourcePolicy', 0);
    template.resourceCountIs('AWS::Logs::MetricFilter', 0);
    expect(prefetcher.statusEvents).toBeUndefined();
  });

  test('the node metrics say why they are missing', () => {
    expect(() => prefetcher.metricNodesFailed()).toThrow('`metricNodesFailed`: needs the monitoring, which `monitoring: false` turned off, got: false');
  });

  test('the dashboard still draws the pushes and the dead-letter queue', () => {
    const titles = prefetcher.dashboardWidgets().flat().map(w => (w.toJson()[0] as any).properties.title).filter(t => t);
    expect(titles).toEqual(['Pushes matched, rollouts started and failed', 'Dead-letter queue']);
  });

  test('nodeOutputLogs without monitoring is refused and creates nothing', () => {
    const { stack, repository } = givenStack();
    const before = stack.node.findAll().length;
    expect(() => new ImagePrefetcher(stack, 'Prefetch', { repository, nodes: NodeSelector.eksCluster('c'), monitoring: false, nodeOutputLogs: true }))
      .toThrow('`nodeOutputLogs`: the nodes\' output logs are part of the monitoring, which `monitoring: false` turns off, got: true');
    expect(stack.node.findAll().length).toBe(before);
  });
});

describe('nodeOutputLogs: the nodes\' output of push commands', () => {
  const { stack, prefetcher, nodeRole, template } = synth({ nodeOutputLogs: true, monitoringLogRetention: logs.RetentionDays.THREE_DAYS });
  const output = prefetcher.nodeOutput!;
  const outputGroupId = stack.resolve((output.logGroup.node.defaultChild as logs.CfnLogGroup).logicalId);
  const ruleName = stack.resolve((prefetcher.rule.node.defaultChild as any).name);

  test('SendCommand sends the output to the prefetcher\'s log group', () => {
    expect(stateMachineDefinition(template).States.SendCommand.Parameters.CloudWatchOutputConfig).toEqual({
      CloudWatchOutputEnabled: true,
      CloudWatchLogGroupName: `\${${outputGroupId}}`,
    });
  });

  test('the output log group has the monitoring retention', () => {
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 3 });
    template.resourceCountIs('AWS::Logs::LogGroup', 2);
  });

  test('one filter per outcome, on the summary line, in a namespace of this prefetcher', () => {
    const filters = Object.values<any>(template.findResources('AWS::Logs::MetricFilter'))
      .filter(f => f.Properties.LogGroupName.Ref === outputGroupId)
      .map(f => [f.Properties.FilterPattern, f.Properties.MetricTransformations]);
    expect(filters).toEqual(PrefetchOutcome.ALL.map(o => [
      `"prefetch: summary" "outcome=${o.value}"`,
      [{ MetricNamespace: `CdkImagePrefetcher/${ruleName}`, MetricName: o.value, MetricValue: '1', Unit: 'Count' }],
    ]));
  });

  test('no outcome is a prefix of another (each summary line matches one filter)', () => {
    for (const a of PrefetchOutcome.ALL) {
      for (const b of PrefetchOutcome.ALL) {
        if (a !== b) expect(`outcome=${b.value}`.startsWith(`outcome=${a.value}`)).toBe(false);
      }
    }
  });

  test('grantNodeAccess adds exactly what the SSM agent needs on this log group, statement by statement', () => {
    const policy = Object.values<any>(template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: stack.resolve((nodeRole.node.defaultChild as iam.CfnRole).logicalId) }] } }))[0];
    const group = ['arn:', { Ref: 'AWS::Partition' }, ':logs:us-east-1:123456789012:log-group:', { Ref: outputGroupId }];
    const statements = policy.Properties.PolicyDocument.Statement;
    expect(statements.map((st: any) => st.Action)).toEqual([
      ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage'],
      'ecr:GetAuthorizationToken',
      'ecr:DescribeImages',
      'dynamodb:GetItem',
      ['logs:CreateLogGroup', 'logs:DescribeLogStreams'],
      ['logs:CreateLogStream', 'logs:PutLogEvents'],
    ]);
    expect(statements.slice(4)).toEqual([
      { Action: ['logs:CreateLogGroup', 'logs:DescribeLogStreams'], Effect: 'Allow', Resource: { 'Fn::Join': ['', group] } },
      { Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Effect: 'Allow', Resource: { 'Fn::Join': ['', [...group, ':log-stream:*']] } },
    ]);
  });

  test('metricOutcome reads the outcome metric', () => {
    const m = output.metricOutcome(PrefetchOutcome.SKIPPED_DISK);
    expect([stack.resolve(m.namespace), m.metricName, m.statistic]).toEqual([`CdkImagePrefetcher/${ruleName}`, 'skipped-disk', 'Sum']);
  });
});

describe('the dashboard', () => {
  function body(props: Partial<ImagePrefetcherProps>) {
    const { template } = synth(props, (stack, prefetcher) => prefetcher.addToDashboard(new cloudwatch.Dashboard(stack, 'Dashboard')));
    const join = Object.values<any>(template.findResources('AWS::CloudWatch::Dashboard'))[0].Properties.DashboardBody['Fn::Join'][1];
    return JSON.parse(join.map((p: any) => (typeof p === 'string' ? p : 'TOKEN')).join('')).widgets as any[];
  }

  test('draws, per prefetcher: pushes and rollouts, nodes after pushes and joins, failed nodes, the dead-letter queue', () => {
    const widgets = body({});
    expect(widgets.map(w => [w.type, w.properties.title ?? '(text)', w.x, w.y, w.width])).toEqual([
      ['text', '(text)', 0, 0, 24],
      ['metric', 'Pushes matched, rollouts started and failed', 0, 2, 8],
      ['metric', 'Nodes after pushes', 8, 2, 8],
      ['metric', 'Nodes after joins (association)', 16, 2, 8],
      ['log', 'Nodes that did not succeed (latest 50)', 0, 8, 16],
      ['metric', 'Dead-letter queue', 16, 8, 8],
    ]);
    const nodes = widgets[2].properties.metrics;
    expect(nodes.map((m: any[]) => [m[0], m[1], m[m.length - 1].label])).toEqual([
      ['CdkImagePrefetcher', 'CommandNodes', 'succeeded'],
      ['CdkImagePrefetcher', 'CommandNodes', 'failed'],
      ['CdkImagePrefetcher', 'CommandNodes', 'timed out'],
    ]);
    expect(widgets[4].properties.query).toContain('filter status != "Success"');
    expect(widgets[4].properties.query).toContain('`detail.instance-id` as instance');
  });

  test('with nodeOutputLogs: outcomes (stacked), skip reasons and pull seconds p50/p99', () => {
    const widgets = body({ nodeOutputLogs: true });
    expect(widgets.map(w => w.properties.title).filter((t: string) => t)).toEqual([
      'Pushes matched, rollouts started and failed', 'Nodes after pushes', 'Nodes after joins (association)',
      'Outcomes after pushes (summary lines)', 'Skip reasons', 'Pull seconds, p50 and p99 (pulled images)',
      'Nodes that did not succeed (latest 50)', 'Dead-letter queue',
    ]);
    const outcomes = widgets.find(w => w.properties.title === 'Outcomes after pushes (summary lines)');
    expect(outcomes.properties.stacked).toBe(true);
    expect(outcomes.properties.metrics.filter((m: any[]) => m[0].expression).map((m: any[]) => m[0].label)).toEqual(['skipped', 'failed']);
    const seconds = widgets.find(w => w.properties.title === 'Pull seconds, p50 and p99 (pulled images)');
    expect(seconds.properties.query).toContain('stats pct(seconds, 50) as p50, pct(seconds, 99) as p99 by bin(5m)');
  });

  test('two prefetchers on one dashboard: rows one after the other', () => {
    const { stack, repository } = givenStack();
    const dashboard = new cloudwatch.Dashboard(stack, 'Dashboard');
    new ImagePrefetcher(stack, 'A', { repository, nodes: NodeSelector.eksCluster('a') }).addToDashboard(dashboard);
    new ImagePrefetcher(stack, 'B', { repository: new ecr.Repository(stack, 'Other'), nodes: NodeSelector.eksCluster('b') }).addToDashboard(dashboard);
    const join = Object.values<any>(Template.fromStack(stack).findResources('AWS::CloudWatch::Dashboard'))[0].Properties.DashboardBody['Fn::Join'][1];
    const widgets = JSON.parse(join.map((p: any) => (typeof p === 'string' ? p : 'TOKEN')).join('')).widgets;
    expect(widgets.filter((w: any) => w.type === 'text').map((w: any) => w.y)).toEqual([0, 14]);
  });
});

describe('NodeStatus.of', () => {
  test.each(['Undeliverable', 'AccessDenied'])('accepts %s', (s) => expect(NodeStatus.of(s).value).toBe(s));
  test.each(['', 'Timed Out', 'a'.repeat(65)])('refuses %j', (s) => expect(() => NodeStatus.of(s)).toThrow(`\`status\`: an SSM status is 1-64 letters, got: ${JSON.stringify(s)}`));
});
