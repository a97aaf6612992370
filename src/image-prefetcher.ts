import { Annotations, Duration, Names, Stack, Token, TokenComparison } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { NewestImageRecord } from './newest-image-record';
import { NodeSelector } from './node-selector';
import { dashboardWidgets } from './prefetch-dashboard';
import { PrefetchDeadLetterQueue } from './prefetch-dead-letter-queue';
import { PrefetchDocument } from './prefetch-document';
import { MonitoringOptions, NodeOutputLogs, NodeStatus, PrefetchStatusEvents } from './prefetch-monitoring';
import { pushEventPattern } from './push-event-pattern';
import { checkDeliveryTimeout, PushRollout, RolloutOptions } from './push-rollout';
import { ReconcileSchedule } from './reconcile-schedule';
import { RegistryEventBusPolicy } from './registry-event-bus-policy';
import { TagFilter } from './tag-filter';
import { checkInteger, checkRetryPolicy, fail, isUnresolved, OCI_TAG, repositoryEnvironment, sourceGuardedPrincipal } from './validation';

/**
 * The jitter default, chosen with the fleet model (test/fleet/model.js; README, "Rollout at fleet
 * scale") together with the rollout defaults of PushRollout.
 */
const DEFAULT_JITTER = Duration.seconds(90);

/** How the SSM console ranks nodes that do not have the images. */
export enum ComplianceSeverity {
  /** Critical */
  CRITICAL = 'CRITICAL',
  /** High */
  HIGH = 'HIGH',
  /** Medium */
  MEDIUM = 'MEDIUM',
  /** Low */
  LOW = 'LOW',
  /** Unspecified */
  UNSPECIFIED = 'UNSPECIFIED',
}

/** Properties of an {@link ImagePrefetcher}. */
export interface ImagePrefetcherProps extends RolloutOptions, MonitoringOptions {
  /**
   * The ECR repository whose images are prefetched, in the stack's region. In the stack's
   * account, or in another account (a central registry account) whose `ImagePushForwarder`
   * forwards the repository's push events to this account's default event bus: the stack then
   * lets that account put events on the bus (README, "Central registry account").
   */
  readonly repository: ecr.IRepository;

  /**
   * The worker nodes that keep the images, selected by an EC2 tag.
   */
  readonly nodes: NodeSelector;

  /**
   * Which pushed tags are prefetched. Untagged pushes (multi-arch children,
   * attestations, signatures, SOCI indexes) never are.
   *
   * @default TagFilter.anyTag()
   */
  readonly tagFilter?: TagFilter;

  /**
   * The tags a node pulls when it joins (and on every reconcile run).
   *
   * @default - the exact tags of `tagFilter`; without exact tags, the most recently pushed
   * tagged image (among tags with one of the `tagFilter` prefixes, if any)
   */
  readonly newNodeImageTags?: string[];

  /**
   * Run the association again on every node on this schedule, to catch pushes whose event
   * was lost (EventBridge delivery is best-effort) and nodes that were busy.
   *
   * @default - no schedule: the association runs when created or updated and on every node that joins
   */
  readonly reconcileSchedule?: ReconcileSchedule;


  /**
   * Severity of the compliance item when a node lacks the images.
   *
   * @default ComplianceSeverity.MEDIUM
   */
  readonly complianceSeverity?: ComplianceSeverity;

  /**
   * Each node waits a random time up to this before contacting ECR, so that a fleet does
   * not hit ECR's per-account API rate limits at the same instant (0 to 3600 seconds). For
   * fleets above 5,000 nodes, raise it in proportion (README, "Rollout at fleet scale").
   *
   * @default Duration.seconds(90)
   */
  readonly jitter?: Duration;

  /**
   * Nodes whose containerd filesystem is fuller than this percentage skip the pull, so that
   * prefetching never pushes a node into DiskPressure or image garbage collection (1 to 100).
   *
   * @default 80
   */
  readonly maxDiskUsagePercent?: number;

  /**
   * Pin prefetched images (`io.cri-containerd.pinned=pinned`) so that kubelet image garbage
   * collection keeps them. A pinned image is unpinned by the next run once no tag of the repository
   * points at it (its tag moved); images the tags point at stay pinned.
   *
   * @default false
   */
  readonly pinImages?: boolean;

  /**
   * Attempts against ECR on throttling and transient network errors (1 to 10).
   *
   * @default 5
   */
  readonly maxAttempts?: number;

  /**
   * How long the script may run on a node before SSM stops it (1 second to 48 hours).
   *
   * @default Duration.hours(1)
   */
  readonly executionTimeout?: Duration;

