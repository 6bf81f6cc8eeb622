/**
 * When to busy-poll, as pure logic: told how each wait went, it says how long to poll for the
 * next one, on this side and on the other. `BusyPoll` (shared/busy-poll.ts) carries its
 * decisions out with timers.
 *
 * The question it answers is empirical: does polling make answers come sooner here, now? That
 * depends on things it cannot see (how slowly this machine wakes a sleeping thread, whether other
 * processes want the cores), so it measures both ways and keeps two estimates: the typical wait
 * when it polled, and when it slept. Each wait is one sample of one of them. A single mean of all
 * waits cannot decide this: polling lowers the waits it is measured on, so a rule that stops when
 * that mean exceeds the budget, and then only sees slow waits, never finds out that polling
 * would bring them down again.
 *
 * One side leads (a coordinator), the other follows (a task thread): the leader's rule decides
 * for both, and tells the follower with each message whether, and how long, to poll for the
 * next one (`followerPollMs`). Polling on one side of a round trip often pays only if the other
 * side polls too (when waking up takes longer than the budget, a poller whose peer sleeps waits
 * out its whole poll and sleeps anyway); two sides with a rule each, each measuring waits the
 * other's choice shapes, can settle in the slow mode together, and which mode a process ends in
 * becomes luck. So a polled wait here is a round trip with both sides polling, a slept one with
 * both asleep, and the rule compares exactly the two modes it chooses between.
 *
 * - Polling starts when the answer usually comes while it polls (a poll that runs out only
 *   burned CPU before sleeping anyway) and polled waits are clearly shorter than slept ones
 *   (under four fifths: a poll that saves a fifth of a round trip has saved a wake-up; polling
 *   through a 3 ms gap to save a wake-up of a tenth of a millisecond does not pay). Then it
 *   polls the budget for each answer. Polling is asked for only while a caller awaits answers
 *   one at a time, where waking up is most of the round trip.
 * - Once polling, it goes on until polled waits are clearly longer than slept ones (over
 *   1.1 times), or until most polls run out (fewer than a quarter caught their answer, over
 *   about the last 64 polls). Two lines, not one, and slow averages, because the estimates are
 *   noisy where it matters: on a 2-core VM both sit within a few tens of µs of each other,
 *   answers stall in runs of dozens of waits (a collection, a vCPU taken away) whether it polls
 *   or not, and a rule that stopped at the first such run, or whenever the estimates crossed
 *   one line, polled in only a fifth to a third of the waits where polling every wait was
 *   0.62 times as long per round trip. Polling the whole budget rather than a guess at the
 *   wait has the same reason: a poll cut to twice the typical wait ran out on the slower half
 *   of the usual answers, and those misses ended polling.
 * - Otherwise it sleeps. That covers answers that take longer than the budget (long tasks) and
 *   cores that other work contends for: then the answer's sender waits for a core, polls run out
 *   without the answer, and polled waits are no shorter (or longer: the poller takes the core)
 *   than slept ones.
 * - It also sleeps, without probing, while the caller says the cores are contended (BusyPoll
 *   asks the OS whether tasks wait for a core). The waits one side measures do not show what its
 *   polling costs the other processes: on busy cores a poller can shorten its own wait and still
 *   slow down the work beside it.
 * - Probes keep the estimate of the mode not in use fresh. While polling, every 64th wait sleeps
 *   on both sides (it costs one slower round trip). While sleeping, the waits that begin in a
 *   probe window poll the reach, and the follower the budget (each costs at most that in CPU,
 *   which contended cores can least afford). A window is 4 ms from the first wait at least
 *   128 ms after the previous window began: a run of waits in a row, as the first wait of a
 *   window sleeps on both sides (the follower was told to sleep with the message before it).
 *   Not fixed slices of the wall clock: a caller whose round trips come in short runs (tens of
 *   ms, with pauses between) would miss such slices again and again, and keep a stale verdict
 *   (a first answer that took a millisecond while the code was cold). Windows that keep
 *   confirming sleep come half as often (every 256 ms); a switch, or a probe that brings the
 *   polled estimate below the slept one, brings them back to every 128 ms. The first polled probe in a window
 *   starts the polled figures afresh. So whatever changed, the rule finds out within a window
 *   or two (a quarter of a second), and switches; probing costs at most 4 ms of polling per
 *   128–256 ms.
 * - Reach. When waking up takes longer than the budget, a late answer makes a chain: the side that
 *   slept answers late, so the other side's next wait outlasts its poll and it sleeps too, and
 *   so on, each wait carrying the other side's wake-up, even while both poll. A poll of the
 *   budget cannot break it; one poll long enough to outlast a wake-up does. So probes, and the
 *   wait after a polled wait that ran out, poll 4 budgets (the reach). They count as caught only
 *   within the budget: polling that pays only at the reach does not switch the mode.
 *
 * So a round trip is not made slower than with polling off, bar the probes: a poll only delays
 * an answer when it takes a core the answer needs, and then polled waits come out longer, or
 * the OS reports tasks waiting for cores, and polling stops.
 */

