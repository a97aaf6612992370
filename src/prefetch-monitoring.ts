import { ArnFormat, CfnResource, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct, IConstruct } from 'constructs';
import { PrefetchDocument } from './prefetch-document';
import { fail, stackSingleton } from './validation';

/** The namespace of every metric the library's metric filters publish. */
export const METRIC_NAMESPACE = 'CdkImagePrefetcher';

/**
 * Detail types of the per-node SSM events (Systems Manager user guide, "Amazon EventBridge event
 * examples for Systems Manager": Run Command Invocation Status-change Notification, State Manager
 * Instance Association State Change).
 */
const INVOCATION_EVENT = 'EC2 Command Invocation Status-change Notification';
const INSTANCE_ASSOCIATION_EVENT = 'EC2 State Manager Instance Association State Change';

/**
 * Statuses a node passes through on its way to a result (SSM API reference, CommandInvocation
 * `Status`: Pending | InProgress | Delayed | Success | Cancelled | TimedOut | Failed | Cancelling).
 * The rule keeps every other status, so that a final status not listed in the documentation still
 * reaches the log and the metrics under its own name.
 */
const INTERMEDIATE_STATUSES = ['Pending', 'InProgress', 'Delayed', 'Cancelling'];

/** How a node's run of the prefetch document ended, as SSM reports it in its status events. */
export class NodeStatus {
  /** The script exited 0: the node has the image, or skipped it for a reason it printed. */
  public static readonly SUCCESS = new NodeStatus('Success');
  /** The script exited non-zero (a real failure: see the exit-code table in the README). */
  public static readonly FAILED = new NodeStatus('Failed');
  /** SSM gave up on the node: it never answered (delivery) or the script ran past `executionTimeout`. */
  public static readonly TIMED_OUT = new NodeStatus('TimedOut');
  /** The command was cancelled. */
  public static readonly CANCELLED = new NodeStatus('Cancelled');

  /**
   * Another status, spelled as SSM writes it in the event's `detail.status`.
   *
   * @param status for example `Failed`
   */
  public static of(status: string): NodeStatus {
    if (!/^[A-Za-z]{1,64}$/.test(status)) fail('status', 'an SSM status is 1-64 letters', status);
    return new NodeStatus(status);
  }

  private constructor(
    /** The status as it appears in the event and in the metric's `Status` dimension. */
    public readonly value: string) {}
}

/** What the node script's summary line says happened (`outcome=` in `prefetch: summary ...`). */
export class PrefetchOutcome {
  /** The image was pulled. */
  public static readonly PULLED = new PrefetchOutcome('pulled', false);
  /** The image was already on the node. */
  public static readonly PRESENT = new PrefetchOutcome('present', false);
  /** No tagged image matched (a joining node and an empty repository, for example). */
  public static readonly NOTHING = new PrefetchOutcome('nothing', false);
  /** The disk was too full for the image (`maxDiskUsagePercent`). */
  public static readonly SKIPPED_DISK = new PrefetchOutcome('skipped-disk', false);
  /** The image has no variant for the node's platform. */
  public static readonly SKIPPED_PLATFORM = new PrefetchOutcome('skipped-platform', false);
  /** The manifest is an artifact, not a container image. */
  public static readonly SKIPPED_NOT_AN_IMAGE = new PrefetchOutcome('skipped-not-an-image', false);
  /** Another run on the node held the image's lock. */
  public static readonly SKIPPED_LOCKED = new PrefetchOutcome('skipped-locked', false);
  /** The node's tag already points at a newer push of that tag (this push's event arrived late). */
  public static readonly SKIPPED_SUPERSEDED = new PrefetchOutcome('skipped-superseded', false);
  /** An unexpected local failure (exit 1). */
  public static readonly FAILED = new PrefetchOutcome('failed', true);
  /** A parameter was refused (exit 2). */
  public static readonly BAD_INPUT = new PrefetchOutcome('bad-input', true);
  /** No ECR token, or ECR refused it (exit 3). */
  public static readonly AUTH_FAILED = new PrefetchOutcome('auth-failed', true);
  /** Registry or network failure after the retries (exit 4). */
  public static readonly REGISTRY_FAILED = new PrefetchOutcome('registry-failed', true);
  /** containerd did not answer (exit 6). */
  public static readonly CONTAINERD_UNAVAILABLE = new PrefetchOutcome('containerd-unavailable', true);
  /** The tag or digest does not exist (exit 7). */
  public static readonly NOT_FOUND = new PrefetchOutcome('not-found', true);
  /** The node's shell is older than bash 4.2 (exit 1). */
  public static readonly UNSUPPORTED_SHELL = new PrefetchOutcome('unsupported-shell', true);

