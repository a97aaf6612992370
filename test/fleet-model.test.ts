// test/fleet/model.js, the fleet benchmark's simulation, piece by piece and on small scenarios whose
// answer is known by hand.

interface Settings { maxConcurrency: string; maxErrors: string; jitter: number; deliveryTimeout: number; jitterFromPush?: boolean }
interface Inputs {
  nodes: number[];
  seed: string | number;
  imageGib: number;
  nodeMibps: number;
  layers: number;
  overhead: number;
  sigma: number;
  fixedCost: number;
  ackMin: number;
  ackMax: number;
  failShare: number;
  unreachableShare: number;
  failAfter: number;
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  burst: number;
  quotas: { [api: string]: number };
  old: Settings;
  new: Settings;
  targetTimeNodes: number;
  targetQuotaNodes: number;
  targetQuotaFraction: number;
}
interface Peak { perSecond: number; quotaFraction: number; acceptedPerSecond: number; throttled: number }
interface Result {
  nodes: number;
  path: string;
  failing: number;
  unreachable: number;
  healthy: number;
  warm: number;
  secondsTo95: number | null;
  secondsTo100: number | null;
  coldFraction: number;
  notSent: number;
  statuses: { [status: string]: number };
  retries: number;
  throttleFailures: number;
  commandSeconds: number;
  peakRates: { [api: string]: Peak };
}
interface FleetNode { id: string; kind: 'healthy' | 'failing' | 'unreachable'; ackSeconds: number; jitterFraction: number; pullSeconds: number }
interface Target { target: string; nodes: number; value: number | null; met: boolean }
interface Report { inputs: Inputs; results: Result[]; targets: { met: boolean; details: Target[] } }
interface Rng { next(): number; uniform(a: number, b: number): number; normal(): number; shuffle<T>(items: T[]): T[] }
interface ModelModule {
  DEFAULTS: Inputs;
  EventQueue: new () => { size: number; push(time: number, event: unknown): void; pop(): { time: number; event: unknown } | undefined };
  TokenBucket: new (rate: number, capacity: number) => { take(t: number): boolean };
  createRng(seed: string | number): Rng;
  backoffMs(attempt: number, random: () => number, baseMs: number, maxMs: number): number;
  medianPullSeconds(inputs: Inputs): number;
  jitterWait(node: { jitterFraction: number }, t: number, settings: { jitter: number; jitterFromPush?: boolean }, random: () => number): number;
  shareCount(share: number, n: number): number;
  createFleet(n: number, inputs: Inputs): FleetNode[];
  simulate(options: { nodes: number; settings: Settings; inputs?: Inputs; path?: string; fleet?: FleetNode[] }): Result;
  evaluateTargets(results: Result[], inputs?: Inputs): Report['targets'];
  parseArgs(argv: string[]): Inputs | null;
  runAll(inputs?: Inputs): Report;
  formatTable(report: Report): string;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const model: ModelModule = require('./fleet/model');

const { DEFAULTS } = model;

/** Inputs where nothing is random: every node acknowledges in 1 s, no jitter, no spread, no failures. */
function fixedInputs(overrides: Partial<Inputs> = {}): Inputs {
  return {
    ...structuredClone(DEFAULTS),
    ackMin: 1,
    ackMax: 1,
    fixedCost: 0,
    sigma: 0,
    failShare: 0,
    unreachableShare: 0,
    ...overrides,
  };
}
const ALL_AT_ONCE: Settings = { maxConcurrency: '100%', maxErrors: '100%', jitter: 0, deliveryTimeout: 600 };
const PULL = (1024 / 120) * 1.041; // 1 GiB at 120 MiB/s, script overhead 1.041 (the 2.2.9 bench)

describe('pieces', () => {
  test('the PRNG repeats for a seed and differs between seeds', () => {
    const a = model.createRng('x');
    const b = model.createRng('x');
    const c = model.createRng('y');
    const seqA = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(seqA);
    expect(Array.from({ length: 5 }, () => c.next())).not.toEqual(seqA);
    for (const v of seqA) {
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThan(1);
    }
  });

  test('the PRNG normal has mean 0 and deviation 1', () => {
    const rng = model.createRng(1);
    const xs = Array.from({ length: 20000 }, () => rng.normal());
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length);
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(sd - 1)).toBeLessThan(0.03);
  });

