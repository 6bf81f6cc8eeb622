/**
 * A one-line progress bar for long maps. It draws only when stdout is a terminal: piped into
 * a file, a test or CI, it prints nothing, so logs stay clean and comparable.
 */

export interface ProgressOptions {
  /** Text before the bar. */
  label?: string;
  /** Characters in the bar (default 30). */
  width?: number;
  /** Draw even when stdout is not a terminal (default: only on a TTY). */
  force?: boolean;
}

/**
 * Passes the values of `source` through unchanged, drawing `label [#####.....] done/total`
 * after each one, and clears the line at the end (also on `break` or an error).
 *
 * @example
 * for await (const r of withProgress(pool.map(burn, items), items.length, { label: 'burn' })) results.push(r);
 */
export async function* withProgress<T>(source: AsyncIterable<T> | Iterable<T>, total: number, options: ProgressOptions = {}): AsyncGenerator<T, void, undefined> {
  const { label = '', width = 30, force = false } = options;
  const draw = force || process.stdout.isTTY === true;
  let done = 0;
  const blank = `\r${' '.repeat(label.length + width + 6 + String(total).length * 2)}\r`;
  const render = () => {
    if (!draw) return;
    const filled = total > 0 ? Math.min(width, Math.round((done / total) * width)) : width;
    process.stdout.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`);
  };
  try {
    render();
    for await (const value of source) {
      done++;
      // Cleared while the caller handles the value, so whatever it prints starts on a clean line.
      if (draw) process.stdout.write(blank);
      yield value;
      render();
    }
  } finally {
    if (draw) process.stdout.write(blank);
  }
}
