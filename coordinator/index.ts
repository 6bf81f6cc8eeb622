/**
 * wsfutures: Python's concurrent.futures for Node.js and Deno. This module is the whole
 * public API of the coordinator side; everything else is engine.
 */
export { type DoneCallback, Future, type FutureState, setCallbackErrorReporter } from './future.ts';
export {
  ALL_COMPLETED,
  asCompleted,
  type AsCompletedOptions,
  type CompletedFuture,
  FIRST_COMPLETED,
  FIRST_EXCEPTION,
  type ReturnWhen,
  wait,
  type WaitOptions,
  type WaitResult,
} from './wait.ts';
export type { Executor, MapOptions, MapResults, ShutdownOptions, SubmitOptions } from './executor.ts';
export { AsyncPoolExecutor, type AsyncPoolExecutorOptions } from './async-pool.ts';
// currentTask, TaskContext and the error classes: the same as what task modules import.
export * from '../shared/task.ts';
export { ProcessPoolExecutor, type ProcessPoolExecutorOptions, type WorkerInfo } from './process-pool.ts';
export type { DurationStats, FunctionStats, NodeState, NodeStats, PoolStats } from './cluster-stats.ts';
export type { PoolEventListener, PoolEventMap, PoolEventName } from './pool-events.ts';
export type { Progress, ProgressOption } from './progress.ts';
