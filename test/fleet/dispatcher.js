#!/usr/bin/env node
// Plays SendCommand for the local fleet test (run.sh): the SSM Command document rendered with the
// parameters like SSM does (ssm-render.js), sent to real nodes (processes holding a mount namespace
// each) under SendCommand's rate control (dispatch.js, the one implementation of its semantics).
//
// For each target the policy releases, the rendered script starts in that node's mount namespace
// (`nsenter -t PID -m`, the node's own environment, its own process group, output kept in
// OUT/<node>.out). A started process is acknowledged (InProgress); its end is Success (exit 0),
// Failed (non-zero exit or killed) or TimedOut (killed at the document's timeoutSeconds, i.e. the
// executionTimeout parameter, like the agent does). Nothing else decides who gets the command.
//
//   node dispatcher.js --nodes nodes.json --document doc.json --params '{"name":["value"]}' \
//     --max-concurrency 3 --max-errors 0 --out DIR
// nodes.json: [{"name": "node00", "pid": 1234, "env": {"PATH": "...", ...}}, ...] in target order.
// Writes DIR/result.json (per node: status, exit, outcome, times; notSent; wallSeconds; peak in
// flight) and prints one line per event on stderr.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const { SendCommandDispatch } = require('./dispatch');
const { render, Refusal } = require('../node/ssm-render');

function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i += 2) {
    const m = /^--(nodes|document|params|max-concurrency|max-errors|out)$/.exec(argv[i]);
    if (!m || argv[i + 1] === undefined) throw new Error(`unknown or incomplete argument: ${argv[i]}`);
    opts[m[1]] = argv[i + 1];
  }
  for (const k of ['nodes', 'document', 'params', 'out']) if (!opts[k]) throw new Error(`--${k} is required`);
  return opts;
}

/** The step's timeoutSeconds with {{ parameters }} substituted (SSM's default is 3600). */
function executionTimeout(doc, params) {
  const raw = doc.mainSteps[0].inputs.timeoutSeconds;
  if (raw === undefined) return 3600;
  const value = String(raw).replace(/\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g, (m, name) =>
    (params[name] !== undefined ? [].concat(params[name])[0] : String(doc.parameters[name]?.default ?? m)));
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new Error(`timeoutSeconds is not a number of seconds: ${value}`);
  return seconds;
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const nodes = JSON.parse(fs.readFileSync(opts.nodes, 'utf8'));
  const doc = JSON.parse(fs.readFileSync(opts.document, 'utf8'));
  const params = JSON.parse(opts.params);
  // Absolute: entering a mount namespace moves the working directory to its root.
  opts.out = path.resolve(opts.out);
  fs.mkdirSync(opts.out, { recursive: true });

  let script;
  try {
    script = render(doc, params);
  } catch (e) {
    if (e instanceof Refusal) {
      process.stderr.write(`dispatcher: SendCommand refused: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const timeoutMs = executionTimeout(doc, params) * 1000;

  const byName = new Map(nodes.map((n) => [n.name, n]));
  const policy = new SendCommandDispatch({
    targets: nodes.map((n) => n.name),
    maxConcurrency: opts['max-concurrency'],
    maxErrors: opts['max-errors'],
  });
  const t0 = process.hrtime.bigint();
  const elapsed = () => Number(process.hrtime.bigint() - t0) / 1e9;
  const log = (msg) => process.stderr.write(`dispatcher: ${elapsed().toFixed(2).padStart(6)}s ${msg}\n`);
  const invocations = {};
  const running = new Map();
  let peakInFlight = 0;

  const finish = () => {
    const result = {
      maxConcurrency: opts['max-concurrency'],
      maxErrors: opts['max-errors'],
      timeoutSeconds: timeoutMs / 1000,
      wallSeconds: Number(elapsed().toFixed(3)),
      peakInFlight,
      notSent: policy.notSent,
      invocations,
    };
    fs.writeFileSync(path.join(opts.out, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
    log(`done: ${Object.keys(invocations).length} sent, ${policy.notSent.length} never sent${policy.notSent.length ? ` (${policy.notSent.join(' ')})` : ''}`);
  };

  const send = (names) => {
    for (const name of names) start(byName.get(name));
    peakInFlight = Math.max(peakInFlight, running.size);
    if (policy.done) finish();
  };

  const start = (node) => {
    // What the agent does: the document's commands written to a file, run as root.
    const file = path.join(opts.out, `${node.name}.script`);
    fs.writeFileSync(file, script, { mode: 0o700 });
    const out = fs.openSync(path.join(opts.out, `${node.name}.out`), 'w');
    const inv = { status: 'InProgress', exit: null, outcome: null, sentAt: elapsed(), endAt: null };
    invocations[node.name] = inv;
    const child = spawn('nsenter', ['-t', String(node.pid), '-m', '--', file], {
      env: node.env, stdio: ['ignore', out, out], detached: true,
    });
    fs.closeSync(out);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
    }, timeoutMs);
    running.set(node.name, child);
    log(`send ${node.name}`);
    child.on('spawn', () => send(policy.acknowledged(node.name)));
    const end = (code, signal) => {
      clearTimeout(timer);
      running.delete(node.name);
      const text = fs.readFileSync(path.join(opts.out, `${node.name}.out`), 'utf8');
      const summary = /prefetch: summary .*\boutcome=(\S+).*\bexit=(\d+)/.exec(text);
      inv.status = timedOut ? 'TimedOut' : code === 0 ? 'Success' : 'Failed';
      inv.exit = code ?? null;
      inv.signal = signal ?? null;
      inv.outcome = summary ? summary[1] : null;
      inv.endAt = elapsed();
      log(`${inv.status.padEnd(8)} ${node.name} exit=${code ?? signal} outcome=${inv.outcome ?? '-'}`);
      send(policy.finished(node.name, inv.status));
    };
    let ended = false;
    child.on('exit', (code, signal) => { if (!ended) { ended = true; end(code, signal); } });
    child.on('error', (e) => {
      process.stderr.write(`dispatcher: cannot start on ${node.name}: ${e.message}\n`);
      if (!ended) { ended = true; end(null, 'error'); }
    });
  };

  // Interrupted: the nodes' scripts go too, then the signal is raised again so that the calling
  // shell sees a command killed by it (bash runs its INT trap only then).
  const stop = (signal) => {
    for (const child of running.values()) {
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
    }
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  log(`SendCommand to ${nodes.length} targets, MaxConcurrency ${opts['max-concurrency']}, MaxErrors ${opts['max-errors']}, timeout ${timeoutMs / 1000}s`);
  send(policy.start());
}

main();
