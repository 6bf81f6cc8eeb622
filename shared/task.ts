/**
 * `wsfutures/task`: what a task module needs, and nothing of the coordinator — the running
 * task's context and the error classes. Task threads load this, not the whole SDK; the
 * coordinator inlines it into the task modules it ships, so a worker node needs no copy of
 * wsfutures to run a module that imports it.
 */
export { currentTask, type TaskContext } from './task-context.ts';
export {
  BrokenExecutorError,
  CancelledError,
  ExecutorShutdownError,
  InvalidStateError,
  ModuleLoadError,
  ProtocolError,
  SerializationError,
  TimeoutError,
  UnknownTaskError,
  WorkerLostError,
  WsFuturesError,
} from './errors.ts';
