/**
 * Busy polling: while an answer is expected soon, keep this thread's event loop polling its
 * sockets instead of going to sleep, so that the answer is read the moment it arrives.
 *
 * Why: on a sequential round trip most of the time is not JavaScript but waking up. A thread
 * that sleeps in epoll_wait (and, in a VM, a vCPU that halts) takes tens of microseconds to run
 * again when its answer arrives; on the 2-core VM of our benchmarks a bare ws echo went from
 * ~42 µs to ~27 µs per round trip when both sides polled after each message. Low-latency systems
 * do the same (Linux's SO_BUSY_POLL, Aeron's idle strategies, piscina's `atomics` waits).
 *
 * How long: `PollRule` (shared/poll-rule.ts) decides from how past waits went, polled and
 * slept: it polls while that makes answers come sooner, for about twice the typical polled
 * wait and never more than the budget, and probes at moments of the wall clock shared by every
 * process (the other side of a round trip probes at the same moments) to find out whether that
 * changed; not at all while other work waits for the cores (`coresContended` below).
 * The poll stops as soon as the answer is in (`answered()`).
 *
 * How: a chain of (ref'ed) setImmediate callbacks. While an immediate is pending, Node's event
 * loop polls with a zero timeout, so sockets are still read as soon as data is there. A budget
 * of 0 turns it off.
 *
 * Not under Deno: its event loop does not poll sockets cheaply while callbacks keep it busy
 * (with setImmediate or a MessageChannel alike), so a sequential round trip there gets slower,
 * not faster, with polling; there it is always off (figures in docs/performance.md).
 */
import { availableParallelism, loadavg } from 'node:os';
import { PollRule, type PollRuleState } from './poll-rule.ts';
import { IS_DENO } from './runtime.ts';

/** How often whether the cores are contended is asked again, ms. */
const CONTENTION_EVERY_MS = 1_000;

let contended = false;
let contentionAskedAt = -Infinity;

/**
 * Whether other work is waiting for the cores (asked at most once per CONTENTION_EVERY_MS): a
 * load average of at least two more than the cores. Two, because both sides of a round trip on
 * one machine poll: together they add up to two to the load, and other work must add about as
 * much again before polling takes cores it needs. Not Linux's CPU pressure information: on a VM it counts a halted vCPU's slow wake-up
 * as a task waiting for a core, so sequential round trips without polling read as contended,
 * which kept polling off exactly where it pays. Within that bound, the rule's own figures decide: a poller that takes a core the
 * answer needs sees its polled waits grow, and stops.
 */
function coresContended(now: number): boolean {
  if (now - contentionAskedAt < CONTENTION_EVERY_MS) return contended;
  contentionAskedAt = now;
  return (contended = loadavg()[0]! >= availableParallelism() + 2);
}

export class BusyPoll {
  readonly #rule: PollRule;
  readonly #enabled: boolean;
  #until = 0;
  #spinning = false;
  /** When the current wait began (undefined: not waiting). */
  #waitingSince: number | undefined;
  /** How long the current wait polls for, ms (0: it sleeps). */
  #pollMs = 0;

  /** `budgetMicros`: the longest it polls for one answer (0: never). */
  constructor(budgetMicros: number) {
    const budgetMs = IS_DENO ? 0 : budgetMicros / 1000;
    this.#enabled = budgetMs > 0;
    this.#rule = new PollRule(budgetMs);
  }

  get enabled(): boolean {
    return this.#enabled;
  }

  /** What the rule has measured so far (see PollRule). */
  get state(): PollRuleState {
    return this.#rule.state;
  }

  /**
   * An answer is expected: poll for it if the rule says polling wins (a wait already under way
   * polls on for as long again from now).
   */
  expectAnswer(): void {
    if (!this.#enabled) return;
    const now = performance.now();
    if (this.#waitingSince === undefined) {
      this.#waitingSince = now;
      // The rule's probe windows are moments of the wall clock, shared with the other side.
      this.#pollMs = this.#rule.next(coresContended(now), performance.timeOrigin + now);
    }
    if (this.#pollMs <= 0) return;
    this.#until = Math.max(this.#until, now + this.#pollMs);
    if (this.#spinning) return;
    this.#spinning = true;
    setImmediate(this.#spin);
  }

  /** The answer came (or nothing is awaited any more): tell the rule how the wait went, stop polling. */
  answered(): void {
    const since = this.#waitingSince;
    if (since === undefined) return;
    this.#waitingSince = undefined;
    const polled = this.#pollMs > 0 ? this.#until - since : 0;
    this.#rule.record(performance.now() - since, polled);
    this.#until = 0;
  }

  readonly #spin = (): void => {
    if (performance.now() < this.#until) setImmediate(this.#spin);
    else this.#spinning = false;
  };
}
