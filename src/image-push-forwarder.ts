import { Annotations, Duration, Names, Stack, Token, TokenComparison } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { PrefetchDeadLetterQueue } from './prefetch-dead-letter-queue';
import { checkRetryPolicy, fail, isUnresolved, repositoryEnvironment, sourceGuardedPrincipal } from './validation';

/**
 * EventBridge allows 5 targets per rule ("Amazon EventBridge quotas", Targets per rule:
 * https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html): one rule per 5 accounts.
 */
const TARGETS_PER_RULE = 5;

/**
 * What the workload accounts' nodes may do on the repositories: pull (the three actions a pull
 * needs, ECR user guide, "Private repository policy examples",
 * https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-policy-examples.html), and
 * `ecr:DescribeImages`, with which a node that joins finds the repository's most recently pushed
 * tagged image when no record of the last push exists (the prefetch script's join path). No push,
 * no delete, no policy or lifecycle action.
 */
const PULL_ACTIONS = ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage', 'ecr:DescribeImages'];

/** Properties of an {@link ImagePushForwarder}. */
export interface ImagePushForwarderProps {
  /**
   * The repositories whose pushes (and replications into them) are forwarded, in the stack's
   * account and region (ECR sends their events to this account's default event bus).
   */
  readonly repositories: ecr.IRepository[];

  /**
   * The workload accounts (12-digit IDs) whose default event bus, in the stack's region, receives
   * the events, and which may pull the repositories. Each needs an `ImagePrefetcher` on these
   * repositories: it lets this account put events on its bus. More than 5 accounts take one rule
   * per 5 (EventBridge allows 5 targets per rule).
   */
  readonly accounts: string[];

  /**
   * Queue for events EventBridge could not deliver to a workload account after its retries
   * (for example, when that account's bus does not allow this account yet).
   *
   * @default - a queue shared by the stack's forwarders and prefetchers, encrypted with SQS-managed keys
   */
  readonly deadLetterQueue?: sqs.IQueue;

  /**
   * How many times EventBridge retries delivering an event to a workload account (0 to 185).
   *
   * @default 185
   */
  readonly retryAttempts?: number;

  /**
   * How long EventBridge retries delivering an event to a workload account (60 seconds to 24 hours).
   *
   * @default Duration.hours(24)
   */
  readonly maxEventAge?: Duration;
}

/**
 * In a central registry account: forwards the push events of ECR repositories to the default event
 * bus of workload accounts, where an `ImagePrefetcher` on each repository warms the nodes, and
 * lets those accounts pull the repositories.
 *
 * ECR sends its events only to the default event bus of the repository's own account and region,
 * and Run Command cannot be a cross-account target: the prefetcher lives in the nodes' account, and
 * this rule carries the events there (one hop; the events keep `account` = this account).
 *
 * @example
 * new ImagePushForwarder(this, 'ToWorkloads', {
 *   repositories: [trainer, inference],
 *   accounts: ['111122223333', '444455556666'],
 * });
 */
export class ImagePushForwarder extends Construct {
  /** The rules that forward the events (one per 5 accounts). */
  public readonly rules: events.IRule[];

  /** The roles EventBridge assumes to put the events on the workload accounts' buses (one per rule). */
  public readonly eventRoles: iam.IRole[];

  /** The queue that receives events EventBridge could not deliver. */
  public readonly deadLetterQueue: sqs.IQueue;

  /**
   * The repository policy statement that lets the workload accounts pull. Added to each repository
   * this stack owns; for an imported repository, add it to the repository's policy yourself.
   */
  public readonly repositoryPolicyStatement: iam.PolicyStatement;