/** Weight of the newest sample in each estimate (about the last 4–8 samples count), bar the two below. */
const WEIGHT = 0.25;
/**
 * Weight of a probe's sample: probes are rare, so the samples before it are old news (and a
 * switch should not wait for many more probes).
 */
const PROBE_WEIGHT = 0.5;
/**
 * Weight of the newest polled wait while polling (about the last 16–32 count): a few slow
 * answers in a row (a collection, a descheduled thread) must not end polling that pays.
 */
const POLLED_WEIGHT = 1 / 16;
/**
 * Weight of the newest poll in the hit rate, outside probes (about the last 64 polls count):
 * slow, so that a run of stalls on the other side (each costing a miss here) does not end
 * polling, while a change that makes every poll miss (long tasks) still stops it within about
 * 90 waits, at most a budget of CPU each.
 */
const HIT_WEIGHT = 1 / 64;
/** Polled waits must be under this fraction of slept waits for polling to start… */
const ENTER = 0.8;
/** …and polling goes on until they are over this fraction. */
const LEAVE = 1.1;
/** At least this share of polls must see their answer arrive while polling. */
const MIN_HIT_RATE = 0.25;
/** While sleeping, waits that begin in a probe window of this many ms poll the reach… */
export const PROBE_WINDOW_MS = 4;
/** …which begins at the first wait at least this many ms after the previous one began, at first… */
export const PROBE_PERIOD_MS = 128;
/** …and, while probes keep saying sleep, at most this rarely (a power-of-two multiple of the first). */
export const PROBE_PERIOD_RARELY_MS = 256;
/** While polling, every this many waits sleeps. */
export const PROBE_SLEEP_EVERY = 64;
/**
 * Probes, and the wait after a poll that ran out, poll this multiple of the budget: long enough
 * to outlast the other side waking up (see "Reach" above).
 */