  test('the event queue pops by time, and in insertion order at equal times', () => {
    const queue = new model.EventQueue();
    const rng = model.createRng('queue');
    const times = Array.from({ length: 500 }, () => Math.floor(rng.next() * 50));
    times.forEach((t, i) => queue.push(t, i));
    const popped: Array<{ time: number; event: unknown }> = [];
    for (let item = queue.pop(); item; item = queue.pop()) popped.push(item);
    expect(popped).toHaveLength(500);
    for (let i = 1; i < popped.length; i++) {
      const [prev, cur] = [popped[i - 1], popped[i]];
      expect(cur.time).toBeGreaterThanOrEqual(prev.time);
      if (cur.time === prev.time) expect(cur.event as number).toBeGreaterThan(prev.event as number);
    }
    expect(queue.pop()).toBeUndefined();
  });

  test('a token bucket lets its capacity through at once, then its rate', () => {
    const bucket = new model.TokenBucket(5, 5);
    const first = Array.from({ length: 7 }, () => bucket.take(0));
    expect(first).toEqual([true, true, true, true, true, false, false]);
    expect(bucket.take(0.1)).toBe(false); // half a token
    expect(bucket.take(0.2)).toBe(true);
    expect(bucket.take(0.2)).toBe(false);
    expect([bucket.take(10), bucket.take(10), bucket.take(10), bucket.take(10), bucket.take(10), bucket.take(10)])
      .toEqual([true, true, true, true, true, false]); // never more than the capacity
  });

  test.each([
    [1, 0, 500],
    [1, 1, 1000],
    [2, 0, 1000],
    [3, 0.5, 3000],
    [5, 1, 16000],
    [6, 0, 15000], // 32 s is capped at 30 s
    [6, 1, 30000],
  ])('backoff after attempt %i with random %s waits %i ms', (attempt, random, expected) => {
    expect(model.backoffMs(attempt, () => random, 1000, 30000)).toBe(expected);
  });

  test('median pull seconds come from the single-node benchmark', () => {
    expect(model.medianPullSeconds(DEFAULTS)).toBeCloseTo(8.8832, 9);
    expect(model.medianPullSeconds({ ...DEFAULTS, imageGib: 10, nodeMibps: 500, overhead: 0 })).toBeCloseTo(20.48, 9);
  });

  test.each([
    [0.01, 10, 1],
    [0.01, 50, 1],
    [0.01, 100, 1],
    [0.01, 5000, 50],
    [0.07, 100, 7],
    [0, 10, 0],
    [1, 10, 10],
  ])('share %s of %i nodes is %i', (share, n, expected) => {
    expect(model.shareCount(share, n)).toBe(expected);
  });

  test('failing and unreachable nodes are drawn from the whole fleet, the same for a seed', () => {
    const fleet = model.createFleet(1000, DEFAULTS);
    const failing = fleet.flatMap((node, i) => (node.kind === 'failing' ? [i] : []));
    const unreachable = fleet.flatMap((node, i) => (node.kind === 'unreachable' ? [i] : []));
    expect(failing).toHaveLength(10);
    expect(unreachable).toHaveLength(10);
    expect(failing.filter((i) => unreachable.includes(i))).toEqual([]);
    expect(Math.max(...failing)).toBeGreaterThan(500);
    expect(Math.min(...failing, ...unreachable)).toBeGreaterThan(0);
    expect(model.createFleet(1000, DEFAULTS)).toEqual(fleet);
    expect(model.createFleet(1000, { ...DEFAULTS, seed: 'other' })).not.toEqual(fleet);
  });