  /**
   * Queue for push events EventBridge could not deliver to the push rollout after its retries.
   *
   * @default - a queue shared by the stack's prefetchers, encrypted with SQS-managed keys
   */
  readonly deadLetterQueue?: sqs.IQueue;

  /**
   * How many times EventBridge retries delivering a push event (0 to 185).
   *
   * @default 185
   */
  readonly retryAttempts?: number;

  /**
   * How long EventBridge retries delivering a push event (60 seconds to 24 hours).
   *
   * @default Duration.hours(24)
   */
  readonly maxEventAge?: Duration;

  /**
   * Name of the EventBridge rule.
   *
   * @default - a name derived from the construct path (64 characters at most)
   */
  readonly ruleName?: string;

  /**
   * Name of the State Manager association.
   *
   * @default - a name derived from the construct path
   */
  readonly associationName?: string;
}

/**
 * Keeps the images of an ECR repository warm on EKS worker nodes.
 *
 * Every push of a tagged image runs SSM Run Command on the selected nodes, which pull
 * exactly the pushed digest; an SSM State Manager association makes every node that joins
 * pull the current images. Nothing runs inside the cluster.
 *
 * @example
 * const repository = new ecr.Repository(this, 'Repo');
 * const prefetcher = new ImagePrefetcher(this, 'Prefetch', {
 *   repository,
 *   nodes: NodeSelector.tag('eks:nodegroup-name', 'gpu-a', 'gpu-b'),
 *   tagFilter: TagFilter.prefix('release-'),
 * });
 * prefetcher.grantNodeAccess(nodeRole);
 */
export class ImagePrefetcher extends Construct {
  /** The EventBridge rule on the repository's push events. */
  public readonly rule: events.IRule;

  /** The State Manager association that prefetches on nodes that join. */
  public readonly association: ssm.CfnAssociation;

  /** The SSM Command document carrying the node script (shared by the stack's prefetchers). */
  public readonly document: ssm.CfnDocument;

  /** The role EventBridge assumes to start the push rollout. */
  public readonly eventRole: iam.IRole;

  /** The push leg: the state machine that sends the command with the rollout settings. */
  public readonly pushRollout: PushRollout;

  /** The state machine that sends a push's command to the nodes. */
  public readonly stateMachine: sfn.IStateMachine;

  /** The queue that receives push events EventBridge could not deliver. */
  public readonly deadLetterQueue: sqs.IQueue;

  /**
   * Where the push leg records this prefetcher's newest image for joining nodes, when they look
   * for it (no `newNodeImageTags` and no exact tags in `tagFilter`).
   */
  public readonly newestImageRecord?: NewestImageRecord;

  /** This prefetcher's key in `newestImageRecord`. */
  public readonly recordKey: string;

  /** The stack's SSM status events and their metrics (undefined with `monitoring: false`). */
  public readonly statusEvents?: PrefetchStatusEvents;

  /** The nodes' output of push commands and its outcome metrics (with `nodeOutputLogs: true`). */
  public readonly nodeOutput?: NodeOutputLogs;

  /**
   * For a repository in another account: the stack's permission for that account to put events
   * on this account's default event bus (shared by the stack's prefetchers of that account).
   */
  public readonly registryEventBusPolicy?: RegistryEventBusPolicy;

  private readonly repository: ecr.IRepository;

