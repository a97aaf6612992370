import { TagFilter } from '../src';

describe('TagFilter', () => {
  test('anyTag() accepts every tag but the empty tag of untagged pushes and cosign\'s tags', () => {
    expect(TagFilter.anyTag()._renderEventPattern()).toEqual([
      { 'anything-but': { wildcard: ['', 'sha256-*.sig', 'sha256-*.att', 'sha256-*.sbom'] } },
    ]);
    expect(TagFilter.anyTag().isAnyTag).toBe(true);
    expect(TagFilter.anyTag().excludedTags).toEqual(['sha256-*.sig', 'sha256-*.att', 'sha256-*.sbom']);
  });

  test('anyTagExcept() also excludes the given wildcards', () => {
    const filter = TagFilter.anyTagExcept('buildcache', '*-cache', 'buildcache');
    expect(filter.isAnyTag).toBe(true);
    expect(filter._renderEventPattern()).toEqual([
      { 'anything-but': { wildcard: ['', 'sha256-*.sig', 'sha256-*.att', 'sha256-*.sbom', 'buildcache', '*-cache'] } },
    ]);
  });

  test('exact tags and prefixes exclude nothing more (they never accept "")', () => {
    expect(TagFilter.exact('v1').excludedTags).toEqual([]);
    expect(TagFilter.prefix('v').excludedTags).toEqual([]);
  });

  test('anyOf() with anyTagExcept() keeps only the exclusions every any-tag filter shares', () => {
    expect(TagFilter.anyOf(TagFilter.anyTagExcept('a*', 'b*'), TagFilter.anyTagExcept('b*')).excludedTags)
      .toEqual(['sha256-*.sig', 'sha256-*.att', 'sha256-*.sbom', 'b*']);
    expect(TagFilter.anyOf(TagFilter.anyTagExcept('a*'), TagFilter.anyTag(), TagFilter.exact('x')).excludedTags)
      .toEqual(['sha256-*.sig', 'sha256-*.att', 'sha256-*.sbom']);
  });

  test('exact() and prefix() render EventBridge values and prefix matchers', () => {
    expect(TagFilter.exact('latest', 'stable')._renderEventPattern()).toEqual(['latest', 'stable']);
    expect(TagFilter.prefix('release-')._renderEventPattern()).toEqual([{ prefix: 'release-' }]);
  });

  test('anyOf() combines exact tags and prefixes', () => {
    const filter = TagFilter.anyOf(TagFilter.exact('latest'), TagFilter.prefix('release-', 'rc-'), TagFilter.exact('latest'));
    expect(filter.exactTags).toEqual(['latest']);
    expect(filter.prefixes).toEqual(['release-', 'rc-']);
    expect(filter._renderEventPattern()).toEqual(['latest', { prefix: 'release-' }, { prefix: 'rc-' }]);
  });

  test('anyOf() with anyTag() is anyTag()', () => {
    expect(TagFilter.anyOf(TagFilter.exact('a'), TagFilter.anyTag()).isAnyTag).toBe(true);
  });

  test.each([
    ['exact() without tags', () => TagFilter.exact(), '`tagFilter`: TagFilter.exact() needs at least one tag, got: []'],
    ['prefix() without prefixes', () => TagFilter.prefix(), '`tagFilter`: TagFilter.prefix() needs at least one prefix, got: []'],
    ['anyOf() without filters', () => TagFilter.anyOf(), '`tagFilter`: TagFilter.anyOf() needs at least one filter, got: []'],
    ['anyTagExcept() without wildcards', () => TagFilter.anyTagExcept(), '`tagFilter`: TagFilter.anyTagExcept() needs at least one wildcard, got: []'],
    ['an excluded wildcard with a space', () => TagFilter.anyTagExcept('a b'), '`tagFilter`: an excluded tag wildcard must be 1-128 characters of [a-zA-Z0-9._-] and * (no **), got: "a b"'],
    ['an excluded wildcard with **', () => TagFilter.anyTagExcept('a**'), '`tagFilter`: an excluded tag wildcard must be 1-128 characters of [a-zA-Z0-9._-] and * (no **), got: "a**"'],
    ['an empty excluded wildcard', () => TagFilter.anyTagExcept(''), '`tagFilter`: an excluded tag wildcard must be 1-128 characters of [a-zA-Z0-9._-] and * (no **), got: ""'],
    ['21 excluded wildcards', () => TagFilter.anyTagExcept(...Array.from({ length: 21 }, (_, i) => `x${i}*`)), '`tagFilter`: at most 20 excluded tag wildcards are supported, got: 21'],
    ['an empty tag', () => TagFilter.exact(''), '`tagFilter`: a tag must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127} (OCI tag syntax), got: ""'],
    ['a tag starting with a dot', () => TagFilter.exact('.hidden'), '`tagFilter`: a tag must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127} (OCI tag syntax), got: ".hidden"'],
    ['a tag with a shell metacharacter', () => TagFilter.exact('v1;rm'), '`tagFilter`: a tag must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127} (OCI tag syntax), got: "v1;rm"'],
    ['a tag over 128 characters', () => TagFilter.exact('a'.repeat(129)), `\`tagFilter\`: a tag must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127} (OCI tag syntax), got: "${'a'.repeat(129)}"`],
    ['an empty prefix', () => TagFilter.prefix(''), '`tagFilter`: a tag prefix must be 1-128 characters of [a-zA-Z0-9._-] and start with a letter, digit or _, got: ""'],
    ['a prefix with a slash', () => TagFilter.prefix('release/'), '`tagFilter`: a tag prefix must be 1-128 characters of [a-zA-Z0-9._-] and start with a letter, digit or _, got: "release/"'],
    ['more than 20 exact tags', () => TagFilter.exact(...Array.from({ length: 21 }, (_, i) => `t${i}`)), '`tagFilter`: at most 20 exact tags are supported, got: 21'],
    ['more than 20 prefixes', () => TagFilter.prefix(...Array.from({ length: 21 }, (_, i) => `p${i}`)), '`tagFilter`: at most 20 tag prefixes are supported, got: 21'],
  ])('refuses %s', (_name, make, message) => {
    expect(make).toThrow(message);
  });
});