  /** Every outcome the script prints, in the order of the README's exit-code table. */
  public static readonly ALL: PrefetchOutcome[] = [
    PrefetchOutcome.PULLED, PrefetchOutcome.PRESENT, PrefetchOutcome.NOTHING, PrefetchOutcome.SKIPPED_DISK,
    PrefetchOutcome.SKIPPED_PLATFORM, PrefetchOutcome.SKIPPED_NOT_AN_IMAGE, PrefetchOutcome.SKIPPED_LOCKED,
    PrefetchOutcome.SKIPPED_SUPERSEDED, PrefetchOutcome.FAILED, PrefetchOutcome.UNSUPPORTED_SHELL, PrefetchOutcome.BAD_INPUT,
    PrefetchOutcome.AUTH_FAILED, PrefetchOutcome.REGISTRY_FAILED, PrefetchOutcome.CONTAINERD_UNAVAILABLE, PrefetchOutcome.NOT_FOUND,
  ];

  private constructor(
    /** The word after `outcome=`; also the metric's name. */
    public readonly value: string,
    /** Whether the script exits non-zero with it (SSM then reports the node Failed). */
    public readonly isFailure: boolean) {}

  /**
   * The metric filter pattern that matches a log event holding this outcome's summary line.
   * Quoted terms, each matched anywhere in the event: the SSM agent uploads a command's output in
   * batches of the lines written since its last upload (one event may hold several lines), so the
   * pattern cannot rely on the line being alone in the event. No outcome is a prefix of another, so
   * `outcome=<value>` selects exactly one.
   */
  public get filterPattern(): string {
    return `"prefetch: summary" "outcome=${this.value}"`;
  }
}

/** What an `ImagePrefetcher` reports to CloudWatch (see the README, "How to see what happened"). */
export interface MonitoringOptions {
  /**
   * Turn SSM's per-node status events for the prefetch document into CloudWatch metrics
   * (`CdkImagePrefetcher` `CommandNodes` and `AssociationNodes`, by `Status`) and keep them in a log
   * group, where the failed nodes' instance IDs can be found. Costs cents a month at 1,000 nodes and
   * 50 pushes a day (README, "Costs"). `false` turns off everything in these options.
   *
   * @default true
   */
  readonly monitoring?: boolean;

  /**
   * How long the status events (and the nodes' output, with `nodeOutputLogs`) are kept. The status
   * log group is shared by the stack's prefetchers: the first prefetcher's setting applies to it.
   *
   * @default logs.RetentionDays.TWO_WEEKS
   */
  readonly monitoringLogRetention?: logs.RetentionDays;

  /**
   * Create the CloudWatch Logs resource policy that lets EventBridge write the status events. The
   * status log group is named `/aws/events/cdk-image-prefetcher/<stack name>`, and the policy
   * covers `/aws/events/cdk-image-prefetcher/*`: every stack's group in this account and region.
   * CloudWatch Logs allows 10 resource policies per account and region (shared with other services),
   * so with several stacks, keep it in one long-lived stack and set `false` in the others.
   *
   * @default true
   */
  readonly monitoringLogResourcePolicy?: boolean;

  /**
   * Send each node's output of a push's command to a CloudWatch Logs group of this prefetcher
   * (SendCommand's `CloudWatchOutputConfig`), with metric filters that count every `outcome=` of
   * the script's summary line; the dashboard then also shows the outcomes and the pull seconds
   * (p50, p99). The node role needs `grantNodeAccess` (which then also grants writing to that log
   * group). The association's runs (nodes that join) are not included: an association's output
   * goes to S3 only. Costs about two dollars a month at 1,000 nodes and 50 pushes a day.
   *
   * @default false
   */
  readonly nodeOutputLogs?: boolean;
}

/**
 * SSM's per-node status events for the stack's prefetch document, kept in a log group and counted
 * by two metric filters; shared by every `ImagePrefetcher` of the stack (they share the document,
 * and the events name only the document, not the command's comment or targets).
 *
 * - A rule on the default bus for `EC2 Command Invocation Status-change Notification` (one per node
 *   and status of a push's command) and `EC2 State Manager Instance Association State Change` (one
 *   per node and status of the association) with `document-name` = the prefetch document, final
 *   statuses only; its target is the log group (EventBridge does not charge for AWS service events
 *   on the default bus, nor for delivering them).
 * - Metric filters: `CommandNodes` by `DocumentName` and `Status`, `AssociationNodes` by
 *   `AssociationId` and `Status`, each counting one per event.
 *
 * Sources: Systems Manager user guide, "Amazon EventBridge event examples for Systems Manager" (the
 * events' shape) and "Monitoring Systems Manager events with Amazon EventBridge"; EventBridge user
 * guide, CloudWatch Logs targets (the log group's resource policy for events.amazonaws.com);
 * CloudWatch Logs user guide, "Filter pattern syntax for metric filters" (JSON patterns and dimensions).
 */
