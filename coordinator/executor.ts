/**
 * The `Executor` contract shared by every pool, and the machinery they share: option checks,
 * shutdown, per-task timeouts and signals, and `map`/`starmap` with `chunksize` and `buffersize`.
 * An executor only decides how one task (or one chunk of calls) runs.
 */
import { CancelledError, ExecutorShutdownError, TimeoutError } from '../shared/errors.ts';
import { checkProgress, type ProgressOption, sizeOf, withProgress } from './progress.ts';
import { checkTimeout, Future, interruptWith, onDoneInternal } from './future.ts';
import { checkResources, type Resources } from '../shared/resources.ts';
import { checkInteger, describeValue } from '../shared/validate.ts';

/** Options for one task, given to `submitWith`. */
export interface SubmitOptions {
  /**
   * Milliseconds the task may run, counted from when it starts. When it passes, the task is
   * stopped (its signal fires; a remote worker node ends it) and the future fails with
   * `TimeoutError`. Default: no limit.
   */
  timeout?: number;
  /** Aborting this signal aborts the task, as `future.abort(signal.reason)`. */
  signal?: AbortSignal;
  /** Receives what the task reports while it runs (`currentTask().report(value)`). */
  // deno-lint-ignore no-explicit-any -- a task reports values of its own choosing; the caller types them
  onReport?: (value: any) => void;
  /**
   * Tasks of a higher priority start first; equal ones in the order submitted (default 0).
   * It orders only what waits: a task already running is not stopped for a higher one.
   */
  priority?: number;
  /**
   * What the task needs of a worker node's declared resources (`--resources gpu=1,mem=16GB`),
   * e.g. `{ gpu: 1 }` or `{ mem: '4GB' }`: it runs only on a node that has them free, and holds
   * them until it ends. A request no connected node declares waits for one to join; with
   * `timeout`, it fails with TimeoutError once it has waited that long for one.
   * ProcessPoolExecutor only.
   */
  resources?: Record<string, number | string>;
}

export interface MapOptions {
  /**
   * Milliseconds from the `map` call after which the iteration throws `TimeoutError` (and the
   * remaining calls are cancelled). Default: no limit.
   */
  timeout?: number;
  /**
   * How many calls ride in one task (default 1). Large values cut per-task overhead on the
   * process pool; the local pool runs every call as its own task, as Python's ThreadPool does.
   */
  chunksize?: number;
  /**
   * At most this many tasks (chunks) are submitted and not yet yielded, so a huge or endless
   * (also async) iterable is read lazily. Default: the whole iterable is submitted at once.
   */
  buffersize?: number;
  /** The priority of its tasks, as submitWith's (default 0). */
  priority?: number;
  /** What each of its tasks (each chunk) needs, as submitWith's `resources`. ProcessPoolExecutor only. */
  resources?: Record<string, number | string>;
  /**
   * `true`: a progress bar on the terminal (stderr, only when it is one); a function: called
   * with `{ done, total }` as results come (total when the input is an array, Set or Map).
   */
  progress?: ProgressOption;
}

export interface ShutdownOptions {
  /** Wait until every submitted task has settled and resources are released (default true). */
  wait?: boolean;
  /** Cancel every task that has not started yet (default false). */
  cancelFutures?: boolean;
}

/** A function of any arguments; `this` may be typed as `TaskContext`. */
// deno-lint-ignore no-explicit-any
export type AnyFunction = (this: any, ...args: any[]) => unknown;

/**
 * A task function: any arguments, sync or async; `this` may be typed as `TaskContext`. Written
 * as (args, result) rather than as one function type F so that a generic task function
 * (`echo<T>(value: T): T`) is instantiated from the arguments given to `submit`.
 */
// deno-lint-ignore no-explicit-any
export type TaskFunction<A extends unknown[], R> = (this: any, ...args: A) => R;

