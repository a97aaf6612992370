'use strict';
// Fleet model: what one ECR push costs a fleet of N nodes, in virtual time (discrete events, seeded
// PRNG, no sleeping). `node test/fleet/model.js [--flag value ...]`, `--help` for the flags. A
// benchmark, not a test: it prints a table, then one JSON object as its last line.
//
// What is modelled, and where each behaviour comes from:
// - Dispatch (ramp 1, 2, 4, ... up to MaxConcurrency; MaxErrors; which statuses count as errors):
//   test/fleet/dispatch.js, driven as is. Its sources: AWS Systems Manager user guide, "Run commands
//   at scale" (concurrency and error controls); API reference, SendCommand (MaxConcurrency default 50,
//   MaxErrors default 0, TimeoutSeconds = delivery timeout) and Command (ErrorCount = Failed +
//   Execution Timed Out; DeliveryTimedOutCount kept apart).
// - The "old" path has SendCommand's defaults because the EventBridge Run Command target has no field
//   for MaxConcurrency or MaxErrors (EventBridge API reference, RunCommandParameters). Its delivery
//   timeout (SendCommand TimeoutSeconds) of 3600 s is an assumption: no source here confirms which
//   value a rule's command gets.
// - Node script (assets/prefetch-image.sh): jitter uniform in [0, jitterSeconds] before the first ECR
//   call; GetAuthorizationToken once; the manifest read once by the script and once more by the pull;
//   retries with exponential backoff and equal jitter (wait d/2 + random(d/2), d = min(base * 2^(n-1),
//   max)), exit 4 = Failed after maxAttempts.
// - ECR API rates: Amazon ECR user guide, "Amazon ECR service quotas" (per account and region, default
//   rates BatchGetImage 2,000/s, GetDownloadUrlForLayer 3,000/s, GetAuthorizationToken 500/s; a pull
//   calls BatchGetImage for the manifest and GetDownloadUrlForLayer per layer not cached).
// - Pull time per node: the single-node benchmark (README, `npx projen bench`): GiB * 1024 / MiB/s of
//   one node, times (1 + script overhead), measured overhead ratio 1.05.
// Assumptions (no source states them; change them with flags where there is one):
// - ECR throttles with a token bucket per API refilled at the quota rate, holding 1 s of it (--burst).
// - A node's calls of one step are made at the same instant (the pull's BatchGetImage and every
//   GetDownloadUrlForLayer at the start of the download): the per-second peaks are upper bounds.
//   The config blob is fetched like a layer (layers + 1 URL calls). A throttled call fails the step;
//   its retry repeats the manifest read and asks only for the blobs not yet obtained (containerd
//   resumes partial downloads). API latency is taken as 0.
// - Acknowledgement (the agent picks the invocation up) after a uniform delay; an unreachable node
//   never acknowledges and holds its dispatch slot for the delivery timeout, counted from the moment
//   dispatch sends to it, then ends DeliveryTimedOut.
// - Command expiry is not modelled (API reference, Command.ExpiresAfter: when the command as a whole
//   times out, Pending and InProgress invocations become DeliveryTimedOut). commandSeconds in the JSON
//   is how long each rollout ran: one that runs past the command's total timeout would leave the
//   nodes not yet reached cold, which this model does not show.
// - A failing node exits non-zero --fail-after seconds after it acknowledges, before any ECR call.
// - Failing and unreachable nodes: ceil(share * N) each (so every N has at least one of each), drawn
//   at random from the whole fleet; the same nodes, acknowledgement delays, jitter draws and pull times
//   for both paths (common random numbers), so the paths differ only by their settings.
// - Pull time lognormal around the median above (sigma --sigma); the script's own cost --fixed-cost
//   before the jitter.

const { SendCommandDispatch } = require('./dispatch');

const APIS = ['BatchGetImage', 'GetDownloadUrlForLayer', 'GetAuthorizationToken'];

