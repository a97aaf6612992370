#!/usr/bin/env node
// Plays SSM Run Command's part for the node tests: take a Command document's Content
// ({schemaVersion, parameters, mainSteps}) and the parameters EventBridge or an association
// hands SSM ({"name": ["value"]}), check them like SSM does (known names, required values,
// defaults, allowedValues, minChars/maxChars, allowedPattern), substitute {{ name }} textually in mainSteps[0].inputs.runCommand
// and write the runnable script. A value that fails its pattern refuses the whole run.
//
// CLI:
//   node ssm-render.js [--document doc.json] --params '{"accountId":["..."]}'|params.json --out script.sh
//   node ssm-render.js --print-document        (the document built from assets/prefetch-image.sh)
// Without --document (or $PREFETCH_DOCUMENT_JSON), the document is built from
// assets/prefetch-image.sh exactly as the construct does: line 1, the PREFETCH_* assignment
// lines, then the rest of the script. Exit 0 = rendered, 2 = refused (message on stderr).
// Library: const { render, defaultDocument } = require('./ssm-render.js').
'use strict';
const fs = require('fs');
const path = require('path');

// The same patterns as src/prefetch-document.ts: the whole value, and nothing after it in any dialect.
const whole = (alternatives) => `^(?:${alternatives})(?![\\s\\S])`;
const TAG = '[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}';
const TAG_LIST = whole(`|${TAG}(,${TAG}){0,19}`);

// The parameters of the contract between the construct and the script (name -> variable, spec).
const PARAMETERS = [
  ['accountId', 'PREFETCH_ACCOUNT_ID', { allowedPattern: whole('[0-9]{12}') }],
  ['region', 'PREFETCH_REGION', { allowedPattern: whole('[a-z]{2}(-[a-z]+)+-[0-9]{1,2}') }],
  ['repositoryName', 'PREFETCH_REPOSITORY', {
    allowedPattern: whole('[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*'), minChars: 2, maxChars: 256,
  }],
  ['imageTags', 'PREFETCH_IMAGE_TAGS', { allowedPattern: TAG_LIST, default: '' }],
  ['imageDigest', 'PREFETCH_IMAGE_DIGEST', { allowedPattern: whole('|sha256:[a-f0-9]{64}'), default: '' }],
  ['tagPrefixes', 'PREFETCH_TAG_PREFIXES', { allowedPattern: TAG_LIST, default: '' }],
  ['recordTable', 'PREFETCH_RECORD_TABLE', { allowedPattern: whole('|[a-zA-Z0-9_.-]{3,255}'), default: '' }],
  ['recordKey', 'PREFETCH_RECORD_KEY', { allowedPattern: whole('|[a-zA-Z0-9_.-]{1,255}'), default: '' }],
  ['jitterSeconds', 'PREFETCH_JITTER_SECONDS', { allowedPattern: whole('[0-9]{1,4}'), default: '90' }],
  ['eventTime', 'PREFETCH_EVENT_TIME', { allowedPattern: whole('|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z'), default: '' }],
  ['maxDiskUsagePercent', 'PREFETCH_MAX_DISK_PERCENT', { allowedPattern: whole('[1-9]|[1-9][0-9]|100'), default: '80' }],
  ['pinImages', 'PREFETCH_PIN', { allowedPattern: whole('true|false'), default: 'false' }],
  ['maxAttempts', 'PREFETCH_MAX_ATTEMPTS', { allowedPattern: whole('[1-9]|10'), default: '5' }],
  ['executionTimeout', 'PREFETCH_EXECUTION_TIMEOUT', {
    allowedPattern: whole('[1-9][0-9]{0,4}|1[0-6][0-9]{4}|17[0-1][0-9]{3}|172[0-7][0-9]{2}|172800'), default: '3600',
  }],
];

