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
  /** The task module it needs: it goes only to workers that loaded that module. */
  module: number;
  /** Higher first (submitWith's `priority`). */
  priority: number;
  /** What kind of task it is (the pool: its function), for its estimated duration. */
  kind: number;
  /** The work it adds to its worker's queue while assigned there, ms (see prefetchMs). */
  estimateMs: number;
  /** Times it has been handed to a worker node, less those that cannot have been its fault. */
  attempts: number;
  /**
   * Times it went back to the queue from a lost worker without using a retry although it may
   * have run there: results leave a task thread in batches, so a task behind the one that was
   * running may have finished without its result having left the node. Counted in the attempt
   * number the task sees, so that `attempt > 1` always means "this may have run before".
   */
  mayHaveRun: number;
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
  /** Task modules it could not load: it is handed none of their tasks. */
  cannotRun: ReadonlySet<number>;
  /** Estimated work of its assigned tasks, ms (see prefetchMs). */
  queuedMs: number;
  /** How long tasks take here against their estimate (setSpeed): 4 on a node 4× slower. */
  slowness: number;
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
  /** Forgets every item. */
  clear(): void {
    this.#items = [];
    this.#head = 0;
    this.#front = [];
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

/**
 * The queue: one FIFO per priority, higher priorities first, first in first out within one.
 * Nearly every pool uses one priority (0), which stays a single FIFO with no lookups.
 */
class PriorityQueue<T extends { priority: number }> {
  /** Levels, highest first, and their FIFOs in the same order (no lookup per task). */
  #levels: number[] = [0];
  #ordered: Fifo<T>[] = [new Fifo<T>()];
  #fifos = new Map<number, Fifo<T>>([[0, this.#ordered[0]!]]);
  #size = 0;
  get size(): number {
    return this.#size;
  }
  #fifo(priority: number): Fifo<T> {
    if (priority === 0 && this.#levels.length === 1) return this.#ordered[0]!;
    let f = this.#fifos.get(priority);
    if (!f) {
      this.#fifos.set(priority, (f = new Fifo<T>()));
      this.#levels.push(priority);
      this.#levels.sort((a, b) => b - a);
      this.#ordered = this.#levels.map((l) => this.#fifos.get(l)!);
    }
    return f;
  }
  push(v: T): void {
    this.#fifo(v.priority).push(v);
    this.#size++;
  }
  /** Back to the front of its priority. */
  unshift(v: T): void {
    this.#fifo(v.priority).unshift(v);
    this.#size++;
  }
  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    for (const fifo of this.#ordered) {
      const v = fifo.shift();
      if (v !== undefined) {
        this.#size--;
        return v;
      }
    }
    return undefined;
  }
  clear(): void {
    for (const f of this.#fifos.values()) f.clear();
    this.#size = 0;
  }
}

const NONE: ReadonlySet<number> = new Set();

/**
 * Tasks an assignment pass may look past in one go because no worker with room can run them
 * (their module failed to load there) while others can, later. Bounds a pass over a long queue
 * of such tasks; the tasks behind them wait for the next pass.
 */
const MAX_SKIPPED_PER_PASS = 4096;

export class Scheduler<P> {
  readonly #options: SchedulerOptions;
  readonly #tasks = new Map<number, TaskEntry<P>>();
  /**
   * Entries, not ids: a cancelled task stays in the queue (removing it from the middle is
   * O(n)) and is recognised when reached because the map no longer holds that very entry —
   * even if its id was submitted again since.
   */
  readonly #queue = new PriorityQueue<TaskEntry<P>>();
  /**
   * Live tasks in the queue. The FIFO's own size also counts cancelled tasks not yet reached,
   * which made `queuedCount` (and so `pool.queuedCount`) overstate the backlog.
   */
  #queued = 0;
  #seq = 0;
  readonly #workers = new Map<string, WorkerEntry>();
  /** Workers that cannot run some module: while there are none, canRun needs no loop. */
  #restricted = 0;
  /**
   * How many tasks a node may hold per slot: 1 means only what it can start now; more lets a
   * slot that frees up find its next task already there (prefetch). Set by the pool from
   * observed task durations: prefetch pays for tiny tasks and hurts balance for long ones.
   */
  depthPerSlot = 1;

  /**
   * Estimated work a worker may hold per slot before it is handed more, ms (Infinity: only
   * depthPerSlot counts). With it, a slot takes tiny tasks many at a time, so that it never
   * waits a round trip for the next, but a long task only when its queue is nearly empty, so
   * that a task never waits behind a long one while another slot idles. A task's estimate is
   * its kind's (setEstimate), or unknownEstimateMs for a kind not measured yet: possibly long.
   */
  prefetchMs = Infinity;
  unknownEstimateMs = 1000;
  readonly #estimates: (number | undefined)[] = [];

  /** How long tasks of `kind` take, as measured (the pool: per function). */
  setEstimate(kind: number, ms: number): void {
    this.#estimates[kind] = ms;
  }

  /**
   * How much longer than their estimates tasks take on worker `id` (its tasks' measured time
   * over the estimate): a slower node's queue fills with fewer tasks, so that at the end no
   * task waits on it while a faster one idles.
   */
  setSlowness(id: string, slowness: number): void {
    const w = this.#workers.get(id);
    if (w) w.slowness = slowness;
  }

  #hasRoom(w: WorkerEntry): boolean {
    return w.assigned.size < w.slots * this.depthPerSlot && w.queuedMs < w.slots * this.prefetchMs;
  }

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
    // Every task left in the FIFO is now dead (cancelled or settled): they were skipped only
    // when reached, and no assign() may ever reach them (a pool shutting down, or broken).
    // Emptying it releases them, payloads (futures, arguments) and all.
    this.#queue.clear();
    return out;
  }

  /** The payload a task was submitted with, while the scheduler knows the task. */
  payloadOf(id: number): P | undefined {
    return this.#tasks.get(id)?.payload;
  }

  /** How many times a task has been sent so far (0 while it waits for its first run). */
  attemptsOf(id: number): number {
    return this.#tasks.get(id)?.attempts ?? 0;
  }

  workerOf(id: number): string | undefined {
    return this.#tasks.get(id)?.workerId;
  }

  /**
   * Queues a task; `module` is the task module it needs (see addWorker's `cannotRun`). Tasks of
   * a higher `priority` go first; equal ones in the order they came.
   */
  submit(id: number, payload: P, module = 0, priority = 0, kind = 0): void {
    if (this.#tasks.has(id)) throw new Error(`scheduler: task ${id} submitted twice`);
    const t: TaskEntry<P> = { id, seq: this.#seq++, payload, module, priority, kind, estimateMs: 0, attempts: 0, mayHaveRun: 0, workerId: undefined };
    this.#tasks.set(id, t);
    this.#queue.push(t);
    this.#queued++;
  }

  /** A worker joins; it is never handed tasks of the modules in `cannotRun`. */
  addWorker(id: string, slots: number, cannotRun: ReadonlySet<number> = NONE): void {
    if (this.#workers.has(id)) throw new Error(`scheduler: worker ${id} added twice`);
    this.#workers.set(id, { id, slots, assigned: new Set(), draining: false, cannotRun, queuedMs: 0, slowness: 1 });
    if (cannotRun.size > 0) this.#restricted++;
  }

  /**
   * Whether some worker (draining or not) can run tasks of `module`; false when there is no
   * worker at all.
   */
  canRun(module: number): boolean {
    // Asked for every task submitted: the common case (every worker loaded every module) is O(1).
    if (this.#restricted === 0) return this.#workers.size > 0;
    for (const w of this.#workers.values()) if (!w.cannotRun.has(module)) return true;
    return false;
  }

  /**
   * Removes the queued tasks of `module` and returns them in submission order: what the pool
   * fails when no connected worker can run that module.
   */
  removeQueuedOf(module: number): { id: number; payload: P }[] {
    const out: { id: number; payload: P }[] = [];
    for (const t of this.#tasks.values()) if (t.workerId === undefined && t.module === module) out.push({ id: t.id, payload: t.payload });
    for (const { id } of out) this.cancel(id);
    return out;
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
   *
   * A requeued task uses no retry, but unless the loss shows it never started (it came after
   * the known running task) its attempt number goes up: it may have run (see mayHaveRun).
   */
  removeWorker(id: string, how: LossKind = 'lost', running?: number | null): LostWorkerOutcome {
    const w = this.#workers.get(id);
    const out: LostWorkerOutcome = { requeued: [], failed: [] };
    if (!w) return out;
    this.#workers.delete(id);
    if (w.cannotRun.size > 0) this.#restricted--;
    const retry: TaskEntry<P>[] = [];
    let position = 0;
    // Tasks after the one known to be running had not started: the thread runs them in order.
    let pastRunning = false;
    for (const taskId of w.assigned) {
      const t = this.#tasks.get(taskId);
      if (!t) continue;
      t.workerId = undefined;
      const wasRunning = running === undefined ? position++ < w.slots : taskId === running;
      if (!wasRunning) {
        t.attempts--;
        if (!pastRunning) t.mayHaveRun++;
        retry.push(t);
        continue;
      }
      if (running !== undefined) pastRunning = true;
      if (how === 'crashed') {
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

  /** Whether some worker cannot run some module (see addWorker's `cannotRun`). */
  get restricted(): boolean {
    return this.#restricted > 0;
  }

  /** How many tasks worker `id` holds (0 for an unknown worker). */
  heldBy(id: string): number {
    return this.#workers.get(id)?.assigned.size ?? 0;
  }

  /** The estimated work worker `id` holds, ms. */
  queuedMsOf(id: string): number {
    return this.#workers.get(id)?.queuedMs ?? 0;
  }

  /**
   * Tasks worst off on worker `id` for work stealing: from the end of its queue, about half the
   * estimated work of the tasks behind its first (the first is taken to be running), and none
   * if those add up to less than `minMs` (moving them would cost more than it saves). In the
   * order they were handed out.
   */
  stealable(id: string, minMs: number): number[] {
    const w = this.#workers.get(id);
    if (!w || w.assigned.size < 2) return [];
    const ids = [...w.assigned];
    let behind = 0;
    for (let i = 1; i < ids.length; i++) behind += this.#tasks.get(ids[i]!)?.estimateMs ?? 0;
    if (behind < minMs) return [];
    const out: number[] = [];
    let taken = 0;
    for (let i = ids.length - 1; i >= 1 && taken < behind / 2; i--) {
      out.push(ids[i]!);
      taken += this.#tasks.get(ids[i]!)?.estimateMs ?? 0;
    }
    return out.reverse();
  }

  /**
   * Takes back tasks worker `id` confirmed it had not started (it gave them up for stealing):
   * they go to the front of the queue, in submission order, without counting an attempt.
   * Returns those it still held (others were settled or cancelled meanwhile).
   */
  takeBack(id: string, ids: readonly number[]): number[] {
    const back: TaskEntry<P>[] = [];
    for (const taskId of ids) {
      const t = this.#tasks.get(taskId);
      if (!t || t.workerId !== id) continue;
      this.#unassign(t);
      t.workerId = undefined;
      t.attempts--;
      back.push(t);
    }
    back.sort((a, b) => a.seq - b.seq);
    for (let i = back.length - 1; i >= 0; i--) this.#queue.unshift(back[i]!);
    this.#queued += back.length;
    return back.map((t) => t.id);
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
    if (t.workerId !== undefined) this.#unassign(t);
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
      this.#unassign(t);
      return t.workerId;
    }
    this.#queued--;
    return undefined;
  }

  #unassign(t: TaskEntry<P>): void {
    const w = this.#workers.get(t.workerId!);
    if (!w) return;
    w.assigned.delete(t.id);
    w.queuedMs = w.assigned.size === 0 ? 0 : w.queuedMs - t.estimateMs;
  }

  /**
   * Hands queued tasks to worker nodes with room, least-loaded first, and returns the batches
   * to send. `accept(id)` is asked before a task is handed out and may refuse it (its future
   * was cancelled meanwhile): the task is then dropped. `only`: to these workers alone.
   */
  assign(accept: (id: number) => boolean = () => true, only?: ReadonlySet<string>): Assignment<P>[] {
    if (this.#queue.size === 0) return [];
    const open = [...this.#workers.values()].filter((w) => !w.draining && this.#hasRoom(w) && (only === undefined || only.has(w.id)));
    if (open.length === 0) return [];
    // Least-loaded first. Without this the round-robin always started at the first node: the
    // pool runs one pass per tick, so a trickle of submits (one task per pass) all went to that
    // node until it was full — with prefetch, up to 256 tasks per slot — while the others idled.
    // Stable sort: equal loads keep the order the nodes joined in.
    // (With estimates, by queued work first: a long task goes where the least work waits.)
    open.sort((a, b) => a.queuedMs / a.slots - b.queuedMs / b.slots || a.assigned.size / a.slots - b.assigned.size / b.slots);
    const batches = new Map<string, Assignment<P>>();
    /** Tasks no worker with room can run: they keep their place at the front of the queue. */
    const skipped: TaskEntry<P>[] = [];
    // Round-robin over nodes with room, one task at a time, so a burst spreads evenly.
    let i = 0;
    while (open.length > 0 && this.#queue.size > 0 && skipped.length < MAX_SKIPPED_PER_PASS) {
      const t = this.#queue.shift()!;
      if (this.#tasks.get(t.id) !== t) continue; // cancelled (or settled) while queued
      i %= open.length;
      let w = open[i]!;
      if (w.cannotRun.has(t.module)) {
        // The next worker in turn that can run it; none with room: it waits.
        const j = open.findIndex((x) => !x.cannotRun.has(t.module));
        if (j < 0) {
          skipped.push(t);
          continue;
        }
        i = j;
        w = open[i]!;
      }
      const id = t.id;
      this.#queued--;
      if (!accept(id)) {
        this.#tasks.delete(id);
        continue;
      }
      t.workerId = w.id;
      t.attempts++;
      t.estimateMs = (this.#estimates[t.kind] ?? this.unknownEstimateMs) * w.slowness;
      w.assigned.add(id);
      w.queuedMs += t.estimateMs;
      let batch = batches.get(w.id);
      if (!batch) batches.set(w.id, (batch = { workerId: w.id, tasks: [] }));
      batch.tasks.push({ id, payload: t.payload, attempt: t.attempts + t.mayHaveRun });
      if (!this.#hasRoom(w)) open.splice(i, 1);
      else i++;
    }
    for (let k = skipped.length - 1; k >= 0; k--) this.#queue.unshift(skipped[k]!);
    return [...batches.values()];
  }
}
