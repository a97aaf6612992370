// test/fleet/dispatch.js: SendCommand's rate control (ramp, MaxConcurrency, MaxErrors) as the SSM
// documentation describes it. The fleet model (test/fleet/model.js) and the local fleet test drive it.

interface Dispatch {
  readonly maxConcurrency: number;
  readonly maxErrors: number;
  readonly errors: number;
  readonly inFlight: Set<string>;
  readonly stopped: boolean;
  readonly done: boolean;
  readonly notSent: string[];
  start(): string[];
  acknowledged(target: string): string[];
  unreachable(target: string): string[];
  finished(target: string, status: string): string[];
}
interface DispatchModule {
  SendCommandDispatch: new (options: { targets: string[]; maxConcurrency?: string; maxErrors?: string }) => Dispatch;
  resolveThreshold(value: string, targets: number, allowZero: boolean): number;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { SendCommandDispatch, resolveThreshold }: DispatchModule = require('./fleet/dispatch');

function targets(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `i-${String(i).padStart(4, '0')}`);
}

/** Acknowledges every target as soon as it is sent, never finishes one: in-flight count per round. */
function rampRounds(dispatch: Dispatch): number[] {
  const rounds: number[] = [];
  let batch = dispatch.start();
  while (batch.length > 0) {
    rounds.push(dispatch.inFlight.size);
    const next: string[] = [];
    for (const target of batch) next.push(...dispatch.acknowledged(target));
    batch = next;
  }
  return rounds;
}

describe('resolveThreshold', () => {
  test.each([
    ['50', 1000, false, 50],
    ['50', 10, false, 50],
    ['100%', 5000, false, 5000],
    ['20%', 7, false, 2], // 1.4 rounds up
    ['1%', 10, false, 1], // 0.1 rounds up
    ['1%', 1000, false, 10],
    ['0', 10, true, 0],
    ['0%', 10, true, 0],
    ['1%', 50, true, 1], // 0.5 rounds up
    ['10%', 20, true, 2],
    ['100%', 3, true, 3],
  ])('%s of %i targets (zero allowed: %s) is %i', (value, n, allowZero, expected) => {
    expect(resolveThreshold(value, n, allowZero)).toBe(expected);
  });

  test.each([
    ['abc', true, 'not a threshold: abc'],
    ['-1', true, 'not a threshold: -1'],
    ['5.5', true, 'not a threshold: 5.5'],
    ['101%', true, 'not a percentage: 101%'],
    ['0', false, 'MaxConcurrency must be at least 1: 0'],
    ['0%', false, 'MaxConcurrency must be at least 1: 0%'],
    ['05', true, 'not a threshold: 05'],
  ])('rejects %s', (value, allowZero, message) => {
    expect(() => resolveThreshold(value, 10, allowZero)).toThrow(message);
  });

  test('SendCommand defaults: MaxConcurrency 50, MaxErrors 0', () => {
    const dispatch = new SendCommandDispatch({ targets: targets(500) });
    expect(dispatch.maxConcurrency).toBe(50);
    expect(dispatch.maxErrors).toBe(0);
  });
});

describe('SendCommandDispatch ramp', () => {
  test('sends to 1 target, then doubles to 2, 4, 8, ... in flight once every invocation is acknowledged', () => {
    const dispatch = new SendCommandDispatch({ targets: targets(100), maxConcurrency: '100%', maxErrors: '100%' });
    expect(rampRounds(dispatch)).toEqual([1, 2, 4, 8, 16, 32, 64, 100]);
  });

  test('stops doubling at MaxConcurrency', () => {
    const dispatch = new SendCommandDispatch({ targets: targets(100), maxConcurrency: '10', maxErrors: '100%' });
    expect(rampRounds(dispatch)).toEqual([1, 2, 4, 8, 10]);
  });

  test('a percentage MaxConcurrency is taken of the targets', () => {
    const dispatch = new SendCommandDispatch({ targets: targets(200), maxConcurrency: '10%', maxErrors: '100%' });
    expect(rampRounds(dispatch)).toEqual([1, 2, 4, 8, 16, 20]);
  });

  test('doubles once as many invocations as the window allows have been acknowledged', () => {
    const all = targets(10);
    const dispatch = new SendCommandDispatch({ targets: all, maxConcurrency: '100%', maxErrors: '100%' });
    expect(dispatch.start()).toEqual([all[0]]);
    expect(dispatch.acknowledged(all[0])).toEqual([all[1]]);
    // all[0] finishing frees a slot in the window of 2: one more, no doubling yet (1 acknowledged).
    expect(dispatch.finished(all[0], 'Success')).toEqual([all[2]]);
    expect(dispatch.inFlight.size).toBe(2);
    // The second acknowledgement (any of the two in flight) doubles the window to 4.
    expect(dispatch.acknowledged(all[2])).toEqual([all[3], all[4]]);
    expect(dispatch.inFlight.size).toBe(4);
  });

  test('an unreachable target counts as acknowledged for the ramp but keeps its slot until DeliveryTimedOut', () => {
    const all = targets(20);
    const dispatch = new SendCommandDispatch({ targets: all, maxConcurrency: '100%', maxErrors: '0' });
    dispatch.start();
    expect(dispatch.acknowledged(all[0])).toEqual([all[1]]);
    // all[1]'s agent does not answer: the window still doubles to 4, all[1] keeps its slot.
    expect(dispatch.unreachable(all[1])).toEqual([all[2], all[3]]);
    expect(dispatch.inFlight.has(all[1])).toBe(true);
    // Its delivery timeout frees the slot and is not an error (MaxErrors 0 goes on).
    expect(dispatch.finished(all[1], 'DeliveryTimedOut')).toEqual([all[4]]);
    expect(dispatch.errors).toBe(0);
    expect(dispatch.stopped).toBe(false);
    expect(() => dispatch.unreachable(all[19])).toThrow('not in flight');
  });
});

