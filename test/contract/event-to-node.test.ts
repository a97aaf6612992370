// The event-to-node contract, offline: ECR events run through the synthesized rule's event
// pattern and input transformer, then the push rollout's SendCommand task (Step Functions), and
// the request's parameters are handed to the synthesized SSM document the way SSM does (test/node/ssm-render.js: known names, one string each, defaults, allowedPattern).
// test/contract/node-chain.sh runs the same chain on a real containerd.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ARTIFACT_PUSHES, COSIGN_TAG, DOCKER_LIST, DOCKER_MANIFEST, documentedPush, imageAction, multiArchPush, pullThroughCacheAction, replication, replicationAction, DIGEST, Event } from './ecr-events';
import { matchesPattern, transformInput } from './eventbridge';
import { CONTRACT_ENV, CONTRACT_REPOSITORY, Contract, ContractProps, resolveRefs, sendCommandRequest, synthesizeContract } from './synthesized';
import { TagFilter, Threshold } from '../../src';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const ssm: { render: (doc: unknown, params: unknown) => string } = require('../node/ssm-render.js');

const FILTERS: { [name: string]: ContractProps } = {
  any: {},
  exact: { tagFilter: TagFilter.exact('latest', 'stable') },
  prefix: { tagFilter: TagFilter.prefix('release-') },
  mixed: { tagFilter: TagFilter.anyOf(TagFilter.exact('stable'), TagFilter.prefix('v')) },
};
const contracts: { [name: string]: Contract } = {};
beforeAll(() => {
  for (const [name, props] of Object.entries(FILTERS)) contracts[name] = synthesizeContract(props);
});

function without(event: Event, field: string): Event {
  const detail = { ...(event.detail as { [key: string]: any }) };
  delete detail[field];
  return { ...event, detail };
}

const [childAmd64, childArm64, index] = multiArchPush('stable');

describe('which ECR events the synthesized rule matches', () => {
  // [event, any tag, exact latest|stable, prefix release-, exact stable or prefix v]
  test.each<[string, Event, boolean, boolean, boolean, boolean]>([
    ['push of v1', imageAction({ tag: 'v1' }), true, false, false, true],
    ['push of latest', imageAction({ tag: 'latest' }), true, true, false, false],
    ['push of release-2026.11', imageAction({ tag: 'release-2026.11' }), true, false, true, false],
    ['push of release- (the prefix itself)', imageAction({ tag: 'release-' }), true, false, true, false],
    ['push of Latest (tags are case-sensitive)', imageAction({ tag: 'Latest' }), true, false, false, false],
    ['push of latest-rc (an exact tag is not a prefix)', imageAction({ tag: 'latest-rc' }), true, false, false, false],
    ['multi-arch push: the index, tagged stable', index, true, true, false, true],
    ['multi-arch push: the amd64 child, "image-tag": ""', childAmd64, false, false, false, false],
    ['multi-arch push: the arm64 child, "image-tag": ""', childArm64, false, false, false, false],
    ['push without an image-tag field', without(imageAction({ tag: 'v1' }), 'image-tag'), false, false, false, false],
    ['push without a repository-name field', without(imageAction({ tag: 'v1' }), 'repository-name'), false, false, false, false],
    ['DELETE of latest', imageAction({ tag: 'latest', action: 'DELETE' }), false, false, false, false],
    ['UPDATE_STORAGE_CLASS of latest', imageAction({ tag: 'latest', action: 'UPDATE_STORAGE_CLASS' }), false, false, false, false],
    ['FAILURE of a push of latest', imageAction({ tag: 'latest', result: 'FAILURE' }), false, false, false, false],
    ['push to another repository', imageAction({ tag: 'latest', repository: 'team/other' }), false, false, false, false],
    ['push to a repository whose name starts with ours', imageAction({ tag: 'latest', repository: `${CONTRACT_REPOSITORY}-canary` }), false, false, false, false],
    ['push event from another source', { ...imageAction({ tag: 'latest' }), source: 'custom.ecr' }, false, false, false, false],
    ['ECR Replication Action of v1 (a replica is warmed on arrival)', replicationAction, true, false, false, true],
    ['ECR Replication Action of release-7', replication({ tag: 'release-7' }), true, false, true, false],
    ['FAILED replication of v1', replication({ tag: 'v1', result: 'FAILED' }), false, false, false, false],
    ['replication of a cosign signature', replication({ tag: `${COSIGN_TAG}.sig` }), false, false, false, false],
    ['replication of an untagged manifest', replication({ tag: '' }), false, false, false, false],
    ['the documented push sample, without media types', documentedPush('v1'), true, false, false, true],
    ['push of a Docker v2 image tagged latest', imageAction({ tag: 'latest', mediaType: DOCKER_MANIFEST }), true, true, false, false],
    ['push of a Docker manifest list tagged stable', imageAction({ tag: 'stable', mediaType: DOCKER_LIST }), true, true, false, true],
    ['push of an index with an artifact media type', imageAction({ tag: 'stable', mediaType: 'application/vnd.oci.image.index.v1+json', artifactMediaType: 'application/vnd.oci.image.config.v1+json' }), true, true, false, true],
    ['push of v1 with an empty artifact media type', imageAction({ tag: 'v1', artifactMediaType: '' }), true, false, false, true],
    ...Object.entries(ARTIFACT_PUSHES).map(([name, event]): [string, Event, boolean, boolean, boolean, boolean] => [`artifact: ${name}`, event, false, false, false, false]),
    ['push of a tag that only looks like cosign\'s (sha256-x, no suffix)', imageAction({ tag: 'sha256-x' }), true, false, false, false],
    ['ECR Pull Through Cache Action of v1', pullThroughCacheAction, false, false, false, false],
  ])('%s', (_, event, any, exact, prefix, mixed) => {
    expect({
      any: matchesPattern(contracts.any.eventPattern, event),
      exact: matchesPattern(contracts.exact.eventPattern, event),
      prefix: matchesPattern(contracts.prefix.eventPattern, event),
      mixed: matchesPattern(contracts.mixed.eventPattern, event),
    }).toEqual({ any, exact, prefix, mixed });
  });

  test('a multi-arch push runs the command once, for the index', () => {
    const matched = multiArchPush('stable').filter(e => matchesPattern(contracts.any.eventPattern, e));
    expect(matched.map(e => (e.detail as any)['image-digest'])).toEqual([DIGEST]);
  });
});