  constructor(scope: Construct, id: string, props: ImagePrefetcherProps) {
    super(scope, id);
    const repositoryEnv = repositoryEnvironment(props.repository);
    let registryAccount: string | undefined;
    try {
      registryAccount = this.validate(props);
    } catch (error) {
      // Bad input creates nothing: not even this construct stays in the tree.
      scope.node.tryRemoveChild(id);
      throw error;
    }
    const stack = Stack.of(this);

    const tagFilter = props.tagFilter ?? TagFilter.anyTag();
    const newNodeTags = props.newNodeImageTags ?? tagFilter.exactTags;
    const common = renderCommonParameters(props);
    // Joining nodes that look for the newest image read it from the record the push leg writes.
    this.recordKey = Names.uniqueId(this);
    this.newestImageRecord = newNodeTags.length === 0 ? NewestImageRecord.of(this) : undefined;

    this.repository = props.repository;
    const document = PrefetchDocument.of(this);
    this.document = document.resource;
    this.deadLetterQueue = props.deadLetterQueue ?? PrefetchDeadLetterQueue.of(this).queue;
    if (registryAccount) this.registryEventBusPolicy = RegistryEventBusPolicy.of(this, registryAccount);

    // The rule name is fixed before deployment so that the role's trust policy can name the
    // rule (aws:SourceArn) without a reference cycle between the rule and the role.
    const ruleName = props.ruleName ?? Names.uniqueResourceName(this, { maxLength: 64, separator: '-' });
    this.eventRole = new iam.Role(this, 'EventRole', {
      description: `Lets EventBridge rule ${ruleName} start the image prefetch rollout`,
      assumedBy: sourceGuardedPrincipal('events.amazonaws.com', stack, stack.formatArn({ service: 'events', resource: 'rule', resourceName: ruleName })),
    });

    const rule = new events.Rule(this, 'PushRule', {
      ruleName,
      description: `Prefetch images pushed or replicated to ECR repository ${props.repository.repositoryName} on the selected nodes`,
      // ECR events carry the repository's account; a forwarded event keeps the registry account's.
      // Repository names are per account: this keeps out a same-named repository of any other
      // account allowed on the bus.
      eventPattern: pushEventPattern(props.repository.repositoryName, tagFilter, repositoryEnv.account),
    });
    // Per-node results as metrics, logs and a dashboard (README, "How to see what happened").
    if (props.monitoring ?? true) {
      this.statusEvents = PrefetchStatusEvents.of(this, props.monitoringLogRetention, props.monitoringLogResourcePolicy);
      if (props.nodeOutputLogs) {
        this.nodeOutput = new NodeOutputLogs(this, 'NodeOutput', { metricNamespace: `CdkImagePrefetcher/${ruleName}`, retention: props.monitoringLogRetention });
      }
    }
    // The push leg: rule -> Step Functions -> SendCommand with the rollout settings (the Run Command
    // target cannot set them; docs/push-path.md).
    this.pushRollout = new PushRollout(this, 'PushRollout', {
      outputLogGroup: this.nodeOutput?.logGroup,
      documentName: document.documentName,
      nodes: props.nodes,
      maxConcurrency: props.maxConcurrency,
      maxErrors: props.maxErrors,
      deliveryTimeout: props.deliveryTimeout,
      newestImageRecord: this.newestImageRecord,
      recordKey: this.recordKey,
    });
    this.stateMachine = this.pushRollout.stateMachine;
    rule.addTarget(new targets.SfnStateMachine(this.stateMachine, {
      role: this.eventRole,
      deadLetterQueue: this.deadLetterQueue,
      retryAttempts: props.retryAttempts,
      maxEventAge: props.maxEventAge,
      // The node pulls exactly what was pushed: the tag and digest come from the event; the
      // execution's input is the document's parameters.
      input: events.RuleTargetInput.fromObject({
        accountId: [events.EventField.account],
        region: [events.EventField.region],
        repositoryName: [events.EventField.fromPath('$.detail.repository-name')],
        imageTags: [events.EventField.fromPath('$.detail.image-tag')],
        imageDigest: [events.EventField.fromPath('$.detail.image-digest')],
        // The jitter counts from the push, not from when SSM's ramp reached the node.
        eventTime: [events.EventField.time],
        ...common,
      }),
    }));

    this.rule = rule;

    this.association = new ssm.CfnAssociation(this, 'NewNodeAssociation', {
      name: document.documentName,
      associationName: props.associationName,
      targets: [{ key: props.nodes.targetKey, values: props.nodes.tagValues }],
      parameters: {
        accountId: [repositoryEnv.account],
        region: [stack.region],
        repositoryName: [props.repository.repositoryName],
        imageTags: [newNodeTags.join(',')],
        tagPrefixes: [newNodeTags.length > 0 ? '' : tagFilter.prefixes.join(',')],
        recordTable: [this.newestImageRecord?.table.tableName ?? ''],
        recordKey: [this.newestImageRecord ? this.recordKey : ''],
        ...common,
      },
      scheduleExpression: props.reconcileSchedule?.expressionString,
      maxConcurrency: this.pushRollout.maxConcurrency,
      maxErrors: this.pushRollout.maxErrors,
      complianceSeverity: props.complianceSeverity ?? ComplianceSeverity.MEDIUM,
      syncCompliance: 'AUTO',
    });
  }