describe('SendCommandDispatch MaxErrors', () => {
  test('MaxErrors 0 stops at the first Failed: the rest are never sent', () => {
    const all = targets(20);
    const dispatch = new SendCommandDispatch({ targets: all, maxConcurrency: '4', maxErrors: '0' });
    const sent = new Set<string>();
    let batch = dispatch.start();
    while (sent.size < 4) {
      batch.forEach((t) => sent.add(t));
      batch = batch.flatMap((t) => dispatch.acknowledged(t));
    }
    batch.forEach((t) => sent.add(t));
    expect([...sent]).toEqual(all.slice(0, 4));

    expect(dispatch.finished(all[2], 'Failed')).toEqual([]);
    expect(dispatch.errors).toBe(1);
    // Invocations already running go on; finishing them sends nothing more.
    expect(dispatch.finished(all[0], 'Success')).toEqual([]);
    expect(dispatch.done).toBe(false);
    expect(dispatch.finished(all[1], 'Success')).toEqual([]);
    expect(dispatch.finished(all[3], 'Success')).toEqual([]);
    expect(dispatch.done).toBe(true);
    expect(dispatch.notSent).toEqual(all.slice(4));
  });

  test.each(['Failed', 'TimedOut'])('%s counts as an error', (status) => {
    const all = targets(5);
    const dispatch = new SendCommandDispatch({ targets: all, maxConcurrency: '1', maxErrors: '0' });
    dispatch.start();
    dispatch.acknowledged(all[0]);
    expect(dispatch.finished(all[0], status)).toEqual([]);
    expect(dispatch.done).toBe(true);
    expect(dispatch.notSent).toEqual(all.slice(1));
  });

  test.each(['DeliveryTimedOut', 'Undeliverable', 'InvalidPlatform', 'AccessDenied'])('%s does not count as an error', (status) => {
    const all = targets(5);
    const dispatch = new SendCommandDispatch({ targets: all, maxConcurrency: '1', maxErrors: '0' });
    dispatch.start();
    expect(dispatch.finished(all[0], status)).toEqual([all[1]]);
    expect(dispatch.errors).toBe(0);
    expect(dispatch.notSent).toEqual([]);
  });

  test('MaxErrors 1 stops at the second error, not the first', () => {
    const all = targets(6);
    const dispatch = new SendCommandDispatch({ targets: all, maxConcurrency: '1', maxErrors: '1' });
    dispatch.start();
    dispatch.acknowledged(all[0]);
    expect(dispatch.finished(all[0], 'Failed')).toEqual([all[1]]);
    dispatch.acknowledged(all[1]);
    expect(dispatch.finished(all[1], 'Failed')).toEqual([]);
    expect(dispatch.notSent).toEqual(all.slice(2));
  });

  test('a percentage MaxErrors: 10% of 20 targets tolerates 2 errors, the third stops', () => {
    const all = targets(20);
    const dispatch = new SendCommandDispatch({ targets: all, maxConcurrency: '1', maxErrors: '10%' });
    let next = dispatch.start();
    for (let i = 0; i < 3; i++) {
      expect(next).toEqual([all[i]]);
      dispatch.acknowledged(all[i]);
      next = dispatch.finished(all[i], 'Failed');
    }
    expect(next).toEqual([]);
    expect(dispatch.errors).toBe(3);
    expect(dispatch.notSent).toHaveLength(17);
  });

  test('MaxErrors 100% sends to every target whatever fails', () => {
    const all = targets(8);
    const dispatch = new SendCommandDispatch({ targets: all, maxConcurrency: '2', maxErrors: '100%' });
    const sent: string[] = [];
    const queue = dispatch.start();
    while (queue.length > 0) {
      const target = queue.shift()!;
      sent.push(target);
      queue.push(...dispatch.acknowledged(target), ...dispatch.finished(target, 'Failed'));
    }
    expect(sent.sort()).toEqual(all);
    expect(dispatch.done).toBe(true);
    expect(dispatch.notSent).toEqual([]);
  });

  test('rejects a status that is not final, and a target not in flight', () => {
    const all = targets(3);
    const dispatch = new SendCommandDispatch({ targets: all });
    dispatch.start();
    expect(() => dispatch.finished(all[0], 'InProgress')).toThrow('not a final status: InProgress');
    expect(() => dispatch.finished(all[1], 'Success')).toThrow(`not in flight: ${all[1]}`);
  });
});