describe('what the rollout hands SSM for a matching event', () => {
  test.each(Object.keys(FILTERS).filter(f => f !== 'prefix'))('tag filter %s: the pushed tag and digest, as valid document parameters', (filter) => {
    const contract = contracts[filter];
    const event = filter === 'exact' ? imageAction({ tag: 'stable' }) : index;
    expect(matchesPattern(contract.eventPattern, event)).toBe(true);

    const request = sendCommandRequest(contract, transformInput(contract.inputTransformer, event));
    const params = request.Parameters;

    expect(params).toEqual({
      accountId: [CONTRACT_ENV.account],
      region: [CONTRACT_ENV.region],
      repositoryName: [CONTRACT_REPOSITORY],
      imageTags: ['stable'],
      imageDigest: [DIGEST],
      eventTime: ['2026-11-16T01:54:34Z'],
      jitterSeconds: ['0'],
      maxDiskUsagePercent: ['80'],
      pinImages: ['false'],
      maxAttempts: ['5'],
      executionTimeout: ['3600'],
    });
    // Every name is a parameter of the document; SSM accepts the values (allowedPattern).
    const script = ssm.render(contract.document, params);
    expect(script).toContain("\nPREFETCH_IMAGE_TAGS='stable'\n");
    expect(script).toContain(`\nPREFETCH_IMAGE_DIGEST='${DIGEST}'\n`);
    expect(script).toContain(`\nPREFETCH_REPOSITORY='${CONTRACT_REPOSITORY}'\n`);
    for (const name of Object.keys(contract.document.parameters)) {
      expect(script).not.toMatch(new RegExp(`\\{\\{\\s*${name}\\s*\\}\\}`));
    }
  });

  // SSM's CreateDocument refuses a document that references an undeclared parameter
  // (InvalidDocumentContent: Parameter "x" is not declared), whatever the text around it: a
  // `{{ x }}` in a comment of the script fails the deployment, not a test on this machine.
  test('every {{ }} reference in the document is a declared parameter', () => {
    const text = JSON.stringify(contracts.any.document.mainSteps);
    const references = Array.from(text.matchAll(/\{\{\s*([^}]*?)\s*\}\}/g), m => m[1]);
    const undeclared = references.filter(name => !(name in contracts.any.document.parameters) && !name.startsWith('ssm:'));
    expect(undeclared).toEqual([]);
  });

  test('the rule starts the rollout, which sends the stack\'s document to the nodes the association targets, with the same rollout settings', () => {
    const contract = contracts.any;
    expect(contract.targetArn).toEqual({ Ref: contract.stateMachineLogicalId });
    const request = sendCommandRequest(contract, transformInput(contract.inputTransformer, index));
    expect(request.DocumentName).toBe(`\${${contract.documentLogicalId}}`);
    expect(request.Targets).toEqual([{ Key: 'tag:kubernetes.io/cluster/prod', Values: ['owned'] }]);
    expect(contract.associationTargets).toEqual(request.Targets);
    expect([request.MaxConcurrency, request.MaxErrors]).toEqual([contract.associationMaxConcurrency, contract.associationMaxErrors]);
    expect([request.MaxConcurrency, request.MaxErrors, request.TimeoutSeconds]).toEqual(['100%', '100%', 3600]);
    // The console lists commands by comment: SSM allows 100 characters.
    expect(request.Comment).toBe(`cdk-image-prefetcher ${DIGEST}`);
    expect(request.Comment.length).toBeLessThanOrEqual(100);
  });

  test('custom rollout settings reach SendCommand', () => {
    const contract = synthesizeContract({ maxConcurrency: Threshold.count(25), maxErrors: Threshold.percentage(5) });
    const request = sendCommandRequest(contract, transformInput(contract.inputTransformer, index));
    expect([request.MaxConcurrency, request.MaxErrors]).toEqual(['25', '5%']);
  });

  test.each(Object.keys(FILTERS))('tag filter %s: the association\'s parameters are valid document parameters', (filter) => {
    const contract = contracts[filter];
    // CloudFormation resolves the record table's Ref to its name before SSM sees it.
    const resolved = resolveRefs(contract.associationParameters, 'Stack-ImagePrefetcherNewestImagesTable-1A2B3C');
    expect(() => ssm.render(contract.document, resolved)).not.toThrow();
    const script = ssm.render(contract.document, resolved);
    expect(script).toContain(['exact', 'mixed'].includes(filter) ? "\nPREFETCH_RECORD_TABLE=''\n" : "\nPREFETCH_RECORD_TABLE='Stack-ImagePrefetcherNewestImagesTable-1A2B3C'\n");
  });
});

