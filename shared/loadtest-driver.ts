/**
 * The load-test driver: what runs in each task slot of each worker node during `loadTest()`.
 * The coordinator ships it inlined with the user's scenario (coordinator/loadtest.ts) and runs
 * it as a series of *segments*, one task per slot per segment: each segment gets this slot's
 * share of the load for its time window, reports what it measured every second
 * (`currentTask().report`), and returns the rest. Between segments the coordinator can change
 * the shares (a node joined or left, a stage ramps).
 *
 * State that must outlive a segment lives in the thread (this module is loaded once per
 * thread): the closed model's virtual users keep looping across segments, and iterations
 * still running when a segment ends are measured into the next one. Nothing is lost at a
 * segment boundary and the load does not pause there.
 *
 * Latency: in the open model an iteration's latency runs from when it was *meant* to start, so
 * a stalled target shows up in the percentiles (no coordinated omission); in the closed model,
 * from when it started. Latencies are recorded in HdrHistograms (hdr-histogram-js), in µs.
 */
import { setMaxListeners } from 'node:events';
import * as hdr from 'hdr-histogram-js';
import { currentTask } from './task-context.ts';
import { type HttpClient, ScenarioHttp } from './loadtest-http.ts';

/** What the scenario's iteration function gets. */
export interface IterationContext {
  /** The virtual user (closed model) or the iteration's number in this slot (open model). */
  readonly vu: number;
  /** Fires when the test stops: an iteration may end early. */
  readonly signal: AbortSignal;
  /** `--param name=value` of the command line, `params` of loadTest(). */
  readonly params: Readonly<Record<string, string>>;
  /**
   * A fast keep-alive HTTP/1.1 client (shared by the thread's iterations; shared/loadtest-http.ts):
   * `await ctx.http.get(url)` resolves with `{ status, ok, headers, body, text(), json() }`.
   */
  readonly http: HttpClient;
  /** Measures `fn` as a step of its own (its own latency percentiles and errors). */
  step<T>(name: string, fn: () => T | PromiseLike<T>): Promise<T>;
}

export type Iteration = (ctx: IterationContext) => unknown;

/**
 * One segment's orders. Times are relative (each machine keeps its own clock): a slot's
 * segments follow one another on a timeline of its own, each `durationMs` long, starting where
 * the last one ended — so arrivals stay evenly spaced across segments even when a segment
 * starts a little late.
 */
export interface SegmentConfig {
  /** Which test this is: a new one starts a fresh timeline and counts in this thread. */
  testId: string;
  model: 'open' | 'closed';
  durationMs: number;
  /**
   * This slot's load at the start and at the end of the segment, linear in between:
   * iterations per second (open) or virtual users (closed).
   */
  loadFrom: number;
  loadTo: number;
  /** Open model: iterations in flight in this slot beyond which starts are dropped (counted). */
  maxInFlight: number;
  /** Stop after this many iterations in this slot (counting all segments), if set. */
  maxIterations?: number;
  /** The last segment: wait for the iterations in flight before returning. */
  final: boolean;
  params: Record<string, string>;
  /** How long the final segment waits for iterations in flight, ms. */
  drainMs: number;
}

/** What a slot reports: every second, and once more at the end of a segment. */
export interface SlotReport {
  /** When measured (ms since the epoch, this machine's clock). */
  at: number;
  /** Per step ('iteration' is the whole iteration): HdrHistogram, compressed, base64; µs. */
  histograms: Record<string, string>;
  /** Per step: errors by kind. */
  errors: Record<string, Record<string, number>>;
  /** Iterations started and ended (ok or not) since the last report. */
  started: number;
  ended: number;
  /** Open model: starts dropped because maxInFlight iterations were running. */
  dropped: number;
  inFlight: number;
  vus: number;
}

/** A kind of error, for counting: its code, its name, or (for a plain Error) its message. */
export function errorKind(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; name?: unknown; message?: unknown; cause?: { code?: unknown } };
    if (typeof e.code === 'string' && e.code) return e.code;
    if (typeof e.cause?.code === 'string' && e.cause.code) return e.cause.code;
    const name = typeof e.name === 'string' ? e.name : 'Error';
    if (name !== 'Error' || typeof e.message !== 'string') return name;
    return e.message.slice(0, 80) || name;
  }
  return String(err).slice(0, 80);
}

