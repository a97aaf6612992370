import { Annotations, ArnFormat, CfnResource, Duration, Names, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { NewestImageRecord } from './newest-image-record';
import { NodeSelector } from './node-selector';
import { selectedNodesStatement, suppressInstanceWildcard } from './run-command-target';
import { Threshold } from './threshold';
import { fail, sourceGuardedPrincipal, suppressNag } from './validation';

/**
 * The Run Command user guide ("Run commands at scale") says targets take "a maximum of five keys,
 * and five values for each key", while the API reference of SendCommand's `Target` allows 50
 * values. The API's limit is what SendCommand validates; the guide's is not confirmed for the API
 * (the integ tests send to one value). Above five values the construct warns.
 */
const GUIDE_MAX_TAG_VALUES = 5;

/**
 * How a command rolls out across the nodes: SendCommand's rate control. An `ImagePrefetcher`
 * applies `maxConcurrency` and `maxErrors` to a push's command and to its association alike.
 */
export interface RolloutOptions {
  /**
   * How many nodes run the command at once (SendCommand and association `MaxConcurrency`). SSM
   * starts with one node and doubles up to this; the others wait for a free slot. The nodes'
   * random `jitter` spreads their ECR calls over time.
   *
   * @default Threshold.percentage(100) - every node at once after the ramp, so that a push warms
   * the whole fleet in about one pull time (README, "Rollout at fleet scale")
   */
  readonly maxConcurrency?: Threshold;

  /**
   * After how many failed nodes the command is not sent to further nodes (`MaxErrors`). Nodes that
   * skip an image (full disk, another platform, not an image) exit 0 and do not count.
   *
   * @default Threshold.percentage(100) - a broken node must not keep the other nodes cold
   */
  readonly maxErrors?: Threshold;

  /**
   * How long a push's command waits for a node that does not answer (stopped, agent down) before
   * SSM gives up on that node (SendCommand `TimeoutSeconds`; Delivery Timed Out, which is not an
   * error). Such a node pulls the current images at its next join or reconcile run (30 seconds to
   * 30 days). With a `maxConcurrency` below 100 % and many waves, keep it above the rollout's
   * duration: the SSM documentation does not say whether nodes waiting for a slot count against it.
   *
   * @default Duration.hours(1) - SendCommand's own default
   */
  readonly deliveryTimeout?: Duration;
}

/** Properties of a {@link PushRollout}. */
export interface PushRolloutProps extends RolloutOptions {
  /**
   * Name of the SSM Command document to send (owned by this account, in this region).
   */
  readonly documentName: string;

  /**
   * The instances the command goes to.
   */
  readonly nodes: NodeSelector;

  /**
   * After sending the command, record the push as the newest image of `recordKey` in this record
   * (the execution's input must then carry `imageDigest`, `imageTags`, `eventTime` and
   * `repositoryName`, as an `ImagePrefetcher`'s rule writes them).
   *
   * @default - nothing is recorded
   */
  readonly newestImageRecord?: NewestImageRecord;

  /**
   * The key of the record's item (required with `newestImageRecord`).
   *
   * @default - no key
   */
  readonly recordKey?: string;

  /**
   * Log group for the nodes' output (SendCommand `CloudWatchOutputConfig`). The nodes' instance role
   * must be allowed to write to it.
   *
   * @default - the output stays in Run Command's history (the first 24,000 characters per node)
   */
  readonly outputLogGroup?: logs.ILogGroup;
}

/**
 * A rate-controlled way to run an SSM Command document on the nodes, for an EventBridge rule:
 * a Step Functions state machine (Standard) whose one task calls SSM SendCommand through the AWS SDK
 * integration `arn:aws:states:::aws-sdk:ssm:sendCommand` with `MaxConcurrency`, `MaxErrors` and
 * `TimeoutSeconds`, which the EventBridge Run Command target cannot set (its `RunCommandParameters`
 * has only `RunCommandTargets`, so every command gets SendCommand's defaults: 50 at a time, and the
 * first failed node stops the rollout).
 *
 * The execution's input is the document's parameters (`{"name": ["value"]}`), for example from an
 * EventBridge input transformer; the command's comment names the image digest.
 *
 * Sources: Step Functions developer guide, "AWS SDK service integrations"; SSM API reference,
 * SendCommand (MaxConcurrency, MaxErrors, TimeoutSeconds, Targets); SSM user guide, "Run commands
 * at scale". Why Step Functions and not an SSM Automation runbook: docs/push-path.md.
 */
export class PushRollout extends Construct {
  /** The state machine that sends the command. */
  public readonly stateMachine: sfn.IStateMachine;

  /** The role Step Functions assumes to send the command. */
  public readonly role: iam.IRole;

  /** The rollout settings, as SendCommand receives them. */
  public readonly maxConcurrency: string;

  /** The error threshold, as SendCommand receives it. */
  public readonly maxErrors: string;

  private readonly machine: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: PushRolloutProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const maxConcurrency = (props.maxConcurrency ?? Threshold.percentage(100))._render('maxConcurrency', false);
    const maxErrors = (props.maxErrors ?? Threshold.percentage(100))._render('maxErrors', true);
    const deliveryTimeout = checkDeliveryTimeout(props.deliveryTimeout ?? Duration.hours(1));
    if (props.newestImageRecord && !props.recordKey) {
      fail('recordKey', 'a key is required with newestImageRecord', props.recordKey);
    }
    if (props.nodes.tagValues.length > GUIDE_MAX_TAG_VALUES) {
      Annotations.of(this).addWarningV2('cdk-image-prefetcher:target-values',
        `The selector has ${props.nodes.tagValues.length} tag values. SendCommand's API accepts 50, but the Run Command user guide says targets take at most five values for each key; if a push's command fails with a validation error, split the nodes across prefetchers with at most five values each.`);
    }
    this.maxConcurrency = maxConcurrency;
    this.maxErrors = maxErrors;

    // The name is fixed before deployment so that the role's trust policy can name the state
    // machine (aws:SourceArn) without a reference cycle between the two.
    const stateMachineName = Names.uniqueResourceName(this, { maxLength: 80, separator: '-' });
    const stateMachineArn = stack.formatArn({
      service: 'states', resource: 'stateMachine', resourceName: stateMachineName, arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    const role = new iam.Role(this, 'Role', {
      description: `Lets state machine ${stateMachineName} send the image prefetch document to the selected nodes`,
      assumedBy: sourceGuardedPrincipal('states.amazonaws.com', stack, stateMachineArn),
    });
    this.role = role;

    const documentArn = stack.formatArn({ service: 'ssm', resource: 'document', resourceName: props.documentName });
    const send = new tasks.CallAwsService(this, 'SendCommand', {
      comment: 'Runs the prefetch document on the selected nodes with the rollout settings',
      service: 'ssm',
      action: 'sendCommand',
      iamAction: 'ssm:SendCommand',
      // ssm:SendCommand needs the document and every instance it goes to. The task's own statement
      // covers the document; the instances, with the tag condition, follow.
      iamResources: [documentArn],
      additionalIamStatements: [selectedNodesStatement(this, props.nodes)],
      parameters: {
        DocumentName: props.documentName,
        Targets: [{ Key: props.nodes.targetKey, Values: props.nodes.tagValues }],
        MaxConcurrency: maxConcurrency,
        MaxErrors: maxErrors,
        TimeoutSeconds: deliveryTimeout,
        // The document's parameters are the execution's input, as the rule's input transformer wrote them.
        Parameters: sfn.JsonPath.entirePayload,
        // The console's command list shows the comment: the image digest (92 characters at most of SSM's 100).
        Comment: sfn.JsonPath.format('cdk-image-prefetcher {}', sfn.JsonPath.stringAt('$.imageDigest[0]')),
        ...(props.outputLogGroup ? {
          CloudWatchOutputConfig: { CloudWatchOutputEnabled: true, CloudWatchLogGroupName: props.outputLogGroup.logGroupName },
        } : {}),
      },
      resultSelector: {
        CommandId: sfn.JsonPath.stringAt('$.Command.CommandId'),
        TargetCount: sfn.JsonPath.numberAt('$.Command.TargetCount'),
        MaxConcurrency: sfn.JsonPath.stringAt('$.Command.MaxConcurrency'),
        MaxErrors: sfn.JsonPath.stringAt('$.Command.MaxErrors'),
      },
      // The input (the document's parameters) stays for the record.
      resultPath: '$.command',
    });
    // SDK integration errors are named Ssm.<Error>Exception (Step Functions developer guide). Throttling
    // and SSM's server errors are worth retrying; anything else (a missing document, bad parameters)
    // fails the execution at once, visible in metricPushesFailed().
    send.addRetry({
      errors: ['Ssm.ThrottlingException', 'Ssm.InternalServerErrorException', 'Ssm.TooManyUpdatesException'],
      interval: Duration.seconds(2),
      backoffRate: 2,
      maxAttempts: 6,
      jitterStrategy: sfn.JitterType.FULL,
    });

    this.machine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineName,
      stateMachineType: sfn.StateMachineType.STANDARD,
      comment: 'cdk-image-prefetcher: runs the prefetch document on the selected nodes with rate control',
      definitionBody: sfn.DefinitionBody.fromChainable(props.newestImageRecord && props.recordKey
        ? send.next(props.newestImageRecord._recordStates(this, props.recordKey)) : send),
      role,
      // A few API calls: each returns or fails within its retries.
      timeout: Duration.minutes(15),
    });
    this.stateMachine = this.machine;
    // aws-cdk-lib's StateMachine makes the machine depend on its role and the role's policy; RoleArn
    // already orders the role first (cfn-lint W3005): keep the policy, which the first execution needs.
    const cfnMachine = this.machine.node.defaultChild as CfnResource;
    const cfnPolicy = role.node.tryFindChild('DefaultPolicy')?.node.defaultChild as CfnResource;
    cfnMachine.addOverride('DependsOn', [cfnPolicy.logicalId]);

    suppressNag(this.machine.node.defaultChild as CfnResource, 'AwsSolutions-SF1',
      'A Standard workflow keeps every execution\'s input (the image) and the SendCommand result (command ID, target count) in its execution history for 90 days; CloudWatch Logs of ALL events would duplicate that for a workflow of one call and a record write.');
    suppressNag(this.machine.node.defaultChild as CfnResource, 'AwsSolutions-SF2',
      'One SendCommand call (and at most two record writes) per execution: X-Ray traces would show nothing the execution history does not.');
    suppressInstanceWildcard(role);
  }

  /**
   * Pushes whose command could not be sent, or whose newest-image record could not be written:
   * executions that failed (SendCommand or DynamoDB refused the request, or throttled past the
   * retries). Alarm on it.
   */
  public metricFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.machine.metricFailed(props);
  }

  /** Executions started: one per push the rule matched. */
  public metricStarted(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.machine.metricStarted(props);
  }

  /** Executions that sent the command. */
  public metricSucceeded(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.machine.metricSucceeded(props);
  }
}

/** Validates a delivery timeout and returns its seconds. @internal */
export function checkDeliveryTimeout(timeout: Duration): number {
  if (timeout.isUnresolved()) fail('deliveryTimeout', 'must be known at synth time', timeout.toString());
  const seconds = timeout.toSeconds({ integral: false });
  if (!Number.isInteger(seconds) || seconds < 30 || seconds > 2_592_000) {
    fail('deliveryTimeout', 'must be a whole number of seconds from 30 to 2592000 (30 days)', `${seconds} seconds`);
  }
  return seconds;
}
