// SSM's limits on the prefetch document (issue 12, item 4): the content stays well below SSM's 64 KB,
// and every parameter's allowedPattern means the same in JavaScript and in Java. SSM does not document
// its regular-expression engine, so a pattern whose verdict depends on the dialect is a bug.
// Java runs once, through test/ground-truth/RegexCheck.java (Java 17, no dependencies); without Java
// these tests fail rather than skip.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { Template } from 'aws-cdk-lib/assertions';
import { ImagePrefetcher, NodeSelector } from '../src';
import { givenStack } from './util';

/** SSM accepts 64 KB of document content; the budget keeps 8 KB for the script to grow into. */
const CONTENT_BUDGET_BYTES = 56 * 1024;

function synthContent(): { content: any; parameters: { [name: string]: { allowedPattern: string } } } {
  const { stack, repository } = givenStack();
  new ImagePrefetcher(stack, 'Prefetch', { repository, nodes: NodeSelector.eksCluster('c') });
  const document = Object.values(Template.fromStack(stack).findResources('AWS::SSM::Document'))[0];
  return { content: document.Properties.Content, parameters: document.Properties.Content.parameters };
}

/**
 * Throws, with the size, when the content is over the budget. The size is that of the compact JSON:
 * CloudFormation hands SSM the Content object as Jackson's `ObjectMapper.writeValueAsString` writes it
 * (aws-cloudformation-resource-providers-ssm, DocumentModelTranslator.processDocumentContent), with no
 * indentation and non-ASCII characters as UTF-8, the same bytes as JSON.stringify here.
 */
function checkContentSize(bytes: number): void {
  if (bytes > CONTENT_BUDGET_BYTES) {
    throw new Error(`the SSM document content is ${bytes} bytes, over the budget of ${CONTENT_BUDGET_BYTES} bytes (56 KB of SSM's 64 KB limit)`);
  }
}

const { content, parameters } = synthContent();

describe('the document size', () => {
  test('the content stays below 56 KB of SSM\'s 64 KB limit', () => {
    expect(() => checkContentSize(Buffer.byteLength(JSON.stringify(content), 'utf8'))).not.toThrow();
  });

  test('the check fails above 56 KB, with the size in its message', () => {
    expect(() => checkContentSize(CONTENT_BUDGET_BYTES)).not.toThrow();
    expect(() => checkContentSize(CONTENT_BUDGET_BYTES + 1)).toThrow('the SSM document content is 57345 bytes, over the budget of 57344 bytes');
  });
});

// ---------------------------------------------------------------------------------------------
// The corpus: values each parameter must accept, the same values bent the ways regular-expression
// dialects differ on (line terminators that `$` may skip in Java, PCRE and .NET but not in
// JavaScript; case; non-ASCII digits and letters), and values that try to break out of the script.

const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`;
const VALID: { [name: string]: string[] } = {
  accountId: ['123456789012'],
  region: ['us-east-1', 'us-gov-west-1', 'cn-north-1', 'ap-southeast-2', 'eu-central-2'],
  repositoryName: ['team/app', 'ml/trainer', 'a.b_c-d/e', 'ab', 'a/b/c'],
  imageTags: ['', 'v1', 'latest,stable', 'release-2026.11', `v${'1'.repeat(127)}`, Array.from({ length: 20 }, (_, i) => `t${i}`).join(',')],
  imageDigest: ['', DIGEST],
  tagPrefixes: ['', 'release-,rc-', 'v'],
  recordTable: ['', 'Stack-ImagePrefetcherNewestImagesTable-1A2B3C4D5E6F', 'abc', 'a'.repeat(255)],
  recordKey: ['', 'StackPrefetch8A1B2C3D', 'k', 'a_b.c-d'],
  jitterSeconds: ['0', '90', '3600'],
  eventTime: ['', '2026-11-16T01:54:34Z'],
  maxDiskUsagePercent: ['1', '80', '100'],
  pinImages: ['true', 'false'],
  maxAttempts: ['1', '5', '10'],
  executionTimeout: ['1', '3600', '172800'],
};
const LINE_TERMINATORS = ['\n', '\r\n', '\r', '\u0085', '\u2028', '\u2029'];
const HOSTILE = [
  "'", '"', '$(id)', '`id`', 'a;b', 'a b', '\\', '/', '-1', '..', '{{ accountId }}', '\u0000',
  '١٢٣٤٥٦٧٨٩٠١٢', '１２３４５６７８９０１２', 'ｕｓ-east-1', 'İ', '\u212A', 'a'.repeat(300),
];

function corpus(): string[] {
  const values = new Set<string>(HOSTILE);
  for (const v of Object.values(VALID).flat()) {
    values.add(v);
    for (const t of LINE_TERMINATORS) {
      values.add(v + t);
      values.add(t + v);
    }
    values.add(`${v}\n${v}`);
    values.add(`${v}\n\n`);
    values.add(`${v} `);
    values.add(` ${v}`);
    values.add(`${v}'`);
    values.add(`${v}\u0000`);
    values.add(v.toUpperCase());
  }
  return [...values];
}