  constructor(scope: Construct, id: string, props: ImagePushForwarderProps) {
    super(scope, id);
    try {
      validate(this, props);
    } catch (error) {
      // Bad input creates nothing: not even this construct stays in the tree.
      scope.node.tryRemoveChild(id);
      throw error;
    }
    const stack = Stack.of(this);
    this.deadLetterQueue = props.deadLetterQueue ?? PrefetchDeadLetterQueue.of(this).queue;

    const repositoryNames = props.repositories.map(r => r.repositoryName);
    const rules: events.IRule[] = [];
    const roles: iam.IRole[] = [];
    for (let start = 0; start < props.accounts.length; start += TARGETS_PER_RULE) {
      const accounts = props.accounts.slice(start, start + TARGETS_PER_RULE);
      const suffix = start === 0 ? '' : `${start / TARGETS_PER_RULE + 1}`;
      // The rule name is fixed before deployment so that the role's trust policy can name the
      // rule (aws:SourceArn) without a reference cycle between the rule and the role.
      const ruleName = Names.uniqueResourceName(this, { maxLength: 64 - suffix.length, separator: '-' }) + suffix;
      // A rule whose target is an event bus in another account needs a role with events:PutEvents
      // on that bus (EventBridge user guide, "Sending and receiving events between AWS accounts",
      // https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-account.html).
      const role = new iam.Role(this, `ForwardRole${suffix}`, {
        description: `Lets EventBridge rule ${ruleName} put ECR push events on the workload accounts' default event buses`,
        assumedBy: sourceGuardedPrincipal('events.amazonaws.com', stack, stack.formatArn({ service: 'events', resource: 'rule', resourceName: ruleName })),
      });
      const rule = new events.Rule(this, `ForwardRule${suffix}`, {
        ruleName,
        description: `Forward ECR pushes of ${props.repositories.length} repositories to accounts ${accounts.join(', ')}`,
        eventPattern: {
          source: ['aws.ecr'],
          detailType: ['ECR Image Action', 'ECR Replication Action'],
          detail: {
            'action-type': ['PUSH', 'REPLICATE'],
            'result': ['SUCCESS'],
            'repository-name': repositoryNames,
            // Untagged manifests (multi-arch children, attestations) are never prefetched: not
            // forwarding them halves what the registry account pays for cross-account events.
            'image-tag': [{ 'anything-but': [''] }],
          },
        },
      });
      accounts.forEach((account, i) => {
        // The target adds `events:PutEvents` on exactly this bus to the role.
        rule.addTarget(new targets.EventBus(events.EventBus.fromEventBusArn(this, `WorkloadBus${start + i}`,
          stack.formatArn({ service: 'events', account, resource: 'event-bus', resourceName: 'default' })), {
          role,
          deadLetterQueue: this.deadLetterQueue,
        }));
        // aws-cdk-lib's EventBus target has no retry options (aws/aws-cdk#28735); the rule's
        // target accepts them (AWS::Events::Rule Target.RetryPolicy).
        if (props.retryAttempts !== undefined || props.maxEventAge !== undefined) {
          (rule.node.defaultChild as events.CfnRule).addPropertyOverride(`Targets.${i}.RetryPolicy`, {
            ...(props.retryAttempts !== undefined ? { MaximumRetryAttempts: props.retryAttempts } : {}),
            ...(props.maxEventAge ? { MaximumEventAgeInSeconds: props.maxEventAge.toSeconds() } : {}),
          });
        }
      });
      rules.push(rule);
      roles.push(role);
    }
    this.rules = rules;
    this.eventRoles = roles;

    // Cross-account pull needs both sides: this statement in the repository policy, and the node
    // role's own permission in its account (ImagePrefetcher.grantNodeAccess) (ECR user guide,
    // "Private repository policies", https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-policies.html).
    this.repositoryPolicyStatement = new iam.PolicyStatement({
      // Unique per forwarder (the hash of its path): two forwarders may share a repository.
      sid: `ImagePrefetcherPull${Names.uniqueId(this).slice(-8)}`,
      actions: PULL_ACTIONS,
      principals: props.accounts.map(account => new iam.AccountPrincipal(account)),
    });
    for (const repository of props.repositories) {
      if (!repository.addToResourcePolicy(this.repositoryPolicyStatement).statementAdded) {
        // An imported repository's policy belongs to whoever created it: CDK cannot change it.
        Annotations.of(this).addWarningV2('cdk-image-prefetcher:imported-repository',
          `Repository ${repository.node.path} is imported: its policy cannot be changed here, so the accounts cannot pull it yet. Add the statement of \`repositoryPolicyStatement\` to its policy where the repository is defined (${PULL_ACTIONS.join(', ')} for ${props.accounts.join(', ')}).`);
      }
    }
  }

