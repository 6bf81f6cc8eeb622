/**
 * `Future<T>`: the eventual result of one task, with the states and methods of Python's
 * `concurrent.futures.Future`, and awaitable like a promise.
 *
 * A Future never creates a promise until someone waits on it, so a future whose error nobody
 * reads does not become an unhandled rejection (Python, too, only raises when asked).
 */
import { CancelledError, InvalidStateError, TimeoutError } from '../shared/errors.ts';

/** Python's states, in Python's spelling. FINISHED covers both a result and an exception. */
export type FutureState = 'PENDING' | 'RUNNING' | 'CANCELLED' | 'FINISHED';

export type DoneCallback<T> = (future: Future<T>) => void;

/**
 * What an executor plugs into a future so that `abort()` can stop work that is already running.
 * Called at most once; the future has already settled as cancelled when it runs.
 */
export type AbortHook = (reason: unknown) => void;

/** Where a throwing done-callback is reported; tests may replace it. Python logs it and goes on. */
export let reportCallbackError = (err: unknown): void => {
  queueMicrotask(() => {
    // Reported on its own tick so the future and the other callbacks are untouched.
    console.error('wsfutures: a callback of a future threw:', err);
  });
};

/** Replaces the reporter of throwing done-callbacks; returns the previous one. */
export function setCallbackErrorReporter(fn: (err: unknown) => void): (err: unknown) => void {
  const prev = reportCallbackError;
  reportCallbackError = fn;
  return prev;
}

type Waiter = () => void;

/**
 * Synchronous look at a finished future's error, for `wait(FIRST_EXCEPTION)` and executors.
 * Not part of the public API (Python's equivalent is `exception(timeout=0)`, which is async here).
 */
export let failedWith: <T>(f: Future<T>) => { failed: boolean; error: unknown };

/**
 * Ends a pending or running future with `error` (not as cancelled) and stops its work through
 * the abort hook: how per-task timeouts end a task. Returns false if it was already done.
 */
export let interruptWith: <T>(f: Future<T>, error: unknown) => boolean;

/**
 * Like `addDoneCallback`, but returns a function that removes the callback again: `wait()` and
 * `asCompleted()` use it so that a wait that times out (or a loop left early) does not leave a
 * callback behind on a future that may live much longer. Not part of the public API.
 */
export let subscribeDone: <T>(f: Future<T>, cb: () => void) => () => void;

/**
 * Adds a done callback without the checks and wrappers of `addDoneCallback`: for executors,
 * which add one to every future they create (one shared function, no allocation per task).
 */
// deno-lint-ignore no-explicit-any
export let onDoneInternal: (f: Future<any>, cb: (f: Future<any>) => void) => void;

/** Removes a callback added with `onDoneInternal` (one of them, if added twice). */
// deno-lint-ignore no-explicit-any
export let offDoneInternal: (f: Future<any>, cb: (f: Future<any>) => void) => void;

// deno-lint-ignore no-explicit-any
type Callback = (f: Future<any>) => void;

/**
 * One item, or several in an array: most futures get one done callback and one waiter at most,
 * and an array made by push() reserves 16 slots (~150 bytes) — per future, that was a quarter of
 * a queued task's memory.
 */
type OneOrMany<F> = F | F[] | undefined;

function addTo<F extends (...args: never[]) => void>(list: OneOrMany<F>, item: F): OneOrMany<F> {
  if (list === undefined) return item;
  if (typeof list === 'function') return [list, item];
  list.push(item);
  return list;
}

function removeFrom<F extends (...args: never[]) => void>(list: OneOrMany<F>, item: F): OneOrMany<F> {
  if (list === item) return undefined;
  if (Array.isArray(list)) {
    const i = list.indexOf(item);
    if (i >= 0) list.splice(i, 1);
  }
  return list;
}