const DEFAULTS = {
  nodes: [10, 50, 500, 1000, 5000],
  seed: 20261130,
  imageGib: 1,
  nodeMibps: 120,
  layers: 8,
  overhead: 0.041,
  sigma: 0.15,
  fixedCost: 0.3,
  ackMin: 0.5,
  ackMax: 2,
  failShare: 0.01,
  unreachableShare: 0.01,
  failAfter: 1,
  maxAttempts: 5,
  backoffBaseMs: 1000,
  backoffMaxMs: 30000,
  burst: 1,
  quotas: { BatchGetImage: 2000, GetDownloadUrlForLayer: 3000, GetAuthorizationToken: 500 },
  old: { maxConcurrency: '50', maxErrors: '0', jitter: 30, deliveryTimeout: 3600 },
  // The construct's defaults (src/image-prefetcher.ts). The push leg passes the event's time, so the
  // jitter counts from the push (jitterWait): SSM's ramp no longer adds to every node's wait.
  new: { maxConcurrency: '100%', maxErrors: '100%', jitter: 90, deliveryTimeout: 3600, jitterFromPush: true },
  // Targets for the new path: fleet size of the time target, of the quota target, quota share.
  targetTimeNodes: 1000,
  targetQuotaNodes: 5000,
  targetQuotaFraction: 0.5,
};

// ---------------------------------------------------------------------------------------------
// Seeded PRNG: mulberry32, seeded from a string through FNV-1a.

