import { CfnResource, Duration } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct, IConstruct } from 'constructs';
import { stackSingleton, suppressNag } from './validation';

/**
 * The dead-letter queue for push events that EventBridge could not deliver, shared by
 * every `ImagePrefetcher` and `ImagePushForwarder` of a stack that has no queue of its own.
 */
export class PrefetchDeadLetterQueue extends Construct {
  /**
   * The stack's shared queue, created on first use.
   *
   * @param scope any construct in the stack
   */
  public static of(scope: IConstruct): PrefetchDeadLetterQueue {
    return stackSingleton(scope, 'ImagePrefetcherDeadLetterQueue', (stack, id) => new PrefetchDeadLetterQueue(stack, id));
  }

  /** The queue. */
  public readonly queue: sqs.IQueue;

  private constructor(scope: Construct, id: string) {
    super(scope, id);
    this.queue = new sqs.Queue(this, 'Queue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    suppressNag(this.queue.node.defaultChild as CfnResource, 'AwsSolutions-SQS3',
      'This queue is itself the dead-letter queue of the prefetchers\' and forwarders\' EventBridge targets; a DLQ of a DLQ would only move the same messages again.');
  }
}
