/**
 * wsfutures: Python's concurrent.futures for Node.js and Deno. This module is the whole
 * public API of the coordinator side; everything else is engine.
 */
export { Future, type FutureState, type DoneCallback, setCallbackErrorReporter } from './future.ts';
export { wait, asCompleted, FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED, type ReturnWhen, type WaitOptions, type WaitResult, type AsCompletedOptions, type CompletedFuture } from './wait.ts';
export type { Executor, SubmitOptions, MapOptions, ShutdownOptions } from './executor.ts';
export { AsyncPoolExecutor, type AsyncPoolExecutorOptions } from './async-pool.ts';
// currentTask, TaskContext and the error classes: the same as what task modules import.
export * from '../shared/task.ts';
export { ProcessPoolExecutor, type ProcessPoolExecutorOptions, type WorkerInfo } from './process-pool.ts';
export type { PoolStats, NodeStats, NodeState, FunctionStats, DurationStats } from './cluster-stats.ts';
export type { PoolEventMap, PoolEventName, PoolEventListener } from './pool-events.ts';
export type { Progress, ProgressOption } from './progress.ts';
