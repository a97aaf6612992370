// The central-registry contract, offline: ECR events of the registry account run through the
// SYNTHESIZED forwarder rule (registry account), arrive unchanged on the workload account's default
// bus, run through the SYNTHESIZED workload rule, its input transformer, the push rollout's
// SendCommand task and the document (test/node/ssm-render.js): the node is told to pull from the
// registry account's ECR host. event-ruler judges the same patterns (scripts/ground-truth.sh);
// test/contract/node-chain.sh runs the chain to a real containerd.
import { forwarded, FORWARDER_EVENTS, REGISTRY_ACCOUNT, synthesizeCentralContract, synthesizeForwarder, WORKLOAD_ACCOUNT } from './central';
import { imageAction, DIGEST, Event } from './ecr-events';
import { matchesPattern, transformInput } from './eventbridge';
import { CONTRACT_ENV, CONTRACT_REPOSITORY, resolveRefs, sendCommandRequest } from './synthesized';
import { TagFilter } from '../../src';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const ssm: { render: (doc: unknown, params: unknown) => string } = require('../node/ssm-render.js');

const forwarder = synthesizeForwarder();
const workload = synthesizeCentralContract();

/** Through both accounts: does the workload rule see and match the event? */
function reachesRollout(event: Event, contract = workload): boolean {
  if (!matchesPattern(forwarder.eventPattern, event)) return false;
  const delivered = forwarded(forwarder, event);
  return delivered !== undefined && matchesPattern(contract.eventPattern, delivered);
}

describe('which events of the registry account reach the workload account\'s rollout', () => {
  test.each(FORWARDER_EVENTS)('%s', (_name, event, forwards, starts) => {
    expect({ forwarded: matchesPattern(forwarder.eventPattern, event), rollout: reachesRollout(event) })
      .toEqual({ forwarded: forwards, rollout: starts });
  });

  test('the forwarder targets the workload account\'s default bus in the same region, nothing else', () => {
    expect(forwarder.targetArns).toEqual([`arn:aws:events:${CONTRACT_ENV.region}:${WORKLOAD_ACCOUNT}:event-bus/default`]);
    expect(forwarded(synthesizeForwarder(['444455556666']), imageAction({ tag: 'v1' }))).toBeUndefined();
  });

  test('a push of a same-named repository in the workload account itself does not start the central prefetcher', () => {
    const local = { ...imageAction({ tag: 'v1' }), account: WORKLOAD_ACCOUNT };
    expect(matchesPattern(workload.eventPattern, local)).toBe(false);
  });

  test('tag filters still apply to forwarded events', () => {
    const release = synthesizeCentralContract({ tagFilter: TagFilter.prefix('release-') });
    expect(reachesRollout(imageAction({ tag: 'release-1' }), release)).toBe(true);
    expect(reachesRollout(imageAction({ tag: 'dev-1' }), release)).toBe(false);
  });
});

describe('what the rollout hands SSM for a forwarded push', () => {
  test('the registry account\'s repository, the pushed tag and digest, as valid document parameters', () => {
    const event = forwarded(forwarder, imageAction({ tag: 'stable' }))!;
    const params = sendCommandRequest(workload, transformInput(workload.inputTransformer, event)).Parameters;
    expect(params).toMatchObject({
      accountId: [REGISTRY_ACCOUNT],
      region: [CONTRACT_ENV.region],
      repositoryName: [CONTRACT_REPOSITORY],
      imageTags: ['stable'],
      imageDigest: [DIGEST],
    });
    const script = ssm.render(workload.document, params);
    // The node script pulls from ACCOUNT.dkr.ecr.REGION.amazonaws.com: the registry account's host.
    expect(script).toContain(`\nPREFETCH_ACCOUNT_ID='${REGISTRY_ACCOUNT}'\n`);
    expect(script).toContain(`\nPREFETCH_REPOSITORY='${CONTRACT_REPOSITORY}'\n`);
  });

  test('joining nodes look up the registry account\'s repository (the association\'s accountId)', () => {
    expect(workload.associationParameters.accountId).toEqual([REGISTRY_ACCOUNT]);
    // CloudFormation resolves the newest-image table's Ref to its name before SSM sees it.
    const resolved = resolveRefs(workload.associationParameters, 'Workload-NewestImagesTable-1A2B');
    expect(() => ssm.render(workload.document, resolved)).not.toThrow();
  });
});