/** The interface every wsfutures executor implements, as Python's `Executor`. */
export interface Executor {
  submit<A extends unknown[], R>(fn: TaskFunction<A, R>, ...args: A): Future<Awaited<R>>;
  submitWith<A extends unknown[], R>(options: SubmitOptions, fn: TaskFunction<A, R>, ...args: A): Future<Awaited<R>>;
  map<T, R>(fn: (item: T) => R, iterable: Iterable<T> | AsyncIterable<T>, options?: MapOptions): MapResults<Awaited<R>>;
  starmap<A extends unknown[], R>(fn: TaskFunction<A, R>, iterable: Iterable<A> | AsyncIterable<A>, options?: MapOptions): MapResults<Awaited<R>>;
  shutdown(options?: ShutdownOptions): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** What a chunk of calls produced: the values in order, up to the first error if any. */
export interface ChunkOutcome<R> {
  values: R[];
  /** Set when call number `values.length` of the chunk threw. */
  error?: { thrown: unknown };
}

/**
 * Checks an optional positive integer option and says which one is wrong: a TypeError if it is
 * not a number at all (`"4"`), a RangeError if it is a number out of range (`0`, `1.5`, `NaN`).
 */
export function checkPositiveInt(name: string, value: unknown, allowZero = false): void {
  checkInteger(name, value, { min: allowZero ? 0 : 1 });
}

/** A priority is a finite number (higher first). */
function checkPriority(value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new (typeof value === 'number' ? RangeError : TypeError)(`options.priority must be a finite number (higher runs first, default 0): got ${describeValue(value)}`);
  }
}

export { describeValue };

function checkFunction(fn: unknown, where: string): void {
  if (typeof fn !== 'function') throw new TypeError(`${where}: fn must be a function: got ${describeValue(fn)}`);
}

const arrayValues = Array.prototype[Symbol.iterator];

/**
 * How long map's reader may hand out results already in hand before it lets the event loop turn
 * once, ms. Without it, reading a million values that had all arrived held the loop for 20-150
 * ms at a time; a worker node's slots hold about 10 ms of queued tiny tasks (PREFETCH_MS).
 */
const TURN_EVERY_MS = 1;

/** A map entry in flight: either one call's future, or a chunk's. */
type InFlight<R> = { one: Future<R> } | { chunk: Future<ChunkOutcome<R>> };

/**
 * What `map` and `starmap` return: an async generator of the results in input order, which can
 * also hand them out a chunk at a time.
 */
export interface MapResults<R> extends AsyncGenerator<R, void, undefined> {
  /**
   * The same results, as one array per chunk (`chunksize` calls, fewer at the end): the values
   * of a chunk come together, so the loop takes one step per chunk instead of one per value. A
   * `for await` step costs about as much as a tiny call's whole share of a chunked task, so with
   * tiny calls this is the faster way to read `map(…, { chunksize })`. Every guarantee holds as
   * for the values one by one: input order, `buffersize`, `timeout`; an error is thrown once the
   * values before it have been handed out (a chunk that failed part way yields its values up to
   * the failed call, then the next step throws); leaving the loop early cancels what has not
   * run. It reads from where the results stand: values already taken one by one are not
   * repeated. An executor that runs every call as its own task (AsyncPoolExecutor, or
   * `chunksize` 1) yields one-element arrays.
   *
   * @example
   * for await (const values of pool.map(score, items, { chunksize: 1000 }).chunks()) {
   *   for (const v of values) total += v;
   * }
   */
  chunks(): AsyncGenerator<R[], void, undefined>;
}

/**
 * Turns a generator of result batches into an async iterator of results (and, with `chunks()`,
 * of the batches themselves). Written by hand: an async generator's `yield` costs every value
 * of a chunk about twice what `Promise.resolve` of its result does here — a visible share of
 * `map(…, { chunksize })` on tiny calls.
 */