  /** Checks every prop before anything is created; returns the repository's account when it is another one. */
  private validate(props: ImagePrefetcherProps): string | undefined {
    const registryAccount = checkRepositoryEnvironment(this, repositoryEnvironment(props.repository));
    if (props.newNodeImageTags) checkNewNodeTags(props.newNodeImageTags);
    renderCommonParameters(props);
    props.maxConcurrency?._render('maxConcurrency', false);
    props.maxErrors?._render('maxErrors', true);
    checkRetryPolicy(props.retryAttempts, props.maxEventAge);
    if (props.deliveryTimeout) checkDeliveryTimeout(props.deliveryTimeout);
    if (props.monitoring === false && props.nodeOutputLogs) {
      fail('nodeOutputLogs', 'the nodes\' output logs are part of the monitoring, which `monitoring: false` turns off', props.nodeOutputLogs);
    }
    if (props.ruleName !== undefined && !isUnresolved(props.ruleName) && !/^[.\-_A-Za-z0-9]{1,64}$/.test(props.ruleName)) {
      fail('ruleName', 'an EventBridge rule name is 1-64 characters of letters, digits, . - _', props.ruleName);
    }
    if (props.associationName !== undefined && !isUnresolved(props.associationName) && !/^[a-zA-Z0-9_\-.]{3,128}$/.test(props.associationName)) {
      fail('associationName', 'an association name is 3-128 characters of letters, digits, _ - .', props.associationName);
    }
    return registryAccount;
  }

  /**
   * Grants a node role exactly what the node script needs on this repository: an ECR
   * authorization token, the pull actions, and `ecr:DescribeImages`; when joining nodes look
   * for the newest image, `dynamodb:GetItem` on this prefetcher's item of the newest-image record
   * (the repository search is the fallback while nothing is recorded); with `nodeOutputLogs`, what
   * the SSM agent needs to write the output to this prefetcher's log group, and nothing on other
   * log groups.
   * For a repository of another account, its repository policy must allow the node's account too
   * (`ImagePushForwarder` adds that).
   *
   * @param grantee the node role (for example a node group's or Karpenter's node role)
   */
  public grantNodeAccess(grantee: iam.IGrantable): iam.Grant {
    const grant = this.repository.grantPull(grantee).combine(this.repository.grant(grantee, 'ecr:DescribeImages'));
    const withRecord = this.newestImageRecord ? grant.combine(this.newestImageRecord.grantReadRecord(grantee, this.recordKey)) : grant;
    return this.nodeOutput ? withRecord.combine(this.nodeOutput.grantWrite(grantee)) : withRecord;
  }

  /**
   * The dashboard widgets of this prefetcher, in rows: pushes matched and rollouts, nodes succeeded
   * and failed after pushes and joins, outcomes with skip reasons and pull seconds p50/p99 (with
   * `nodeOutputLogs`), the nodes that did not succeed, the dead-letter queue.
   */
  public dashboardWidgets(): cloudwatch.IWidget[][] {
    return dashboardWidgets({
      title: this.repository.repositoryName,
      matchedEvents: this.metricMatchedEvents(),
      rolloutsStarted: this.pushRollout.metricStarted(),
      rolloutsFailed: this.metricPushesFailed(),
      sentToDlq: this.metricInvocationsSentToDlq(),
      deadLetterQueue: this.deadLetterQueue,
      statusEvents: this.statusEvents,
      associationId: this.association.attrAssociationId,
      outputLogs: this.nodeOutput,
    });
  }

  /**
   * Adds this prefetcher's widgets to a dashboard (see `dashboardWidgets`).
   *
   * @param dashboard for example `new cloudwatch.Dashboard(this, 'Fleet')`
   */
  public addToDashboard(dashboard: cloudwatch.Dashboard): void {
    for (const row of this.dashboardWidgets()) dashboard.addWidgets(...row);
  }

  /** Nodes whose push command succeeded (for every prefetcher of the stack: they share the document). */
  public metricNodesSucceeded(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.monitoringEvents('metricNodesSucceeded').metricCommandNodes(NodeStatus.SUCCESS, props);
  }