  test('pull times spread lognormally around the median', () => {
    const fleet = model.createFleet(5000, DEFAULTS);
    const pulls = fleet.map((node) => node.pullSeconds).sort((a, b) => a - b);
    expect(pulls[2500]).toBeGreaterThan(PULL * 0.98);
    expect(pulls[2500]).toBeLessThan(PULL * 1.02);
    // sigma 0.15: the 84th percentile is about e^0.15 times the median
    expect(pulls[4200] / pulls[2500]).toBeGreaterThan(Math.exp(0.13));
    expect(pulls[4200] / pulls[2500]).toBeLessThan(Math.exp(0.17));
  });
});

describe('a small deterministic rollout', () => {
  test('4 nodes at 100%: the ramp 1, 2, 4 gives warm times 1 + pull, 2 + pull, 3 + pull', () => {
    const inputs = fixedInputs();
    const r = model.simulate({ nodes: 4, settings: ALL_AT_ONCE, inputs });
    // t=0 send node 0; t=1 it acknowledges (pulls now), window 2: send node 1; t=2 node 1 acknowledges,
    // window 4: send nodes 2 and 3, which acknowledge at t=3.
    expect(r.warm).toBe(4);
    expect(r.healthy).toBe(4);
    expect(r.secondsTo100).toBeCloseTo(3 + PULL, 3);
    expect(r.secondsTo95).toBeCloseTo(3 + PULL, 3);
    expect(r.coldFraction).toBe(0);
    expect(r.statuses).toEqual({ Success: 4 });
    // Nodes 2 and 3 call ECR in the same second: 2 tokens, 2 x 2 manifest reads, 2 x 9 blob URLs.
    expect(r.peakRates.GetAuthorizationToken.perSecond).toBe(2);
    expect(r.peakRates.BatchGetImage.perSecond).toBe(4);
    expect(r.peakRates.GetDownloadUrlForLayer.perSecond).toBe(18);
    expect(r.peakRates.BatchGetImage.quotaFraction).toBe(0.002);
    expect(r.retries).toBe(0);
  });

  test('MaxConcurrency 1 runs the nodes one after the other', () => {
    const r = model.simulate({ nodes: 4, settings: { ...ALL_AT_ONCE, maxConcurrency: '1' }, inputs: fixedInputs() });
    expect(r.secondsTo100).toBeCloseTo(4 * (1 + PULL), 3);
    expect(r.peakRates.BatchGetImage.perSecond).toBe(2);
  });

  test('jitter delays each node by its fraction of the jitter, counted from when it got the command', () => {
    const inputs = fixedInputs();
    const fleet = model.createFleet(1, inputs);
    const r = model.simulate({ nodes: 1, settings: { ...ALL_AT_ONCE, jitter: 60 }, inputs, fleet });
    expect(r.secondsTo100).toBeCloseTo(1 + fleet[0].jitterFraction * 60 + PULL, 3);
  });

  test('with the push time (the new path), the jitter slot counts from the push', () => {
    const inputs = fixedInputs();
    const fleet = model.createFleet(1, inputs);
    const r = model.simulate({ nodes: 1, settings: { ...ALL_AT_ONCE, jitter: 60, jitterFromPush: true }, inputs, fleet });
    // The node gets the command 1 s after the push: its slot is still ahead (fraction x 60 > 1).
    expect(fleet[0].jitterFraction * 60).toBeGreaterThan(1);
    expect(r.secondsTo100).toBeCloseTo(fleet[0].jitterFraction * 60 + PULL, 3);
  });

  test.each([
    // [slot fraction, seconds since the push, random, expected wait]
    [0.5, 10, 0.9, 20], // slot 30 s ahead of a node reached at 10 s: waits the 20 s left
    [0.1, 10, 0.5, 5], // slot 6 s passed at 10 s: a random part of the 10 s since the push
    [0.1, 100, 0.5, 30], // ... at most the jitter (60 s)
  ])('jitterWait: slot %s x 60 s, %s s after the push, random %s -> %s s', (fraction, t, random, expected) => {
    expect(model.jitterWait({ jitterFraction: fraction }, t, { jitter: 60, jitterFromPush: true }, () => random)).toBeCloseTo(expected, 9);
    expect(model.jitterWait({ jitterFraction: fraction }, t, { jitter: 60 }, () => random)).toBeCloseTo(fraction * 60, 9);
  });

  test('the same inputs give the same figures', () => {
    const inputs = { ...structuredClone(DEFAULTS), nodes: [10, 50] };
    expect(JSON.stringify(model.runAll(inputs))).toBe(JSON.stringify(model.runAll(structuredClone(inputs))));
  });
});

