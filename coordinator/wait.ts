/**
 * `wait()` and `asCompleted()`: Python's module-level functions over any mix of futures,
 * from any executor.
 */
import { TimeoutError } from '../shared/errors.ts';
import { checkProgress, iteratorWithProgress, type ProgressOption } from './progress.ts';
import { checkTimeout, failedWith, Future, offDoneInternal, onDoneInternal, subscribeDone } from './future.ts';

export const FIRST_COMPLETED = 'FIRST_COMPLETED';
export const FIRST_EXCEPTION = 'FIRST_EXCEPTION';
export const ALL_COMPLETED = 'ALL_COMPLETED';
export type ReturnWhen = typeof FIRST_COMPLETED | typeof FIRST_EXCEPTION | typeof ALL_COMPLETED;

export interface WaitOptions {
  /** Milliseconds to wait at most; default: no limit. Running out is not an error for `wait`. */
  timeout?: number;
  /** When to return; default `ALL_COMPLETED`. */
  returnWhen?: ReturnWhen;
}

export interface WaitResult<T> {
  done: Set<Future<T>>;
  notDone: Set<Future<T>>;
}

/**
 * Waits for futures, as Python's `concurrent.futures.wait`, and resolves to `{ done, notDone }`.
 * Running out of time is not an error: look at `notDone`. With `FIRST_EXCEPTION`, a cancelled
 * future does not count as an exception (as in Python); if none fails it waits for all.
 */
export async function wait<T>(futures: Iterable<Future<T>>, options: WaitOptions = {}): Promise<WaitResult<T>> {
  const { timeout, returnWhen = ALL_COMPLETED } = options;
  checkTimeout('options.timeout', timeout);
  if (returnWhen !== FIRST_COMPLETED && returnWhen !== FIRST_EXCEPTION && returnWhen !== ALL_COMPLETED) {
    throw new RangeError(`options.returnWhen must be FIRST_COMPLETED, FIRST_EXCEPTION or ALL_COMPLETED: got ${String(returnWhen)}`);
  }
  const all = new Set(futures);
  for (const f of all) checkFuture(f, 'wait');

  const satisfied = (): boolean => {
    let anyDone = false;
    let allDone = true;
    for (const f of all) {
      if (!f.done()) {
        allDone = false;
        continue;
      }
      anyDone = true;
      if (returnWhen === FIRST_EXCEPTION && failedWith(f).failed) return true;
    }
    return returnWhen === FIRST_COMPLETED ? anyDone || allDone : allDone;
  };

  if (!satisfied()) {
    await new Promise<void>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      let finished = false;
      const unsubscribers: (() => void)[] = [];
      const finish = () => {
        finished = true;
        if (timer !== undefined) clearTimeout(timer);
        for (const unsubscribe of unsubscribers) unsubscribe();
        resolve();
      };
      // Each completion is judged on its own (one full scan per completion would make a wait
      // on n futures cost n² checks): count what is left, look only at the one that finished.
      let left = 0;
      for (const f of all) {
        if (f.done()) continue;
        left++;
        unsubscribers.push(
          subscribeDone(f, () => {
            if (finished) return;
            left--;
            if (returnWhen === FIRST_COMPLETED || left === 0 || (returnWhen === FIRST_EXCEPTION && failedWith(f).failed)) finish();
          }),
        );
      }
      if (timeout !== undefined && timeout !== Infinity) timer = setTimeout(finish, timeout);
    });
  }
  const done = new Set<Future<T>>();
  const notDone = new Set<Future<T>>();
  for (const f of all) (f.done() ? done : notDone).add(f);
  return { done, notDone };
}

export interface AsCompletedOptions {
  /** Milliseconds, counted from the call, after which iteration throws `TimeoutError`. */
  timeout?: number;
  /** `true`: a progress bar on the terminal; a function: called with `{ done, total }` as futures complete. */
  progress?: ProgressOption;
}