/** A value as a JSON string, with every character outside printable ASCII escaped. */
function show(value: string): string {
  return JSON.stringify(value).replace(/[^\x20-\x7e]/g, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

interface Verdict { readonly javascript: boolean; readonly javaFind: boolean | null; readonly javaMatches: boolean | null }

/** Java's verdicts for [pattern, value] pairs, from one run of RegexCheck.java. */
function javaVerdicts(cases: Array<[string, string]>): Array<[boolean | null, boolean | null]> {
  const program = path.join(__dirname, 'ground-truth', 'RegexCheck.java');
  const result = spawnSync('java', [program], { input: JSON.stringify(cases), encoding: 'utf8', timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
  if (result.error) {
    throw new Error(`Java 17 is needed to compare the allowedPatterns with Java's regular expressions (java ${program}): ${result.error.message}`);
  }
  if (result.status !== 0) {
    throw new Error(`java ${program} exited ${result.status}: ${result.stderr}`);
  }
  const verdicts = JSON.parse(result.stdout);
  if (verdicts.length !== cases.length) throw new Error(`java gave ${verdicts.length} verdicts for ${cases.length} cases`);
  return verdicts;
}

describe('each allowedPattern means the same in JavaScript and Java', () => {
  const names = Object.keys(parameters);
  const values = corpus();
  // The bridge's own check: a known dialect difference (`$` before a final line break in Java).
  const probe: Array<[string, string]> = [['^a$', 'a\n'], ['^a$', 'a']];
  const pairs = names.flatMap(name => values.map(v => [parameters[name].allowedPattern, v] as [string, string]));
  const cases: Array<[string, string]> = [...probe, ...pairs];
  let verdicts: Map<string, Map<string, Verdict>>;

  beforeAll(() => {
    const java = javaVerdicts(cases);
    verdicts = new Map();
    cases.forEach(([pattern, value], i) => {
      const byValue = verdicts.get(pattern) ?? new Map<string, Verdict>();
      byValue.set(value, { javascript: new RegExp(pattern).test(value), javaFind: java[i][0], javaMatches: java[i][1] });
      verdicts.set(pattern, byValue);
    });
  });

  test('Java runs and sees a difference where there is one', () => {
    expect(verdicts.get('^a$')!.get('a\n')).toEqual({ javascript: false, javaFind: true, javaMatches: false });
    expect(verdicts.get('^a$')!.get('a')).toEqual({ javascript: true, javaFind: true, javaMatches: true });
  });

  test('the corpus covers every parameter, and each parameter accepts its valid values', () => {
    expect(Object.keys(VALID).sort()).toEqual([...names].sort());
    for (const name of names) {
      for (const v of VALID[name]) {
        const accepted = verdicts.get(parameters[name].allowedPattern)!.get(v)!.javascript;
        expect({ name, value: v, accepted }).toEqual({ name, value: v, accepted: true });
      }
    }
  });

  test.each(names)('%s: JavaScript test(), Java find() and Java matches() agree on every value', (name) => {
    const pattern = parameters[name].allowedPattern;
    const disagreements = [...verdicts.get(pattern)!.entries()]
      .filter(([, v]) => v.javaFind !== v.javascript || v.javaMatches !== v.javascript)
      .map(([value, v]) => `${show(value)}: JavaScript ${v.javascript}, Java find ${v.javaFind}, Java matches ${v.javaMatches}`);
    const shown = disagreements.length > 12 ? [...disagreements.slice(0, 12), `... and ${disagreements.length - 12} more`] : disagreements;
    expect({ pattern, disagreements: shown }).toEqual({ pattern, disagreements: [] });
  });
});
