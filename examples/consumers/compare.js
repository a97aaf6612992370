#!/usr/bin/env node
// Compares the template a consumer app synthesized with the TypeScript reference's.
//
//   node compare.js <reference cdk.out> <language cdk.out>
//
// Logical IDs are replaced by construct paths first (so a hash that differs would not hide
// or fake a difference), then the parts that define what the prefetcher does are compared
// one by one, and finally the whole templates. Prints what differs; exits 1 if anything does.
'use strict';
const fs = require('fs');
const path = require('path');
const assert = require('assert');

const STACK = 'PrefetchConsumer';

function templateFile(outdir) {
  return path.join(outdir, `${STACK}.template.json`);
}

function load(outdir) {
  return JSON.parse(fs.readFileSync(templateFile(outdir), 'utf-8'));
}

/** Replaces every logical ID (keys, Ref, Fn::GetAtt, DependsOn) with the resource's construct path. */
function normalise(template) {
  const names = {};
  for (const [id, res] of Object.entries(template.Resources ?? {})) {
    names[id] = res.Metadata?.['aws:cdk:path'] ?? id;
  }
  const rename = (id) => names[id] ?? id;
  const walk = (node) => {
    if (Array.isArray(node)) return node.map(walk);
    if (node === null || typeof node !== 'object') return node;
    const out = {};
    for (const [key, value] of Object.entries(node)) {
      if (key === 'Ref' && typeof value === 'string') out[key] = rename(value);
      else if (key === 'Fn::GetAtt' && Array.isArray(value)) out[key] = [rename(value[0]), ...value.slice(1)];
      else if (key === 'DependsOn') out[key] = [].concat(value).map(rename).sort();
      else out[key] = walk(value);
    }
    return out;
  };
  const resources = {};
  for (const [id, res] of Object.entries(template.Resources ?? {})) {
    resources[rename(id)] = walk(res);
  }
  return { ...walk(template), Resources: resources };
}

function ofType(template, type) {
  return Object.fromEntries(Object.entries(template.Resources).filter(([, r]) => r.Type === type));
}

function pick(template, type, fn) {
  return Object.fromEntries(Object.entries(ofType(template, type)).map(([id, r]) => [id, fn(r.Properties ?? {})]));
}

function typeCounts(template) {
  const counts = {};
  for (const r of Object.values(template.Resources)) counts[r.Type] = (counts[r.Type] ?? 0) + 1;
  return counts;
}

const CHECKS = {
  'resource types and counts': (t) => typeCounts(t),
  'event patterns': (t) => pick(t, 'AWS::Events::Rule', (p) => p.EventPattern),
  'run-command targets': (t) => pick(t, 'AWS::Events::Rule', (p) => p.Targets),
  'document parameters': (t) => pick(t, 'AWS::SSM::Document', (p) => p.Content?.parameters),
  'document content': (t) => pick(t, 'AWS::SSM::Document', (p) => p.Content),
  'association parameters': (t) => pick(t, 'AWS::SSM::Association', (p) => p.Parameters),
  'association targets and schedule': (t) => pick(t, 'AWS::SSM::Association', (p) => ({
    Targets: p.Targets, ScheduleExpression: p.ScheduleExpression, MaxConcurrency: p.MaxConcurrency, MaxErrors: p.MaxErrors,
  })),
  'IAM policies': (t) => pick(t, 'AWS::IAM::Policy', (p) => p.PolicyDocument),
  'whole template': (t) => t,
};

function main() {
  const [refDir, langDir] = process.argv.slice(2);
  if (!refDir || !langDir) {
    console.error('usage: node compare.js <reference cdk.out> <language cdk.out>');
    process.exit(2);
  }
  const rawRef = load(refDir);
  const rawLang = load(langDir);
  const ref = normalise(rawRef);
  const lang = normalise(rawLang);

  // The comparisons mean something only if the reference has what they compare.
  const counts = typeCounts(ref);
  // Two push rules (one per prefetcher) and the stack's status-events rule (monitoring).
  assert.strictEqual(counts['AWS::Events::Rule'], 3, 'the reference should have two push rules and the status-events rule');
  assert.strictEqual(counts['AWS::DynamoDB::Table'], 1, 'the reference should have the newest-image table');
  assert.strictEqual(counts['AWS::SSM::Association'], 2, 'the reference should have two associations');
  assert.ok(counts['AWS::SSM::Document'] >= 1, 'the reference should have the prefetch document');

  let failed = 0;
  for (const [name, extract] of Object.entries(CHECKS)) {
    try {
      assert.deepStrictEqual(extract(lang), extract(ref));
      console.log(`  same ${name}`);
    } catch (e) {
      failed++;
      console.log(`  DIFFERENT ${name}:`);
      console.log(String(e.message).split('\n').slice(0, 40).map((l) => `    ${l}`).join('\n'));
    }
  }
  const identical = fs.readFileSync(templateFile(langDir)).equals(fs.readFileSync(templateFile(refDir)));
  console.log(`  byte-for-byte identical template (logical IDs included): ${identical ? 'yes' : 'no'}`);
  process.exit(failed ? 1 : 0);
}

main();
