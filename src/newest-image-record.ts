import { CfnResource, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct, IConstruct } from 'constructs';
import { stackSingleton, suppressNag } from './validation';

/** The partition key: one item per prefetcher. */
const KEY_ATTRIBUTE = 'prefetcher';

/**
 * Errors of the Step Functions DynamoDB integration worth retrying (Step Functions developer guide,
 * "Call DynamoDB with Step Functions": errors are named `DynamoDB.<Exception>`).
 */
const RETRYABLE = [
  'DynamoDB.ThrottlingException',
  'DynamoDB.ProvisionedThroughputExceededException',
  'DynamoDB.RequestLimitExceeded',
  'DynamoDB.InternalServerErrorException',
];

/**
 * The newest image of each prefetcher of a stack, written by the push leg and read by joining nodes:
 * one DynamoDB item per prefetcher with the digest, its tags and the push's time (the EventBridge
 * event's `time`). A node that joins reads its prefetcher's item with one `GetItem` instead of paging
 * through `ecr:DescribeImages` for the whole repository (100 images a call by default, no published
 * rate quota), and falls back to that search only while nothing is recorded.
 *
 * Only newer pushes win, atomically: the push leg writes with a condition expression (DynamoDB
 * developer guide, "Condition expressions"), so two pushes delivered out of order cannot leave the
 * older one recorded. A push of the recorded digest with another tag adds the tag.
 *
 * The table is on-demand (a few writes per push, one read per join) and holds a copy of what the
 * repository says: losing it costs joining nodes a repository search until the next push.
 */
export class NewestImageRecord extends Construct {
  /**
   * The stack's shared record, created on first use.
   *
   * @param scope any construct in the stack
   */
  public static of(scope: IConstruct): NewestImageRecord {
    return stackSingleton(scope, 'ImagePrefetcherNewestImages', (stack, id) => new NewestImageRecord(stack, id));
  }

  /** The table: partition key `prefetcher` (string); attributes `digest`, `tags` (string set), `pushedAt` (ISO 8601 UTC). */
  public readonly table: dynamodb.ITable;

  private constructor(scope: Construct, id: string) {
    super(scope, id);
    const table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: KEY_ATTRIBUTE, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      // A cache of the repository's state: nothing is lost with it but one search per join.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.table = table;
    suppressNag(table.node.defaultChild as CfnResource, 'AwsSolutions-DDB3',
      'The table only caches the newest pushed image per prefetcher; the next push rewrites it, and without it joining nodes search the repository: point-in-time recovery would restore nothing of value.');
  }

  /**
   * Lets a node role read the item of one prefetcher (`dynamodb:GetItem`, only that partition key).
   *
   * @param grantee the node role
   * @param key the prefetcher's key
   */
  public grantReadRecord(grantee: iam.IGrantable, key: string): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['dynamodb:GetItem'],
      resourceArns: [this.table.tableArn],
      conditions: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [key] } },
    });
  }

  /**
   * The states that record a push (the execution's input: the document's parameters) for one
   * prefetcher, to run after its command was sent: add the tag when the digest is the recorded one;
   * else record the push when it is newer than the recorded one; else leave the record alone.
   *
   * @internal
   */
  public _recordStates(scope: Construct, key: string): sfn.IChainable {
    const keyValue = { [KEY_ATTRIBUTE]: tasks.DynamoAttributeValue.fromString(key) };
    const digest = tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt('$.imageDigest[0]'));
    const tags = tasks.DynamoAttributeValue.fromStringSet(sfn.JsonPath.listAt('$.imageTags'));
    const addTag = new tasks.DynamoUpdateItem(scope, 'RecordTag', {
      comment: 'The recorded image pushed with one more tag: add the tag',
      table: this.table,
      key: keyValue,
      conditionExpression: 'digest = :digest',
      updateExpression: 'ADD tags :tags',
      expressionAttributeValues: { ':digest': digest, ':tags': tags },
      resultPath: sfn.JsonPath.DISCARD,
    });
    const recordNewer = new tasks.DynamoUpdateItem(scope, 'RecordNewer', {
      // EventBridge's `time` is ISO 8601 UTC to the second (EventBridge user guide, "Amazon EventBridge
      // events"), and DynamoDB compares strings by their UTF-8 bytes (DynamoDB developer guide,
      // "Comparison operator and function reference"): for this one format that is time order.
      comment: 'Another image: record it only if its push is newer than the recorded one (ISO 8601 UTC times compare as strings)',
      table: this.table,
      key: keyValue,
      conditionExpression: 'attribute_not_exists(pushedAt) OR pushedAt < :pushedAt',
      updateExpression: 'SET digest = :digest, tags = :tags, pushedAt = :pushedAt, repositoryName = :repository',
      expressionAttributeValues: {
        ':digest': digest,
        ':tags': tags,
        ':pushedAt': tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt('$.eventTime[0]')),
        ':repository': tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt('$.repositoryName[0]')),
      },
      resultPath: sfn.JsonPath.DISCARD,
    });
    for (const task of [addTag, recordNewer]) {
      task.addRetry({ errors: RETRYABLE, interval: Duration.seconds(1), backoffRate: 2, maxAttempts: 6, jitterStrategy: sfn.JitterType.FULL });
    }
    const older = new sfn.Succeed(scope, 'OlderPush', { comment: 'A newer push is recorded: nothing to do' });
    addTag.addCatch(recordNewer, { errors: ['DynamoDB.ConditionalCheckFailedException'], resultPath: sfn.JsonPath.DISCARD });
    recordNewer.addCatch(older, { errors: ['DynamoDB.ConditionalCheckFailedException'], resultPath: sfn.JsonPath.DISCARD });
    return addTag;
  }
}