describe('errors and timeouts', () => {
  const fleetOf = (n: number, kinds: { [index: number]: FleetNode['kind'] }, inputs: Inputs) =>
    model.createFleet(n, inputs).map((node, i) => ({ ...node, kind: kinds[i] ?? 'healthy' }));

  test('MaxErrors 0: the first Failed node stops the rollout, and the healthy nodes not sent to stay cold', () => {
    const inputs = fixedInputs();
    const fleet = fleetOf(20, { 0: 'failing' }, inputs);
    const r = model.simulate({ nodes: 20, settings: { ...ALL_AT_ONCE, maxErrors: '0' }, inputs, fleet });
    // Node 0 fails 1 s after it acknowledges (t=2); by then nodes 1 (window 2) and 2, 3 (window 4, at t=2) were sent.
    expect(r.statuses.Failed).toBe(1);
    expect(r.notSent).toBe(16);
    expect(r.healthy).toBe(19);
    expect(r.warm).toBe(3);
    expect(r.coldFraction).toBeCloseTo(16 / 19, 4);
    expect(r.secondsTo95).toBeNull();
    expect(r.secondsTo100).toBeNull();

    const tolerant = model.simulate({ nodes: 20, settings: ALL_AT_ONCE, inputs, fleet });
    expect(tolerant.notSent).toBe(0);
    expect(tolerant.warm).toBe(19);
    expect(tolerant.coldFraction).toBe(0);
  });

  test('an unreachable node ends DeliveryTimedOut after the delivery timeout, and does not count against MaxErrors 0', () => {
    const inputs = fixedInputs();
    const fleet = fleetOf(10, { 3: 'unreachable' }, inputs);
    const r = model.simulate({ nodes: 10, settings: { ...ALL_AT_ONCE, maxErrors: '0', deliveryTimeout: 3600 }, inputs, fleet });
    expect(r.statuses).toEqual({ Success: 9, DeliveryTimedOut: 1 });
    expect(r.notSent).toBe(0);
    expect(r.warm).toBe(9);
    expect(r.healthy).toBe(9);
    expect(r.commandSeconds).toBeGreaterThanOrEqual(3600);
  });

  test('the old path (50, 0, 30 s, 3600 s) leaves most of a large fleet cold; the new path none', () => {
    const report = model.runAll({ ...structuredClone(DEFAULTS), nodes: [500] });
    const [old, fresh] = report.results;
    expect(old.path).toBe('old');
    expect(old.statuses.Failed).toBe(1);
    expect(old.coldFraction).toBeGreaterThan(0.5);
    expect(fresh.path).toBe('new');
    expect(fresh.coldFraction).toBe(0);
    expect(fresh.statuses.Failed).toBe(5);
    expect(fresh.statuses.DeliveryTimedOut).toBe(5);
  });
});

describe('ECR throttling', () => {
  // 200 nodes, no jitter, a GetAuthorizationToken quota of 5/s: the ramp sends 64 then 128 nodes that
  // ask for a token in the same second.
  const inputs = fixedInputs({ quotas: { ...DEFAULTS.quotas, GetAuthorizationToken: 5 } });

  test('throttled calls are retried with backoff, and the accepted rate is held to the bucket', () => {
    const r = model.simulate({ nodes: 200, settings: ALL_AT_ONCE, inputs: { ...inputs, maxAttempts: 10, backoffMaxMs: 120000 } });
    const token = r.peakRates.GetAuthorizationToken;
    expect(r.retries).toBeGreaterThan(0);
    expect(token.throttled).toBeGreaterThan(0);
    expect(token.perSecond).toBeGreaterThan(token.acceptedPerSecond);
    // A bucket of 1 s (5 tokens) refilled at 5/s lets at most 10 through in any second.
    expect(token.acceptedPerSecond).toBeLessThanOrEqual(10);
    expect(token.quotaFraction).toBeGreaterThan(1);
  });

  test('a node that is still throttled after maxAttempts fails and stays cold', () => {
    const r = model.simulate({ nodes: 200, settings: ALL_AT_ONCE, inputs: { ...inputs, maxAttempts: 2 } });
    expect(r.throttleFailures).toBeGreaterThan(0);
    expect(r.statuses.Failed).toBe(r.throttleFailures);
    expect(r.warm).toBe(200 - r.throttleFailures);
    expect(r.coldFraction).toBeGreaterThan(0);
  });

  test('with the default quotas the same rollout is never throttled', () => {
    const r = model.simulate({ nodes: 200, settings: ALL_AT_ONCE, inputs: fixedInputs() });
    expect(r.retries).toBe(0);
    expect(r.peakRates.GetAuthorizationToken.throttled).toBe(0);
  });
});