function flatten<R>(batches: AsyncGenerator<R[], void, undefined>): MapResults<R> {
  let buffer: R[] = [];
  let at = 0;
  let pulling: Promise<unknown> | undefined;
  /** Waits for the next batch and puts it in `buffer`; false once there are no more. */
  const fill = async (): Promise<boolean> => {
    if (pulling) {
      await pulling; // another next() is fetching the following batch
      return true; // the caller looks at the buffer again
    }
    const step = batches.next();
    pulling = step;
    try {
      const { value, done } = await step;
      if (done) return false;
      buffer = value;
      at = 0;
      return true;
    } finally {
      pulling = undefined;
    }
  };
  // The common case (values of a batch already in hand) returns without entering an async
  // function: that machinery costs more than the rest of handing out a value.
  const next = (): Promise<IteratorResult<R, void>> => (at < buffer.length ? Promise.resolve({ value: buffer[at++]!, done: false }) : pull());
  const pull = async (): Promise<IteratorResult<R, void>> => {
    for (;;) {
      if (at < buffer.length) return { value: buffer[at++]!, done: false };
      if (!(await fill())) return { value: undefined, done: true };
    }
  };
  const nextChunk = async (): Promise<IteratorResult<R[], void>> => {
    for (;;) {
      if (at < buffer.length) {
        // The rest of the batch in hand (all of it, unless values were taken one by one): the
        // caller owns it from here on.
        const values = at === 0 ? buffer : buffer.slice(at);
        buffer = [];
        at = 0;
        return { value: values, done: false };
      }
      if (!(await fill())) return { value: undefined, done: true };
    }
  };
  const close = async (value?: void | PromiseLike<void>): Promise<IteratorResult<never, void>> => {
    buffer = [];
    at = 0;
    await batches.return(value as void);
    return { value: undefined, done: true };
  };
  const fail = async (err: unknown): Promise<boolean> => {
    buffer = [];
    at = 0;
    const r = await batches.throw(err);
    return !r.done;
  };
  const chunkIterator = {
    next: nextChunk,
    return: close,
    throw: async (err?: unknown): Promise<IteratorResult<R[], void>> => ((await fail(err)) ? nextChunk() : { value: undefined, done: true }),
    [Symbol.asyncIterator]() {
      return chunkIterator;
    },
    async [Symbol.asyncDispose]() {
      await close();
    },
  };
  const iterator = {
    next,
    return: close,
    throw: async (err?: unknown): Promise<IteratorResult<R, void>> => ((await fail(err)) ? next() : { value: undefined, done: true }),
    chunks: () => chunkIterator as unknown as AsyncGenerator<R[], void, undefined>,
    [Symbol.asyncIterator]() {
      return iterator;
    },
    async [Symbol.asyncDispose]() {
      await close();
    },
  };
  return iterator as unknown as MapResults<R>;
}

/** `results` with progress reported, read one by one or with `chunks()`. */
function reportingProgress<R>(results: MapResults<R>, total: number | undefined, option: ProgressOption): MapResults<R> {
  const values = withProgress(results, total, option) as MapResults<R>;
  values.chunks = () => withProgress(results.chunks(), total, option, (chunk) => chunk.length);
  return values;
}

/** submit()'s options: none (shared, never written). */
const NO_OPTIONS: SubmitOptions = Object.freeze({});

export abstract class BaseExecutor implements Executor {
  #shutdown = false;
  #closing: Promise<void> | undefined;
  /** Futures not yet done, so shutdown can cancel or wait for them. */
  readonly #unfinished = new Set<Future<unknown>>();
  /** The class name, for messages ("ProcessPoolExecutor.submit"). */
  protected abstract readonly kind: string;

  /** Runs (or queues) one call. The future is new and pending. */
  protected abstract schedule(future: Future<unknown>, fn: AnyFunction, args: unknown[], priority: number, resources?: Resources, timeout?: number): void;

  /**
   * Runs (or queues) a chunk of calls as one task. With `spread` (starmap) each element of
   * `calls` is a call's argument array; without (map) it is the call's single argument, kept
   * as it is so that a chunk of items needs no array per call. Executors that do not batch leave
   * this undefined, and `map` submits each call on its own.
   */
  protected scheduleChunk?(future: Future<ChunkOutcome<unknown>>, fn: AnyFunction, calls: unknown[], spread: boolean, priority: number, resources?: Resources): void;

  /** Whether tasks may ask for resources (worker nodes declare them; the local pool has none). */
  protected readonly acceptsResources: boolean = false;

