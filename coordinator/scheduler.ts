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
  /**
   * Submission order. Requeued tasks are put back in this order: ids need not follow it (the
   * pool's do, but the scheduler takes any ids), so sorting by id would reorder them.
   */
  seq: number;
  payload: P;
  /** Times it has been handed to a worker node. */
  attempts: number;
  /** The worker node it is assigned to, or undefined while queued. */
  workerId: string | undefined;
}

interface WorkerEntry {
  id: string;
  slots: number;
  /**
   * Its tasks, in the order they were handed to it. A worker runs them in that order, one per
   * slot at a time: with one slot (a lane, as the process pool uses it), the first is the one
   * running and the others wait behind it.
   */
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
  /** With `crashed`: the task that was running, removed here; its future must fail. */
  crashed?: number;
}

/**
 * How a worker went away, which decides whether the task it was running is to blame.
 * - `lost`: the connection or the node went away, or the worker was ended on purpose. The task
 *   it was running is re-run, counting an attempt (it fails once it has run `1 + maxRetries`
 *   times).
 * - `crashed`: the task itself ended the worker's thread (process.exit, out of memory): it is
 *   not re-run, and the caller fails it with what happened.
 * Every other task it held had not started: they go back to the queue without counting an
 * attempt.
 */
export type LossKind = 'lost' | 'crashed';

/**
 * A FIFO queue backed by an array with a moving head; `shift()` on a big array is O(n), and
 * this queue may hold a million tasks.
 */
class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;
  /**
   * Items put at the front, last one first. `Array.prototype.unshift` moves every item, and the
   * head is 0 right after a compaction or before the first shift(): requeueing the thousands of
   * tasks of a lost node in front of a million queued ones was O(queue) per task. A stack makes
   * it O(1).
   */
  #front: T[] = [];
  get size(): number {
    return this.#front.length + this.#items.length - this.#head;
  }
  push(v: T): void {
    this.#items.push(v);
  }
  /** Puts a task at the front: retried tasks go first, they have waited longest. */
  unshift(v: T): void {
    this.#front.push(v);
  }
  shift(): T | undefined {
    if (this.#front.length > 0) return this.#front.pop();
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
  /**
   * Entries, not ids: a cancelled task stays in the queue (removing it from the middle is
   * O(n)) and is recognised when reached because the map no longer holds that very entry —
   * even if its id was submitted again since.
   */
  readonly #queue = new Fifo<TaskEntry<P>>();
  /**
   * Live tasks in the queue. The FIFO's own size also counts cancelled tasks not yet reached,
   * which made `queuedCount` (and so `pool.queuedCount`) overstate the backlog.
   */
  #queued = 0;
  #seq = 0;
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
    return this.#queued;
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

  /**
   * Removes every task that waits in the queue (none assigned to a node) and returns their
   * payloads, in submission order: what a broken pool must fail.
   */
  removeQueued(): { id: number; payload: P }[] {
    const out: { id: number; payload: P }[] = [];
    for (const t of this.#tasks.values()) if (t.workerId === undefined) out.push({ id: t.id, payload: t.payload });
    for (const { id } of out) this.cancel(id);
    return out;
  }

  /** The payload a task was submitted with, while the scheduler knows the task. */
  payloadOf(id: number): P | undefined {
    return this.#tasks.get(id)?.payload;
  }

  workerOf(id: number): string | undefined {
    return this.#tasks.get(id)?.workerId;
  }

  submit(id: number, payload: P): void {
    if (this.#tasks.has(id)) throw new Error(`scheduler: task ${id} submitted twice`);
    const t: TaskEntry<P> = { id, seq: this.#seq++, payload, attempts: 0, workerId: undefined };
    this.#tasks.set(id, t);
    this.#queue.push(t);
    this.#queued++;
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
   * Forgets a worker; its tasks go back to the front of the queue, in submission order, except
   * the one it was running, which `how` decides about (see LossKind). `running` says which task
   * that was: an id (which may no longer be the scheduler's: an aborted task), `null` for none,
   * or undefined when unknown — then the worker's first `slots` tasks in assignment order are
   * taken to be the running ones.
   */
  removeWorker(id: string, how: LossKind = 'lost', running?: number | null): LostWorkerOutcome {
    const w = this.#workers.get(id);
    const out: LostWorkerOutcome = { requeued: [], failed: [] };
    if (!w) return out;
    this.#workers.delete(id);
    const retry: TaskEntry<P>[] = [];
    let position = 0;
    for (const taskId of w.assigned) {
      const t = this.#tasks.get(taskId);
      if (!t) continue;
      t.workerId = undefined;
      const wasRunning = running === undefined ? position++ < w.slots : taskId === running;
      if (!wasRunning) {
        t.attempts--;
        retry.push(t);
      } else if (how === 'crashed') {
        this.#tasks.delete(t.id);
        out.crashed = t.id;
      } else if (t.attempts > this.#options.maxRetries) {
        this.#tasks.delete(t.id);
        out.failed.push({ id: t.id, attempts: t.attempts });
      } else {
        retry.push(t);
      }
    }
    // Unshifted last-first, so that the queue's front holds them in submission order.
    retry.sort((a, b) => a.seq - b.seq);
    for (let i = retry.length - 1; i >= 0; i--) {
      this.#queue.unshift(retry[i]!);
      out.requeued.push(retry[i]!.id);
    }
    out.requeued.reverse();
    this.#queued += retry.length;
    return out;
  }

  /** Whether `workerId` holds task `id` now: an outcome from anyone else is stale. */
  holds(id: number, workerId: string): boolean {
    return this.#tasks.get(id)?.workerId === workerId;
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
    else this.#queued--;
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
    this.#queued--;
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
    // Least-loaded first. Without this the round-robin always started at the first node: the
    // pool runs one pass per tick, so a trickle of submits (one task per pass) all went to that
    // node until it was full — with prefetch, up to 256 tasks per slot — while the others idled.
    // Stable sort: equal loads keep the order the nodes joined in.
    open.sort((a, b) => a.assigned.size / a.slots - b.assigned.size / b.slots);
    const batches = new Map<string, Assignment<P>>();
    // Round-robin over nodes with room, one task at a time, so a burst spreads evenly.
    let i = 0;
    while (open.length > 0 && this.#queue.size > 0) {
      const t = this.#queue.shift()!;
      if (this.#tasks.get(t.id) !== t) continue; // cancelled (or settled) while queued
      const id = t.id;
      this.#queued--;
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
