// The central-registry contract as the SYNTHESIZED templates state it: in the registry account, the
// ImagePushForwarder's rule (its event pattern, its targets: the workload accounts' default buses);
// in a workload account, the ImagePrefetcher on the registry's repository (read like the
// single-account contract, synthesized.ts). The registry account is the contract account of
// ecr-events.ts and of the node harness (test/node/lib.sh E2E_ACCOUNT): the events are the registry
// account's, and the node pulls from the registry account's host; the workload account differs.
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import { DIGEST, Event, imageAction, multiArchPush, pullThroughCacheAction } from './ecr-events';
import { Json, matchesPattern } from './eventbridge';
import { CONTRACT_ENV, CONTRACT_REPOSITORY, Contract, ContractProps, readContract } from './synthesized';
import { ImagePrefetcher, ImagePushForwarder, NodeSelector, TagFilter } from '../../src';

export const REGISTRY_ACCOUNT = CONTRACT_ENV.account;
export const WORKLOAD_ACCOUNT = '111122223333';
export const WORKLOAD_ENV = { account: WORKLOAD_ACCOUNT, region: CONTRACT_ENV.region };

/** The forwarder's rule as synthesized in the registry account. */
export interface ForwarderContract {
  readonly eventPattern: { [key: string]: unknown };
  /** The target ARNs, evaluated (partition `aws`). */
  readonly targetArns: string[];
}

/** Synthesizes the registry account's stack with a forwarder of the contract repository to the workload account. */
export function synthesizeForwarder(accounts: string[] = [WORKLOAD_ACCOUNT]): ForwarderContract {
  const app = new App();
  const stack = new Stack(app, 'Registry', { env: CONTRACT_ENV });
  new ImagePushForwarder(stack, 'Forwarder', {
    repositories: [ecr.Repository.fromRepositoryName(stack, 'Repository', CONTRACT_REPOSITORY)],
    accounts,
  });
  const rules = Object.values(Template.fromStack(stack).findResources('AWS::Events::Rule'));
  if (rules.length !== 1) throw new Error(`expected one forward rule, found ${rules.length}`);
  const rule = rules[0];
  return {
    eventPattern: rule.Properties.EventPattern,
    targetArns: rule.Properties.Targets.map((t: any) => stack.resolve(t.Arn)['Fn::Join'][1].map((p: any) => (p.Ref === 'AWS::Partition' ? 'aws' : p)).join('')),
  };
}

/** Synthesizes a workload account's stack with a prefetcher on the registry account's repository. */
export function synthesizeCentralContract(props: ContractProps = {}): Contract {
  const app = new App();
  const stack = new Stack(app, 'Workload', { env: WORKLOAD_ENV });
  new ImagePrefetcher(stack, 'Prefetcher', {
    repository: ecr.Repository.fromRepositoryArn(stack, 'Repository',
      `arn:aws:ecr:${CONTRACT_ENV.region}:${REGISTRY_ACCOUNT}:repository/${CONTRACT_REPOSITORY}`),
    nodes: NodeSelector.eksCluster('prod'),
    jitter: Duration.seconds(0),
    ...props,
  });
  return readContract(Template.fromStack(stack).toJSON());
}

/**
 * The event the workload account's default bus receives from the forwarder's rule: the same event
 * (EventBridge forwards it unchanged; `account` stays the account where it happened, EventBridge
 * user guide, "Sending and receiving events between AWS accounts"), when the target is that bus.
 */
export function forwarded(forwarder: ForwarderContract, event: Event, account: string = WORKLOAD_ACCOUNT): Event | undefined {
  const bus = `arn:aws:events:${CONTRACT_ENV.region}:${account}:event-bus/default`;
  return forwarder.targetArns.includes(bus) ? event : undefined;
}

const replication: Event = {
  ...imageAction({ tag: 'v1' }),
  'detail-type': 'ECR Replication Action',
  'detail': { ...(imageAction({ tag: 'v1' }).detail as { [key: string]: Json }), 'action-type': 'REPLICATE', 'source-account': '210987654321', 'source-region': 'us-east-1' },
};

