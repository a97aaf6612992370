// The event-pattern cases RuleCheck.java gives to event-ruler, AWS's EventBridge matching engine:
// the contract stacks' synthesized rule patterns (test/contract/synthesized.ts, with the tag filters of
// test/contract/event-to-node.test.ts and a few more) against ECR events (test/contract/ecr-events.ts),
// each with the verdict of our own evaluator (test/contract/eventbridge.ts), which event-ruler must share.
//   ts-node --transpile-only test/ground-truth/rule-cases.ts <cases.json>
import * as fs from 'fs';
import { TagFilter } from '../../src';
import { centralRuleCases } from '../contract/central';
import { ARTIFACT_PUSHES, COSIGN_TAG, DOCKER_LIST, DOCKER_MANIFEST, documentedPush, imageAction, multiArchPush, pullThroughCacheAction, replication, replicationAction, Event } from '../contract/ecr-events';
import { matchesPattern } from '../contract/eventbridge';
import { CONTRACT_REPOSITORY, ContractProps, synthesizeContract } from '../contract/synthesized';

/** The tag filters of the contract tests, and filters with several exact tags and prefixes. */
const FILTERS: { [name: string]: ContractProps } = {
  'any': {},
  'exact': { tagFilter: TagFilter.exact('latest', 'stable') },
  'prefix': { tagFilter: TagFilter.prefix('release-') },
  'mixed': { tagFilter: TagFilter.anyOf(TagFilter.exact('stable'), TagFilter.prefix('v')) },
  'one-exact': { tagFilter: TagFilter.exact('v1') },
  'prefixes': { tagFilter: TagFilter.prefix('release-', 'rc-', 'v') },
  'many': { tagFilter: TagFilter.anyOf(TagFilter.exact('latest', 'stable', 'v1'), TagFilter.prefix('release-', 'rc-')) },
  'except': { tagFilter: TagFilter.anyTagExcept('buildcache', '*-cache', 'tmp-*-x') },
  'sha-prefix': { tagFilter: TagFilter.prefix('sha256-') },
};

function without(event: Event, field: string): Event {
  const detail = { ...(event.detail as { [key: string]: any }) };
  delete detail[field];
  return { ...event, detail };
}

function withDetail(event: Event, changes: { [key: string]: any }): Event {
  return { ...event, detail: { ...(event.detail as { [key: string]: any }), ...changes } };
}

const [childAmd64, childArm64, index] = multiArchPush('stable');

