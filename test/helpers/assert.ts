/** Assertions uvu 0.5 lacks. */
import * as assert from 'uvu/assert';

/**
 * Awaits `fn()` (or a promise) and asserts it rejects; returns the error. With `check`, also
 * asserts that the error passes it (a class, or a predicate).
 */
export async function rejects(
  fn: (() => unknown) | PromiseLike<unknown>,
  check?: (new (...a: never[]) => unknown) | ((e: unknown) => boolean),
  message?: string,
): Promise<unknown> {
  try {
    await (typeof fn === 'function' ? fn() : fn);
  } catch (err) {
    if (check) {
      const ok = check.prototype && check.prototype instanceof Error || check === Error ? err instanceof (check as new () => unknown) : (check as (e: unknown) => boolean)(err);
      if (!ok) assert.unreachable(`${message ?? 'rejected with the wrong error'}: ${String(err instanceof Error ? `${err.name}: ${err.message}` : err)}`);
    }
    return err;
  }
  assert.unreachable(message ?? 'expected a rejection, but it resolved');
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