function newHistogram(): hdr.Histogram {
  // 1 µs to an hour, 3 significant digits.
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
}

/** The thread's measurements since the last report. */
class Window {
  histograms = new Map<string, hdr.Histogram>();
  errors = new Map<string, Map<string, number>>();
  started = 0;
  ended = 0;
  dropped = 0;

  record(step: string, micros: number, error: unknown): void {
    let h = this.histograms.get(step);
    if (!h) this.histograms.set(step, h = newHistogram());
    h.recordValue(micros < 1 ? 1 : micros > 3_600_000_000 ? 3_600_000_000 : Math.round(micros));
    if (error === undefined) return;
    let kinds = this.errors.get(step);
    if (!kinds) this.errors.set(step, kinds = new Map());
    const kind = errorKind(error);
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }

  take(at: number, inFlight: number, vus: number): SlotReport {
    const report: SlotReport = { at, histograms: {}, errors: {}, started: this.started, ended: this.ended, dropped: this.dropped, inFlight, vus };
    for (const [step, h] of this.histograms) {
      report.histograms[step] = hdr.encodeIntoCompressedBase64(h);
      h.destroy();
    }
    for (const [step, kinds] of this.errors) report.errors[step] = Object.fromEntries(kinds);
    this.histograms = new Map();
    this.errors = new Map();
    this.started = this.ended = this.dropped = 0;
    return report;
  }
}

/**
 * The slot's timeline, ms since the epoch to the microsecond: arrivals are planned on it and an
 * iteration's time is measured on it (Date.now() counts whole milliseconds, so iterations under
 * one read as 0, and their percentiles as the histogram's floor). Monotonic from this thread's
 * start: it can part from the wall clock after the system clock is set, which does not matter,
 * as the timeline never leaves the thread; reports carry Date.now().
 */
const clock = (): number => performance.timeOrigin + performance.now();

/** A virtual user gives the event loop a turn after this many iterations. */
const VU_TURN_EVERY = 256;

/** Per-thread state, kept across segments. */
const thread = {
  testId: '',
  /** Where the next segment starts on this slot's timeline (`clock()` terms). */
  clock: 0,
  window: new Window(),
  inFlight: 0,
  iterations: 0,
  /** Closed model: VUs running, and how many should. */
  vus: 0,
  targetVus: 0,
  nextVu: 0,
  stop: stopController(),
  http: new ScenarioHttp(),
  idle: [] as (() => void)[],
};

/**
 * What an iteration gets: one object per iteration, its `step` on the prototype (no closure
 * made per iteration: at tens of thousands of iterations a second in one thread, what each
 * one allocates shows).
 */
class Context implements IterationContext {
  readonly vu: number;
  readonly signal: AbortSignal;
  readonly params: Readonly<Record<string, string>>;
  readonly http: HttpClient;

  constructor(vu: number, params: Record<string, string>) {
    this.vu = vu;
    this.signal = thread.stop.signal;
    this.params = params;
    this.http = thread.http;
  }

  async step<T>(name: string, fn: () => T | PromiseLike<T>): Promise<T> {
    const t0 = performance.now();
    try {
      const value = await fn();
      thread.window.record(name, (performance.now() - t0) * 1000, undefined);
      return value;
    } catch (err) {
      thread.window.record(name, (performance.now() - t0) * 1000, err);
      throw err;
    }
  }
}

/** Runs one iteration; `intended` is when it was meant to start (`clock()` terms). */
async function iterate(iteration: Iteration, vu: number, params: Record<string, string>, intended: number): Promise<void> {
  thread.inFlight++;
  thread.iterations++;
  thread.window.started++;
  let error: unknown;
  try {
    await iteration(new Context(vu, params));
  } catch (err) {
    error = err ?? new Error('iteration failed');
  }
  thread.window.record('iteration', (clock() - intended) * 1000, error);
  thread.window.ended++;
  thread.inFlight--;
  if (thread.inFlight === 0) { for (const resolve of thread.idle.splice(0)) resolve(); }
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });

/**
 * The signal every iteration gets (and usually hands to fetch): one listener per iteration in
 * flight is expected, not a leak, so Node's warning past 10 listeners is turned off for it.
 */
function stopController(): AbortController {
  const c = new AbortController();
  try {
    setMaxListeners(0, c.signal);
  } catch {
    // a runtime without it warns, no more
  }
  return c;
}

