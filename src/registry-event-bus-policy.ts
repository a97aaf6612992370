import { CfnResource, Names, Stack } from 'aws-cdk-lib';
import { Construct, IConstruct } from 'constructs';
import { stackSingleton } from './validation';

/**
 * Lets a central registry account put events on this account's default event bus: the ECR push
 * events an `ImagePushForwarder` forwards from there. One per registry account per stack, shared
 * by every `ImagePrefetcher` of the stack whose repository lives in that account.
 *
 * A receiving bus must allow the sending account with a resource-based policy (EventBridge user
 * guide, "Sending and receiving events between AWS accounts in Amazon EventBridge",
 * https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-account.html, and
 * "Permissions for event buses", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-bus-perms.html).
 * The statement allows `events:PutEvents` for that one account on the default bus only. Forwarded
 * events keep `account` = the registry account, which is what the prefetchers' rules match on.
 */
export class RegistryEventBusPolicy extends Construct {
  /**
   * The stack's policy statement for this registry account, created on first use.
   *
   * @param scope any construct in the stack
   * @param registryAccount the 12-digit ID of the account that holds the repositories
   */
  public static of(scope: IConstruct, registryAccount: string): RegistryEventBusPolicy {
    return stackSingleton(scope, `ImagePrefetcherRegistryEvents${registryAccount}`, (stack, id) => new RegistryEventBusPolicy(stack, id, registryAccount));
  }

  /** The account allowed to put events. */
  public readonly registryAccount: string;

  /** The policy statement on the default event bus (an `AWS::Events::EventBusPolicy`). */
  public readonly policy: CfnResource;

  private constructor(scope: Construct, id: string, registryAccount: string) {
    super(scope, id);
    const stack = Stack.of(this);
    this.registryAccount = registryAccount;
    // The statement ID must be unique on the account's default bus, which every stack of the
    // account shares: the construct path makes it so (stack names are unique per account and region).
    const statementId = Names.uniqueResourceName(this, { maxLength: 64, separator: '-' });
    // The L1 class, events.CfnEventBusPolicy, prints jsii deprecation warnings (its legacy
    // Action/Principal/Condition properties) on every synthesis, even when they are not set.
    this.policy = new CfnResource(this, 'Resource', {
      type: 'AWS::Events::EventBusPolicy',
      properties: {
        EventBusName: 'default',
        StatementId: statementId,
        Statement: {
          Sid: statementId,
          Effect: 'Allow',
          Principal: { AWS: `arn:${stack.partition}:iam::${registryAccount}:root` },
          Action: 'events:PutEvents',
          Resource: stack.formatArn({ service: 'events', resource: 'event-bus', resourceName: 'default' }),
        },
      },
    });
  }
}