export class Future<T = unknown> implements PromiseLike<T> {
  #state: FutureState = 'PENDING';
  #value: T | undefined = undefined;
  #error: unknown = undefined;
  #hasError = false;
  #cancelReason: unknown = undefined;
  // Typed with `any`, not DoneCallback<T>: a field with T in a parameter position would make
  // Future invariant in T, and then a Future<number> could not be passed where a
  // Future<unknown> is expected (wait([numberFuture, stringFuture]) would not type-check).
  // Both stay undefined until used, and hold one item without an array: most futures get one
  // callback and one waiter at most, and a pool may hold a million queued futures.
  #callbacks: OneOrMany<Callback>;
  #waiters: OneOrMany<Waiter>;
  #abortHook: AbortHook | undefined;
  #promise: Promise<T> | undefined;
  // deno-lint-ignore no-explicit-any -- what a task reports is the caller's to type, as with onReport
  #reportListeners: ((value: any) => void)[] | undefined;

  static {
    failedWith = (f) => ({ failed: f.#state === 'FINISHED' && f.#hasError, error: f.#error });
    subscribeDone = (f, cb) => {
      if (f.done()) {
        f.#invoke(cb);
        return () => {};
      }
      const call = () => cb();
      f.#callbacks = addTo(f.#callbacks, call);
      return () => {
        f.#callbacks = removeFrom(f.#callbacks, call);
      };
    };
    onDoneInternal = (f, cb) => {
      if (f.done()) f.#invoke(cb);
      else f.#callbacks = addTo(f.#callbacks, cb);
    };
    offDoneInternal = (f, cb) => {
      f.#callbacks = removeFrom(f.#callbacks, cb);
    };
    interruptWith = (f, error) => {
      if (f.done()) return false;
      const hook = f.#state === 'RUNNING' ? f.#abortHook : undefined;
      f.setException(error);
      hook?.(error);
      return true;
    };
  }

  /** The state, in Python's names. */
  get state(): FutureState {
    return this.#state;
  }

  /** True once cancelled or finished. */
  done(): boolean {
    return this.#state === 'CANCELLED' || this.#state === 'FINISHED';
  }

  /** True while a worker is running the task. */
  running(): boolean {
    return this.#state === 'RUNNING';
  }

  /** True if the future was cancelled (by `cancel()`, `abort()` or shutdown). */
  cancelled(): boolean {
    return this.#state === 'CANCELLED';
  }

  /**
   * Python's `cancel()`: cancels the task only if it has not started. Returns true if the future
   * is cancelled after the call (also when it already was), false if it is running or finished.
   * To stop a task that is already running, use {@link abort}.
   */
  cancel(reason?: unknown): boolean {
    if (this.#state === 'CANCELLED') return true;
    if (this.#state !== 'PENDING') return false;
    this.#settleCancelled(reason);
    return true;
  }

  /**
   * Stops the task whether or not it has started: a pending task is cancelled as by `cancel()`;
   * a running one is told to stop (its `AbortSignal` fires; a remote worker node ends the task)
   * and the future settles at once as cancelled. Returns false only if the future was already
   * finished. This is wsfutures' addition to Python's contract, which cannot stop running work.
   */
  abort(reason?: unknown): boolean {
    if (this.#state === 'CANCELLED') return true;
    if (this.#state === 'FINISHED') return false;
    const wasRunning = this.#state === 'RUNNING';
    this.#settleCancelled(reason ?? new CancelledError('the task was aborted'));
    const hook = this.#abortHook;
    this.#abortHook = undefined;
    if (wasRunning && hook) hook(this.#cancelReason);
    return true;
  }

  /**
   * Waits for the result. Rejects with the task's error, with `CancelledError` if the future
   * was cancelled, or with `TimeoutError` if `timeoutMs` passes first (the task goes on).
   */
  result(timeoutMs?: number): Promise<T> {
    if (timeoutMs === undefined) return (this.#promise ??= this.#settled());
    return this.#resultWithin(timeoutMs);
  }

  async #resultWithin(timeoutMs: number): Promise<T> {
    await this.#wait(timeoutMs);
    if (this.#state === 'CANCELLED') throw this.#cancelledError();
    if (this.#hasError) throw this.#error;
    return this.#value as T;
  }

  /**
   * The outcome as one promise, made when someone first waits without a time limit (`await`,
   * `then`, `result()`): settled straight from #notify, where `result()` as an async function
   * over #wait took two more promises and microtask turns per awaited task.
   */
  #settled(): Promise<T> {
    if (this.done()) return this.#outcome();
    return new Promise<T>((resolve, reject) => {
      this.#waiters = addTo(this.#waiters, () => {
        if (this.#state === 'CANCELLED') reject(this.#cancelledError());
        else if (this.#hasError) reject(this.#error);
        else resolve(this.#value as T);
      });
    });
  }

  #outcome(): Promise<T> {
    if (this.#state === 'CANCELLED') return Promise.reject(this.#cancelledError());
    if (this.#hasError) return Promise.reject(this.#error);
    return Promise.resolve(this.#value as T);
  }

  /**
   * Waits and returns the task's error, or undefined if it succeeded. Rejects with
   * `CancelledError` or `TimeoutError` as `result()` does.
   */
  async exception(timeoutMs?: number): Promise<unknown> {
    await this.#wait(timeoutMs);
    if (this.#state === 'CANCELLED') throw this.#cancelledError();
    return this.#hasError ? this.#error : undefined;
  }

  /**
   * Calls `cb(future)` when the future is done, in the order callbacks were added; at once if it
   * is done already. A callback that throws is reported and does not affect the others.
   */
  addDoneCallback(cb: DoneCallback<T>): void {
    if (typeof cb !== 'function') throw new TypeError(`addDoneCallback(cb): cb must be a function: got ${typeof cb}`);
    if (this.done()) this.#invoke(cb);
    else this.#callbacks = addTo(this.#callbacks, cb as Callback);
  }

  /** Makes a Future awaitable: `await future` is `await future.result()`. */
  then<R1 = T, R2 = never>(
    onFulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onRejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    this.#promise ??= this.#settled();
    return this.#promise.then(onFulfilled, onRejected);
  }

  catch<R = never>(onRejected?: ((reason: unknown) => R | PromiseLike<R>) | null): Promise<T | R> {
    return this.then(undefined, onRejected);
  }

  finally(onFinally?: (() => void) | null): Promise<T> {
    return this.then().finally(onFinally);
  }

  /**
   * Stands in for Python's repr: `[object Future PENDING]`, `[object Future FINISHED returned
   * number]`, `[object Future FINISHED raised TypeError]`. Names types only, never values, so
   * logging a future cannot leak or dump a large result.
   */
  get [Symbol.toStringTag](): string {
    if (this.#state !== 'FINISHED') return `Future ${this.#state}`;
    return this.#hasError ? `Future FINISHED raised ${kindOf(this.#error, true)}` : `Future FINISHED returned ${kindOf(this.#value, false)}`;
  }

  // -------------------------------------------------------------------------------------------
  // For executors (Python exposes these on Future too, "for use by Executor implementations").

  /**
   * Python's `set_running_or_notify_cancel()`: returns false if the future was cancelled (the
   * executor must then not run the task), otherwise marks it running and returns true.
   */
  setRunningOrNotifyCancel(): boolean {
    if (this.#state === 'CANCELLED') return false;
    if (this.#state !== 'PENDING') throw new InvalidStateError(`setRunningOrNotifyCancel(): future is ${this.#state}, expected PENDING`);
    this.#state = 'RUNNING';
    return true;
  }

  /** Marks a running future as pending again (its worker was lost and it will be retried). */
  setPendingAgain(): void {
    if (this.#state === 'RUNNING') this.#state = 'PENDING';
  }

  /**
   * Listens to what the task reports while it runs (`currentTask().report(value)` in the task):
   * progress, partial results, figures. Reports come in the order the task made them, before
   * the future settles; none come after. Returns a function that stops listening.
   *
   * @example
   * const f = pool.submit(crawl, site);
   * f.onReport((page) => console.log('crawled', page));
   */
  onReport<V = unknown>(listener: (value: V) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError(`onReport(listener): listener must be a function: got ${typeof listener}`);
    (this.#reportListeners ??= []).push(listener);
    return () => {
      const list = this.#reportListeners;
      const i = list?.indexOf(listener) ?? -1;
      if (i >= 0) list!.splice(i, 1);
    };
  }

  /**
   * For executor implementers: delivers a report of the running task to its listeners (ignored
   * once the future is done). A listener that throws is reported like a done callback.
   */
  pushReport(value: unknown): void {
    if (this.done() || !this.#reportListeners) return;
    for (const listener of [...this.#reportListeners]) {
      try {
        listener(value);
      } catch (err) {
        reportCallbackError(err);
      }
    }
  }

  /** Installs the hook that `abort()` calls for a running task. */
  setAbortHook(hook: AbortHook | undefined): void {
    this.#abortHook = hook;
  }

  setResult(value: T): void {
    if (this.done()) throw new InvalidStateError(`setResult(): future is already ${this.#state}`);
    this.#value = value;
    this.#finish();
  }

  setException(error: unknown): void {
    if (this.done()) throw new InvalidStateError(`setException(): future is already ${this.#state}`);
    this.#error = error;
    this.#hasError = true;
    this.#finish();
  }

  // -------------------------------------------------------------------------------------------

  #settleCancelled(reason: unknown): void {
    this.#state = 'CANCELLED';
    this.#cancelReason = reason;
    this.#notify();
  }

  #finish(): void {
    this.#state = 'FINISHED';
    this.#abortHook = undefined;
    this.#notify();
  }

  #notify(): void {
    const waiters = this.#waiters;
    this.#waiters = undefined;
    if (typeof waiters === 'function') waiters();
    else if (waiters) { for (const w of waiters) w(); }
    const callbacks = this.#callbacks;
    this.#callbacks = undefined;
    if (typeof callbacks === 'function') this.#invoke(callbacks);
    else if (callbacks) { for (const cb of callbacks) this.#invoke(cb); }
  }

  // deno-lint-ignore no-explicit-any
  #invoke(call: (f: Future<any>) => void): void {
    try {
      call(this);
    } catch (err) {
      reportCallbackError(err);
    }
  }

  #cancelledError(): CancelledError {
    const reason = this.#cancelReason;
    if (reason instanceof CancelledError) return reason;
    if (reason instanceof Error && reason.name === 'TimeoutError') return new CancelledError(reason.message, { cause: reason });
    return reason === undefined
      ? new CancelledError()
      : new CancelledError(`the future was cancelled: ${String(reason instanceof Error ? reason.message : reason)}`, { cause: reason });
  }

  /** Resolves when done, or rejects with TimeoutError after `timeoutMs`. */
  #wait(timeoutMs: number | undefined): Promise<void> {
    if (this.done()) return Promise.resolve();
    checkTimeout('timeoutMs', timeoutMs);
    return new Promise<void>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waiter = () => {
        if (timer !== undefined) clearTimeout(timer);
        resolve();
      };
      this.#waiters = addTo(this.#waiters, waiter);
      if (timeoutMs !== undefined && timeoutMs !== Infinity) {
        timer = setTimeout(() => {
          this.#waiters = removeFrom(this.#waiters, waiter);
          reject(new TimeoutError(`the future did not finish within ${timeoutMs} ms`));
        }, timeoutMs);
      }
    });
  }
}

/** A short type name for the string tag: an error's name, a class name, or `typeof`. */
function kindOf(value: unknown, isError: boolean): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  if (isError && value instanceof Error) return value.name;
  const ctor = (value as { constructor?: { name?: unknown } }).constructor;
  return typeof ctor?.name === 'string' && ctor.name !== '' && ctor.name !== 'Object' ? ctor.name : 'object';
}

/**
 * Validates a timeout in milliseconds: undefined/Infinity (no limit) or a number >= 0. Not a
 * number is a TypeError, a number out of range (negative, NaN) a RangeError.
 */
export function checkTimeout(name: string, value: unknown): void {
  if (value === undefined || value === null || value === Infinity) return;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    const ErrorClass = typeof value === 'number' ? RangeError : TypeError;
    throw new ErrorClass(`${name} must be a number of milliseconds >= 0 (or undefined for no limit): got ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`);
  }
}