function defaultDocument(scriptPath = path.join(__dirname, '..', '..', 'assets', 'prefetch-image.sh')) {
  const lines = fs.readFileSync(scriptPath, 'utf8').replace(/\n$/, '').split('\n');
  const assignments = PARAMETERS.map(([name, variable]) => `${variable}='{{ ${name} }}'`);
  const parameters = {};
  for (const [name, , spec] of PARAMETERS) {
    parameters[name] = { type: 'String', description: name, ...spec };
  }
  return {
    schemaVersion: '2.2',
    description: 'Prefetch an ECR image into containerd (built by test/node/ssm-render.js)',
    parameters,
    mainSteps: [{
      action: 'aws:runShellScript',
      name: 'prefetchImage',
      // Without comment lines, as the construct embeds it (src/prefetch-document.ts).
      inputs: { runCommand: [lines[0], ...assignments, ...lines.slice(1).filter((l) => !/^\s*#/.test(l))] },
    }],
  };
}

class Refusal extends Error {}

// render(document, params) -> script text; throws Refusal like SSM refuses a SendCommand.
function render(doc, params) {
  const declared = doc.parameters || {};
  const values = {};
  for (const [name, value] of Object.entries(params)) {
    if (!(name in declared)) throw new Refusal(`InvalidParameters: parameter "${name}" is not declared by the document`);
    const list = Array.isArray(value) ? value : [value];
    if (list.length !== 1 || typeof list[0] !== 'string') {
      throw new Refusal(`InvalidParameters: parameter "${name}" must be one string, got ${JSON.stringify(value)}`);
    }
    values[name] = list[0];
  }
  for (const [name, spec] of Object.entries(declared)) {
    if (!(name in values)) {
      if (spec.default === undefined) throw new Refusal(`InvalidParameters: required parameter "${name}" is missing`);
      values[name] = String(spec.default);
    }
    const v = values[name];
    if (spec.allowedValues !== undefined && !spec.allowedValues.includes(v)) {
      throw new Refusal(`InvalidParameters: parameter "${name}" value ${JSON.stringify(v)} is not one of allowedValues`);
    }
    if ((spec.minChars !== undefined && v.length < Number(spec.minChars)) || (spec.maxChars !== undefined && v.length > Number(spec.maxChars))) {
      throw new Refusal(`InvalidParameters: parameter "${name}" has ${v.length} characters, outside minChars/maxChars ${spec.minChars ?? 0}..${spec.maxChars ?? 'inf'}`);
    }
    if (spec.allowedPattern !== undefined && !new RegExp(spec.allowedPattern).test(v)) {
      throw new Refusal(`InvalidParameters: parameter "${name}" value ${JSON.stringify(values[name])} does not match allowedPattern ${spec.allowedPattern}`);
    }
  }
  const step = (doc.mainSteps || [])[0];
  if (!step || step.action !== 'aws:runShellScript' || !Array.isArray(step.inputs?.runCommand)) {
    throw new Refusal('document: mainSteps[0] must be aws:runShellScript with a runCommand list');
  }
  // SSM refuses a document whose commands reference an undeclared parameter (comments included).
  for (const line of step.inputs.runCommand) {
    for (const m of line.matchAll(/\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g)) {
      if (!(m[1] in declared)) throw new Refusal(`document: runCommand references undeclared parameter "${m[1]}": ${line}`);
    }
  }
  const substitute = (line) => line.replace(/\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g, (m, name) => (name in values ? values[name] : m));
  return step.inputs.runCommand.map(substitute).join('\n') + '\n';
}

function readJson(arg) {
  return JSON.parse(arg.trim().startsWith('{') ? arg : fs.readFileSync(arg, 'utf8'));
}

function main(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--print-document') opts.print = true;
    else if (['--document', '--params', '--out'].includes(a)) opts[a.slice(2)] = argv[++i];
    else throw new Error(`unknown argument ${a}`);
  }
  const docPath = opts.document || process.env.PREFETCH_DOCUMENT_JSON;
  const doc = docPath ? readJson(docPath) : defaultDocument();
  if (opts.print) {
    process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
    return 0;
  }
  if (!opts.params || !opts.out) throw new Error('usage: ssm-render.js [--document F] --params JSON|F --out F');
  try {
    const text = render(doc, readJson(opts.params));
    fs.writeFileSync(opts.out, text, { mode: 0o700 });
    fs.chmodSync(opts.out, 0o700);
    return 0;
  } catch (e) {
    if (e instanceof Refusal) {
      process.stderr.write(`ssm: refused: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}

module.exports = { render, defaultDocument, Refusal, PARAMETERS };

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2));
}