  /** Nodes whose push command failed (the script exited non-zero). Alarm on it. */
  public metricNodesFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.monitoringEvents('metricNodesFailed').metricCommandNodes(NodeStatus.FAILED, props);
  }

  /** Nodes that never ran a push's command or ran past `executionTimeout`. */
  public metricNodesTimedOut(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.monitoringEvents('metricNodesTimedOut').metricCommandNodes(NodeStatus.TIMED_OUT, props);
  }

  /** Nodes on which this prefetcher's association (nodes that join, reconcile runs) ended with this status. */
  public metricJoinNodes(status: NodeStatus, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.monitoringEvents('metricJoinNodes').metricAssociationNodes(this.association.attrAssociationId, status, props);
  }

  private monitoringEvents(method: string): PrefetchStatusEvents {
    if (!this.statusEvents) fail(method, 'needs the monitoring, which `monitoring: false` turned off', false);
    return this.statusEvents;
  }

  /**
   * An EventBridge metric of the push rule.
   *
   * @param metricName the metric name, for example `MatchedEvents`
   */
  public metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: 'AWS/Events',
      metricName,
      dimensionsMap: { RuleName: this.rule.ruleName },
      statistic: cloudwatch.Stats.SUM,
      ...props,
    }).attachTo(this);
  }

  /** Pushes that matched the rule (one per prefetched tag). */
  public metricMatchedEvents(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('MatchedEvents', props);
  }

  /** Push rollouts the rule started (one per prefetched push). */
  public metricInvocations(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('Invocations', props);
  }

  /**
   * Pushes whose command was not sent to the nodes: the rollout's execution failed (SendCommand
   * refused the request or stayed throttled). Alarm on it, with `metricFailedInvocations`.
   */
  public metricPushesFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.pushRollout.metricFailed(props);
  }

  /** Invocations that failed for good (after the retries): EventBridge could not start the rollout. */
  public metricFailedInvocations(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('FailedInvocations', props);
  }

  /** Events sent to the dead-letter queue. */
  public metricInvocationsSentToDlq(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('InvocationsSentToDlq', props);
  }
}

/**
 * Refuses a repository in another region; returns the repository's account when it is known to be
 * another one than the stack's (a central registry account), undefined when it is the stack's.
 */
function checkRepositoryEnvironment(scope: Construct, repository: { account: string; region: string }): string | undefined {
  const stack = Stack.of(scope);
  const region = Token.compareStrings(repository.region, stack.region);
  if (region === TokenComparison.DIFFERENT) {
    fail('repository', `the repository must be in the stack's region (${stack.region}): ECR sends its events only in its own region, and the nodes would pull across regions; replicate the repository into this region with ECR replication and prefetch the replica`, repository.region);
  }
  if (region === TokenComparison.ONE_UNRESOLVED) {
    Annotations.of(scope).addWarningV2('cdk-image-prefetcher:environment',
      'Cannot verify at synth that the repository\'s region is the stack\'s: the prefetcher only works when they are the same. Give the stack an explicit env to have this checked.');
  }
  const account = Token.compareStrings(repository.account, stack.account);
  if (account === TokenComparison.DIFFERENT) return repository.account;
  if (account === TokenComparison.ONE_UNRESOLVED) {
    Annotations.of(scope).addWarningV2('cdk-image-prefetcher:environment',
      'Cannot verify at synth that the repository\'s account is the stack\'s: for a repository in another account (a central registry account), the stack must let that account put events on its default event bus, which the prefetcher does only when both accounts are known at synth. Give the stack an explicit env and the repository a literal ARN.');
  }
  return undefined;
}

function checkNewNodeTags(tags: string[]): void {
  if (tags.length > 20) fail('newNodeImageTags', 'at most 20 tags are supported', tags.length);
  for (const tag of tags) {
    if (!isUnresolved(tag) && !OCI_TAG.test(tag)) {
      fail('newNodeImageTags', 'a tag must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127} (OCI tag syntax)', tag);
    }
  }
}

/** The parameters the push target and the association share. */
function renderCommonParameters(props: ImagePrefetcherProps): { [name: string]: string[] } {
  const jitter = seconds('jitter', props.jitter ?? DEFAULT_JITTER, 0, 3600);
  const timeout = seconds('executionTimeout', props.executionTimeout ?? Duration.hours(1), 1, 172800);
  checkInteger('maxDiskUsagePercent', props.maxDiskUsagePercent, 1, 100);
  checkInteger('maxAttempts', props.maxAttempts, 1, 10);
  return {
    jitterSeconds: [jitter],
    maxDiskUsagePercent: [`${props.maxDiskUsagePercent ?? 80}`],
    pinImages: [`${props.pinImages ?? false}`],
    maxAttempts: [`${props.maxAttempts ?? 5}`],
    executionTimeout: [timeout],
  };
}

function seconds(prop: string, duration: Duration, min: number, max: number): string {
  if (duration.isUnresolved()) {
    fail(prop, 'must be known at synth time', duration.toString());
  }
  const value = duration.toSeconds({ integral: false });
  if (!Number.isInteger(value) || value < min || value > max) {
    fail(prop, `must be a whole number of seconds from ${min} to ${max}`, `${value} seconds`);
  }
  return `${value}`;
}
