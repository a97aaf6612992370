import { Arn, ArnFormat, CfnResource, Duration, Stack, Token } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct, IConstruct } from 'constructs';

/** Throws a synth-time error that names the prop, the rule and the value. @internal */
export function fail(prop: string, rule: string, value: unknown): never {
  throw new Error(`\`${prop}\`: ${rule}, got: ${JSON.stringify(value)}`);
}

/** True when a value is only known at deploy time and must not be validated at synth. @internal */
export function isUnresolved(value: string | number | undefined): boolean {
  return value !== undefined && Token.isUnresolved(value);
}

/** OCI tag syntax, the syntax ECR accepts for image tags. @internal */
export const OCI_TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** ECR repository name syntax (length checked separately: 2 to 256). @internal */
export const ECR_REPOSITORY_NAME = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;

/**
 * The account and region of a repository: those of its ARN when the ARN is a literal (an imported
 * repository of another account: `fromRepositoryAttributes` leaves `env` at the stack's own),
 * else its `env`. @internal
 */
export function repositoryEnvironment(repository: ecr.IRepository): { account: string; region: string } {
  if (!Token.isUnresolved(repository.repositoryArn)) {
    const arn = Arn.split(repository.repositoryArn, ArnFormat.SLASH_RESOURCE_NAME);
    if (arn.account && arn.region) return { account: arn.account, region: arn.region };
  }
  return { account: repository.env.account, region: repository.env.region };
}

/** Checks that a whole number lies in [min, max] unless it is a Token. @internal */
export function checkInteger(prop: string, value: number | undefined, min: number, max: number): void {
  if (value === undefined || isUnresolved(value)) return;
  if (!Number.isInteger(value) || value < min || value > max) {
    fail(prop, `must be a whole number from ${min} to ${max}`, value);
  }
}

/** Checks the retry policy EventBridge accepts. @internal */
export function checkRetryPolicy(retryAttempts?: number, maxEventAge?: Duration): void {
  checkInteger('retryAttempts', retryAttempts, 0, 185);
  if (maxEventAge && !maxEventAge.isUnresolved()) {
    const seconds = maxEventAge.toSeconds({ integral: false });
    if (!Number.isInteger(seconds) || seconds < 60 || seconds > 86400) {
      fail('maxEventAge', 'must be a whole number of seconds from 60 to 86400 (24 hours)', `${seconds} seconds`);
    }
  }
}

/**
 * Records a narrow cdk-nag suppression on a resource, the way `NagSuppressions` does, so that
 * users who run cdk-nag see only findings about their own code (no runtime dependency on cdk-nag).
 *
 * @internal
 */
export function suppressNag(resource: CfnResource, id: string, reason: string, appliesToRegex?: string): void {
  const existing = resource.getMetadata('cdk_nag')?.rules_to_suppress ?? [];
  const rule = { id, reason, ...(appliesToRegex ? { applies_to: [{ regex: appliesToRegex }] } : {}) };
  resource.addMetadata('cdk_nag', { rules_to_suppress: [...existing, rule] });
}

/**
 * A service principal that may assume a role only for this account's one resource (confused-deputy
 * guard: `aws:SourceAccount` and `aws:SourceArn`; IAM user guide, "The confused deputy problem").
 *
 * @internal
 */
export function sourceGuardedPrincipal(service: string, stack: Stack, sourceArn: string): iam.IPrincipal {
  return new iam.ServicePrincipal(service).withConditions({
    StringEquals: { 'aws:SourceAccount': stack.account },
    ArnEquals: { 'aws:SourceArn': sourceArn },
  });
}

/**
 * The construct `id` at the root of `scope`'s stack, created by `create` on first use: what a stack's
 * prefetchers share (the document, the dead-letter queue, the newest-image record, ...).
 *
 * @internal
 */
export function stackSingleton<T extends Construct>(scope: IConstruct, id: string, create: (stack: Stack, id: string) => T): T {
  const stack = Stack.of(scope);
  return (stack.node.tryFindChild(id) as T | undefined) ?? create(stack, id);
}