/** The events of the contract table (event-to-node.test.ts), then tags and shapes around its edges. */
const EVENTS: { [name: string]: Event } = {
  'push of v1': imageAction({ tag: 'v1' }),
  'push of latest': imageAction({ tag: 'latest' }),
  'push of release-2026.11': imageAction({ tag: 'release-2026.11' }),
  'push of release- (the prefix itself)': imageAction({ tag: 'release-' }),
  'push of Latest (tags are case-sensitive)': imageAction({ tag: 'Latest' }),
  'push of latest-rc (an exact tag is not a prefix)': imageAction({ tag: 'latest-rc' }),
  'multi-arch push: the index, tagged stable': index,
  'multi-arch push: the amd64 child, "image-tag": ""': childAmd64,
  'multi-arch push: the arm64 child, "image-tag": ""': childArm64,
  'push without an image-tag field': without(imageAction({ tag: 'v1' }), 'image-tag'),
  'push without a repository-name field': without(imageAction({ tag: 'v1' }), 'repository-name'),
  'DELETE of latest': imageAction({ tag: 'latest', action: 'DELETE' }),
  'UPDATE_STORAGE_CLASS of latest': imageAction({ tag: 'latest', action: 'UPDATE_STORAGE_CLASS' }),
  'FAILURE of a push of latest': imageAction({ tag: 'latest', result: 'FAILURE' }),
  'push to another repository': imageAction({ tag: 'latest', repository: 'team/other' }),
  'push to a repository whose name starts with ours': imageAction({ tag: 'latest', repository: `${CONTRACT_REPOSITORY}-canary` }),
  'push event from another source': { ...imageAction({ tag: 'latest' }), source: 'custom.ecr' },
  'ECR Replication Action of v1': replicationAction,
  'ECR Replication Action of release-7': replication({ tag: 'release-7' }),
  'FAILED replication of v1': replication({ tag: 'v1', result: 'FAILED' }),
  'replication of a cosign signature': replication({ tag: `${COSIGN_TAG}.sig` }),
  'replication of an untagged manifest': replication({ tag: '' }),
  'replication event as Image Action with REPLICATE': { ...replicationAction, 'detail-type': 'ECR Image Action' },
  'the documented push sample, without media types': documentedPush('v1'),
  'push of a Docker v2 image tagged latest': imageAction({ tag: 'latest', mediaType: DOCKER_MANIFEST }),
  'push of a Docker manifest list tagged stable': imageAction({ tag: 'stable', mediaType: DOCKER_LIST }),
  'push of an index with an artifact media type': imageAction({ tag: 'stable', mediaType: 'application/vnd.oci.image.index.v1+json', artifactMediaType: 'application/vnd.oci.image.config.v1+json' }),
  'push of v1 with an empty artifact media type': imageAction({ tag: 'v1', artifactMediaType: '' }),
  'push of a tag that only looks like cosign\'s': imageAction({ tag: 'sha256-x' }),
  'push of a tag ending in .sig': imageAction({ tag: 'v1.sig' }),
  'push of buildcache': imageAction({ tag: 'buildcache' }),
  'push of layer-cache': imageAction({ tag: 'layer-cache' }),
  'push of cache (the wildcard needs a dash)': imageAction({ tag: 'cache' }),
  'push of tmp-1-x': imageAction({ tag: 'tmp-1-x' }),
  'push of tmp--x': imageAction({ tag: 'tmp--x' }),
  'push of v1 at a later time (out of order)': imageAction({ tag: 'v1', time: '2026-11-16T01:54:40Z' }),
  ...Object.fromEntries(Object.entries(ARTIFACT_PUSHES).map(([name, event]) => [`artifact: ${name}`, event])),
  'ECR Pull Through Cache Action of v1': pullThroughCacheAction,
  // Around the edges.
  'push of release (the prefix without its dash)': imageAction({ tag: 'release' }),
  'push of rc-1': imageAction({ tag: 'rc-1' }),
  'push of v': imageAction({ tag: 'v' }),
  'push of V1 (prefixes are case-sensitive)': imageAction({ tag: 'V1' }),
  'push of stable (an exact tag)': imageAction({ tag: 'stable' }),
  'push of a tag of 128 characters': imageAction({ tag: `v${'1'.repeat(127)}` }),
  'push of a tag with a space': imageAction({ tag: 'v 1' }),
  'push of a non-ASCII tag': imageAction({ tag: 'vé' }),
  'push of a tag with a quote': imageAction({ tag: "v1'; touch /tmp/pwned; '" }),
  'push of a tag with a line break': imageAction({ tag: 'v1\ntouch /tmp/pwned' }),
  'push of the tag "anything-but"': imageAction({ tag: 'anything-but' }),
  'push of the tag "prefix"': imageAction({ tag: 'prefix' }),
  'image-tag is a list with one tag': withDetail(imageAction({ tag: 'v1' }), { 'image-tag': ['v1'] }),
  'image-tag is a list with a tag and ""': withDetail(imageAction({ tag: 'v1' }), { 'image-tag': ['', 'release-1'] }),
  'detail-type in lower case': { ...imageAction({ tag: 'latest' }), 'detail-type': 'ecr image action' },
  'action-type in lower case': imageAction({ tag: 'latest', action: 'push' }),
  'repository name in upper case': imageAction({ tag: 'latest', repository: CONTRACT_REPOSITORY.toUpperCase() }),
  'push with extra detail fields': withDetail(imageAction({ tag: 'latest' }), { 'extra': { nested: ['x'] }, 'image-tags': 'v1' }),
};

function main(): void {
  const out = process.argv[2];
  if (!out) throw new Error('usage: rule-cases.ts <cases.json>');
  const cases = [];
  for (const [filter, props] of Object.entries(FILTERS)) {
    const pattern = synthesizeContract(props).eventPattern;
    for (const [event, body] of Object.entries(EVENTS)) {
      cases.push({ name: `${filter}: ${event}`, pattern, event: body, expected: matchesPattern(pattern, body) });
    }
  }
  const central = centralRuleCases(EVENTS);
  cases.push(...central);
  fs.writeFileSync(out, JSON.stringify(cases, undefined, 1));
  console.log(`${cases.length} cases (${Object.keys(FILTERS).length} synthesized patterns x ${Object.keys(EVENTS).length} events; central registry: ${central.length}) in ${out}`);
}

main();
