import { Arn, ArnFormat, CfnJson, CfnResource, Duration, Stack, Token } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { IConstruct } from 'constructs';
import { NodeSelector } from './node-selector';
import { checkRetryPolicy, suppressNag } from './validation';

/** Properties of a {@link RunCommandTarget}. */
export interface RunCommandTargetProps {
  /**
   * Name of an SSM Command document owned by this account, in the rule's region.
   */
  readonly documentName: string;

  /**
   * The instances the command runs on.
   */
  readonly nodes: NodeSelector;

  /**
   * The document parameters, as `{"name": ["value"]}`; an input transformer may take
   * values from the event.
   *
   * @default - the document's default parameters
   */
  readonly input?: events.RuleTargetInput;

  /**
   * The role EventBridge assumes to send the command. It receives `ssm:SendCommand` on
   * the document and on the instances that carry the selected tag, nothing else.
   *
   * @default - a new role trusted by EventBridge for this account's rules
   */
  readonly role?: iam.IRole;

  /**
   * Queue for events that could not be delivered after the retries.
   *
   * @default - no dead-letter queue
   */
  readonly deadLetterQueue?: sqs.IQueue;

  /**
   * How many times EventBridge retries a failed delivery (0 to 185).
   *
   * @default 185
   */
  readonly retryAttempts?: number;

  /**
   * How long EventBridge keeps retrying an event (60 seconds to 24 hours).
   *
   * @default Duration.hours(24)
   */
  readonly maxEventAge?: Duration;
}

/**
 * An EventBridge rule target that runs an SSM Command document with Run Command on
 * the instances that carry an EC2 tag.
 *
 * aws-cdk-lib has no Run Command target class; this one grants the least privilege the
 * target needs: `ssm:SendCommand` on one document, and on instances only when they carry
 * the selected tag.
 *
 * Limits: the target has no rate control. EventBridge's `RunCommandParameters` has only
 * `RunCommandTargets` (EventBridge API reference), so every command runs with SendCommand's
 * defaults: 50 nodes at a time, and `MaxErrors` 0, so that the first node whose script exits
 * non-zero stops the command for every node not yet reached, while EventBridge still counts
 * the invocation as successful. One target block, one tag key, 1 to 50 values. Use it for
 * small fleets or commands that cannot fail; `ImagePrefetcher` uses {@link PushRollout}.
 */
export class RunCommandTarget implements events.IRuleTarget {
  private readonly props: RunCommandTargetProps;

  constructor(props: RunCommandTargetProps) {
    checkRetryPolicy(props.retryAttempts, props.maxEventAge);
    this.props = props;
  }

  /**
   * Returns the target configuration of the rule.
   */
  public bind(rule: events.IRuleRef, _id?: string): events.RuleTargetConfig {
    const stack = Stack.of(rule);
    const { nodes, deadLetterQueue } = this.props;
    const documentArn = Arn.format({ service: 'ssm', resource: 'document', resourceName: this.props.documentName }, stack);

    const role = this.props.role ?? new iam.Role(rule, 'RunCommandRole', {
      assumedBy: new iam.ServicePrincipal('events.amazonaws.com').withConditions({
        StringEquals: { 'aws:SourceAccount': stack.account },
        ArnLike: { 'aws:SourceArn': stack.formatArn({ service: 'events', resource: 'rule', resourceName: '*' }) },
      }),
    });
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'SendThePrefetchDocument',
      actions: ['ssm:SendCommand'],
      resources: [documentArn],
    }));
    role.addToPrincipalPolicy(selectedNodesStatement(rule, nodes, 'OnlyToTheSelectedNodes'));
    suppressInstanceWildcard(role);

    if (deadLetterQueue) {
      allowRuleToSendToQueue(rule, deadLetterQueue);
    }

    return {
      arn: documentArn,
      role,
      input: this.props.input,
      runCommandParameters: {
        runCommandTargets: [{ key: nodes.targetKey, values: nodes.tagValues }],
      },
      deadLetterConfig: deadLetterQueue ? { arn: deadLetterQueue.queueArn } : undefined,
      retryPolicy: this.props.retryAttempts !== undefined || this.props.maxEventAge !== undefined ? {
        maximumRetryAttempts: this.props.retryAttempts,
        maximumEventAgeInSeconds: this.props.maxEventAge?.toSeconds(),
      } : undefined,
    };
  }
}

/**
 * `ssm:SendCommand` on the instances that carry the selected tag: `instance/*` (instance IDs are
 * not known in advance) with SSM's `ssm:resourceTag/<key>` condition.
 *
 * @internal
 */
export function selectedNodesStatement(scope: IConstruct, nodes: NodeSelector, sid?: string): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid,
    actions: ['ssm:SendCommand'],
    resources: [Stack.of(scope).formatArn({ service: 'ec2', resource: 'instance', resourceName: '*', arnFormat: ArnFormat.SLASH_RESOURCE_NAME })],
    conditions: { StringEquals: tagCondition(scope, nodes) },
  });
}

/**
 * The narrow cdk-nag suppression for {@link selectedNodesStatement} on the role's default policy.
 *
 * @internal
 */
export function suppressInstanceWildcard(role: iam.IRole): void {
  const policy = role.node.tryFindChild('DefaultPolicy')?.node.defaultChild;
  if (policy instanceof CfnResource) {
    suppressNag(policy, 'AwsSolutions-IAM5',
      'SendCommand needs the instance ARNs; instance IDs are not known in advance (nodes come and go), so the resource is instance/* and an ssm:resourceTag condition limits it to the selected nodes.',
      '/^Resource::arn:<AWS::Partition>:ec2:[^:]+:[^:]+:instance\\/\\*$/');
  }
}

/**
 * `{"ssm:resourceTag/<key>": [values]}`. CloudFormation cannot compute a JSON key, so a
 * key known only at deploy time (a cluster name from another resource) goes through CfnJson.
 */
function tagCondition(scope: IConstruct, nodes: NodeSelector): any {
  const condition = { [`ssm:resourceTag/${nodes.tagKey}`]: nodes.tagValues };
  if (!Token.isUnresolved(nodes.tagKey)) return condition;
  return new CfnJson(scope, 'NodeTagCondition', { value: condition });
}

/** Lets EventBridge put undeliverable events of this rule (and only this rule) in the queue. */
function allowRuleToSendToQueue(rule: events.IRuleRef, queue: sqs.IQueue): void {
  queue.addToResourcePolicy(new iam.PolicyStatement({
    sid: `AllowEventRule${rule.node.addr.slice(0, 16)}`,
    principals: [new iam.ServicePrincipal('events.amazonaws.com')],
    actions: ['sqs:SendMessage'],
    resources: [queue.queueArn],
    conditions: { ArnEquals: { 'aws:SourceArn': rule.ruleRef.ruleArn } },
  }));
}