/**
 * Events on the registry account's default bus: [name, event, forwarded by the forwarder's rule,
 * then matched by the workload account's prefetcher rule (any tag)].
 */
export const FORWARDER_EVENTS: Array<[string, Event, boolean, boolean]> = [
  ['push of v1', imageAction({ tag: 'v1' }), true, true],
  ['push of latest', imageAction({ tag: 'latest' }), true, true],
  ['multi-arch push: the index, tagged stable', multiArchPush('stable')[2], true, true],
  ['multi-arch push: a child, "image-tag": ""', multiArchPush('stable')[0], false, false],
  ['push without an image-tag field', withoutDetail(imageAction({ tag: 'v1' }), 'image-tag'), false, false],
  ['DELETE of v1', imageAction({ tag: 'v1', action: 'DELETE' }), false, false],
  ['FAILURE of a push of v1', imageAction({ tag: 'v1', result: 'FAILURE' }), false, false],
  ['push to another repository of the registry', imageAction({ tag: 'v1', repository: 'team/other' }), false, false],
  ['push to a repository whose name starts with ours', imageAction({ tag: 'v1', repository: `${CONTRACT_REPOSITORY}-canary` }), false, false],
  ['ECR Replication Action of v1 (a replica arrives in the registry)', replication, true, true],
  // Forwarded (the forwarder only drops untagged manifests), then dropped by the workload rule.
  ['a cosign signature tag', imageAction({ tag: `${DIGEST.replace(':', '-')}.sig` }), true, false],
  ['a Helm chart', imageAction({ tag: '1.2.0', artifactMediaType: 'application/vnd.cncf.helm.config.v1+json' }), true, false],
  ['ECR Pull Through Cache Action of v1', pullThroughCacheAction, false, false],
  ['push event from another source', { ...imageAction({ tag: 'v1' }), source: 'custom.ecr' }, false, false],
];

function withoutDetail(event: Event, field: string): Event {
  const detail = { ...(event.detail as { [key: string]: Json }) };
  delete detail[field];
  return { ...event, detail };
}

/** One event-ruler case (test/ground-truth/RuleCheck.java). */
export interface RuleCase {
  readonly name: string;
  readonly pattern: { [key: string]: unknown };
  readonly event: Event;
  readonly expected: boolean;
}

/**
 * The event-ruler cases of the central registry (test/ground-truth/rule-cases.ts): the forwarder's
 * pattern, and the workload rule's pattern (any tag, and a prefix filter), against the given events
 * of the registry account, the same events from the workload account and from a third account,
 * and FORWARDER_EVENTS; each with our evaluator's verdict.
 */
export function centralRuleCases(events: { [name: string]: Event }): RuleCase[] {
  const patterns: { [name: string]: { [key: string]: unknown } } = {
    'central forwarder': synthesizeForwarder().eventPattern,
    'central workload (any tag)': synthesizeCentralContract().eventPattern,
    'central workload (prefix release-)': synthesizeCentralContract({ tagFilter: TagFilter.prefix('release-') }).eventPattern,
  };
  const all: { [name: string]: Event } = {};
  for (const [name, event] of Object.entries(events)) {
    all[`${name} (registry account)`] = event;
    all[`${name} (workload account)`] = { ...event, account: WORKLOAD_ACCOUNT };
    all[`${name} (a third account)`] = { ...event, account: '555566667777' };
  }
  for (const [name, event] of FORWARDER_EVENTS) all[`forwarder table: ${name}`] = event;
  all['push of release-1'] = imageAction({ tag: 'release-1' });
  const cases: RuleCase[] = [];
  for (const [patternName, pattern] of Object.entries(patterns)) {
    for (const [eventName, event] of Object.entries(all)) {
      cases.push({ name: `${patternName}: ${eventName}`, pattern, event, expected: matchesPattern(pattern, event) });
    }
  }
  return cases;
}
