/** Futures already in a final state, for tests of wait, asCompleted and Future itself. */
import { Future } from '../../coordinator/index.ts';

export function succeeded<T>(value: T): Future<T> {
  const f = new Future<T>();
  f.setResult(value);
  return f;
}

export function failed<T = never>(error: unknown): Future<T> {
  const f = new Future<T>();
  f.setException(error);
  return f;
}

export function cancelled<T = never>(): Future<T> {
  const f = new Future<T>();
  f.cancel();
  return f;
}