function hashSeed(text) {
  let h = 0x811c9dc5;
  for (const ch of String(text)) {
    h ^= ch.codePointAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

function createRng(seed) {
  let state = hashSeed(seed);
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    uniform: (a, b) => a + (b - a) * next(),
    /** Standard normal (Box-Muller). */
    normal: () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next()),
    /** Fisher-Yates, in place. */
    shuffle(items) {
      for (let i = items.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [items[i], items[j]] = [items[j], items[i]];
      }
      return items;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Event queue: binary min-heap on (time, insertion order), so equal times keep their order.

class EventQueue {
  constructor() {
    this.heap = [];
    this.seq = 0;
  }

  get size() {
    return this.heap.length;
  }

  push(time, event) {
    const item = { time, seq: this.seq++, event };
    const h = this.heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!EventQueue.before(h[i], h[parent])) break;
      [h[i], h[parent]] = [h[parent], h[i]];
      i = parent;
    }
  }

  /** The earliest {time, event}, removed; undefined when empty. */
  pop() {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && EventQueue.before(h[l], h[m])) m = l;
        if (r < h.length && EventQueue.before(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return { time: top.time, event: top.event };
  }

  static before(a, b) {
    return a.time < b.time || (a.time === b.time && a.seq < b.seq);
  }
}

// ---------------------------------------------------------------------------------------------
// ECR: a token bucket per API, and per-second call counts.

class TokenBucket {
  /**
   * @param {number} rate tokens per second (the quota)
   * @param {number} capacity tokens the bucket holds (burst); it starts full
   */
  constructor(rate, capacity) {
    this.rate = rate;
    this.capacity = capacity;
    this.tokens = capacity;
    this.last = 0;
  }

  /** One call at time t (seconds, non-decreasing): true if allowed, false if throttled. */
  take(t) {
    this.tokens = Math.min(this.capacity, this.tokens + (t - this.last) * this.rate);
    this.last = t;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }
}

class Ecr {
  constructor(quotas, burstSeconds) {
    this.quotas = quotas;
    this.buckets = {};
    this.calls = {};
    this.accepted = {};
    this.throttled = {};
    for (const api of APIS) {
      this.buckets[api] = new TokenBucket(quotas[api], Math.max(1, quotas[api] * burstSeconds));
      this.calls[api] = new Map();
      this.accepted[api] = new Map();
      this.throttled[api] = 0;
    }
  }

  /** One call of api at time t: true if ECR answers, false if it throttles. */
  call(api, t) {
    const second = Math.floor(t);
    this.calls[api].set(second, (this.calls[api].get(second) ?? 0) + 1);
    const ok = this.buckets[api].take(t);
    if (ok) this.accepted[api].set(second, (this.accepted[api].get(second) ?? 0) + 1);
    else this.throttled[api] += 1;
    return ok;
  }

  /** Per API: peak calls in a 1-second bucket (throttled ones too), as a fraction of the quota. */
  peakRates() {
    const out = {};
    for (const api of APIS) {
      const peak = maxOf(this.calls[api].values());
      out[api] = {
        perSecond: peak,
        quotaFraction: round(peak / this.quotas[api], 4),
        acceptedPerSecond: maxOf(this.accepted[api].values()),
        throttled: this.throttled[api],
      };
    }
    return out;
  }
}

function maxOf(values) {
  let m = 0;
  for (const v of values) if (v > m) m = v;
  return m;
}

function round(x, digits = 3) {
  if (x === null || !Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The script's wait before attempt n + 1 (n = 1, 2, ...), in ms: exponential, equal jitter. */
function backoffMs(attempt, random, baseMs, maxMs) {
  const d = Math.min(baseMs * 2 ** (attempt - 1), maxMs);
  return d / 2 + random() * (d / 2);
}

/** Median seconds one node takes to pull the image with the script. */
function medianPullSeconds(inputs) {
  return ((inputs.imageGib * 1024) / inputs.nodeMibps) * (1 + inputs.overhead);
}

/** ceil(share * n) from 0 to n (the epsilon keeps 0.07 * 100 at 7). */
function shareCount(share, n) {
  return Math.min(n, Math.max(0, Math.ceil(share * n - 1e-9)));
}

// ---------------------------------------------------------------------------------------------
// The fleet: which nodes fail or are unreachable, and each node's draws. Depends on the seed and N
// only, so that both paths see the same fleet.

function createFleet(n, inputs) {
  const rng = createRng(`${inputs.seed}/fleet/${n}`);
  const order = rng.shuffle([...Array(n).keys()]);
  const failing = new Set(order.slice(0, shareCount(inputs.failShare, n)));
  const unreachable = new Set(order.slice(failing.size, failing.size + shareCount(inputs.unreachableShare, n)));
  const median = medianPullSeconds(inputs);
  const width = String(n - 1).length;
  const nodes = [];
  for (let i = 0; i < n; i++) {
    nodes.push({
      id: `node-${String(i).padStart(width, '0')}`,
      kind: failing.has(i) ? 'failing' : unreachable.has(i) ? 'unreachable' : 'healthy',
      ackSeconds: rng.uniform(inputs.ackMin, inputs.ackMax),
      jitterFraction: rng.next(),
      pullSeconds: median * Math.exp(inputs.sigma * rng.normal()),
    });
  }
  return nodes;
}

// ---------------------------------------------------------------------------------------------
// One rollout: one push, one SendCommand to every node of the fleet.

/**
 * @param {object} options
 * @param {number} options.nodes fleet size
 * @param {{maxConcurrency: string, maxErrors: string, jitter: number, deliveryTimeout: number}} options.settings
 * @param {object} [options.inputs] model inputs (DEFAULTS when left out)
 * @param {string} [options.path] label, also part of the seed of the run's retry draws
 * @param {Array} [options.fleet] nodes from createFleet (made from inputs when left out)
 */
/**
 * Seconds a node waits before its first ECR call, as assets/prefetch-image.sh's jitter() decides.
 * Its slot is jitterFraction x jitter. Without the push's time (the old path) the slot counts from
 * when the node got the command; with it (settings.jitterFromPush, the new path passes eventTime),
 * from the push: the node waits for the rest of its slot, or, when the slot passed while SSM's ramp
 * reached it, a random time up to the time since the push (at most the jitter).
 * @param {{jitterFraction: number}} node
 * @param {number} t seconds since the push when the node starts the script
 * @param {{jitter: number, jitterFromPush?: boolean}} settings
 * @param {() => number} random uniform [0, 1)
 */
function jitterWait(node, t, settings, random) {
  const slot = node.jitterFraction * settings.jitter;
  if (!settings.jitterFromPush) return slot;
  if (slot > t) return slot - t;
  return random() * Math.min(t, settings.jitter);
}

function simulate({ nodes: n, settings, inputs = DEFAULTS, path = 'custom', fleet }) {
  const nodes = fleet ?? createFleet(n, inputs);
  const byId = new Map(nodes.map((node) => [node.id, node]));
  const rng = createRng(`${inputs.seed}/run/${n}/${path}`);
  const ecr = new Ecr(inputs.quotas, inputs.burst);
  const queue = new EventQueue();
  const dispatch = new SendCommandDispatch({
    targets: nodes.map((node) => node.id),
    maxConcurrency: settings.maxConcurrency,
    maxErrors: settings.maxErrors,
  });
  const blobs = inputs.layers + 1;
  const state = new Map(); // id -> {step, attempt, blobsLeft}
  const warmAt = [];
  const statuses = {};
  let retries = 0;
  let throttleFailures = 0;
  let lastEvent = 0;

  const send = (targets, t) => {
    for (const id of targets) {
      const node = byId.get(id);
      if (node.kind === 'unreachable' || node.ackSeconds >= settings.deliveryTimeout) {
        // SSM knows the agent is not connected: the ramp goes on (dispatch.js), the slot stays taken.
        queue.push(t + Math.min(node.ackSeconds, settings.deliveryTimeout / 2), { type: 'unreachable', id });
        queue.push(t + settings.deliveryTimeout, { type: 'end', id, status: 'DeliveryTimedOut' });
      } else {
        queue.push(t + node.ackSeconds, { type: 'ack', id });
      }
    }
  };

  // One step of the script's ECR work (token, manifest read, pull), attempt after attempt.
  const step = (id, t) => {
    const s = state.get(id);
    const calls = s.step === 'token' ? ['GetAuthorizationToken']
      : s.step === 'manifest' ? ['BatchGetImage']
        : ['BatchGetImage', ...Array(s.blobsLeft).fill('GetDownloadUrlForLayer')];
    for (const api of calls) {
      if (!ecr.call(api, t)) {
        if (s.attempt >= inputs.maxAttempts) {
          throttleFailures += 1;
          queue.push(t, { type: 'end', id, status: 'Failed' });
        } else {
          retries += 1;
          queue.push(t + backoffMs(s.attempt, rng.next, inputs.backoffBaseMs, inputs.backoffMaxMs) / 1000, { type: 'step', id });
          s.attempt += 1;
        }
        return;
      }
      if (api === 'GetDownloadUrlForLayer') s.blobsLeft -= 1;
    }
    s.attempt = 1;
    if (s.step === 'token') {
      s.step = 'manifest';
      step(id, t);
    } else if (s.step === 'manifest') {
      s.step = 'pull';
      step(id, t);
    } else {
      queue.push(t + byId.get(id).pullSeconds, { type: 'end', id, status: 'Success' });
    }
  };

  send(dispatch.start(), 0);
  for (let item = queue.pop(); item; item = queue.pop()) {
    const { time: t, event } = item;
    lastEvent = t;
    const node = byId.get(event.id);
    if (event.type === 'unreachable') {
      send(dispatch.unreachable(event.id), t);
    } else if (event.type === 'ack') {
      send(dispatch.acknowledged(event.id), t);
      if (node.kind === 'failing') {
        queue.push(t + inputs.failAfter, { type: 'end', id: event.id, status: 'Failed' });
      } else {
        state.set(event.id, { step: 'token', attempt: 1, blobsLeft: blobs });
        queue.push(t + inputs.fixedCost + jitterWait(node, t, settings, rng.next), { type: 'step', id: event.id });
      }
    } else if (event.type === 'step') {
      step(event.id, t);
    } else {
      statuses[event.status] = (statuses[event.status] ?? 0) + 1;
      if (event.status === 'Success') warmAt.push(t);
      send(dispatch.finished(event.id, event.status), t);
    }
  }
  if (!dispatch.done) throw new Error('the event queue ran dry before the command was done');

  const healthy = nodes.filter((node) => node.kind === 'healthy').length;
  warmAt.sort((a, b) => a - b);
  const secondsTo = (share) => {
    const needed = Math.ceil(share * healthy - 1e-9);
    if (needed === 0) return 0;
    return warmAt.length >= needed ? round(warmAt[needed - 1]) : null;
  };
  return {
    nodes: n,
    path,
    settings: { ...settings },
    failing: nodes.filter((node) => node.kind === 'failing').length,
    unreachable: nodes.filter((node) => node.kind === 'unreachable').length,
    healthy,
    warm: warmAt.length,
    secondsTo95: secondsTo(0.95),
    secondsTo100: secondsTo(1),
    coldFraction: healthy === 0 ? 0 : round((healthy - warmAt.length) / healthy, 4),
    notSent: dispatch.notSent.length,
    statuses,
    retries,
    throttleFailures,
    commandSeconds: round(lastEvent),
    peakRates: ecr.peakRates(),
  };
}

// ---------------------------------------------------------------------------------------------
// Targets (new path only).

function evaluateTargets(results, inputs = DEFAULTS) {
  const fresh = results.filter((r) => r.path === 'new');
  const deadline = round(inputs.new.jitter + 2 * medianPullSeconds(inputs));
  const details = [];
  for (const r of fresh) {
    details.push({
      target: 'no healthy node left cold',
      nodes: r.nodes,
      value: r.coldFraction,
      limit: 0,
      met: r.coldFraction === 0,
    });
  }
  const timed = fresh.find((r) => r.nodes === inputs.targetTimeNodes);
  if (timed) {
    details.push({
      target: '95% of healthy nodes warm within jitter + 2 x median pull seconds',
      nodes: timed.nodes,
      value: timed.secondsTo95,
      limit: deadline,
      met: timed.secondsTo95 !== null && timed.secondsTo95 <= deadline,
    });
  }
  const quota = fresh.find((r) => r.nodes === inputs.targetQuotaNodes);
  if (quota) {
    for (const api of APIS) {
      const value = quota.peakRates[api].quotaFraction;
      details.push({
        target: `${api} peak at most ${inputs.targetQuotaFraction * 100}% of its quota`,
        nodes: quota.nodes,
        value,
        limit: inputs.targetQuotaFraction,
        met: value <= inputs.targetQuotaFraction,
      });
    }
  }
  const missing = [];
  if (!timed) missing.push(`no new-path run with ${inputs.targetTimeNodes} nodes`);
  if (!quota) missing.push(`no new-path run with ${inputs.targetQuotaNodes} nodes`);
  return { met: missing.length === 0 && details.every((d) => d.met), details, ...(missing.length ? { missing } : {}) };
}

// ---------------------------------------------------------------------------------------------
// Command line.

const FLAGS = {
  '--nodes': ['nodes', (v) => v.split(',').map((x) => positiveInt('--nodes', x)), 'fleet sizes, comma-separated'],
  '--seed': ['seed', (v) => v, 'PRNG seed'],
  '--image-gib': ['imageGib', (v) => positive('--image-gib', v), 'image size, GiB'],
  '--node-mibps': ['nodeMibps', (v) => positive('--node-mibps', v), "one node's pull rate, MiB/s (bare pull)"],
  '--layers': ['layers', (v) => positiveInt('--layers', v), 'layers in the image (plus 1 config blob)'],
  '--overhead': ['overhead', (v) => nonNegative('--overhead', v), 'script overhead over a bare pull (ratio - 1)'],
  '--sigma': ['sigma', (v) => nonNegative('--sigma', v), 'lognormal sigma of the pull time'],
  '--fixed-cost': ['fixedCost', (v) => nonNegative('--fixed-cost', v), "the script's own seconds, before the jitter"],
  '--ack-min': ['ackMin', (v) => nonNegative('--ack-min', v), 'acknowledgement delay, lowest seconds'],
  '--ack-max': ['ackMax', (v) => nonNegative('--ack-max', v), 'acknowledgement delay, highest seconds'],
  '--fail-share': ['failShare', (v) => share('--fail-share', v), 'share of nodes whose script exits non-zero'],
  '--unreachable-share': ['unreachableShare', (v) => share('--unreachable-share', v), 'share of nodes that never acknowledge'],
  '--fail-after': ['failAfter', (v) => nonNegative('--fail-after', v), 'seconds a failing script runs'],
  '--max-attempts': ['maxAttempts', (v) => positiveInt('--max-attempts', v), 'ECR attempts per step'],
  '--backoff-base-ms': ['backoffBaseMs', (v) => positive('--backoff-base-ms', v), 'backoff base, ms'],
  '--backoff-max-ms': ['backoffMaxMs', (v) => positive('--backoff-max-ms', v), 'backoff cap, ms'],
  '--burst': ['burst', (v) => positive('--burst', v), 'seconds of quota an ECR token bucket holds'],
  '--quota-batch-get-image': ['quotas.BatchGetImage', (v) => positive('--quota-batch-get-image', v), 'BatchGetImage quota, calls/s'],
  '--quota-get-download-url-for-layer': ['quotas.GetDownloadUrlForLayer', (v) => positive('--quota-get-download-url-for-layer', v), 'GetDownloadUrlForLayer quota, calls/s'],
  '--quota-get-authorization-token': ['quotas.GetAuthorizationToken', (v) => positive('--quota-get-authorization-token', v), 'GetAuthorizationToken quota, calls/s'],
  '--new-max-concurrency': ['new.maxConcurrency', (v) => v, 'new path MaxConcurrency ("100", "20%")'],
  '--new-max-errors': ['new.maxErrors', (v) => v, 'new path MaxErrors ("0", "100%")'],
  '--new-jitter': ['new.jitter', (v) => nonNegative('--new-jitter', v), 'new path jitter, seconds'],
  '--new-delivery-timeout': ['new.deliveryTimeout', (v) => positive('--new-delivery-timeout', v), 'new path delivery timeout, seconds'],
};

function positive(flag, v) {
  const x = Number(v);
  if (!(x > 0)) throw new Error(`${flag}: a number above 0, got: '${v}'`);
  return x;
}
function nonNegative(flag, v) {
  const x = Number(v);
  if (!(x >= 0) || v === '') throw new Error(`${flag}: a number of at least 0, got: '${v}'`);
  return x;
}
function positiveInt(flag, v) {
  const x = positive(flag, v);
  if (!Number.isInteger(x)) throw new Error(`${flag}: a whole number above 0, got: '${v}'`);
  return x;
}
function share(flag, v) {
  const x = nonNegative(flag, v);
  if (x > 1) throw new Error(`${flag}: a share from 0 to 1, got: '${v}'`);
  return x;
}

/** Inputs from command-line arguments over DEFAULTS; null for --help. */
function parseArgs(argv) {
  const inputs = structuredClone(DEFAULTS);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') return null;
    const [name, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const flag = FLAGS[name];
    if (!flag) throw new Error(`unknown flag: ${name} (--help lists them)`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`${name}: a value is missing`);
    const [key, parse] = flag;
    const parts = key.split('.');
    const holder = parts.length === 2 ? inputs[parts[0]] : inputs;
    holder[parts[parts.length - 1]] = parse(value);
  }
  if (inputs.ackMax < inputs.ackMin) throw new Error(`--ack-max must be at least --ack-min, got: ${inputs.ackMax} < ${inputs.ackMin}`);
  // Fails early on a bad threshold rather than in the middle of the runs.
  new SendCommandDispatch({ targets: ['x'], maxConcurrency: inputs.new.maxConcurrency, maxErrors: inputs.new.maxErrors });
  return inputs;
}

function usage() {
  const lines = ['usage: node test/fleet/model.js [--flag value ...]', ''];
  for (const [flag, [key, , help]] of Object.entries(FLAGS)) {
    const parts = key.split('.');
    const value = parts.length === 2 ? DEFAULTS[parts[0]][parts[1]] : DEFAULTS[key];
    lines.push(`  ${flag.padEnd(36)} ${help} (default ${Array.isArray(value) ? value.join(',') : value})`);
  }
  return lines.join('\n');
}

/** Every fleet size, both paths, and the targets. */
function runAll(inputs = DEFAULTS) {
  const results = [];
  for (const n of inputs.nodes) {
    const fleet = createFleet(n, inputs);
    for (const path of ['old', 'new']) {
      results.push(simulate({ nodes: n, settings: inputs[path], inputs, path, fleet }));
    }
  }
  return { inputs: { ...inputs, medianPullSeconds: round(medianPullSeconds(inputs)) }, results, targets: evaluateTargets(results, inputs) };
}

function formatTable(report) {
  const header = ['nodes', 'path', 'warm/healthy', 's to 95%', 's to 100%', 'cold', 'BatchGetImage', 'GetDownloadUrl', 'GetAuthToken', 'targets'];
  const timeTarget = report.targets.details.find((d) => d.target.startsWith('95%'));
  const rows = report.results.map((r) => {
    let verdict = '';
    if (r.path === 'new') {
      const mine = report.targets.details.filter((d) => d.nodes === r.nodes);
      verdict = mine.every((d) => d.met) ? 'met' : `MISSED: ${mine.filter((d) => !d.met).map((d) => shortTarget(d)).join(', ')}`;
    }
    const pct = (api) => `${r.peakRates[api].perSecond}/s ${(r.peakRates[api].quotaFraction * 100).toFixed(1)}%`;
    return [
      String(r.nodes), r.path, `${r.warm}/${r.healthy}`,
      r.secondsTo95 === null ? 'never' : r.secondsTo95.toFixed(1),
      r.secondsTo100 === null ? 'never' : r.secondsTo100.toFixed(1),
      `${(r.coldFraction * 100).toFixed(1)}%`,
      pct('BatchGetImage'), pct('GetDownloadUrlForLayer'), pct('GetAuthorizationToken'), verdict,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  const i = report.inputs;
  return [
    `fleet model: ${i.imageGib} GiB image, ${i.layers} layers, ${i.nodeMibps} MiB/s per node, median pull ${i.medianPullSeconds} s; ` +
      `${i.failShare * 100}% failing, ${i.unreachableShare * 100}% unreachable nodes (at least 1 each); seed ${i.seed}`,
    `old: MaxConcurrency ${i.old.maxConcurrency}, MaxErrors ${i.old.maxErrors}, jitter ${i.old.jitter} s, delivery timeout ${i.old.deliveryTimeout} s`,
    `new: MaxConcurrency ${i.new.maxConcurrency}, MaxErrors ${i.new.maxErrors}, jitter ${i.new.jitter} s, delivery timeout ${i.new.deliveryTimeout} s`,
    'ECR columns: peak calls in one second (throttled included) and that peak as a share of the quota',
    '',
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    '',
    `targets (new path): ${report.targets.met ? 'all met' : 'NOT met'}` +
      (timeTarget ? `; 95% of ${timeTarget.nodes} within ${timeTarget.limit} s: ${timeTarget.value === null ? 'never' : `${timeTarget.value} s`}` : ''),
  ].join('\n');
}

function shortTarget(d) {
  if (d.target.startsWith('no healthy')) return `cold ${(d.value * 100).toFixed(1)}%`;
  if (d.target.startsWith('95%')) return `95% after ${d.value === null ? 'never' : `${d.value} s`} > ${d.limit} s`;
  return `${d.target.split(' ')[0]} ${(d.value * 100).toFixed(1)}% of quota`;
}

function main() {
  let inputs;
  try {
    inputs = parseArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
  if (inputs === null) {
    process.stdout.write(`${usage()}\n`);
    return;
  }
  const report = runAll(inputs);
  process.stdout.write(`${formatTable(report)}\n`);
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

module.exports = {
  jitterWait,
  APIS,
  DEFAULTS,
  createRng,
  EventQueue,
  TokenBucket,
  Ecr,
  backoffMs,
  medianPullSeconds,
  shareCount,
  createFleet,
  simulate,
  evaluateTargets,
  parseArgs,
  runAll,
  formatTable,
};

if (require.main === module) main();
