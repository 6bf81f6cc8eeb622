/**
 * Progress of long work (`map`, `starmap`, `asCompleted` with `progress`): a callback, or a
 * ready-made bar on the terminal (cli-progress) — drawn only when stderr is a terminal, so
 * nothing extra is printed when the output is piped or logged.
 */
import { SingleBar } from 'cli-progress';

/** What a progress callback is told: results so far, and how many there will be if known. */
export interface Progress {
  done: number;
  total: number | undefined;
}

/** `true` draws a bar on the terminal; a function is called as results come (at most ~10 a second, and at the end). */
export type ProgressOption = boolean | ((progress: Progress) => void);

export function checkProgress(where: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean' && typeof value !== 'function') {
    throw new TypeError(`${where}: options.progress must be true (a bar on the terminal) or a function ({ done, total }) => void: got ${typeof value}`);
  }
}

/** How many items an input will give, when it says (an array, a Set, a Map). */
export function sizeOf(iterable: unknown): number | undefined {
  if (Array.isArray(iterable)) return iterable.length;
  if (iterable instanceof Set || iterable instanceof Map) return iterable.size;
  return undefined;
}

/**
 * Passes `source`'s values through, reporting progress as they come; `count` says how many
 * results a value stands for (an array of a chunk's results stands for its length).
 */
export async function* withProgress<T>(
  source: AsyncGenerator<T, void, undefined>,
  total: number | undefined,
  option: ProgressOption,
  count?: (value: T) => number,
): AsyncGenerator<T, void, undefined> {
  if (option === false) return yield* source;
  const report = typeof option === 'function' ? option : terminalBar(total);
  let done = 0;
  let last = 0;
  const tell = (force: boolean) => {
    const now = performance.now();
    if (!force && now - last < 100) return;
    last = now;
    report({ done, total });
  };
  try {
    tell(true);
    for await (const value of source) {
      done += count ? count(value) : 1;
      tell(false);
      yield value;
    }
    tell(true);
  } finally {
    if (typeof option !== 'function') (report as ReturnType<typeof terminalBar>).stop();
  }
}

function terminalBar(total: number | undefined): ((p: Progress) => void) & { stop(): void } {
  if (!process.stderr.isTTY) return Object.assign(() => {}, { stop() {} });
  const bar = new SingleBar({
    stream: process.stderr,
    format: total === undefined ? ' {value} done | {rate}/s | {duration_formatted}' : ' {bar} {percentage}% | {value}/{total} | {rate}/s | ETA {eta_formatted}',
    hideCursor: true,
    barsize: 30,
  });
  const started = performance.now();
  let active = false;
  const update = (p: Progress) => {
    const rate = (p.done / Math.max(0.001, (performance.now() - started) / 1000)).toFixed(0);
    if (!active) {
      bar.start(p.total ?? 0, p.done, { rate });
      active = true;
    } else bar.update(p.done, { rate });
  };
  return Object.assign(update, {
    stop() {
      if (active) bar.stop();
    },
  });
}

/**
 * The same for an iterator whose values must not be awaited (asCompleted yields futures, which
 * are thenable: an async generator would yield their results instead).
 */
export function iteratorWithProgress<T>(source: AsyncIterableIterator<T>, total: number | undefined, option: ProgressOption): AsyncIterableIterator<T> {
  if (option === false) return source;
  const report = typeof option === 'function' ? option : terminalBar(total);
  const stop = () => {
    if (typeof option !== 'function') (report as ReturnType<typeof terminalBar>).stop();
  };
  let done = 0;
  let last = -Infinity;
  const tell = (force: boolean) => {
    const now = performance.now();
    if (!force && now - last < 100) return;
    last = now;
    report({ done, total });
  };
  tell(true);
  const it: AsyncIterableIterator<T> = {
    async next() {
      let r: IteratorResult<T>;
      try {
        r = await source.next();
      } catch (err) {
        stop();
        throw err;
      }
      if (r.done) {
        tell(true);
        stop();
      } else {
        done++;
        tell(false);
      }
      return r;
    },
    async return(value?: unknown) {
      stop();
      return (await source.return?.(value)) ?? { done: true, value: undefined as T };
    },
    [Symbol.asyncIterator]() {
      return it;
    },
  };
  return it;
}
