/**
 * Busy polling: after network activity, keep this thread's event loop polling its sockets for a
 * few dozen microseconds instead of going to sleep, so that an answer arriving in that time is
 * read at once.
 *
 * Why: on a sequential round trip most of the time is not JavaScript but waking up. A thread
 * that sleeps in epoll_wait (and, in a VM, a vCPU that halts) takes tens of microseconds to run
 * again when its answer arrives; on the 2-core VM of our benchmarks a bare ws echo went from
 * ~42 µs to ~27 µs per round trip when both sides polled for 20–100 µs after each message.
 * Low-latency systems do the same (Linux's SO_BUSY_POLL, Aeron's idle strategies, piscina's
 * `atomics` waits).
 *
 * How: a chain of (ref'ed) setImmediate callbacks. While an immediate is pending, Node's event
 * loop polls with a zero timeout, so sockets are still read as soon as data is there; the chain
 * ends when the budget is spent. A budget of 0 turns it off. The cost is CPU: at most the budget
 * per call of `touch()`, spent only when the thread would otherwise be idle.
 *
 * Not under Deno: its setImmediate does not turn the event loop into a cheap zero-timeout poll,
 * and a sequential round trip got slower, not faster (a Deno coordinator: ~78 → ~100 µs; Deno
 * task threads: ~68 → ~73 µs), so there it is always off.
 */
const IS_DENO = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined';

export class BusyPoll {
  readonly #budgetMs: number;
  #until = 0;
  #spinning = false;

  /** `budgetMicros`: how long to keep polling after each `touch()` (0: never). */
  constructor(budgetMicros: number) {
    this.#budgetMs = IS_DENO ? 0 : budgetMicros / 1000;
  }

  get enabled(): boolean {
    return this.#budgetMs > 0;
  }

  /** Polls without sleeping from now until the budget is spent (or the next touch's budget). */
  touch(): void {
    if (this.#budgetMs <= 0) return;
    this.#until = performance.now() + this.#budgetMs;
    if (this.#spinning) return;
    this.#spinning = true;
    setImmediate(this.#spin);
  }

  /** Stops polling (at the next turn of the loop). */
  stop(): void {
    this.#until = 0;
  }

  readonly #spin = (): void => {
    if (performance.now() < this.#until) setImmediate(this.#spin);
    else this.#spinning = false;
  };
}
