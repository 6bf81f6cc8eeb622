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
 * How long: the coordinator decides for both sides of a round trip. Its `PollRule`
 * (shared/poll-rule.ts) measures round trips with both sides polling and with both asleep, polls
 * while that makes answers come sooner (up to the budget for each answer), probes now and then
 * to find out whether that changed, and does not poll at all while other work waits for the
 * cores (`coresContended` below). With each message it tells the task thread how long to poll
 * for the next one after answering (`run`'s `poll`), which the thread does (`pollFor`), within
 * its own budget. A poll stops as soon as the answer is in.
 *
 * How: a chain of (ref'ed) setImmediate callbacks. While an immediate is pending, Node's event
 * loop polls with a zero timeout, so sockets are still read as soon as data is there. A budget
 * of 0 turns it off.
 *
 * Not under Deno: its event loop does not poll sockets cheaply while callbacks keep it busy
 * (with setImmediate or a MessageChannel alike), so a sequential round trip there gets slower,
 * not faster, with polling; there it is always off (figures in docs/performance.md).
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { PollRule, type PollRuleState } from './poll-rule.ts';
import { IS_DENO } from './runtime.ts';

/** How often the threads wanting a core are counted, ms… */
const CONTENTION_EVERY_MS = 100;
/** …and how many of the latest counts are averaged (about the last half second: long enough to
 * smooth single counts, short enough that a burst of work just ended does not keep polling off). */
const CONTENTION_COUNTS = 5;

let contended = false;
let contentionAskedAt = -Infinity;
/** The latest counts of other threads running or ready to run, a ring, and when each was taken. */
const counts: number[] = [];
const countedAt: number[] = [];
let countsAt = 0;
/** Whether /proc/loadavg can be read here (Linux). */
let procLoadavg = true;

/**
 * Whether other work wants the cores polling would take: on average over the last half second, at
 * least as many other threads running or ready to run as there are cores (Linux counts them at
 * each moment, the fourth field of /proc/loadavg; this thread is one of them). Then a poller
 * takes a core something else needs, so it sleeps, without probing. Fast to follow: a load
 * average (a minute's mean) went on saying "contended" for tens of seconds after a CPU-bound
 * process had stopped, and kept polling off where it paid. Not Linux's CPU pressure figures
 * either: on a VM they count a halted vCPU's slow wake-up as a task waiting for a core. Within
 * that bound the rule's own figures decide: a poller that takes a core the answer needs sees
 * its polled waits grow, and stops. Elsewhere: a load average of at least two more than the
 * cores (both sides of a round trip polling on one machine add two).
 */
export function coresContended(now: number = performance.now()): boolean {
  if (now - contentionAskedAt < CONTENTION_EVERY_MS) return contended;
  contentionAskedAt = now;
  const cores = availableParallelism();
  if (procLoadavg) {
    try {
      const running = Number(readFileSync('/proc/loadavg', 'latin1').split(' ')[3]?.split('/')[0]) - 1;
      if (running >= 0) {
        counts[countsAt] = running;
        countedAt[countsAt] = now;
        countsAt = (countsAt + 1) % CONTENTION_COUNTS;
        // Counts are taken only while someone asks (while answers are awaited one at a time):
        // after a pause, the ring's older counts describe a machine of long ago (a burst that
        // has ended), so only those of the last half second count.
        let sum = 0;
        let n = 0;
        for (let i = 0; i < counts.length; i++) {
          if (now - countedAt[i]! >= CONTENTION_EVERY_MS * CONTENTION_COUNTS) continue;
          sum += counts[i]!;
          n++;
        }
        return (contended = sum >= cores * n);
      }
    } catch {
      // not Linux: the load average below
    }
    procLoadavg = false;
  }
  return (contended = loadavg()[0]! >= cores + 2);
}

/**
 * Polls its thread's event loop while an answer is due. The leading side (a coordinator) decides
 * with its rule and tells the other side (a task thread) how long to poll for its next message
 * (`expectAnswer()`'s return value, sent with the message); the follower does as told
 * (`pollFor()`). See PollRule.followerPollMs for why one side decides for both.
 */
export class BusyPoll {
  readonly #rule: PollRule;
  readonly #enabled: boolean;
  readonly #budgetMs: number;
  #until = 0;
  #spinning = false;
  /** When the current wait began (undefined: not waiting). */
  #waitingSince: number | undefined;
  /** How long the current wait polls for, ms (0: it sleeps). */
  #pollMs = 0;
  /** When the latest answer came (undefined: none since the latest wait began). */
  #answeredAt: number | undefined;

  /** `budgetMicros`: the longest it polls for one answer (0: never). */
  constructor(budgetMicros: number) {
    const budgetMs = IS_DENO ? 0 : budgetMicros / 1000;
    this.#enabled = budgetMs > 0;
    this.#budgetMs = budgetMs;
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
   * polls on for as long again from now). Returns how long the other side should poll for the
   * next message after it answers, µs (0: it sleeps), to send along with the message.
   */
  expectAnswer(): number {
    if (!this.#enabled) return 0;
    const now = performance.now();
    if (this.#waitingSince === undefined) {
      this.#waitingSince = now;
      // Probe windows are cut from the wall clock (any clock would do: one side decides).
      this.#pollMs = this.#rule.lead(coresContended(now), performance.timeOrigin + now, this.#answeredAt === undefined ? Infinity : now - this.#answeredAt);
      this.#answeredAt = undefined;
    }
    this.#poll(now, this.#pollMs);
    return Math.round(this.#rule.followerMs * 1000);
  }

  /** The answer came (or nothing is awaited any more): tell the rule how the wait went, stop polling. */
  answered(): void {
    const since = this.#waitingSince;
    if (since === undefined) return;
    this.#waitingSince = undefined;
    const now = performance.now();
    const polled = this.#pollMs > 0 ? this.#until - since : 0;
    this.#rule.record(now - since, polled);
    this.#answeredAt = now;
    this.#until = 0;
  }

  /**
   * The follower's side: the leader said to poll for `micros` (capped by this side's budget)
   * for its next message. `stop()` ends it when the message comes.
   */
  pollFor(micros: number): void {
    if (!this.#enabled || !(micros > 0)) return;
    this.#poll(performance.now(), Math.min(micros / 1000, this.#budgetMs));
  }

  /** The follower's message came: stop polling. */
  stop(): void {
    this.#until = 0;
  }

  #poll(now: number, ms: number): void {
    if (ms <= 0) return;
    this.#until = Math.max(this.#until, now + ms);
    if (this.#spinning) return;
    this.#spinning = true;
    setImmediate(this.#spin);
  }

  readonly #spin = (): void => {
    if (performance.now() < this.#until) setImmediate(this.#spin);
    else this.#spinning = false;
  };
}
