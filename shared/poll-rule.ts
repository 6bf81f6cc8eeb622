/**
 * When to busy-poll, as pure logic: told how each wait went, it says how long to poll for the
 * next one. `BusyPoll` (shared/busy-poll.ts) carries its decisions out with timers.
 *
 * The question it answers is empirical: does polling make answers come sooner here, now? That
 * depends on things it cannot see (how slowly this machine wakes a sleeping thread, whether the
 * other side polls too, whether other processes want the cores), so it measures both ways and
 * keeps two estimates: the typical wait when it polled, and when it slept. Each wait is one
 * sample of one of them. A single mean of all waits cannot decide this: polling lowers the waits
 * it is measured on, so a rule that stops when that mean exceeds the budget, and then only sees
 * slow waits, never finds out that polling would bring them down again.
 *
 * - Polling wins when the answer usually came while it polled (at least half of the polled
 *   waits; a poll that runs out only burned CPU before sleeping anyway) and polled waits are
 *   clearly shorter than slept ones (under 0.9×). Then it polls for about twice the typical
 *   polled wait (most answers come in time, and long gaps do not burn the whole budget), never
 *   more than the budget.
 * - Otherwise it sleeps. That covers answers that take longer than the budget (long tasks) and
 *   cores that other work contends for: then the answer's sender waits for a core, polls run out
 *   without the answer, and polled waits are no shorter (or longer: the poller takes the core)
 *   than slept ones.
 * - It also sleeps, without probing, while the caller says the cores are contended (BusyPoll
 *   asks the OS whether tasks wait for a core). The waits one side measures do not show what its
 *   polling costs the other side: on busy cores a poller can shorten its own wait and still make
 *   the round trip slower, by holding a core the other side, or the work, needs.
 * - Probes keep the estimate of the mode not in use fresh: while sleeping, a wait now and then
 *   polls the whole budget (it costs at most the budget in CPU, which contended cores can least
 *   afford); while polling, every 64th sleeps (it costs one slower round trip). Polling probes
 *   that keep confirming sleep come less and less often (every 16th wait, then 32nd, … up to
 *   every 128th); a switch, or a probe that brings the polled estimate below the slept one,
 *   brings them back to every 16th. Whatever changed, the rule finds out within a few probes
 *   (a few hundred waits at most: milliseconds of sequential round trips), and switches.
 *
 * So a round trip is not made slower than with polling off, bar the probes: a poll only delays
 * an answer when it takes a core the answer needs, and then polled waits come out longer, or
 * the OS reports tasks waiting for cores, and polling stops.
 */

/** Weight of the newest sample in each estimate (about the last 4–8 samples count). */
const WEIGHT = 0.25;
/**
 * Weight of a probe's sample: probes are rare, so the samples before it are old news (and a
 * switch should not wait for many more probes).
 */
const PROBE_WEIGHT = 0.5;
/** Polled waits must be under this fraction of slept waits for polling to count as a win. */
const WIN = 0.9;
/** At least this share of polls must see their answer arrive while polling. */
const MIN_HIT_RATE = 0.5;
/** While sleeping, every this many waits polls the whole budget, at first… */
export const PROBE_POLL_EVERY = 16;
/** …and, while probes keep saying sleep, at most this rarely. */
export const PROBE_POLL_RARELY = 128;
/** While polling, every this many waits sleeps. */
export const PROBE_SLEEP_EVERY = 64;
/**
 * Samples are counted at most this multiple of the budget: a garbage collection or a long task
 * must not outweigh a dozen normal waits, and beyond the budget the exact length does not
 * change the decision.
 */
const CAP_BUDGETS = 2;
/** Polls last twice the typical polled wait plus this (ms), so a 0 µs estimate still polls. */
const SLACK_MS = 0.005;

/** What the rule knows, for tests and diagnostics. */
export interface PollRuleState {
  /** Whether polling currently wins. */
  polling: boolean;
  /** Typical wait while polling, ms (undefined: never measured). */
  polledMs: number | undefined;
  /** Typical wait while sleeping, ms (undefined: never measured). */
  sleptMs: number | undefined;
  /** Share of polls whose answer came while polling. */
  hitRate: number;
}

export class PollRule {
  readonly #budgetMs: number;
  readonly #capMs: number;
  #polledMs: number | undefined;
  #sleptMs: number | undefined;
  #hitRate = 1;
  /** Waits since the last probe. */
  #sinceProbe = 0;
  /** Waits between polling probes while sleeping. */
  #pollProbeEvery = PROBE_POLL_EVERY;

  /** `budgetMs`: the longest it polls for one answer (0: never). */
  constructor(budgetMs: number) {
    this.#budgetMs = budgetMs;
    this.#capMs = budgetMs * CAP_BUDGETS;
  }

  get state(): PollRuleState {
    return { polling: this.#wins(), polledMs: this.#polledMs, sleptMs: this.#sleptMs, hitRate: this.#hitRate };
  }

  /**
   * How long to poll for the next answer, ms (0: sleep). Call once per wait; `contended`: other
   * work is waiting for the cores.
   */
  next(contended = false): number {
    if (this.#budgetMs <= 0) return 0;
    // Measure each mode once before choosing: polling first, as a first answer is often quick.
    if (this.#polledMs === undefined) return this.#budgetMs;
    if (this.#sleptMs === undefined || contended) return 0;
    const polling = this.#wins();
    if (++this.#sinceProbe >= (polling ? PROBE_SLEEP_EVERY : this.#pollProbeEvery)) {
      this.#sinceProbe = 0;
      return polling ? 0 : this.#budgetMs;
    }
    return polling ? Math.min(this.#budgetMs, 2 * this.#polledMs + SLACK_MS) : 0;
  }

  /**
   * A wait ended: the answer came `waitedMs` after the wait began, which polled for `polledMs`
   * of it (0: it slept throughout; the answer came while polling if it came within that).
   */
  record(waitedMs: number, polledMs: number): void {
    if (this.#budgetMs <= 0 || !(waitedMs >= 0)) return;
    const sample = Math.min(waitedMs, this.#capMs);
    const wasPolling = this.#wins();
    const probe = polledMs > 0 !== wasPolling;
    const weight = probe ? PROBE_WEIGHT : WEIGHT;
    const mix = (old: number | undefined): number => (old === undefined ? sample : old + (sample - old) * weight);
    if (polledMs > 0) {
      this.#polledMs = mix(this.#polledMs);
      this.#hitRate += ((waitedMs <= polledMs ? 1 : 0) - this.#hitRate) * weight;
    } else {
      this.#sleptMs = mix(this.#sleptMs);
    }
    const polling = this.#wins();
    // A switch, or a polling probe that answered in time and brought the polled estimate below
    // the slept one (something changed): probe often again. A probe that confirms the mode:
    // less often. (One lucky probe alone does not count: on busy cores some always are.)
    const promising = probe && polledMs > 0 && waitedMs <= polledMs && this.#polledMs! < (this.#sleptMs ?? 0);
    if (polling !== wasPolling || promising) this.#pollProbeEvery = PROBE_POLL_EVERY;
    else if (probe && !polling && this.#sleptMs !== undefined) this.#pollProbeEvery = Math.min(PROBE_POLL_RARELY, this.#pollProbeEvery * 2);
  }

  #wins(): boolean {
    const polled = this.#polledMs;
    const slept = this.#sleptMs;
    return polled !== undefined && slept !== undefined && this.#hitRate >= MIN_HIT_RATE && polled < WIN * slept;
  }
}