describe('a hostile tag or digest cannot break out', () => {
  // ECR refuses such tags, so EventBridge never delivers them; the document must refuse them anyway.
  const HOSTILE_TAGS = [
    "v1'; touch /tmp/pwned; '",
    'v1$(touch /tmp/pwned)',
    'v1`touch /tmp/pwned`',
    'v1\ntouch /tmp/pwned',
    'v1 --insecure',
    '-v1',
    '../../etc/passwd',
    'a"],"jitterSeconds":["3600',
    '{{ jitterSeconds }}',
    'a'.repeat(129),
    'v1,v2',
  ];

  test.each(HOSTILE_TAGS)('tag %j: matched by the any-tag rule, delivered intact, refused by the document', (tag) => {
    const contract = contracts.any;
    const event = imageAction({ tag });
    expect(matchesPattern(contract.eventPattern, event)).toBe(true);

    const params = sendCommandRequest(contract, transformInput(contract.inputTransformer, event)).Parameters;

    // The value arrives as one JSON string: no other parameter was added or changed.
    expect(params.imageTags).toEqual([tag]);
    expect(Object.keys(params).sort()).toEqual(Object.keys(JSON.parse(transformInput(contract.inputTransformer, imageAction({ tag: 'v1' })))).sort());
    expect(params.jitterSeconds).toEqual(['0']);
    // 'v1,v2' is a valid tag list, but not with a digest: the script refuses that combination.
    if (tag === 'v1,v2') {
      expect(() => ssm.render(contract.document, params)).not.toThrow();
      expect(runScript(ssm.render(contract.document, params))).toMatchObject({ status: 2, stderr: expect.stringContaining('imageDigest requires exactly one tag') });
    } else {
      expect(() => ssm.render(contract.document, params)).toThrow(/parameter "imageTags" value .* does not match allowedPattern/);
    }
  });

  test.each([
    'sha256:abc; touch /tmp/pwned',
    `sha256:${'A'.repeat(64)}`,
    `sha512:${'a'.repeat(128)}`,
    `${DIGEST}\n`,
  ])('digest %j: refused by the document', (digest) => {
    const params = sendCommandRequest(contracts.any, transformInput(contracts.any.inputTransformer, imageAction({ tag: 'v1', digest }))).Parameters;
    expect(params.imageDigest).toEqual([digest]);
    expect(() => ssm.render(contracts.any.document, params)).toThrow(/parameter "imageDigest" value .* does not match allowedPattern/);
  });

  // SSM's regular-expression dialect is not documented. In Java's (and PCRE's), `$` also matches
  // before a final line break, so `^...$` would accept "v1\n". The single-quoted assignment keeps
  // it inert, and the script validates again with bash's POSIX regex, where `$` is the end only.
  test.each(['v1\n', `${DIGEST}\n`])('%j, if SSM let a trailing newline through: the script refuses it', (value) => {
    const contract = contracts.any;
    const name = value.startsWith('sha256:') ? 'imageDigest' : 'imageTags';
    const javaLike = new RegExp(contract.document.parameters[name].allowedPattern!.replace('(?![\\s\\S])', '\\n?$'));
    expect(javaLike.test(value)).toBe(true);

    const params = { ...JSON.parse(transformInput(contract.inputTransformer, imageAction({ tag: 'v1' }))), [name]: [value] };
    const parameters = { ...contract.document.parameters, [name]: { ...contract.document.parameters[name], allowedPattern: javaLike.source } };
    const lenient = { ...contract.document, parameters };
    const result = runScript(ssm.render(lenient, params));

    expect(result.status).toBe(2);
    expect(result.stderr).toContain(`${name} is invalid`);
  });
});

/** Runs a rendered script the way SSM does (bash, the file), with its private dir in a temp dir. */
function runScript(script: string): { status: number | null; stdout: string; stderr: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'contract-'));
  try {
    const file = path.join(dir, 'run-command.sh');
    fs.writeFileSync(file, script, { mode: 0o700 });
    const result = spawnSync('bash', [file], {
      encoding: 'utf8',
      env: { PATH: '/usr/bin:/bin', PREFETCH_RUN_DIR: path.join(dir, 'run'), CONTAINERD_ADDRESS: path.join(dir, 'no.sock') },
      timeout: 20_000,
    });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
