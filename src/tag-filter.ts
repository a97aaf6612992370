import { fail, isUnresolved, OCI_TAG } from './validation';

/** The SSM document's imageTags and tagPrefixes parameters hold at most 20 entries. */
const MAX_ENTRIES = 20;

/**
 * Which pushed tags are prefetched.
 *
 * Pushes without a tag (the child manifests of a multi-arch push, attestations,
 * signatures, SOCI indexes) are never prefetched, whatever the filter.
 */
export class TagFilter {
  /**
   * Any pushed tag.
   */
  public static anyTag(): TagFilter {
    return new TagFilter([], []);
  }

  /**
   * Only these exact tags, for example `latest` or `stable`.
   *
   * @param tags the tags (1 to 20), each a valid OCI tag
   */
  public static exact(...tags: string[]): TagFilter {
    if (tags.length === 0) fail('tagFilter', 'TagFilter.exact() needs at least one tag', tags);
    return new TagFilter(tags, []);
  }

  /**
   * Tags that start with one of these prefixes, for example `release-`.
   *
   * @param prefixes the prefixes (1 to 20), each the start of a valid OCI tag
   */
  public static prefix(...prefixes: string[]): TagFilter {
    if (prefixes.length === 0) fail('tagFilter', 'TagFilter.prefix() needs at least one prefix', prefixes);
    return new TagFilter([], prefixes);
  }

  /**
   * Tags that any of the filters accepts.
   *
   * @param filters the filters to combine
   */
  public static anyOf(...filters: TagFilter[]): TagFilter {
    if (filters.length === 0) fail('tagFilter', 'TagFilter.anyOf() needs at least one filter', filters);
    if (filters.some(f => f.isAnyTag)) return TagFilter.anyTag();
    return new TagFilter(filters.flatMap(f => f.exactTags), filters.flatMap(f => f.prefixes));
  }

  /** The exact tags accepted (empty when only prefixes, or any tag, are accepted). */
  public readonly exactTags: string[];

  /** The tag prefixes accepted. */
  public readonly prefixes: string[];

  private constructor(exactTags: string[], prefixes: string[]) {
    this.exactTags = Array.from(new Set(exactTags));
    this.prefixes = Array.from(new Set(prefixes));
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
      // ECR sends "image-tag": "" for untagged manifests: accept any tag but that.
      return [{ 'anything-but': [''] }];
    }
    return [...this.exactTags, ...this.prefixes.map(prefix => ({ prefix }))];
  }
}