  /** Checks a task's `resources` option and returns it as numbers. */
  #resources(where: string, value: unknown): Resources | undefined {
    if (value === undefined) return undefined;
    if (!this.acceptsResources) {
      throw new TypeError(
        `${where}: options.resources is for ProcessPoolExecutor, whose worker nodes declare resources (--resources gpu=1); ${this.kind} runs every task in this process: leave it out, or use a ProcessPoolExecutor`,
      );
    }
    return checkResources('options.resources', value, true);
  }

  /** Releases the executor's resources once every task has settled. */
  protected abstract close(): Promise<void>;

  /**
   * Called when the first unfinished task appears (`true`) and when the last one settles
   * (`false`): an executor whose sockets or child processes would keep the program alive lets
   * them go while it has nothing to do, so a program that forgets `shutdown()` still exits once
   * its work is done, as a Python program does.
   */
  protected busyChanged?(busy: boolean): void;

  /** Checks that `fn` can be run by this executor; throws a TypeError that says how to fix it. */
  protected checkCallable(_fn: AnyFunction, _where: string): void {}

  /** True after `shutdown()` was called. */
  get isShutdown(): boolean {
    return this.#shutdown;
  }

  submit<A extends unknown[], R>(fn: TaskFunction<A, R>, ...args: A): Future<Awaited<R>> {
    // The name for messages is made once: a template string per submit showed in profiles.
    return this.#submit(this.#submitName ??= `${this.kind}.submit`, NO_OPTIONS, fn, args);
  }

  /**
   * `submit` with per-task options (timeout, signal).
   *
   * @example
   * const f = pool.submitWith({ timeout: 5_000 }, crunch, data);
   */
  submitWith<A extends unknown[], R>(options: SubmitOptions, fn: TaskFunction<A, R>, ...args: A): Future<Awaited<R>> {
    if (options === null || typeof options !== 'object') {
      throw new TypeError(`${this.kind}.submitWith(options, fn, ...args): options must be an object: got ${describeValue(options)}`);
    }
    return this.#submit(`${this.kind}.submitWith`, options, fn, args);
  }

  #submitName: string | undefined;

  #submit<R>(where: string, options: SubmitOptions, fn: AnyFunction, args: unknown[]): Future<R> {
    checkFunction(fn, where);
    checkTimeout('options.timeout', options.timeout);
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
      throw new TypeError(`options.signal must be an AbortSignal: got ${describeValue(options.signal)}`);
    }
    checkPriority(options.priority);
    const resources = this.#resources(where, options.resources);
    if (options.onReport !== undefined && typeof options.onReport !== 'function') {
      throw new TypeError(`options.onReport must be a function: got ${describeValue(options.onReport)}`);
    }
    this.#checkOpen();
    this.checkCallable(fn, where);
    const future = new Future<R>();
    if (options.onReport) future.onReport(options.onReport);
    this.#track(future as Future<unknown>, options);
    if (resources === undefined) this.schedule(future as Future<unknown>, fn, args, options.priority ?? 0);
    else this.schedule(future as Future<unknown>, fn, args, options.priority ?? 0, resources, options.timeout);
    return future;
  }

  #checkOpen(): void {
    if (this.#shutdown) throw new ExecutorShutdownError(`cannot submit new tasks after ${this.kind}.shutdown(): create a new executor`);
  }

  /** Keeps the future until it settles; wires its timeout and signal. */
  #track(future: Future<unknown>, options: SubmitOptions): void {
    this.#unfinished.add(future);
    if (this.#unfinished.size === 1) this.busyChanged?.(true);
    const { signal, timeout } = options;
    if (signal === undefined && (timeout === undefined || timeout === Infinity)) {
      // The common case, on the per-task hot path: one shared callback, no closures.
      onDoneInternal(future, this.#untrack);
      return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    let watchers: Set<Future<unknown>> | undefined;
    if (signal) {
      if (signal.aborted) future.cancel(signal.reason);
      else {
        // One listener per signal, however many tasks share it (cancelling a whole batch with
        // one AbortController is the common case): a listener per task would pile up on it.
        watchers = this.#signalWatchers.get(signal);
        if (!watchers) {
          const set = new Set<Future<unknown>>();
          watchers = set;
          this.#signalWatchers.set(signal, set);
          signal.addEventListener('abort', () => {
            this.#signalWatchers.delete(signal);
            for (const f of [...set]) f.abort(signal.reason);
          }, { once: true });
        }
        watchers.add(future);
      }
    }
    if (timeout !== undefined && timeout !== Infinity) {
      // The clock starts when the task starts running, not when it is queued: a timeout is a
      // limit on the task, and queueing time depends on everyone else's work.
      this.onRunning(future, () => {
        timer = setTimeout(() => interruptWith(future, new TimeoutError(`the task ran longer than its timeout of ${timeout} ms and was stopped`)), timeout);
      });
    }
    future.addDoneCallback(() => {
      this.#untrack(future);
      if (timer !== undefined) clearTimeout(timer);
      watchers?.delete(future);
    });
  }

  /** The futures waiting on each signal passed to submitWith, behind one listener per signal. */
  readonly #signalWatchers = new WeakMap<AbortSignal, Set<Future<unknown>>>();

  readonly #untrack = (f: Future<unknown>): void => {
    if (this.#unfinished.delete(f) && this.#unfinished.size === 0) this.busyChanged?.(false);
  };

  readonly #runningHooks = new WeakMap<Future<unknown>, () => void>();

  /** Calls `fn` when the executor starts running `future` (see `markRunning`). */
  private onRunning(future: Future<unknown>, fn: () => void): void {
    this.#runningHooks.set(future, fn);
  }

  /**
   * Moves a future to RUNNING; returns false if it was cancelled and must not run. Engines call
   * this instead of `future.setRunningOrNotifyCancel()` so that task timeouts start on time.
   */
  protected markRunning(future: Future<unknown>): boolean {
    // Done already: cancelled, or settled while it waited (a retried task whose timeout ran out
    // in the queue, or a result set by hand). It must not run.
    if (future.done()) return false;
    if (!future.setRunningOrNotifyCancel()) return false;
    // A retried task's hook was used on its first run: its timeout clock keeps running from
    // then, it does not start again.
    const hook = this.#runningHooks.get(future);
    if (hook) {
      this.#runningHooks.delete(future);
      hook();
    }
    return true;
  }

  map<T, R>(fn: (item: T) => R, iterable: Iterable<T> | AsyncIterable<T>, options: MapOptions = {}): MapResults<Awaited<R>> {
    const results = this.#map<T, Awaited<R>>(`${this.kind}.map`, fn as AnyFunction, iterable, options, false);
    return options?.progress ? reportingProgress(results, sizeOf(iterable), options.progress) : results;
  }

  starmap<A extends unknown[], R>(fn: TaskFunction<A, R>, iterable: Iterable<A> | AsyncIterable<A>, options: MapOptions = {}): MapResults<Awaited<R>> {
    const results = this.#map<A, Awaited<R>>(`${this.kind}.starmap`, fn, iterable, options, true);
    return options?.progress ? reportingProgress(results, sizeOf(iterable), options.progress) : results;
  }

  #map<T, R>(
    where: string,
    fn: AnyFunction,
    iterable: Iterable<T> | AsyncIterable<T>,
    options: MapOptions,
    /** starmap: every item is an array of arguments; map: every item is the one argument. */
    spread: boolean,
  ): MapResults<R> {
    // Everything here runs at call time, as in Python: bad arguments throw at once, and the
    // calls are submitted before the first result is asked for.
    checkFunction(fn, where);
    if (options === null || typeof options !== 'object') throw new TypeError(`${where}: options must be an object: got ${describeValue(options)}`);
    const { timeout, chunksize = 1, buffersize, priority = 0 } = options;
    checkPriority(priority);
    const resources = this.#resources(where, options.resources);
    checkProgress(where, options.progress);
    checkTimeout('options.timeout', timeout);
    checkPositiveInt('options.chunksize', chunksize);
    checkPositiveInt('options.buffersize', buffersize);
    const isAsync = iterable != null && typeof (iterable as AsyncIterable<T>)[Symbol.asyncIterator] === 'function';
    if (!isAsync && (iterable == null || typeof (iterable as Iterable<T>)[Symbol.iterator] !== 'function')) {
      throw new TypeError(`${where}: iterable must be an Iterable or AsyncIterable: got ${describeValue(iterable)}`);
    }
    this.#checkOpen();
    this.checkCallable(fn, where);
    const deadline = timeout === undefined || timeout === Infinity ? Infinity : Date.now() + timeout;

    const inFlight: InFlight<R>[] = [];
    let inputDone = false;
    let inputError: { thrown: unknown } | undefined;
    let closed = false;
    let wakeConsumer: (() => void) | undefined;
    let wakeFeeder: (() => void) | undefined;
    // A plain array (not a subclass, whose slice() would construct one) is read by index, as its
    // own iterator would read it (the length is looked at on every read, so items pushed
    // meanwhile are read too), without an iterator result object per item.
    const array = !isAsync && Array.isArray(iterable) && Object.getPrototypeOf(iterable) === Array.prototype && (iterable as unknown[])[Symbol.iterator] === arrayValues
      ? (iterable as unknown[])
      : undefined;
    let index = 0;
    const iterator = array ? undefined : isAsync ? (iterable as AsyncIterable<T>)[Symbol.asyncIterator]() : (iterable as Iterable<T>)[Symbol.iterator]();
    const checkCall = (call: unknown): void => {
      if (spread && !Array.isArray(call)) throw new TypeError(`${where}: every item must be an array of arguments: got ${describeValue(call)}`);
    };
    const batching = chunksize > 1 && this.scheduleChunk !== undefined;
    // Items read per submission. An executor that does not batch ignores chunksize (as Python's
    // ThreadPoolExecutor does), so it must not read ahead by chunksize either: buffersize alone
    // bounds what is read.
    const perTask = batching ? chunksize : 1;

    const submitOne = (calls: unknown[]) => {
      if (batching) {
        const future = new Future<ChunkOutcome<R>>();
        this.#track(future as Future<unknown>, {});
        this.scheduleChunk!(future as Future<ChunkOutcome<unknown>>, fn, calls, spread, priority, resources);
        inFlight.push({ chunk: future });
      } else {
        for (const call of calls) {
          const future = new Future<R>();
          this.#track(future as Future<unknown>, {});
          this.schedule(future as Future<unknown>, fn, spread ? (call as unknown[]) : [call], priority, resources);
          inFlight.push({ one: future });
        }
      }
      wakeConsumer?.();
    };

    // Reads the input and submits; synchronous for a sync iterable until it must wait for room.
    const feed = async () => {
      try {
        for (;;) {
          while (buffersize !== undefined && inFlight.length >= buffersize && !closed) {
            await new Promise<void>((r) => (wakeFeeder = r));
          }
          if (closed) return;
          let calls: unknown[] = [];
          if (array && !spread) {
            // map's items need no check: one copy of the chunk's part of the array.
            calls = array.slice(index, index + perTask);
            index += calls.length;
            if (calls.length < perTask) inputDone = true;
          } else if (array) {
            while (calls.length < perTask) {
              if (index >= array.length) {
                inputDone = true;
                break;
              }
              const call = array[index++];
              checkCall(call);
              calls.push(call);
            }
          } else {
            while (calls.length < perTask) {
              const step = isAsync ? await (iterator as AsyncIterator<T>).next() : (iterator as Iterator<T>).next();
              if (closed) return;
              if (step.done) {
                inputDone = true;
                break;
              }
              checkCall(step.value);
              calls.push(step.value);
            }
          }
          if (calls.length > 0) {
            if (this.#shutdown) throw new ExecutorShutdownError(`${where}: the executor was shut down while the input was still being read`);
            submitOne(calls);
          }
          if (inputDone) break;
        }
      } catch (err) {
        inputError = { thrown: err };
      } finally {
        inputDone = true;
        wakeConsumer?.();
      }
    };
    void feed();

    const cancelAll = () => {
      closed = true;
      wakeFeeder?.();
      for (const entry of inFlight) ('one' in entry ? entry.one : entry.chunk).cancel();
      inFlight.length = 0;
      if (!inputDone && iterator) {
        // Closes the input (runs a generator's `finally`). Its own failure is not the caller's
        // problem here: the caller already has a result, an error or a break to deal with.
        try {
          const closing = (iterator as AsyncIterator<T>).return?.();
          if (closing && typeof (closing as Promise<unknown>).catch === 'function') (closing as Promise<unknown>).catch(() => {});
        } catch {
          // ignored, as above
        }
      }
    };

    /** Whether an immediate is out to see the event loop turn, and since when (performance.now()). */
    let watchingTurn = false;
    let turnedAt = 0;
    const sawTurn = () => {
      watchingTurn = false;
    };

    // Yields the results of one entry at a time (a chunk's values together); `flatten` below
    // hands them out one by one.
    const results = async function* (): AsyncGenerator<R[], void, undefined> {
      try {
        for (;;) {
          if (inFlight.length === 0) {
            if (inputDone) {
              if (inputError) throw inputError.thrown;
              return;
            }
            await new Promise<void>((r) => (wakeConsumer = r));
            wakeConsumer = undefined;
            continue;
          }
          // The entry stays in `inFlight` until its result is in hand: it still counts against
          // buffersize (buffersize bounds calls submitted and not yet yielded), and if the wait
          // ends in a timeout or an error, cancelAll() cancels it too when it has not started
          // (Python's map cancels the future it was waiting on).
          const entry = inFlight[0]!;
          const future = 'one' in entry ? entry.one : entry.chunk;
          // Results already in hand are handed out in microtasks, which never let the event loop
          // turn: a long read would hold back the sockets (results, the next tasks for idle
          // slots, heartbeats) for as long as it lasts. A watch (one immediate) tells whether
          // the loop turned since; if it has not for a millisecond, the reader waits for a turn.
          if (!watchingTurn) {
            watchingTurn = true;
            turnedAt = performance.now();
            setImmediate(sawTurn);
          } else if (performance.now() - turnedAt > TURN_EVERY_MS) {
            await new Promise<void>((resolve) => setImmediate(resolve));
          }
          const remaining = deadline - Date.now();
          const timedOut = () => new TimeoutError(`${where}: results did not arrive within ${timeout} ms`);
          if (remaining <= 0 && !future.done()) throw timedOut();
          let value: unknown;
          try {
            value = await future.result(deadline === Infinity ? undefined : Math.max(0, remaining));
          } catch (err) {
            // A TimeoutError from a future that is not done is our wait running out; one from a
            // done future is the task's own error and is passed on as it is.
            if (err instanceof TimeoutError && !future.done()) throw timedOut();
            throw err;
          }
          inFlight.shift();
          wakeFeeder?.();
          if ('one' in entry) {
            yield [value as R];
          } else {
            const outcome = value as ChunkOutcome<R>;
            if (outcome.values.length > 0) yield outcome.values;
            if (outcome.error) throw outcome.error.thrown;
          }
        }
      } finally {
        // An early `break`, an error or a timeout: what was not yielded is not wanted.
        cancelAll();
      }
    };
    return flatten(results());
  }

  /**
   * Python's `shutdown(wait=True, cancel_futures=False)`: no new tasks; with `cancelFutures`,
   * tasks not yet started are cancelled; with `wait` (default), resolves once every task has
   * settled and the executor's resources are released. Safe to call more than once.
   */
  async shutdown(options: ShutdownOptions = {}): Promise<void> {
    if (options === null || typeof options !== 'object') throw new TypeError(`${this.kind}.shutdown(options): options must be an object: got ${describeValue(options)}`);
    const { wait = true, cancelFutures = false } = options;
    this.#shutdown = true;
    if (cancelFutures) {
      // One error for all of them, as one AbortSignal has one reason: making an Error (and its
      // stack) per future cost ~3 µs each, seconds for a million queued tasks.
      const reason = new CancelledError(`cancelled by ${this.kind}.shutdown({ cancelFutures: true })`);
      for (const f of [...this.#unfinished]) f.cancel(reason);
    }
    this.#closing ??= this.#drainAndClose();
    if (wait) await this.#closing;
    else this.#closing.catch(() => {});
  }

  async #drainAndClose(): Promise<void> {
    while (this.#unfinished.size > 0) {
      await Promise.allSettled([...this.#unfinished].map((f) => new Promise<void>((r) => f.addDoneCallback(() => r()))));
    }
    await this.close();
  }

  /** `await using pool = new ...` shuts the pool down (waiting) at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown({ wait: true });
  }
}
