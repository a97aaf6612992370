'use strict';
// SendCommand's rate control, as the SSM documentation describes it, as a pure policy object: the
// local fleet test (test/fleet/run.sh, real nodes) and the fleet model (test/fleet/model.js, simulated
// time) both drive this one implementation, so they cannot disagree on the semantics.
//
// Sources (AWS Systems Manager user guide, "Run commands at scale" / "Using concurrency controls" and
// "Using error controls"; API reference, SendCommand):
// - MaxConcurrency: a number of targets, or a percentage of the targets, that run the command at the
//   same time. Default 50.
// - The command goes to one target first; once that one is acknowledged, to 2, then 4, ... doubling up
//   to MaxConcurrency; the other targets wait (Pending) for a free slot.
// - MaxErrors: after more than MaxErrors invocations have ended with an error, the command is not sent
//   to any target it has not been sent to yet (invocations already running go on). Default 0: the first
//   error stops the rollout. Errors are invocations that end Failed (any non-zero exit) or Execution
//   Timed Out; Delivery Timed Out, Undeliverable, Invalid Platform and Access Denied do not count.
// Assumptions no source states (the fleet model and the integ test's ListCommands check are where they
// meet reality): a percentage is rounded up and is at least 1 target; the ramp allows 2^k invocations
// at once once 2^(k-1) of them have been acknowledged in all (the guide: "to one, then once that is
// acknowledged, to 2, 4, ..."); a target whose agent does not answer (the driver calls unreachable())
// counts as acknowledged for the ramp, since SSM knows its ping status, but holds its slot until the
// delivery timeout ends it (DeliveryTimedOut).

/** Statuses that count against MaxErrors. */
const ERROR_STATUSES = new Set(['Failed', 'TimedOut']);
/** Every final status of an invocation. */
const FINAL_STATUSES = new Set(['Success', 'Failed', 'TimedOut', 'DeliveryTimedOut', 'Undeliverable', 'Cancelled', 'InvalidPlatform', 'AccessDenied']);

/**
 * Resolves a MaxConcurrency / MaxErrors value ("50", "20%") against the number of targets.
 * @param {string} value SSM's spelling
 * @param {number} targets number of targets
 * @param {boolean} allowZero MaxErrors may be 0, MaxConcurrency may not
 */
function resolveThreshold(value, targets, allowZero) {
  // SSM's patterns (SendCommand API reference): MaxConcurrency ^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$,
  // MaxErrors ^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$: no leading zeros, no 0% concurrency.
  const m = /^(0|[1-9][0-9]*)(%?)$/.exec(String(value));
  if (!m) throw new Error(`not a threshold: ${value}`);
  const n = Number(m[1]);
  if (m[2] === '%') {
    if (n > 100) throw new Error(`not a percentage: ${value}`);
    if (!allowZero && n < 1) throw new Error(`MaxConcurrency must be at least 1: ${value}`);
    const count = Math.ceil((targets * n) / 100);
    return allowZero ? count : Math.max(1, count);
  }
  if (!allowZero && n < 1) throw new Error(`MaxConcurrency must be at least 1: ${value}`);
  return n;
}

class SendCommandDispatch {
  /**
   * @param {{targets: string[], maxConcurrency?: string, maxErrors?: string}} options
   */
  constructor({ targets, maxConcurrency = '50', maxErrors = '0' }) {
    this.targets = [...targets];
    this.maxConcurrency = resolveThreshold(maxConcurrency, this.targets.length, false);
    this.maxErrors = resolveThreshold(maxErrors, this.targets.length, true);
    this.pending = [...this.targets];
    this.inFlight = new Set();
    this.unacknowledged = new Set();
    this.status = new Map();
    this.errors = 0;
    this.window = 1;
    this.acknowledgedCount = 0;
    this.stopped = false;
  }

  /** Starts the command: the targets to send to now. */
  start() {
    return this.#fill();
  }

  /** A target reports the command started (InProgress): the targets to send to now. */
  acknowledged(target) {
    this.#acknowledge(target);
    return this.#fill();
  }

  /**
   * A target's agent does not answer: it counts as acknowledged for the ramp but keeps its slot
   * until finished(target, 'DeliveryTimedOut'). The targets to send to now.
   */
  unreachable(target) {
    if (!this.inFlight.has(target)) throw new Error(`not in flight: ${target}`);
    this.#acknowledge(target);
    return this.#fill();
  }

  /** A target's invocation ended with a final status: the targets to send to now. */
  finished(target, status) {
    if (!FINAL_STATUSES.has(status)) throw new Error(`not a final status: ${status}`);
    if (!this.inFlight.has(target)) throw new Error(`not in flight: ${target}`);
    this.#acknowledge(target);
    this.inFlight.delete(target);
    this.status.set(target, status);
    if (ERROR_STATUSES.has(status)) {
      this.errors += 1;
      if (this.errors > this.maxErrors) this.stopped = true;
    }
    return this.#fill();
  }

  /** Nothing is running and nothing more will be sent. */
  get done() {
    return this.inFlight.size === 0 && (this.stopped || this.pending.length === 0);
  }

  /** Targets the command was never sent to (the rollout stopped before them). */
  get notSent() {
    return this.stopped ? [...this.pending] : [];
  }

  #acknowledge(target) {
    if (this.unacknowledged.delete(target)) this.acknowledgedCount += 1;
  }

  #fill() {
    if (this.stopped) return [];
    // The ramp: 1 target at once, then 2, 4, ...: the window doubles each time as many invocations
    // as it allows have been acknowledged in all.
    while (this.window < this.maxConcurrency && this.acknowledgedCount >= this.window) {
      this.window = Math.min(this.window * 2, this.maxConcurrency);
    }
    const send = [];
    while (this.pending.length > 0 && this.inFlight.size < Math.min(this.window, this.maxConcurrency)) {
      const target = this.pending.shift();
      this.inFlight.add(target);
      this.unacknowledged.add(target);
      send.push(target);
    }
    return send;
  }
}

module.exports = { SendCommandDispatch, resolveThreshold, ERROR_STATUSES, FINAL_STATUSES };
