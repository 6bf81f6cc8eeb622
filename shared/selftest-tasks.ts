/**
 * The tasks of `wsfutures loadtest --self`, the load test of the cluster itself. Each returns a
 * value the coordinator can check from the input alone (so a wrong result is caught), and the
 * attempt it ran as (so re-runs after a lost node are counted).
 */
import { currentTask } from './task-context.ts';

/** What every self-test task returns. */
export interface SelfTestResult {
  /** 3 × i + 1, computed by the task. */
  v: number;
  attempt: number;
}

const answer = (i: number): SelfTestResult => ({ v: 3 * i + 1, attempt: currentTask()?.attempt ?? 1 });

/** Next to nothing: the cost of the cluster itself. */
export function tiny(i: number): SelfTestResult {
  return answer(i);
}

/** Waits `ms` (asynchronously): many in flight per slot are cheap. */
export async function sleep(i: number, ms: number): Promise<SelfTestResult> {
  await new Promise((r) => setTimeout(r, ms));
  return answer(i);
}

/** Keeps a core busy for `ms`. */
export function cpu(i: number, ms: number): SelfTestResult {
  const end = performance.now() + ms;
  let x = i;
  while (performance.now() < end) x = (x * 1103515245 + 12345) % 2147483648;
  return { ...answer(i), attempt: (currentTask()?.attempt ?? 1) + (x < 0 ? 1 : 0) };
}

/** Echoes `data` back (payload throughput), with its length and first byte checked. */
export function payload(i: number, data: Uint8Array): SelfTestResult & { data: Uint8Array } {
  return { ...answer(i), data };
}
