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
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
export const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const HELM_CONFIG = 'application/vnd.cncf.helm.config.v1+json';
export const BUILDKIT_CACHE_CONFIG = 'application/vnd.buildkit.cacheconfig.v0';
export const SOCI_INDEX = 'application/vnd.amazon.soci.index.v1+json';
/** A cosign tag for DIGEST (sigstore/cosign's default scheme: the digest with ':' replaced by '-'). */
export const COSIGN_TAG = DIGEST.replace(':', '-');

function envelope(detailType: string, detail: { [key: string]: Json }, resources: string[] = [], time = '2026-11-16T01:54:34Z'): Event {
  return {
    'version': '0',
    'id': '13cde686-328b-6117-af20-0e5566167482',
    'detail-type': detailType,
    'source': 'aws.ecr',
    'account': CONTRACT_ENV.account,
    time,
    'region': CONTRACT_ENV.region,
    resources,
    detail,
  };
}

/**
 * An `ECR Image Action` event, with the media types of its EventBridge schema (aws.ecr@ECRImageAction:
 * `manifest-media-type`, `artifact-media-type`, the config's media type for an image). An index gets
 * no artifact media type unless one is given; `artifactMediaType: null` leaves the field out.
 */
export function imageAction(detail: {
  tag: string;
  digest?: string;
  action?: string;
  result?: string;
  repository?: string;
  mediaType?: string;
  artifactMediaType?: string | null;
  time?: string;
}): Event {
  const mediaType = detail.mediaType ?? OCI_MANIFEST;
  const isIndex = mediaType === OCI_INDEX || mediaType === DOCKER_LIST;
  const config = mediaType === DOCKER_MANIFEST ? DOCKER_CONFIG : OCI_CONFIG;
  const artifact = detail.artifactMediaType === undefined ? (isIndex ? null : config) : detail.artifactMediaType;
  return envelope('ECR Image Action', {
    'result': detail.result ?? 'SUCCESS',
    'repository-name': detail.repository ?? CONTRACT_REPOSITORY,
    'image-digest': detail.digest ?? DIGEST,
    'action-type': detail.action ?? 'PUSH',
    'image-tag': detail.tag,
    'manifest-media-type': mediaType,
    ...(artifact === null ? {} : { 'artifact-media-type': artifact }),
  }, [], detail.time);
}

/** The documented push sample (ECR user guide): no media types at all. */
export function documentedPush(tag: string): Event {
  return envelope('ECR Image Action', {
    'result': 'SUCCESS',
    'repository-name': CONTRACT_REPOSITORY,
    'image-digest': DIGEST,
    'action-type': 'PUSH',
    'image-tag': tag,
  });
}

/** Tagged artifacts that are not container images, as they land in ECR. */
export const ARTIFACT_PUSHES: { [name: string]: Event } = {
  'cosign signature (sha256-<hex>.sig, image config)': imageAction({ tag: `${COSIGN_TAG}.sig` }),
  'cosign attestation (sha256-<hex>.att, image config)': imageAction({ tag: `${COSIGN_TAG}.att` }),
  'cosign SBOM (sha256-<hex>.sbom, image config)': imageAction({ tag: `${COSIGN_TAG}.sbom` }),
  'Helm chart 1.2.0': imageAction({ tag: '1.2.0', artifactMediaType: HELM_CONFIG }),
  'BuildKit registry cache (buildcache)': imageAction({ tag: 'buildcache', artifactMediaType: BUILDKIT_CACHE_CONFIG }),
  'SOCI index tagged v1-soci': imageAction({ tag: 'v1-soci', artifactMediaType: SOCI_INDEX }),
};

/** The events of one `docker buildx build --platform linux/amd64,linux/arm64 --push -t REPO:TAG`. */
export function multiArchPush(tag: string): Event[] {
  return [
    imageAction({ tag: '', digest: CHILD_AMD64 }),
    imageAction({ tag: '', digest: CHILD_ARM64 }),
    imageAction({ tag, digest: DIGEST, mediaType: OCI_INDEX }),
  ];
}

/** An `ECR Replication Action` event as the destination receives it (ECR user guide; schema aws.ecr@ECRReplicationAction). */
export function replication(detail: { tag: string; digest?: string; result?: string; time?: string }): Event {
  return envelope('ECR Replication Action', {
    'result': detail.result ?? 'SUCCESS',
    'repository-name': CONTRACT_REPOSITORY,
    'image-digest': detail.digest ?? DIGEST,
    'action-type': 'REPLICATE',
    'image-tag': detail.tag,
    'source-account': '210987654321',
    'source-region': 'us-east-1',
  }, [`arn:aws:ecr:${CONTRACT_ENV.region}:${CONTRACT_ENV.account}:repository/${CONTRACT_REPOSITORY}`], detail.time);
}

export const replicationAction: Event = replication({ tag: 'v1' });

export const pullThroughCacheAction: Event = envelope('ECR Pull Through Cache Action', {
  'rule-version': '1',
  'sync-status': 'SUCCESS',
  'ecr-repository-prefix': 'team',
  'repository-name': CONTRACT_REPOSITORY,
  'upstream-registry-url': 'public.ecr.aws',
  'image-tag': 'v1',
  'image-digest': DIGEST,
}, [`arn:aws:ecr:${CONTRACT_ENV.region}:${CONTRACT_ENV.account}:repository/${CONTRACT_REPOSITORY}`]);