/** Runs one segment of this slot's load; see the module comment. */
export async function runSegment(iteration: Iteration, config: SegmentConfig): Promise<SlotReport> {
  if (typeof iteration !== 'function') throw new TypeError('the scenario module must export its iteration as `export default async function (ctx) { … }`');
  const task = currentTask();
  const signal = task?.signal;
  if (thread.testId !== config.testId) {
    thread.testId = config.testId;
    thread.clock = 0;
    thread.iterations = 0;
    thread.nextVu = 0;
    thread.window = new Window();
  }
  // The timeline goes on from the last segment, unless it has fallen behind by more than a
  // second (the first segment, or a slot that was busy): then it starts now.
  const from = clock() - thread.clock > 1000 ? clock() : thread.clock;
  const to = from + config.durationMs;
  thread.clock = to;
  const { loadFrom, loadTo } = config;
  const loadAt = (t: number) => (to <= from ? loadTo : loadFrom + ((loadTo - loadFrom) * Math.min(1, Math.max(0, t - from))) / (to - from));
  const limitReached = () => config.maxIterations !== undefined && thread.iterations >= config.maxIterations;
  // A draining node gets no next segment: this one ends now as the slot's last, so what is in
  // flight is waited for and measured into its result instead of lost with the node.
  const leaving = () => task?.draining === true;
  if (thread.stop.signal.aborted) thread.stop = stopController();
  let nextReport = clock() + 1000;
  const reportIfDue = async () => {
    if (clock() < nextReport || !task) return;
    nextReport += 1000;
    await task.report(thread.window.take(Date.now(), thread.inFlight, thread.vus));
  };

  if (config.model === 'open') {
    // Arrivals at the planned rate, each meant to start at `intended`, whatever the target does.
    let intended = from;
    while (!signal?.aborted && intended < to && !limitReached() && !leaving()) {
      const rate = loadAt(intended);
      // A time with no load is waited through too: the segment lasts its whole window. (Waits
      // are cut into tenths of a second, to see a drain soon.)
      const wait = intended - clock();
      if (wait > 100) {
        await sleep(100, signal);
        await reportIfDue();
        continue;
      }
      if (wait > 1) await sleep(wait, signal);
      if (signal?.aborted) break;
      if (rate <= 0) {
        intended += 50;
      } else {
        if (thread.inFlight >= config.maxInFlight) thread.window.dropped++;
        else void iterate(iteration, thread.nextVu++, config.params, intended);
        intended += 1000 / rate;
      }
      // Reports between arrivals (a task's report waits its turn, at most 20 a second).
      if (clock() >= nextReport) await reportIfDue();
    }
  } else {
    // Virtual users loop across segments; the segment moves their number along its ramp.
    // A VU belongs to its test: one that was still waiting when its test ended must not go on
    // with the next test's load (and its own scenario).
    const testId = config.testId;
    const vuLoop = async (vu: number) => {
      thread.vus++;
      try {
        for (let n = 1; thread.testId === testId && vu < thread.targetVus && !thread.stop.signal.aborted && !limitReached(); n++) {
          await iterate(iteration, vu, config.params, clock());
          // An iteration that ends without waiting for anything (one that fails at once) leaves
          // the event loop no turn: timers, the segment's end among them, would never run.
          if (n % VU_TURN_EVERY === 0) await new Promise((resolve) => setTimeout(resolve, 0));
        }
      } finally {
        thread.vus--;
      }
    };
    while (!signal?.aborted && clock() < to && !limitReached() && !leaving()) {
      thread.targetVus = Math.round(loadAt(clock()));
      for (let vu = thread.vus; vu < thread.targetVus; vu++) void vuLoop(vu);
      await sleep(Math.min(100, to - clock()), signal);
      await reportIfDue();
    }
  }

  if (config.final || signal?.aborted || limitReached() || leaving()) {
    thread.targetVus = 0;
    if (thread.inFlight > 0) {
      const drained = new Promise<void>((resolve) => thread.idle.push(resolve));
      await Promise.race([drained, sleep(config.drainMs)]);
    }
    // Iterations still running after the drain time are told to stop, and not waited for.
    thread.stop.abort(new Error('the load test ended'));
    thread.http.close();
    const report = thread.window.take(Date.now(), thread.inFlight, thread.vus);
    thread.iterations = 0;
    return report;
  }
  return thread.window.take(Date.now(), thread.inFlight, thread.vus);
}