export class PrefetchStatusEvents extends Construct {
  /** The prefix of the status log groups, which the resource policy covers. */
  public static readonly LOG_GROUP_PREFIX = '/aws/events/cdk-image-prefetcher/';

  /**
   * The stack's shared status events, created on first use.
   *
   * @param scope any construct in the stack
   * @param retention the log group's retention when it is created here
   */
  public static of(scope: IConstruct, retention?: logs.RetentionDays, createResourcePolicy?: boolean): PrefetchStatusEvents {
    return stackSingleton(scope, 'ImagePrefetcherStatusEvents',
      (stack, id) => new PrefetchStatusEvents(stack, id, retention, createResourcePolicy ?? true));
  }


  /** The log group that keeps the events (one JSON event per node and final status). */
  public readonly logGroup: logs.ILogGroup;

  /** The rule that sends the document's status events to the log group. */
  public readonly rule: events.IRule;

  /** The prefetch document's name, as the events carry it. */
  public readonly documentName: string;

  private constructor(scope: Construct, id: string, retention: logs.RetentionDays | undefined, createResourcePolicy: boolean) {
    super(scope, id);
    const stack = Stack.of(this);
    this.documentName = PrefetchDocument.of(this).documentName;
    const logGroup = new logs.LogGroup(this, 'LogGroup', {
      logGroupName: `${PrefetchStatusEvents.LOG_GROUP_PREFIX}${stack.stackName}`,
      retention: retention ?? logs.RetentionDays.TWO_WEEKS,
      // Operational records with a short retention: nothing to keep once the stack is gone.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.logGroup = logGroup;

    // EventBridge writes to CloudWatch Logs under a resource policy of the account (an
    // AWS::Logs::ResourcePolicy; at most 10 per account and region, not adjustable). aws-cdk-lib's
    // CloudWatchLogGroup target writes one per group through a Lambda-backed custom resource; this one
    // is plain CloudFormation and covers every stack's status group (the shared prefix), so that one
    // stack can hold it for all (monitoringLogResourcePolicy).
    const policy = createResourcePolicy ? new logs.ResourcePolicy(this, 'Policy', {
      policyStatements: [new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [stack.formatArn({
          service: 'logs', resource: 'log-group', resourceName: `${PrefetchStatusEvents.LOG_GROUP_PREFIX}*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        })],
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      })],
    }) : undefined;

    const rule = new events.Rule(this, 'Rule', {
      description: 'cdk-image-prefetcher: per-node status events of the image prefetch document, into a log group for metrics and search',
      eventPattern: {
        source: ['aws.ssm'],
        detailType: [INVOCATION_EVENT, INSTANCE_ASSOCIATION_EVENT],
        detail: {
          'document-name': [this.documentName],
          'status': [{ 'anything-but': INTERMEDIATE_STATUSES }],
        },
      },
    });
    rule.addTarget({
      bind: () => ({
        arn: stack.formatArn({ service: 'logs', resource: 'log-group', resourceName: logGroup.logGroupName, arnFormat: ArnFormat.COLON_RESOURCE_NAME }),
      }),
    });
    // The first events must find the policy in place.
    if (policy) (rule.node.defaultChild as CfnResource).addDependency(policy.node.defaultChild as CfnResource);
    this.rule = rule;

    new logs.MetricFilter(this, 'CommandNodes', {
      logGroup,
      filterPattern: logs.FilterPattern.literal(`{ $.detail-type = "${INVOCATION_EVENT}" }`),
      metricNamespace: METRIC_NAMESPACE,
      metricName: 'CommandNodes',
      metricValue: '1',
      unit: cloudwatch.Unit.COUNT,
      dimensions: { DocumentName: '$.detail.document-name', Status: '$.detail.status' },
    });
    new logs.MetricFilter(this, 'AssociationNodes', {
      logGroup,
      filterPattern: logs.FilterPattern.literal(`{ $.detail-type = "${INSTANCE_ASSOCIATION_EVENT}" }`),
      metricNamespace: METRIC_NAMESPACE,
      metricName: 'AssociationNodes',
      metricValue: '1',
      unit: cloudwatch.Unit.COUNT,
      dimensions: { AssociationId: '$.detail.association-id', Status: '$.detail.status' },
    });
  }

  /**
   * Nodes whose push command ended with this status, for every prefetcher of the stack (the events
   * name the document, which the stack's prefetchers share).
   */
  public metricCommandNodes(status: NodeStatus, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: METRIC_NAMESPACE,
      metricName: 'CommandNodes',
      dimensionsMap: { DocumentName: this.documentName, Status: status.value },
      statistic: cloudwatch.Stats.SUM,
      ...props,
    });
  }

  /** Nodes on which this association's run ended with this status. */
  public metricAssociationNodes(associationId: string, status: NodeStatus, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: METRIC_NAMESPACE,
      metricName: 'AssociationNodes',
      dimensionsMap: { AssociationId: associationId, Status: status.value },
      statistic: cloudwatch.Stats.SUM,
      ...props,
    });
  }
}

/** Properties of a {@link NodeOutputLogs}. */
export interface NodeOutputLogsProps {
  /**
   * The metrics' namespace: one per prefetcher, because a metric filter cannot add a dimension
   * that is not a field of the log event, and the output does not name the prefetcher.
   */
  readonly metricNamespace: string;

  /**
   * How long the output is kept.
   *
   * @default logs.RetentionDays.TWO_WEEKS
   */
  readonly retention?: logs.RetentionDays;
}

/**
 * A log group for the nodes' output of a push's command (SendCommand `CloudWatchOutputConfig`; the
 * SSM agent writes one stream per node, `<command id>/<instance id>/<step>/stdout`), with one metric
 * filter per `outcome=` of the script's summary line.
 *
 * The pull seconds are not a metric: the summary line writes them as `seconds=8.4`, and a metric
 * filter takes a value only from a JSON field or a space-delimited field of its own, while the agent
 * uploads several lines per log event (amazon-ssm-agent, cloudwatchlogsservice.go: one event per
 * second of output). The dashboard computes p50 and p99 with a Logs Insights query instead.
 */
export class NodeOutputLogs extends Construct {
  /** The log group the nodes write to. */
  public readonly logGroup: logs.ILogGroup;

  /** The namespace of the outcome metrics. */
  public readonly metricNamespace: string;

  constructor(scope: Construct, id: string, props: NodeOutputLogsProps) {
    super(scope, id);
    this.metricNamespace = props.metricNamespace;
    const logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: props.retention ?? logs.RetentionDays.TWO_WEEKS,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.logGroup = logGroup;
    for (const outcome of PrefetchOutcome.ALL) {
      new logs.MetricFilter(this, `Outcome-${outcome.value}`, {
        logGroup,
        filterPattern: logs.FilterPattern.literal(outcome.filterPattern),
        metricNamespace: props.metricNamespace,
        metricName: outcome.value,
        metricValue: '1',
        unit: cloudwatch.Unit.COUNT,
      });
    }
  }

  /** Nodes whose summary line said this outcome. */
  public metricOutcome(outcome: PrefetchOutcome, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: this.metricNamespace,
      metricName: outcome.value,
      statistic: cloudwatch.Stats.SUM,
      ...props,
    });
  }

  /**
   * Grants a node role what the SSM agent needs to write the output (SSM user guide, "Configuring
   * Amazon CloudWatch Logs for Run Command"): the agent first calls `logs:CreateLogGroup` (an existing
   * group answers ResourceAlreadyExists; without the permission it falls back to
   * `logs:DescribeLogGroups` on every group), then `logs:CreateLogStream`, `logs:DescribeLogStreams`
   * (its upload sequence token) and `logs:PutLogEvents` (amazon-ssm-agent, iohandler.go and
   * cloudwatchlogsservice.go). All on this log group and its streams only.
   */
  public grantWrite(grantee: iam.IGrantable): iam.Grant {
    const group = Stack.of(this).formatArn({
      service: 'logs', resource: 'log-group', resourceName: this.logGroup.logGroupName, arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    // Resource types from the service authorization reference (CloudWatch Logs): CreateLogGroup and
    // DescribeLogStreams act on the log group, CreateLogStream and PutLogEvents on its log streams.
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['logs:CreateLogGroup', 'logs:DescribeLogStreams'],
      resourceArns: [group],
    }).combine(iam.Grant.addToPrincipal({
      grantee,
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resourceArns: [`${group}:log-stream:*`],
    }));
  }
}