describe('targets and command line', () => {
  const base = model.simulate({ nodes: 4, settings: ALL_AT_ONCE, inputs: fixedInputs() });
  const result = (overrides: Partial<Result>): Result => ({ ...base, path: 'new', ...overrides });

  test('targets are met only when nothing is cold, the 1,000-node rollout is fast enough and the 5,000-node one under 50%', () => {
    const deadline = DEFAULTS.new.jitter + 2 * PULL;
    const fast = result({ nodes: 1000, secondsTo95: deadline - 1 });
    const quiet = result({ nodes: 5000 });
    expect(model.evaluateTargets([fast, quiet]).met).toBe(true);
    expect(model.evaluateTargets([result({ nodes: 1000, secondsTo95: deadline + 1 }), quiet]).met).toBe(false);
    expect(model.evaluateTargets([result({ nodes: 1000, secondsTo95: null }), quiet]).met).toBe(false);
    expect(model.evaluateTargets([fast, result({ nodes: 5000, coldFraction: 0.001 })]).met).toBe(false);
    const busy = { ...base.peakRates, GetDownloadUrlForLayer: { ...base.peakRates.GetDownloadUrlForLayer, quotaFraction: 0.51 } };
    expect(model.evaluateTargets([fast, result({ nodes: 5000, peakRates: busy })]).met).toBe(false);
    expect(model.evaluateTargets([fast]).met).toBe(false); // no 5,000-node run
    // The old path is not held to the targets.
    expect(model.evaluateTargets([fast, quiet, result({ nodes: 1000, path: 'old', coldFraction: 0.9 })]).met).toBe(true);
  });

  test('flags override the defaults', () => {
    const inputs = model.parseArgs(['--nodes', '10,20', '--new-jitter', '120', '--new-max-concurrency=20%', '--layers', '3', '--quota-batch-get-image', '100'])!;
    expect(inputs.nodes).toEqual([10, 20]);
    expect(inputs.new).toEqual({ ...DEFAULTS.new, jitter: 120, maxConcurrency: '20%' });
    expect(inputs.layers).toBe(3);
    expect(inputs.quotas.BatchGetImage).toBe(100);
    expect(DEFAULTS.new.jitter).not.toBe(120);
    expect(model.parseArgs(['--help'])).toBeNull();
  });

  test.each([
    [['--bogus', '1'], 'unknown flag: --bogus'],
    [['--new-jitter'], '--new-jitter: a value is missing'],
    [['--layers', '2.5'], "--layers: a whole number above 0, got: '2.5'"],
    [['--fail-share', '2'], "--fail-share: a share from 0 to 1, got: '2'"],
    [['--new-max-concurrency', '0'], 'MaxConcurrency must be at least 1: 0'],
    [['--new-max-errors', 'all'], 'not a threshold: all'],
  ])('rejects %j', (argv, message) => {
    expect(() => model.parseArgs(argv)).toThrow(message);
  });

  test('the table has a row per fleet size and path', () => {
    const report = model.runAll({ ...structuredClone(DEFAULTS), nodes: [10, 50] });
    const table = model.formatTable(report);
    const rows = table.split('\n').filter((line) => /^(10|50) +(old|new) /.test(line));
    expect(rows).toHaveLength(4);
    expect(table).toContain('warm/healthy');
  });
});
