/**
 * Events a program can subscribe to on a ProcessPoolExecutor: nodes joining, becoming ready,
 * draining and being lost, tasks retried, the pool breaking. A small typed emitter of our own
 * (no dependency, the same on Node and Deno): `pool.on(name, listener)` returns a function that
 * unsubscribes. A listener that throws is reported and never disturbs the pool or the others.
 */
import type { NodeStats } from './cluster-stats.ts';

export interface PoolEventMap {
  /** A node registered (its task threads are still starting). */
  nodeJoined: NodeStats;
  /** A node's task threads are all attached: it runs tasks at full speed. */
  nodeReady: NodeStats;
  /** A node is draining: it takes nothing new and leaves once its tasks have reported. */
  nodeDraining: NodeStats;
  /** A node is gone (closed, crashed, silent past the heartbeat timeout, or drained). */
  nodeLost: NodeStats & { reason: string };
  /** A task that was running on a lost node or thread is queued to run again. */
  taskRetried: { taskId: number; fn: string; node: string; attempt: number };
  /** The pool cannot run work any more (see BrokenExecutorError). */
  broken: { message: string };
}

export type PoolEventName = keyof PoolEventMap;
export type PoolEventListener<K extends PoolEventName> = (event: PoolEventMap[K]) => void;

export class PoolEvents {
  readonly #listeners = new Map<PoolEventName, Set<(event: never) => void>>();
  readonly #report: (err: unknown, name: string) => void;

  constructor(report: (err: unknown, name: string) => void) {
    this.#report = report;
  }

  on<K extends PoolEventName>(name: K, listener: PoolEventListener<K>): () => void {
    if (typeof listener !== 'function') throw new TypeError(`pool.on('${String(name)}', listener): listener must be a function: got ${typeof listener}`);
    let set = this.#listeners.get(name);
    if (!set) this.#listeners.set(name, set = new Set());
    set.add(listener as (event: never) => void);
    return () => void set.delete(listener as (event: never) => void);
  }

  /** Whether anyone listens: events are built only then. */
  has(name: PoolEventName): boolean {
    return (this.#listeners.get(name)?.size ?? 0) > 0;
  }

  emit<K extends PoolEventName>(name: K, event: PoolEventMap[K]): void {
    const set = this.#listeners.get(name);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as PoolEventListener<K>)(event);
      } catch (err) {
        this.#report(err, name);
      }
    }
  }
}
