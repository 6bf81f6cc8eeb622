/**
 * The coordinator's scheduling state: which tasks wait, which lane runs what, and what happens
 * to a lane's tasks when it is lost. It never touches a socket or a timer: the cluster state
 * (cluster-state.ts) feeds it events (submit, lane joined/left, outcome, cancel) and carries out
 * what it returns (assignments, retries, failures), so it is unit-tested without a network.
 *
 * Its scheduling targets are lanes (a task thread of a node: one slot each; the class still
 * takes any number of slots per target). Resources belong to the node: its lanes share one
 * NodeResources.
 */
import { fitsIn, type Resources } from '../shared/resources.ts';

export interface SchedulerOptions {
  /** Re-runs allowed for a task whose lane was lost. */
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
  /** The task module it needs: it goes only to lanes that loaded that module. */
  module: number;
  /** Higher first (submitWith's `priority`). */
  priority: number;
  /** What kind of task it is (the pool: its function), for its estimated duration. */
  kind: number;
  /** The work it adds to its lane's queue while assigned there, ms (see prefetchMs). */
  estimateMs: number;
  /** Times it has been handed to a lane, less those that cannot have been its fault. */
  attempts: number;
  /**
   * Times it went back to the queue from a lost lane without using a retry although it may
   * have run there: results leave a task thread in batches, so a task behind the one that was
   * running may have finished without its result having left the node. Counted in the attempt
   * number the task sees, so that `attempt > 1` always means "this may have run before".
   */
  mayHaveRun: number;
  /** The lane it is assigned to, or undefined while queued. */
  laneId: string | undefined;
  /** The resources it asks for, and the queue it waits in (undefined: it asks for none). */
  request: RequestQueue<P> | undefined;
}

/**
 * The tasks that ask for one same set of resources, waiting. Apart from the other tasks so that
 * a request no node can fit now never stands in front of tasks that could run (a skip list would
 * bound that, not end it), and so that an assignment pass looks at one head per distinct request
 * rather than at every waiting task.
 */
interface RequestQueue<P> {
  key: string;
  resources: Resources;
  queue: PriorityQueue<TaskEntry<P>>;
  /** Live tasks in it (the queue also holds cancelled ones until reached). */
  live: number;
}

/**
 * A node's declared resources and what the tasks assigned to it hold of them, shared by its
 * lanes: a node with gpu=2 and four lanes runs at most two gpu:1 tasks at a time.
 *
 * A task holds its resources from assignment to outcome, prefetched ones included, not only
 * while it runs: the coordinator does not see a task start (a lane runs its tasks in order and
 * reports in batches), so counting only running tasks would let two lanes each start a gpu:1
 * task on a node with one GPU. The cost is that a prefetched task holds them while it waits;
 * a task whose function is not measured yet counts as long and is prefetched behind nothing.
 */