export const REACH_BUDGETS = 4;
/**
 * Samples are counted at most the reach: a garbage collection or a long task must not outweigh
 * a dozen normal waits, and beyond it the exact length does not change the decision.
 */

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
  readonly #reachMs: number;
  #polledMs: number | undefined;
  #sleptMs: number | undefined;
  #hitRate = 1;
  /** Whether polling currently wins (see #decide()). */
  #polling = false;
  /**
   * The latest wait ended late (a poll that ran out, or a sleeping probe): the other side is
   * likely waking up late in turn, so the next wait polls the reach.
   */
  #late = false;
  /** The current wait is such a recovery poll. */
  #recovering = false;
  /** Waits since the last sleeping probe (while polling). */
  #sinceProbe = 0;
  /** The probe period while sleeping, ms. */
  #probePeriodMs = PROBE_PERIOD_MS;
  /** When the latest probe window began (ms of the clock `next()` is given; NaN: never). */
  #probeWindow = NaN;
  /** The window whose first probe started the polled figures afresh. */
  #freshWindow = NaN;
  /** The window whose probes already made the period longer (once per window, not per probe). */
  #backedOffWindow = NaN;
  /** What the follower was told with the latest message, ms (see lead()). */
  #followerMs = 0;
  /** Typical and latest time from an answer to the next message, ms (see lead()). */
  #thinkMs: number | undefined;
  #lastThinkMs: number | undefined;

  /** `budgetMs`: the longest it polls for one answer (0: never). */
  constructor(budgetMs: number) {
    this.#budgetMs = budgetMs;
    this.#reachMs = budgetMs * REACH_BUDGETS;
  }

  get state(): PollRuleState {
    return { polling: this.#polling, polledMs: this.#polledMs, sleptMs: this.#sleptMs, hitRate: this.#hitRate };
  }

  /**
   * How long to poll for the next answer, ms (0: sleep), by this side's measurements alone (the
   * leader calls it through lead()). Call once per wait; `contended`: other work is waiting for
   * the cores; `now`: the clock the probe windows are cut from, ms.
   */
  next(contended = false, now = 0): number {
    if (this.#budgetMs <= 0) return 0;
    // Measure each mode once before choosing: polling first, as a first answer is often quick.
    if (this.#polledMs === undefined) return this.#budgetMs;
    if (this.#sleptMs === undefined || contended) return 0;
    if (this.#polling) {
      if (this.#late) {
        this.#late = false;
        this.#recovering = true;
        return this.#reachMs;
      }
      if (++this.#sinceProbe < PROBE_SLEEP_EVERY) return this.#budgetMs;
      this.#sinceProbe = 0;
      this.#late = true;
      return 0;
    }
    // Within the latest window, or the first wait a period after it began (or ever): probe.
    if (!(now - this.#probeWindow < PROBE_WINDOW_MS)) {
      if (now - this.#probeWindow < this.#probePeriodMs) return 0;
      this.#probeWindow = now;
    }
    return this.#reachMs;
  }

  /**
   * A wait ended: the answer came `waitedMs` after the wait began, which polled for `polledMs`
   * of it (0: it slept throughout; the answer came while polling if it came within that). A
   * polled wait is one where the follower polled too (BusyPoll does not poll while it sleeps).
   */
  record(waitedMs: number, polledMs: number): void {
    if (this.#budgetMs <= 0 || !(waitedMs >= 0)) return;
    if (this.#recovering) {
      this.#recovering = false;
      // A recovery poll that caught its answer says nothing new (the wait carried the other
      // side's late wake-up, as expected); one that ran out is a miss like any other.
      if (polledMs > 0 && waitedMs <= polledMs) return;
    }
    const sample = Math.min(waitedMs, this.#reachMs);
    // An answer counts as caught by polling only within the budget: the reach of a probe or of
    // a recovery poll is for breaking a chain of late wake-ups, not a length to poll for.
    const hit = polledMs > 0 && waitedMs <= Math.min(polledMs, this.#budgetMs);
    const wasPolling = this.#polling;
    const probe = polledMs > 0 !== wasPolling;
    const weight = probe ? PROBE_WEIGHT : polledMs > 0 ? POLLED_WEIGHT : WEIGHT;
    const mix = (old: number | undefined): number => (old === undefined ? sample : old + (sample - old) * weight);
    if (probe && polledMs > 0 && this.#polledMs !== undefined && this.#probeWindow !== this.#freshWindow) {
      // The first probe of a window starts the polled figures afresh: what polling did before
      // the last window (a burst, a long task, the other side asleep) is no guide to now.
      this.#freshWindow = this.#probeWindow;
      if (hit) this.#polledMs = sample;
      this.#hitRate = hit ? 1 : 0;
    } else if (polledMs > 0) {
      // The polled estimate is the typical wait of the answers polling caught; the ones it did
      // not catch count in the hit rate. (A mean of both would let one stall on the other side
      // weigh like a dozen quick answers, and flip the mode.)
      if (hit || this.#polledMs === undefined) this.#polledMs = mix(this.#polledMs);
      this.#hitRate += ((hit ? 1 : 0) - this.#hitRate) * (probe ? PROBE_WEIGHT : HIT_WEIGHT);
      if (waitedMs > polledMs) this.#late = true;
    } else {
      // A sleeping probe (one wait in 64 while polling) is what polling is measured against;
      // a quick one is believed at once, a slow one only as one more sample, so that one slow
      // wait (a collection, a descheduled thread) cannot keep a node polling through gaps
      // polling does not shorten until the next probe.
      const mixed = mix(this.#sleptMs);
      this.#sleptMs = probe ? Math.min(sample, mixed) : mixed;
    }
    const polling = this.#decide();
    // A switch, or a polling probe that answered in time and brought the polled estimate below
    // the slept one (something changed): probe often again. A window of probes that confirm the
    // mode: less often. (One lucky probe alone does not count: on busy cores some always are.)
    const promising = probe && hit && this.#polledMs! < (this.#sleptMs ?? 0);
    if (polling !== wasPolling || promising) {
      this.#probePeriodMs = PROBE_PERIOD_MS;
      this.#backedOffWindow = NaN;
    } else if (probe && !polling && this.#sleptMs !== undefined && this.#probeWindow !== this.#backedOffWindow) {
      this.#backedOffWindow = this.#probeWindow;
      this.#probePeriodMs = Math.min(PROBE_PERIOD_RARELY_MS, this.#probePeriodMs * 2);
    }
  }

  /**
   * The leader's call, once per wait (instead of `next()`): how long to poll for this wait's
   * answer, ms (0: sleep). `sinceAnswerMs`: how long ago the previous answer came (Infinity:
   * none yet); the time this side took to send its next message, its own work. Sets
   * `followerMs`, what to tell the follower with this message.
   *
   * Both sides poll, or neither: the follower polls for this message only if it was told to with
   * the previous one and that poll has not run out (after a pause, or for the first message, it
   * sleeps). Polling here while it sleeps would only wait out its wake-up, and measure that as
   * polling; a wait where both slept is what polling is weighed against.
   */
  lead(contended = false, now = 0, sinceAnswerMs = Infinity): number {
    if (sinceAnswerMs >= 0 && sinceAnswerMs !== Infinity) {
      // Counted at most the reach: a pause between bursts must not stand for the usual gap.
      const think = Math.min(sinceAnswerMs, this.#reachMs);
      this.#lastThinkMs = think;
      this.#thinkMs = this.#thinkMs === undefined ? think : this.#thinkMs + (think - this.#thinkMs) * WEIGHT;
    }
    const awake = sinceAnswerMs <= this.#followerMs;
    const wanted = this.next(contended, now);
    // The latest gap as well as the typical one: after a pause, the follower polls again as
    // soon as the gaps are short again.
    this.#followerMs = this.followerPollMs(wanted, Math.min(this.#thinkMs ?? 0, this.#lastThinkMs ?? 0));
    return awake ? wanted : 0;
  }

  /** How long the follower should poll after answering the latest wait `lead()` began, ms. */
  get followerMs(): number {
    return this.#followerMs;
  }

  /**
   * How long the other side should poll for this side's next message after it answers, ms (0:
   * it sleeps). This side leads: the follower has no rule of its own, because two rules, each
   * measuring waits the other's choice shapes, can settle in the slow mode together (polling
   * alone does not pay when the other side sleeps through the answer), and whether they
   * find the fast mode becomes luck. One rule that decides for both finds out for both.
   *
   * `thinkMs` is the typical time from an answer here to this side's next message (its own
   * work, which it knows exactly): the follower's wait, bar the wire. Where that is as long as
   * a round trip without polling, polling would save a wake-up out of a long gap, and the
   * follower sleeps. Otherwise: while polling wins, the follower polls the budget, and sleeps
   * only through this side's sleeping probes (told with the message before: the probe
   * then measures both sides asleep, what polling is weighed against); while sleeping, it
   * polls the budget during this side's polling probes (`pollMs` > 0, what `next()` returned
   * for the wait under way), so that they measure both sides polling.
   */
  followerPollMs(pollMs: number, thinkMs: number): number {
    if (this.#budgetMs <= 0 || !(thinkMs >= 0) || thinkMs >= (this.#sleptMs ?? this.#budgetMs)) return 0;
    if (this.#polling) {
      // The next wait is a sleeping probe: both sides sleep through it, so that it measures
      // what polling is weighed against.
      if (this.#sinceProbe === PROBE_SLEEP_EVERY - 1) return 0;
      return this.#budgetMs;
    }
    return pollMs > 0 ? this.#budgetMs : 0;
  }

  /** Whether polling wins now, given what it was doing: the line to start is lower than the line to stop. */
  #decide(): boolean {
    const polled = this.#polledMs;
    const slept = this.#sleptMs;
    this.#polling = polled !== undefined && slept !== undefined && this.#hitRate >= MIN_HIT_RATE && polled < (this.#polling ? LEAVE : ENTER) * slept;
    return this.#polling;
  }
}