  /**
   * An EventBridge metric of the forward rules, summed over them (one rule per 5 accounts).
   *
   * @param metricName the metric name, for example `FailedInvocations`
   */
  public metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    const metrics = this.rules.map(rule => new cloudwatch.Metric({
      namespace: 'AWS/Events',
      metricName,
      dimensionsMap: { RuleName: rule.ruleName },
      statistic: cloudwatch.Stats.SUM,
      ...props,
    }).attachTo(this));
    if (metrics.length === 1) return metrics[0];
    return new cloudwatch.MathExpression({
      expression: metrics.map((_, i) => `m${i}`).join(' + '),
      usingMetrics: Object.fromEntries(metrics.map((m, i) => [`m${i}`, m])),
      label: `${metricName} (${metrics.length} rules)`,
      period: props?.period,
    });
  }

  /** Events the rules could not put on a workload account's bus after the retries (for example, a bus that does not allow this account). */
  public metricFailedInvocations(props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    return this.metric('FailedInvocations', props);
  }

  /** Events sent to the dead-letter queue. */
  public metricInvocationsSentToDlq(props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    return this.metric('InvocationsSentToDlq', props);
  }
}

/** Checks every prop before anything is created. */
function validate(scope: Construct, props: ImagePushForwarderProps): void {
  const stack = Stack.of(scope);
  if (props.repositories.length === 0) fail('repositories', 'at least one repository is needed', []);
  const names = new Set<string>();
  for (const repository of props.repositories) {
    const env = repositoryEnvironment(repository);
    for (const [what, theirs, ours] of [
      ['account', env.account, stack.account],
      ['region', env.region, stack.region],
    ]) {
      const comparison = Token.compareStrings(theirs, ours);
      if (comparison === TokenComparison.DIFFERENT) {
        fail('repositories', `a repository must be in the stack's ${what} (${ours}): ECR sends its push events only to the default event bus of its own account and region; deploy the forwarder in the repository's ${what}`, theirs);
      }
      if (comparison === TokenComparison.ONE_UNRESOLVED) {
        Annotations.of(scope).addWarningV2('cdk-image-prefetcher:environment',
          `Cannot verify at synth that repository ${repository.node.path}'s ${what} is the stack's: the forwarder only sees the events of its own account and region. Give the stack an explicit env to have this checked.`);
      }
    }
    // A repository this stack creates has a Ref for a name: compare those by construct.
    const key = isUnresolved(repository.repositoryName) ? repository.node.path : repository.repositoryName;
    if (names.has(key)) fail('repositories', 'each repository once', key);
    names.add(key);
  }
  if (props.accounts.length === 0) fail('accounts', 'at least one workload account is needed', []);
  const accounts = new Set<string>();
  for (const account of props.accounts) {
    if (isUnresolved(account)) continue;
    if (!/^[0-9]{12}$/.test(account)) fail('accounts', 'an AWS account ID is 12 digits', account);
    if (accounts.has(account)) fail('accounts', 'each account once', account);
    if (Token.compareStrings(account, stack.account) === TokenComparison.SAME) {
      fail('accounts', 'the stack\'s own account receives its ECR events directly: an ImagePrefetcher there needs no forwarder', account);
    }
    accounts.add(account);
  }
  checkRetryPolicy(props.retryAttempts, props.maxEventAge);
}
