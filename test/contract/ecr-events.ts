// ECR events as EventBridge delivers them to the default bus of the repository's account and
// region. Image Action events follow the ECR user guide's samples; a multi-arch push sends one
// event per manifest (the index with its tag, each platform manifest with "image-tag": "").
// Replication and pull-through-cache events carry the fields of their EventBridge schemas
// (aws.ecr@ECRReplicationAction, aws.ecr@ECRPullThroughCacheAction).
import { Json } from './eventbridge';
import { CONTRACT_ENV, CONTRACT_REPOSITORY } from './synthesized';

export type Event = { [key: string]: Json };

export const DIGEST = `sha256:${'7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234'.padEnd(64, '0')}`;
const CHILD_AMD64 = `sha256:${'a'.repeat(64)}`;
const CHILD_ARM64 = `sha256:${'b'.repeat(64)}`;

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

function envelope(detailType: string, detail: { [key: string]: Json }, resources: string[] = []): Event {
  return {
    'version': '0',
    'id': '13cde686-328b-6117-af20-0e5566167482',
    'detail-type': detailType,
    'source': 'aws.ecr',
    'account': CONTRACT_ENV.account,
    'time': '2026-11-16T01:54:34Z',
    'region': CONTRACT_ENV.region,
    resources,
    detail,
  };
}

/** An `ECR Image Action` event. */
export function imageAction(detail: {
  tag: string;
  digest?: string;
  action?: string;
  result?: string;
  repository?: string;
  mediaType?: string;
}): Event {
  return envelope('ECR Image Action', {
    'result': detail.result ?? 'SUCCESS',
    'repository-name': detail.repository ?? CONTRACT_REPOSITORY,
    'image-digest': detail.digest ?? DIGEST,
    'action-type': detail.action ?? 'PUSH',
    'image-tag': detail.tag,
    'manifest-media-type': detail.mediaType ?? OCI_MANIFEST,
  });
}

/** The events of one `docker buildx build --platform linux/amd64,linux/arm64 --push -t REPO:TAG`. */
export function multiArchPush(tag: string): Event[] {
  return [
    imageAction({ tag: '', digest: CHILD_AMD64 }),
    imageAction({ tag: '', digest: CHILD_ARM64 }),
    imageAction({ tag, digest: DIGEST, mediaType: OCI_INDEX }),
  ];
}

export const replicationAction: Event = envelope('ECR Replication Action', {
  'result': 'SUCCESS',
  'repository-name': CONTRACT_REPOSITORY,
  'image-digest': DIGEST,
  'action-type': 'REPLICATE',
  'image-tag': 'v1',
  'source-account': '210987654321',
  'source-region': 'us-east-1',
}, [`arn:aws:ecr:${CONTRACT_ENV.region}:${CONTRACT_ENV.account}:repository/${CONTRACT_REPOSITORY}`]);

export const pullThroughCacheAction: Event = envelope('ECR Pull Through Cache Action', {
  'rule-version': '1',
  'sync-status': 'SUCCESS',
  'ecr-repository-prefix': 'team',
  'repository-name': CONTRACT_REPOSITORY,
  'upstream-registry-url': 'public.ecr.aws',
  'image-tag': 'v1',
  'image-digest': DIGEST,
}, [`arn:aws:ecr:${CONTRACT_ENV.region}:${CONTRACT_ENV.account}:repository/${CONTRACT_REPOSITORY}`]);
