import * as fs from 'fs';
import * as path from 'path';
import { Template } from 'aws-cdk-lib/assertions';
import { ImagePrefetcher, NodeSelector, PrefetchDocument } from '../src';
import { givenStack } from './util';

const SCRIPT = fs.readFileSync(path.join(__dirname, '..', 'assets', 'prefetch-image.sh'), 'utf8');

function synthDocument(): any {
  const { stack, repository } = givenStack();
  new ImagePrefetcher(stack, 'Prefetch', { repository, nodes: NodeSelector.eksCluster('c') });
  const docs = Template.fromStack(stack).findResources('AWS::SSM::Document');
  return Object.values(docs)[0].Properties;
}

describe('PrefetchDocument', () => {
  const properties = synthDocument();
  const content = properties.Content;
  const parameters: { [name: string]: any } = content.parameters;

  test('is a schema 2.2 Command document for Linux, updated in place as new versions', () => {
    expect(properties.DocumentType).toBe('Command');
    expect(properties.UpdateMethod).toBe('NewVersion');
    expect(content.schemaVersion).toBe('2.2');
    expect(content.mainSteps).toHaveLength(1);
    expect(content.mainSteps[0]).toMatchObject({
      action: 'aws:runShellScript',
      precondition: { StringEquals: ['platformType', 'Linux'] },
      inputs: { timeoutSeconds: '{{ executionTimeout }}' },
    });
  });

  test('the node harness\'s fallback document (ssm-render.js) declares the same parameters, patterns and defaults', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mirror = require('./node/ssm-render.js').defaultDocument().parameters;
    const shape = (params: { [name: string]: any }) => Object.fromEntries(Object.entries(params)
      .filter(([name]) => name !== 'executionTimeout')
      .map(([name, p]) => [name, { allowedPattern: p.allowedPattern, default: p.default, minChars: p.minChars, maxChars: p.maxChars }]));
    expect(shape(mirror)).toEqual(shape(parameters));
  });

  test('fits in the 64 KB SSM allows for a document', () => {
    expect(Buffer.byteLength(JSON.stringify(content))).toBeLessThan(64 * 1024);
  });

  test('every parameter is a String with an allowedPattern and a description', () => {
    expect(Object.keys(parameters).sort()).toEqual([...PrefetchDocument.PARAMETER_NAMES].sort());
    for (const [name, parameter] of Object.entries(parameters)) {
      expect({ name, type: parameter.type }).toEqual({ name, type: 'String' });
      expect(typeof parameter.allowedPattern).toBe('string');
      expect(parameter.description.length).toBeGreaterThan(10);
      if (parameter.default !== undefined) {
        expect({ name, ok: new RegExp(parameter.allowedPattern).test(parameter.default) }).toEqual({ name, ok: true });
      }
    }
  });

  test('runs the packaged script\'s code unchanged (its comment lines left out), with the parameter assignments after its shebang', () => {
    const lines: string[] = content.mainSteps[0].inputs.runCommand;
    const scriptLines = SCRIPT.replace(/\n+$/, '').split('\n');
    const body = PrefetchDocument._withoutCommentLines(scriptLines.slice(1));
    expect(lines[0]).toBe('#!/bin/bash');
    expect(scriptLines[0]).toBe('#!/bin/bash');
    const assignments = lines.slice(1, lines.length - body.length);
    expect(assignments).toEqual([
      "PREFETCH_ACCOUNT_ID='{{ accountId }}'",
      "PREFETCH_REGION='{{ region }}'",
      "PREFETCH_REPOSITORY='{{ repositoryName }}'",
      "PREFETCH_IMAGE_TAGS='{{ imageTags }}'",
      "PREFETCH_IMAGE_DIGEST='{{ imageDigest }}'",
      "PREFETCH_TAG_PREFIXES='{{ tagPrefixes }}'",
      "PREFETCH_RECORD_TABLE='{{ recordTable }}'",
      "PREFETCH_RECORD_KEY='{{ recordKey }}'",
      "PREFETCH_JITTER_SECONDS='{{ jitterSeconds }}'",
      "PREFETCH_EVENT_TIME='{{ eventTime }}'",
      "PREFETCH_MAX_DISK_PERCENT='{{ maxDiskUsagePercent }}'",
      "PREFETCH_PIN='{{ pinImages }}'",
      "PREFETCH_MAX_ATTEMPTS='{{ maxAttempts }}'",
      "PREFETCH_EXECUTION_TIMEOUT='{{ executionTimeout }}'",
    ]);
    expect(lines.slice(1 + assignments.length)).toEqual(body);
  });

  test('the script refers to no parameter: SSM refuses a document that names an undeclared one, even in a comment', () => {
    // Only the inserted assignment lines may contain {{ ... }}.
    const lines: string[] = content.mainSteps[0].inputs.runCommand;
    const withReferences = lines.filter(line => /\{\{/.test(line));
    expect(withReferences).toEqual(lines.slice(1, 15));
    for (const line of withReferences) {
      const [, name] = /\{\{ (\w+) \}\}/.exec(line)!;
      expect(parameters[name]).toBeDefined();
    }
  });

  test('no parameter value that passes its pattern can contain a quote, so the assignments cannot be broken out of', () => {
    for (const [name, parameter] of Object.entries(parameters)) {
      const pattern = new RegExp(parameter.allowedPattern);
      for (const hostile of ["'", "a'b", 'a\nb', '$(id)', '`id`', 'a;b', 'a b', '"']) {
        expect({ name, hostile, accepted: pattern.test(hostile) }).toEqual({ name, hostile, accepted: false });
      }
    }
  });

  test('SSM enforces the repository name length (2 to 256) too', () => {
    expect(parameters.repositoryName).toMatchObject({ minChars: 2, maxChars: 256 });
  });

  const digest = `sha256:${'a'.repeat(64)}`;
  test.each([
    ['accountId', '123456789012', true], ['accountId', '12345678901', false], ['accountId', '1234567890123', false],
    ['region', 'us-east-1', true], ['region', 'us-gov-west-1', true], ['region', 'cn-north-1', true], ['region', 'US-EAST-1', false], ['region', 'us-east', false],
    ['repositoryName', 'ml/trainer', true], ['repositoryName', 'a.b_c-d/e', true], ['repositoryName', 'ML', false], ['repositoryName', '/abs', false], ['repositoryName', 'a//b', false],
    ['imageTags', '', true], ['imageTags', 'v1.2.3', true], ['imageTags', 'latest,stable', true], ['imageTags', `${'a'.repeat(128)}`, true],
    ['imageTags', `${'a'.repeat(129)}`, false], ['imageTags', '.x', false], ['imageTags', 'a,,b', false], ['imageTags', 'a,', false],
    ['imageTags', Array.from({ length: 20 }, (_, i) => `t${i}`).join(','), true], ['imageTags', Array.from({ length: 21 }, (_, i) => `t${i}`).join(','), false],
    ['imageDigest', '', true], ['imageDigest', digest, true], ['imageDigest', digest.toUpperCase(), false], ['imageDigest', `${digest}0`, false], ['imageDigest', 'sha512:abc', false],
    ['tagPrefixes', 'release-,rc-', true], ['tagPrefixes', 'release/', false],
    ['jitterSeconds', '0', true], ['jitterSeconds', '3600', true], ['jitterSeconds', '-1', false], ['jitterSeconds', '12345', false],
    ['eventTime', '', true], ['eventTime', '2026-11-16T01:54:34Z', true], ['eventTime', '2026-11-16T01:54:34.123Z', false], ['eventTime', '2026-11-16 01:54:34', false], ['eventTime', "2026-11-16T01:54:34Z'; id", false],
    ['maxDiskUsagePercent', '80', true], ['maxDiskUsagePercent', '100', true], ['maxDiskUsagePercent', '0', false], ['maxDiskUsagePercent', '101', false],
    ['pinImages', 'true', true], ['pinImages', 'false', true], ['pinImages', 'yes', false],
    ['maxAttempts', '1', true], ['maxAttempts', '10', true], ['maxAttempts', '0', false], ['maxAttempts', '11', false],
    ['executionTimeout', '1', true], ['executionTimeout', '3600', true], ['executionTimeout', '172800', true], ['executionTimeout', '172801', false], ['executionTimeout', '0', false],
  ])('%s: %j is accepted: %s', (name, value, accepted) => {
    expect(new RegExp(parameters[name].allowedPattern).test(value)).toBe(accepted);
  });
});
