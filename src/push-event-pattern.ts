import * as events from 'aws-cdk-lib/aws-events';
import { TagFilter } from './tag-filter';

/**
 * Media types of the manifests a rule must let through whatever their artifact media type: an index
 * (multi-arch image), whose platform manifests the node picks from (OCI image spec, image-index.md;
 * Docker manifest list v2 schema 2).
 */
const INDEX_MEDIA_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
];

/**
 * The artifact media types of container images: ECR reports the config's media type as the
 * artifact media type (ECR API, ImageDetail.artifactMediaType; OCI image spec, config.md; Docker
 * image manifest v2 schema 2). Helm charts (`application/vnd.cncf.helm.config.v1+json`), BuildKit
 * caches (`application/vnd.buildkit.cacheconfig.v0`), SOCI indexes and other OCI artifacts have
 * their own.
 */
const IMAGE_CONFIG_MEDIA_TYPES = [
  'application/vnd.oci.image.config.v1+json',
  'application/vnd.docker.container.image.v1+json',
];

/**
 * The event pattern of the pushes and replications of a repository that a prefetcher warms.
 *
 * - `ECR Image Action` PUSH and `ECR Replication Action` REPLICATE, SUCCESS only (ECR user guide,
 *   "Amazon ECR events and EventBridge"; a replica receives REPLICATE, no PUSH).
 * - The tag filter's pattern on `image-tag` (untagged manifests send `""`).
 * - Only images: an index, or an artifact media type that is an image config. An event without
 *   `artifact-media-type` passes (ECR's documented push sample and the replication event carry no
 *   media types); the node checks the manifest itself before it downloads a layer.
 *
 * @internal
 */
export function pushEventPattern(repositoryName: string, tagFilter: TagFilter, account?: string): events.EventPattern {
  return {
    source: ['aws.ecr'],
    detailType: ['ECR Image Action', 'ECR Replication Action'],
    ...(account ? { account: [account] } : {}),
    detail: {
      'action-type': ['PUSH', 'REPLICATE'],
      'result': ['SUCCESS'],
      'repository-name': [repositoryName],
      'image-tag': tagFilter._renderEventPattern(),
      '$or': [
        { 'manifest-media-type': INDEX_MEDIA_TYPES },
        { 'artifact-media-type': [{ exists: false }, '', ...IMAGE_CONFIG_MEDIA_TYPES] },
      ],
    },
  };
}
