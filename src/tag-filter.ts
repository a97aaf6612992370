import { fail, isUnresolved, OCI_TAG } from './validation';

/** The SSM document's imageTags and tagPrefixes parameters hold at most 20 entries. */
const MAX_ENTRIES = 20;

/**
 * The tags cosign's default scheme gives signatures, attestations and SBOMs: `sha256-<hex>.sig`,
 * `.att`, `.sbom` (sigstore/cosign, "Registry Details"; aws-facts.md, "What else lands in ECR with a
 * tag"). Their manifests have an ordinary image config, so only their tags tell them apart.
 */
const COSIGN_TAG_WILDCARDS = ['sha256-*.sig', 'sha256-*.att', 'sha256-*.sbom'];

/** An EventBridge wildcard over tags: tag characters and `*`, 1 to 128 characters. */
const TAG_WILDCARD = /^[a-zA-Z0-9._*-]{1,128}$/;

/**
 * Which pushed tags are prefetched.
 *
 * Pushes without a tag (the child manifests of a multi-arch push, attestations,
 * signatures, SOCI indexes) are never prefetched, whatever the filter. Neither are tagged
 * artifacts that are not container images: the rule drops those whose `artifact-media-type` is
 * not an image config (Helm charts, BuildKit caches) and, with `anyTag()`, cosign's signature,
 * attestation and SBOM tags (`sha256-<hex>.sig|.att|.sbom`); the node skips anything else that
 * is not a container image (`outcome=skipped-not-an-image`).
 */
export class TagFilter {
  /**
   * Any pushed tag but cosign's signature, attestation and SBOM tags.
   */
  public static anyTag(): TagFilter {
    return new TagFilter([], [], []);
  }

  /**
   * Any pushed tag but cosign's tags and those matching one of these wildcards, for example
   * `buildcache` or `*-cache` for registry caches pushed next to the images.
   *
   * @param wildcards 1 to 20 EventBridge wildcards over tags: tag characters and `*` (any run of characters)
   */
  public static anyTagExcept(...wildcards: string[]): TagFilter {
    if (wildcards.length === 0) fail('tagFilter', 'TagFilter.anyTagExcept() needs at least one wildcard', wildcards);
    return new TagFilter([], [], wildcards);
  }

  /**
   * Only these exact tags, for example `latest` or `stable`.
   *
   * @param tags the tags (1 to 20), each a valid OCI tag
   */
  public static exact(...tags: string[]): TagFilter {
    if (tags.length === 0) fail('tagFilter', 'TagFilter.exact() needs at least one tag', tags);
    return new TagFilter(tags, [], []);
  }

  /**
   * Tags that start with one of these prefixes, for example `release-`.
   *
   * @param prefixes the prefixes (1 to 20), each the start of a valid OCI tag
   */
  public static prefix(...prefixes: string[]): TagFilter {
    if (prefixes.length === 0) fail('tagFilter', 'TagFilter.prefix() needs at least one prefix', prefixes);
    return new TagFilter([], prefixes, []);
  }

  /**
   * Tags that any of the filters accepts.
   *
   * @param filters the filters to combine
   */
  public static anyOf(...filters: TagFilter[]): TagFilter {
    if (filters.length === 0) fail('tagFilter', 'TagFilter.anyOf() needs at least one filter', filters);
    const anyTags = filters.filter(f => f.isAnyTag);
    if (anyTags.length > 0) {
      // Any tag that any of them accepts: only the exclusions all of them share still apply.
      const shared = anyTags[0].excludedTags.filter(w => anyTags.every(f => f.excludedTags.includes(w)));
      return new TagFilter([], [], shared.filter(w => !COSIGN_TAG_WILDCARDS.includes(w)));
    }
    return new TagFilter(filters.flatMap(f => f.exactTags), filters.flatMap(f => f.prefixes), []);
  }

  /** The exact tags accepted (empty when only prefixes, or any tag, are accepted). */
  public readonly exactTags: string[];

  /** The tag prefixes accepted. */
  public readonly prefixes: string[];

  /**
   * With any tag: the wildcards of the tags that are not prefetched (cosign's, then the user's).
   * Empty for exact tags and prefixes.
   */
  public readonly excludedTags: string[];

  private constructor(exactTags: string[], prefixes: string[], excluded: string[]) {
    this.exactTags = Array.from(new Set(exactTags));
    this.prefixes = Array.from(new Set(prefixes));
    for (const wildcard of excluded) {
      if (!isUnresolved(wildcard) && (!TAG_WILDCARD.test(wildcard) || wildcard.includes('**'))) {
        fail('tagFilter', 'an excluded tag wildcard must be 1-128 characters of [a-zA-Z0-9._-] and * (no **)', wildcard);
      }
    }
    if (excluded.length > MAX_ENTRIES) {
      fail('tagFilter', `at most ${MAX_ENTRIES} excluded tag wildcards are supported`, excluded.length);
    }
    this.excludedTags = this.exactTags.length === 0 && this.prefixes.length === 0
      ? Array.from(new Set([...COSIGN_TAG_WILDCARDS, ...excluded])) : [];
    for (const tag of this.exactTags) {
      if (!isUnresolved(tag) && !OCI_TAG.test(tag)) {
        fail('tagFilter', 'a tag must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127} (OCI tag syntax)', tag);
      }
    }
    for (const prefix of this.prefixes) {
      if (!isUnresolved(prefix) && !OCI_TAG.test(prefix)) {
        fail('tagFilter', 'a tag prefix must be 1-128 characters of [a-zA-Z0-9._-] and start with a letter, digit or _', prefix);
      }
    }
    if (this.exactTags.length > MAX_ENTRIES) {
      fail('tagFilter', `at most ${MAX_ENTRIES} exact tags are supported`, this.exactTags.length);
    }
    if (this.prefixes.length > MAX_ENTRIES) {
      fail('tagFilter', `at most ${MAX_ENTRIES} tag prefixes are supported`, this.prefixes.length);
    }
  }

  /** True when every tagged push is accepted. */
  public get isAnyTag(): boolean {
    return this.exactTags.length === 0 && this.prefixes.length === 0;
  }

  /**
   * The EventBridge pattern for `detail.image-tag`.
   *
   * @internal
   */
  public _renderEventPattern(): any[] {
    if (this.isAnyTag) {
      // ECR sends "image-tag": "" for untagged manifests: any tag but that one and the excluded.
      // The wildcard "" matches only the empty tag. Anything-but with a list of wildcards: event-ruler
      // README, "Anything-but wildcard list"; EventBridge documents the single-wildcard form
      // (eb-create-pattern-operators.html) and runs event-ruler, which added lists (#143) before the
      // anything-but wildcard (#145) EventBridge documents. Not confirmed by AWS's docs: the integ
      // deploy (PutRule) and its push of a cosign-style tag check it in a real account.
      return [{ 'anything-but': { wildcard: ['', ...this.excludedTags] } }];
    }
    return [...this.exactTags, ...this.prefixes.map(prefix => ({ prefix }))];
  }
}