/**
 * A future that `asCompleted` yields: done, with every method of `Future` but without `then`.
 * TypeScript types a `for await` variable as `Awaited<element>`, so if the element type were
 * thenable the loop variable would be typed as the *result* while at run time it is the future.
 * Dropping `then` from the type keeps the two in step: read it with `f.result()`.
 */
export type CompletedFuture<T> = Omit<Future<T>, 'then' | 'catch' | 'finally'>;

/**
 * Yields futures as they finish, as Python's `concurrent.futures.as_completed`: those already
 * done first, each future once even if passed twice. If `timeout` ms pass (counted from the
 * call) before all are done, the iteration throws `TimeoutError`.
 *
 * @example
 * for await (const f of asCompleted(futures)) console.log(await f.result());
 */
export function asCompleted<T>(futures: Iterable<Future<T>>, options: AsCompletedOptions = {}): AsyncIterableIterator<CompletedFuture<T>> {
  checkProgress('asCompleted', options?.progress);
  if (options?.progress) {
    const list = [...futures];
    return iteratorWithProgress(completed(list, options), new Set(list).size, options.progress);
  }
  return completed(futures, options);
}

function completed<T>(futures: Iterable<Future<T>>, options: AsCompletedOptions): AsyncIterableIterator<CompletedFuture<T>> {
  // Written by hand rather than as an async generator: `yield` in an async generator awaits
  // its operand, and a Future is awaitable, so a generator would yield results, not futures.
  const { timeout } = options;
  checkTimeout('options.timeout', timeout);
  const deadline = timeout === undefined || timeout === Infinity ? Infinity : Date.now() + timeout;
  const seen = new Set<Future<T>>();
  for (const f of futures) {
    checkFuture(f, 'asCompleted');
    seen.add(f);
  }
  const total = seen.size;
  // Done ones first, in the order given; then each as it finishes. One callback serves every
  // future (it is called with the future), and nothing else is kept per future: a burst of a
  // million tasks read with asCompleted used to cost ~560 bytes each in closures and sets here.
  const finished: Future<T>[] = [];
  const subscribed: Future<T>[] = [];
  let head = 0; // finished[head] is the next to hand out (shift() would be O(n) per future)
  let left = total;
  // Every next() waiting for a future to finish; usually one, but callers may overlap calls.
  const wakers = new Set<() => void>();
  const wakeAll = () => {
    for (const w of [...wakers]) w();
  };
  const onDone = (f: Future<T>): void => {
    finished.push(f);
    if (wakers.size > 0) wakeAll();
  };
  for (const f of seen) {
    if (f.done()) finished.push(f);
    else subscribed.push(f);
  }
  for (const f of subscribed) onDoneInternal(f, onDone);
  const stop = (): IteratorResult<Future<T>> => {
    for (const f of subscribed) if (!f.done()) offDoneInternal(f, onDone);
    subscribed.length = 0;
    left = 0;
    finished.length = 0;
    head = 0;
    wakeAll();
    return { value: undefined, done: true };
  };
  const next = async (): Promise<IteratorResult<Future<T>>> => {
    while (left > 0) {
      if (head < finished.length) {
        left--;
        return { value: finished[head++]!, done: false };
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        const message = `${left} (of ${total}) futures unfinished after ${timeout} ms`;
        stop();
        throw new TimeoutError(message);
      }
      await new Promise<void>((resolve) => {
        const waker = () => {
          if (timer !== undefined) clearTimeout(timer);
          wakers.delete(waker);
          resolve();
        };
        const timer = deadline === Infinity ? undefined : setTimeout(waker, remaining);
        wakers.add(waker);
      });
    }
    return { value: undefined, done: true };
  };
  return {
    next,
    return: async () => stop(),
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

function checkFuture(f: unknown, fn: string): void {
  // A real Future, not any object with done(): wait() and asCompleted() read its state directly.
  if (!(f instanceof Future)) {
    throw new TypeError(`${fn}(futures): every item must be a Future: got ${f === null ? 'null' : typeof f}`);
  }
}