export class NodeResources {
  readonly declared: Resources;
  readonly #free: Record<string, number>;
  #holders = 0;
  constructor(declared: Resources) {
    this.declared = declared;
    this.#free = Object.assign(Object.create(null) as Record<string, number>, declared);
  }
  /** What is not held now. */
  get free(): Resources {
    return this.#free;
  }
  fits(want: Resources): boolean {
    return fitsIn(want, this.#free);
  }
  take(want: Resources): void {
    // fits() came first: every name taken is one the node declared.
    for (const k in want) this.#free[k] = this.#free[k]! - want[k]!;
    this.#holders++;
  }
  give(want: Resources): void {
    // Back to exactly what was declared once nothing is held: sums of fractions drift.
    if (--this.#holders <= 0) {
      this.#holders = 0;
      Object.assign(this.#free, this.declared);
      return;
    }
    for (const k in want) this.#free[k] = Math.min(this.declared[k]!, this.#free[k]! + want[k]!);
  }
}

/** The order tasks start in: higher priority first, then submission order. */
function goesFirst<P>(a: TaskEntry<P>, b: TaskEntry<P>): boolean {
  return a.priority > b.priority || (a.priority === b.priority && a.seq < b.seq);
}

/** The key of a request, the same for equal requests whatever their property order. */
function requestKey(r: Resources): string {
  return Object.keys(r)
    .sort()
    .map((k) => `${k}=${r[k]}`)
    .join(',');
}

interface LaneEntry {
  id: string;
  slots: number;
  /**
   * Its tasks, in the order they were handed to it. A lane runs them in that order, one per
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
  /** Its node's resources, shared with the node's other lanes; undefined: it declared none. */
  resources: NodeResources | undefined;
}

export interface Assignment<P> {
  laneId: string;
  tasks: { id: number; payload: P; attempt: number }[];
}

export interface LostLaneOutcome {
  /** Tasks put back in the queue for another attempt. */
  requeued: number[];
  /** Tasks that ran out of retries: their futures must fail with WorkerLostError. */
  failed: { id: number; attempts: number }[];
  /** With `crashed`: the task that was running, removed here; its future must fail. */
  crashed?: number;
}

/**
 * How a lane went away, which decides whether the task it was running is to blame.
 * - `lost`: the connection or the node went away, or the lane was ended on purpose. The task
 *   it was running is re-run, counting an attempt (it fails once it has run `1 + maxRetries`
 *   times).
 * - `crashed`: the task itself ended the lane's thread (process.exit, out of memory): it is
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
  /** The item shift() would return, left in place. */
  peek(): T | undefined {
    if (this.#front.length > 0) return this.#front[this.#front.length - 1];
    return this.#head < this.#items.length ? this.#items[this.#head] : undefined;
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
      this.#fifos.set(priority, f = new Fifo<T>());
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
  peek(): T | undefined {
    if (this.#size === 0) return undefined;
    for (const fifo of this.#ordered) {
      const v = fifo.peek();
      if (v !== undefined) return v;
    }
    return undefined;
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
 * Tasks an assignment pass may look past in one go because no lane with room can run them
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
  readonly #lanes = new Map<string, LaneEntry>();
  /** Slots of the lanes that are not draining, kept as they come and go (asked per submit). */
  #slots = 0;
  /**
   * Lanes that are not draining and may have room: joined, or given back a task since they were
   * last found full. An assignment pass looks only at these, so that its cost follows the
   * lanes that freed up, not every connected one: with 200 nodes and a long queue, nearly all
   * are full at every pass. Whether they really have room is checked at the pass.
   */
  readonly #mayHaveRoom = new Set<LaneEntry>();
  /** Queues of the tasks that ask for resources, one per distinct request (see RequestQueue). */
  readonly #waiting = new Map<string, RequestQueue<P>>();
  /** Lanes that cannot run some module: while there are none, canRun needs no loop. */
  #restricted = 0;
  /**
   * How many tasks a node may hold per slot: 1 means only what it can start now; more lets a
   * slot that frees up find its next task already there (prefetch). Set by the pool from
   * observed task durations: prefetch pays for tiny tasks and hurts balance for long ones.
   */
  get depthPerSlot(): number {
    return this.#depthPerSlot;
  }
  set depthPerSlot(n: number) {
    this.#depthPerSlot = n;
    this.#roomChanged();
  }
  #depthPerSlot = 1;

  /**
   * Estimated work a lane may hold per slot before it is handed more, ms (Infinity: only
   * depthPerSlot counts). With it, a slot takes tiny tasks many at a time, so that it never
   * waits a round trip for the next, but a long task only when its queue is nearly empty, so
   * that a task never waits behind a long one while another slot idles. A task's estimate is
   * its kind's (setEstimate), or unknownEstimateMs for a kind not measured yet: possibly long.
   */
  get prefetchMs(): number {
    return this.#prefetchMs;
  }
  set prefetchMs(ms: number) {
    this.#prefetchMs = ms;
    this.#roomChanged();
  }
  #prefetchMs = Infinity;

  /** A limit changed: any lane may have room now. */
  #roomChanged(): void {
    for (const w of this.#lanes.values()) if (!w.draining) this.#mayHaveRoom.add(w);
  }
  unknownEstimateMs = 1000;
  readonly #estimates: (number | undefined)[] = [];

  /** How long tasks of `kind` take, as measured (the pool: per function). */
  setEstimate(kind: number, ms: number): void {
    this.#estimates[kind] = ms;
  }

  /**
   * How much longer than their estimates tasks take on lane `id` (its tasks' measured time
   * over the estimate): a slower node's queue fills with fewer tasks, so that at the end no
   * task waits on it while a faster one idles.
   */
  setSlowness(id: string, slowness: number): void {
    const w = this.#lanes.get(id);
    if (w) w.slowness = slowness;
  }

  #hasRoom(w: LaneEntry): boolean {
    return w.assigned.size < w.slots * this.#depthPerSlot && w.queuedMs < w.slots * this.#prefetchMs;
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

  /** Total slots of the connected, non-draining lanes. */
  get slotCount(): number {
    return this.#slots;
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
    for (const t of this.#tasks.values()) if (t.laneId === undefined) out.push({ id: t.id, payload: t.payload });
    for (const { id } of out) this.cancel(id);
    // Every task left in the FIFO is now dead (cancelled or settled): they were skipped only
    // when reached, and no assign() may ever reach them (a pool shutting down, or broken).
    // Emptying it releases them, payloads (futures, arguments) and all.
    this.#queue.clear();
    this.#waiting.clear();
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

  laneOf(id: number): string | undefined {
    return this.#tasks.get(id)?.laneId;
  }

  /**
   * Queues a task; `module` is the task module it needs (see addLane's `cannotRun`). Tasks of
   * a higher `priority` go first; equal ones in the order they came. With `resources`, it goes
   * only to a lane whose node's resources fit, and holds them until its outcome.
   */
  submit(id: number, payload: P, module = 0, priority = 0, kind = 0, resources?: Resources): void {
    if (this.#tasks.has(id)) throw new Error(`scheduler: task ${id} submitted twice`);
    const request = resources === undefined ? undefined : this.#requestQueue(resources);
    const t: TaskEntry<P> = { id, seq: this.#seq++, payload, module, priority, kind, estimateMs: 0, attempts: 0, mayHaveRun: 0, laneId: undefined, request };
    this.#tasks.set(id, t);
    if (request) {
      request.queue.push(t);
      request.live++;
    } else this.#queue.push(t);
    this.#queued++;
  }

  /** The last request looked up, and its queue: map() passes one request object for all its tasks. */
  #lastRequest: { resources: Resources; queue: RequestQueue<P> } | undefined;

  #requestQueue(resources: Resources): RequestQueue<P> {
    const last = this.#lastRequest;
    if (last && last.resources === resources && this.#waiting.get(last.queue.key) === last.queue) return last.queue;
    const key = requestKey(resources);
    let q = this.#waiting.get(key);
    if (!q) this.#waiting.set(key, q = { key, resources, queue: new PriorityQueue(), live: 0 });
    this.#lastRequest = { resources, queue: q };
    return q;
  }

  /** A task that asked for resources left its queue (assigned, cancelled, settled). */
  #leftRequestQueue(q: RequestQueue<P>): void {
    if (--q.live === 0 && this.#waiting.get(q.key) === q) this.#waiting.delete(q.key);
  }

  /**
   * A lane joins; it is never handed tasks of the modules in `cannotRun`, and tasks asking for
   * resources only while `resources` (its node's, shared by the node's lanes) fit them.
   */
  addLane(id: string, slots: number, cannotRun: ReadonlySet<number> = NONE, resources?: NodeResources): void {
    if (this.#lanes.has(id)) throw new Error(`scheduler: lane ${id} added twice`);
    const w: LaneEntry = { id, slots, assigned: new Set(), draining: false, cannotRun, queuedMs: 0, slowness: 1, resources };
    this.#lanes.set(id, w);
    this.#emptyLanes++;
    this.#mayHaveRoom.add(w);
    this.#membership++;
    this.#slots += slots;
    if (cannotRun.size > 0) this.#restricted++;
  }

  /**
   * Whether a connected, non-draining lane's node declares at least `resources` (whether or
   * not they are held now): false means a task asking for them waits for such a node to join.
   */
  canSatisfy(resources: Resources): boolean {
    // map() asks with one request object for all its tasks: one answer per change of membership.
    const last = this.#lastSatisfy;
    if (last && last.resources === resources && last.membership === this.#membership) return last.answer;
    let answer = false;
    for (const w of this.#lanes.values()) {
      if (!w.draining && w.resources && fitsIn(resources, w.resources.declared)) {
        answer = true;
        break;
      }
    }
    this.#lastSatisfy = { resources, membership: this.#membership, answer };
    return answer;
  }

  #lastSatisfy: { resources: Resources; membership: number; answer: boolean } | undefined;
  /** Bumped when a lane joins, drains or leaves: what canSatisfy's answer depends on. */
  #membership = 0;

  /**
   * The queued tasks (not assigned) that ask for resources, with what they ask for. Looks at
   * every task, so it is for rare events (a node that declared resources leaves or drains);
   * nothing at all while no task asks for resources.
   */
  queuedRequests(): { id: number; payload: P; resources: Resources }[] {
    const out: { id: number; payload: P; resources: Resources }[] = [];
    if (this.#waiting.size === 0) return out;
    for (const t of this.#tasks.values()) if (t.request && t.laneId === undefined) out.push({ id: t.id, payload: t.payload, resources: t.request.resources });
    return out;
  }

  /**
   * Whether some lane (draining or not) can run tasks of `module`; false when there is no
   * lane at all.
   */
  canRun(module: number): boolean {
    // Asked for every task submitted: the common case (every lane loaded every module) is O(1).
    if (this.#restricted === 0) return this.#lanes.size > 0;
    for (const w of this.#lanes.values()) if (!w.cannotRun.has(module)) return true;
    return false;
  }

  /**
   * Removes the queued tasks of `module` and returns them in submission order: what the pool
   * fails when no connected lane can run that module.
   */
  removeQueuedOf(module: number): { id: number; payload: P }[] {
    const out: { id: number; payload: P }[] = [];
    for (const t of this.#tasks.values()) if (t.laneId === undefined && t.module === module) out.push({ id: t.id, payload: t.payload });
    for (const { id } of out) this.cancel(id);
    return out;
  }

  drainLane(id: string): void {
    const w = this.#lanes.get(id);
    if (!w || w.draining) return;
    w.draining = true;
    this.#membership++;
    this.#mayHaveRoom.delete(w);
    this.#slots -= w.slots;
  }

  /**
   * Forgets a lane; its tasks go back to the front of the queue, in submission order, except
   * the one it was running, which `how` decides about (see LossKind). `running` says which task
   * that was: an id (which may no longer be the scheduler's: an aborted task), `null` for none,
   * or undefined when unknown — then the lane's first `slots` tasks in assignment order are
   * taken to be the running ones.
   *
   * A requeued task uses no retry, but unless the loss shows it never started (it came after
   * the known running task) its attempt number goes up: it may have run (see mayHaveRun).
   */
  removeLane(id: string, how: LossKind = 'lost', running?: number | null): LostLaneOutcome {
    const w = this.#lanes.get(id);
    const out: LostLaneOutcome = { requeued: [], failed: [] };
    if (!w) return out;
    this.#lanes.delete(id);
    if (w.assigned.size === 0) this.#emptyLanes--;
    this.#membership++;
    this.#mayHaveRoom.delete(w);
    if (!w.draining) this.#slots -= w.slots;
    if (w.cannotRun.size > 0) this.#restricted--;
    const retry: TaskEntry<P>[] = [];
    let position = 0;
    // Tasks after the one known to be running had not started: the thread runs them in order.
    let pastRunning = false;
    for (const taskId of w.assigned) {
      const t = this.#tasks.get(taskId);
      if (!t) continue;
      t.laneId = undefined;
      if (t.request && w.resources) w.resources.give(t.request.resources);
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
      this.#requeueFront(retry[i]!);
      out.requeued.push(retry[i]!.id);
    }
    out.requeued.reverse();
    this.#queued += retry.length;
    return out;
  }

  /** Whether some lane cannot run some module (see addLane's `cannotRun`). */
  get restricted(): boolean {
    return this.#restricted > 0;
  }

  /**
   * How many lanes hold no task (draining ones included): kept as tasks come and go, so that
   * the pool can tell in O(1) that no lane is idle (see ClusterState's work stealing).
   */
  get emptyLaneCount(): number {
    return this.#emptyLanes;
  }

  #emptyLanes = 0;

  /** How many tasks lane `id` holds (0 for an unknown lane). */
  heldBy(id: string): number {
    return this.#lanes.get(id)?.assigned.size ?? 0;
  }

  /** The estimated work lane `id` holds, ms. */
  queuedMsOf(id: string): number {
    return this.#lanes.get(id)?.queuedMs ?? 0;
  }

  /**
   * Tasks worst off on lane `id` for work stealing: from the end of its queue, about half the
   * estimated work of the tasks behind its first (the first is taken to be running), and none
   * if those add up to less than `minMs` (moving them would cost more than it saves). In the
   * order they were handed out.
   */
  stealable(id: string, minMs: number): number[] {
    const w = this.#lanes.get(id);
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
   * Takes back tasks lane `id` confirmed it had not started (it gave them up for stealing):
   * they go to the front of the queue, in submission order, without counting an attempt.
   * Returns those it still held (others were settled or cancelled meanwhile).
   */
  takeBack(id: string, ids: readonly number[]): number[] {
    const back: TaskEntry<P>[] = [];
    for (const taskId of ids) {
      const t = this.#tasks.get(taskId);
      if (!t || t.laneId !== id) continue;
      this.#unassign(t);
      t.laneId = undefined;
      t.attempts--;
      back.push(t);
    }
    back.sort((a, b) => a.seq - b.seq);
    for (let i = back.length - 1; i >= 0; i--) this.#requeueFront(back[i]!);
    this.#queued += back.length;
    return back.map((t) => t.id);
  }

  /** Puts a task back at the front of its queue: the plain one, or its request's. */
  #requeueFront(t: TaskEntry<P>): void {
    if (t.request) {
      // Its queue may have been dropped when it emptied: the one for the same request now.
      if (this.#waiting.get(t.request.key) !== t.request) t.request = this.#requestQueue(t.request.resources);
      t.request.queue.unshift(t);
      t.request.live++;
    } else this.#queue.unshift(t);
  }

  /** Whether `laneId` holds task `id` now: an outcome from anyone else is stale. */
  holds(id: number, laneId: string): boolean {
    return this.#tasks.get(id)?.laneId === laneId;
  }

  /**
   * A task ended (result, error, or it was stopped). Returns the lane that held it, or
   * undefined if the task is unknown here: already finished, or cancelled — an outcome for it
   * must be dropped (exactly-once settlement).
   */
  complete(id: number, fromLane?: string): string | undefined {
    const t = this.#tasks.get(id);
    if (!t) return undefined;
    if (fromLane !== undefined && t.laneId !== fromLane) return undefined; // stale, from a lost node
    this.#tasks.delete(id);
    if (t.laneId !== undefined) this.#unassign(t);
    else this.#dequeued(t);
    return t.laneId;
  }

  /**
   * Removes a task wherever it is. Returns the lane to tell to stop it, if it was
   * assigned; undefined if it was only queued (or unknown).
   */
  cancel(id: number): string | undefined {
    const t = this.#tasks.get(id);
    if (!t) return undefined;
    this.#tasks.delete(id);
    // A queued id stays in the FIFO and is skipped when reached: removing from the middle of
    // a million-entry queue would be O(n) per cancel.
    if (t.laneId !== undefined) {
      this.#unassign(t);
      return t.laneId;
    }
    this.#dequeued(t);
    return undefined;
  }

  /** A queued task is gone (its entry stays in its FIFO until reached). */
  #dequeued(t: TaskEntry<P>): void {
    this.#queued--;
    if (t.request) this.#leftRequestQueue(t.request);
  }

  #unassign(t: TaskEntry<P>): void {
    const w = this.#lanes.get(t.laneId!);
    if (!w) return;
    if (w.assigned.delete(t.id) && w.assigned.size === 0) this.#emptyLanes++;
    if (t.request && w.resources) w.resources.give(t.request.resources);
    w.queuedMs = w.assigned.size === 0 ? 0 : w.queuedMs - t.estimateMs;
    if (!w.draining) this.#mayHaveRoom.add(w);
  }

  /**
   * Hands queued tasks to lanes with room, least-loaded first, and returns the batches
   * to send. `accept(id)` is asked before a task is handed out and may refuse it (its future
   * was cancelled meanwhile): the task is then dropped. `only`: to these lanes alone.
   */
  assign(accept: (id: number) => boolean = () => true, only?: ReadonlySet<string>): Assignment<P>[] {
    if (this.#queue.size === 0 && this.#waiting.size === 0) return [];
    const open: LaneEntry[] = [];
    for (const w of this.#mayHaveRoom) {
      if (!this.#hasRoom(w)) this.#mayHaveRoom.delete(w);
      else if (only === undefined || only.has(w.id)) open.push(w);
    }
    if (open.length === 0) return [];
    // Least-loaded first. Without this the round-robin always started at the first node: the
    // pool runs one pass per tick, so a trickle of submits (one task per pass) all went to that
    // node until it was full — with prefetch, up to 256 tasks per slot — while the others idled.
    // Stable sort: equal loads keep the order the nodes joined in.
    // (With estimates, by queued work first: a long task goes where the least work waits.)
    open.sort((a, b) => a.queuedMs / a.slots - b.queuedMs / b.slots || a.assigned.size / a.slots - b.assigned.size / b.slots);
    const batches = new Map<string, Assignment<P>>();
    /** Tasks no lane with room can run: they keep their place at the front of the queue. */
    const skipped: TaskEntry<P>[] = [];
    // Requests that fit no open lane in this pass (resources only get scarcer during a pass).
    const requests = this.#waiting.size === 0 ? [] : [...this.#waiting.values()];
    const blocked = new Set<RequestQueue<P>>();
    // Round-robin over nodes with room, one task at a time, so a burst spreads evenly.
    let i = 0;
    while (open.length > 0) {
      let t: TaskEntry<P>;
      let rq: RequestQueue<P> | undefined;
      const plain = this.#queue.size > 0 && skipped.length < MAX_SKIPPED_PER_PASS;
      if (requests.length === 0) {
        if (!plain) break;
        t = this.#queue.shift()!;
      } else {
        // The first in start order among the plain queue's head and each request's head.
        let best = plain ? this.#queue.peek() : undefined;
        for (const r of requests) {
          if (blocked.has(r)) continue;
          const head = r.queue.peek();
          if (head !== undefined && (best === undefined || goesFirst(head, best))) {
            best = head;
            rq = r;
          }
        }
        if (best === undefined) break;
        t = (rq ? rq.queue : this.#queue).shift()!;
      }
      if (this.#tasks.get(t.id) !== t) continue; // cancelled (or settled) while queued
      let k: number;
      if (rq) {
        // The least-loaded open lane whose node has the resources free now; none: the request
        // waits, in its place, for resources to be given back or a node to join.
        const want = rq.resources;
        k = open.findIndex((w) => w.resources !== undefined && w.resources.fits(want) && !w.cannotRun.has(t.module));
        if (k < 0) {
          rq.queue.unshift(t);
          blocked.add(rq);
          continue;
        }
      } else {
        i %= open.length;
        k = i;
        if (open[k]!.cannotRun.has(t.module)) {
          // The next lane in turn that can run it; none with room: it waits.
          k = open.findIndex((x) => !x.cannotRun.has(t.module));
          if (k < 0) {
            skipped.push(t);
            continue;
          }
        }
      }
      const w = open[k]!;
      const id = t.id;
      this.#dequeued(t);
      if (!accept(id)) {
        this.#tasks.delete(id);
        continue;
      }
      t.laneId = w.id;
      t.attempts++;
      t.estimateMs = (this.#estimates[t.kind] ?? this.unknownEstimateMs) * w.slowness;
      if (rq) w.resources!.take(rq.resources);
      if (w.assigned.size === 0) this.#emptyLanes--;
      w.assigned.add(id);
      w.queuedMs += t.estimateMs;
      let batch = batches.get(w.id);
      if (!batch) batches.set(w.id, batch = { laneId: w.id, tasks: [] });
      batch.tasks.push({ id, payload: t.payload, attempt: t.attempts + t.mayHaveRun });
      const full = !this.#hasRoom(w);
      if (full) {
        open.splice(k, 1);
        this.#mayHaveRoom.delete(w);
      }
      // The round-robin moves on past the lane a plain task went to; a task with resources
      // goes where they are and leaves the turn where it was.
      if (!rq) i = full ? k : k + 1;
      else if (full && k < i) i--;
    }
    for (let k = skipped.length - 1; k >= 0; k--) this.#queue.unshift(skipped[k]!);
    return [...batches.values()];
  }
}
