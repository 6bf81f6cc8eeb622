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
 * How long: about twice the typical wait (measured: an exponentially weighted mean of the
 * waits this poller has seen), never more than the budget, and not at all once waits are
 * typically longer than the budget — polling then only burns CPU before sleeping anyway. A fixed
 * 50 µs was tried first: when the VM slowed down and round trips took ~90 µs, every poll ran
 * out just before the answer came, and round trips got slower with polling than without. The
 * poll stops as soon as the answer is in (`answered()`).
 *
 * How: a chain of (ref'ed) setImmediate callbacks. While an immediate is pending, Node's event
 * loop polls with a zero timeout, so sockets are still read as soon as data is there. A budget
 * of 0 turns it off.
 *
 * Not under Deno: its event loop does not poll sockets cheaply while callbacks keep it busy,
 * and a sequential round trip got slower, not faster (a Deno coordinator: ~78 → ~100 µs; Deno
 * task threads: ~68 → ~73 µs; a bare Deno echo: ~45 → ~80 µs polling with setImmediate, ~150 µs
 * with a MessageChannel), so there it is always off.
 */
const IS_DENO = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined';

/** Weight of the newest wait in the typical wait. */
const WEIGHT = 0.2;

export class BusyPoll {
  readonly #budgetMs: number;
  #until = 0;
  #spinning = false;
  /** When the current wait began (undefined: not waiting). */
  #waitingSince: number | undefined;
  /** The typical wait, ms; undefined until one was measured. */
  #typicalMs: number | undefined;

  /** `budgetMicros`: the longest it polls for one answer (0: never). */
  constructor(budgetMicros: number) {
    this.#budgetMs = IS_DENO ? 0 : budgetMicros / 1000;
  }

  get enabled(): boolean {
    return this.#budgetMs > 0;
  }

  /** The typical wait measured so far, in µs (undefined before the first answer). */
  get typicalMicros(): number | undefined {
    return this.#typicalMs === undefined ? undefined : this.#typicalMs * 1000;
  }

  /**
   * An answer is expected: poll until it comes, for about twice the typical wait (the whole
   * budget while that is unknown), unless waits typically outlast the budget.
   */
  expectAnswer(): void {
    if (this.#budgetMs <= 0) return;
    const now = performance.now();
    this.#waitingSince ??= now;
    const typical = this.#typicalMs;
    if (typical !== undefined && typical > this.#budgetMs) return;
    const ms = typical === undefined ? this.#budgetMs : Math.min(this.#budgetMs, 2 * typical + 0.005);
    this.#until = Math.max(this.#until, now + ms);
    if (this.#spinning) return;
    this.#spinning = true;
    setImmediate(this.#spin);
  }

  /** The answer came (or nothing is awaited any more): measure the wait, stop polling. */
  answered(): void {
    const since = this.#waitingSince;
    if (since === undefined) return;
    this.#waitingSince = undefined;
    const waited = performance.now() - since;
    this.#typicalMs = this.#typicalMs === undefined ? waited : this.#typicalMs * (1 - WEIGHT) + waited * WEIGHT;
    this.#until = 0;
  }

  readonly #spin = (): void => {
    if (performance.now() < this.#until) setImmediate(this.#spin);
    else this.#spinning = false;
  };
}
