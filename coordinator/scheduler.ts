/**
 * The coordinator's scheduling state: which tasks wait, which worker node runs what, and what
 * happens to a node's tasks when it is lost. It never touches a socket or a timer: the process
 * pool feeds it events (submit, worker joined/left, outcome, cancel) and carries out what it
 * returns (assignments, retries, failures), so it is unit-tested without a network.
 */

export interface SchedulerOptions {
  /** Re-runs allowed for a task whose worker node was lost. */
  maxRetries: number;
}

interface TaskEntry<P> {
  id: number;
  payload: P;
  /** Times it has been handed to a worker node. */
  attempts: number;
  /** The worker node it is assigned to, or undefined while queued. */
  workerId: string | undefined;
}

interface WorkerEntry {
  id: string;
  slots: number;
  assigned: Set<number>;
  /** A draining node finishes what it has and gets nothing new. */
  draining: boolean;
}

export interface Assignment<P> {
  workerId: string;
  tasks: { id: number; payload: P; attempt: number }[];
}

export interface LostWorkerOutcome {
  /** Tasks put back in the queue for another attempt. */
  requeued: number[];
  /** Tasks that ran out of retries: their futures must fail with WorkerLostError. */
  failed: { id: number; attempts: number }[];
}

/**
 * A FIFO queue backed by an array with a moving head; `shift()` on a big array is O(n), and
 * this queue may hold a million tasks.
 */
class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;
  get size(): number {
    return this.#items.length - this.#head;
  }
  push(v: T): void {
    this.#items.push(v);
  }
  /** Puts a task at the front: retried tasks go first, they have waited longest. */
  unshift(v: T): void {
    if (this.#head > 0) this.#items[--this.#head] = v;
    else this.#items.unshift(v);
  }
  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const v = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head > 4096 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return v;
  }
}

export class Scheduler<P> {
  readonly #options: SchedulerOptions;
  readonly #tasks = new Map<number, TaskEntry<P>>();
  readonly #queue = new Fifo<number>();
  readonly #workers = new Map<string, WorkerEntry>();
  /**
   * How many tasks a node may hold per slot: 1 means only what it can start now; more lets a
   * slot that frees up find its next task already there (prefetch). Set by the pool from
   * observed task durations: prefetch pays for tiny tasks and hurts balance for long ones.
   */
  depthPerSlot = 1;

  constructor(options: SchedulerOptions) {
    this.#options = options;
  }

  get queuedCount(): number {
    return this.#queue.size;
  }

  get taskCount(): number {
    return this.#tasks.size;
  }

  /** Total slots of the connected, non-draining worker nodes. */
  get slotCount(): number {
    let n = 0;
    for (const w of this.#workers.values()) if (!w.draining) n += w.slots;
    return n;
  }

  hasTask(id: number): boolean {
    return this.#tasks.has(id);
  }

  workerOf(id: number): string | undefined {
    return this.#tasks.get(id)?.workerId;
  }

  submit(id: number, payload: P): void {
    if (this.#tasks.has(id)) throw new Error(`scheduler: task ${id} submitted twice`);
    this.#tasks.set(id, { id, payload, attempts: 0, workerId: undefined });
    this.#queue.push(id);
  }

  addWorker(id: string, slots: number): void {
    if (this.#workers.has(id)) throw new Error(`scheduler: worker ${id} added twice`);
    this.#workers.set(id, { id, slots, assigned: new Set(), draining: false });
  }

  drainWorker(id: string): void {
    const w = this.#workers.get(id);
    if (w) w.draining = true;
  }

  /**
   * Forgets a worker node. Its tasks go back to the front of the queue, or fail once they have
   * been tried `1 + maxRetries` times.
   */
  removeWorker(id: string): LostWorkerOutcome {
    const w = this.#workers.get(id);
    const out: LostWorkerOutcome = { requeued: [], failed: [] };
    if (!w) return out;
    this.#workers.delete(id);
    // Requeue in reverse so that, after unshift, they keep their original order at the front.
    const ids = [...w.assigned].sort((a, b) => b - a);
    for (const taskId of ids) {
      const t = this.#tasks.get(taskId);
      if (!t) continue;
      t.workerId = undefined;
      if (t.attempts > this.#options.maxRetries) {
        this.#tasks.delete(taskId);
        out.failed.push({ id: taskId, attempts: t.attempts });
      } else {
        this.#queue.unshift(taskId);
        out.requeued.push(taskId);
      }
    }
    out.requeued.reverse();
    return out;
  }

  /**
   * A task ended (result, error, or it was stopped). Returns the worker node that held it, or
   * undefined if the task is unknown here: already finished, or cancelled — an outcome for it
   * must be dropped (exactly-once settlement).
   */
  complete(id: number, fromWorker?: string): string | undefined {
    const t = this.#tasks.get(id);
    if (!t) return undefined;
    if (fromWorker !== undefined && t.workerId !== fromWorker) return undefined; // stale, from a lost node
    this.#tasks.delete(id);
    if (t.workerId !== undefined) this.#workers.get(t.workerId)?.assigned.delete(id);
    return t.workerId;
  }

  /**
   * Removes a task wherever it is. Returns the worker node to tell to stop it, if it was
   * assigned; undefined if it was only queued (or unknown).
   */
  cancel(id: number): string | undefined {
    const t = this.#tasks.get(id);
    if (!t) return undefined;
    this.#tasks.delete(id);
    // A queued id stays in the FIFO and is skipped when reached: removing from the middle of
    // a million-entry queue would be O(n) per cancel.
    if (t.workerId !== undefined) {
      this.#workers.get(t.workerId)?.assigned.delete(id);
      return t.workerId;
    }
    return undefined;
  }

  /**
   * Hands queued tasks to worker nodes with room, least-loaded first, and returns the batches
   * to send. `accept(id)` is asked before a task is handed out and may refuse it (its future
   * was cancelled meanwhile): the task is then dropped.
   */
  assign(accept: (id: number) => boolean = () => true): Assignment<P>[] {
    if (this.#queue.size === 0) return [];
    const open = [...this.#workers.values()].filter((w) => !w.draining && w.assigned.size < w.slots * this.depthPerSlot);
    if (open.length === 0) return [];
    const batches = new Map<string, Assignment<P>>();
    // Round-robin over nodes with room, one task at a time, so a burst spreads evenly.
    let i = 0;
    while (open.length > 0 && this.#queue.size > 0) {
      const id = this.#queue.shift()!;
      const t = this.#tasks.get(id);
      if (!t || t.workerId !== undefined) continue; // cancelled while queued
      if (!accept(id)) {
        this.#tasks.delete(id);
        continue;
      }
      i %= open.length;
      const w = open[i]!;
      t.workerId = w.id;
      t.attempts++;
      w.assigned.add(id);
      let batch = batches.get(w.id);
      if (!batch) batches.set(w.id, (batch = { workerId: w.id, tasks: [] }));
      batch.tasks.push({ id, payload: t.payload, attempt: t.attempts });
      if (w.assigned.size >= w.slots * this.depthPerSlot) open.splice(i, 1);
      else i++;
    }
    return [...batches.values()];
  }
}
