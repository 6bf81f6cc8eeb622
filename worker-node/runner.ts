/**
 * The worker node's task slots: one thread per slot, a local queue of tasks the coordinator
 * sent ahead (prefetch), and the means to stop one running task without stopping the node.
 */
import { packBytes } from './pack-bytes.ts';
import { startTaskThread, type TaskThread } from './task-thread.ts';
import type { WireError } from '../shared/errors.ts';
import type { FromThread, ThreadJob, ThreadOutcome } from './thread-protocol.ts';

export interface RunnerOutcome {
  id: number;
  v?: Uint8Array;
  e?: WireError;
  d: number;
}

export interface RunnerOptions {
  slots: number;
  /** Called for each task that ran to its end (not for aborted tasks). */
  onDone: (outcome: RunnerOutcome) => void;
  /**
   * How long an aborted task gets to end on its own (its AbortSignal fired) before its thread
   * is terminated. A synchronous CPU-bound task never sees the signal, so this bounds how long
   * a slot stays blocked after abort.
   */
  abortGraceMs?: number;
  log?: (message: string) => void;
}

interface Slot {
  worker: TaskThread;
  /** Jobs handed to this thread and not yet reported, in the order it runs them. */
  jobs: Map<number, ThreadJob>;
  /** Jobs aborted while in this thread: their outcomes are dropped. */
  aborted: Set<number>;
  killTimers: Map<number, ReturnType<typeof setTimeout>>;
  /** Resolves the pending preload() for this thread. */
  onLoaded?: () => void;
}


export class TaskRunner {
  readonly #options: Required<Omit<RunnerOptions, 'log'>> & Pick<RunnerOptions, 'log'>;
  readonly #slots: Slot[] = [];
  #queue: ThreadJob[] = [];
  #closed = false;
  /** Mean task duration (ms, exponentially weighted): decides how many jobs a thread holds. */
  #meanMs: number | undefined;

  constructor(options: RunnerOptions) {
    this.#options = { abortGraceMs: 1000, ...options };
    for (let i = 0; i < options.slots; i++) this.#slots.push(this.#spawn());
  }

  #spawn(): Slot {
    let slot!: Slot;
    const worker = startTaskThread({
      message: (data) => {
        const msg = data as FromThread;
        if (msg.t === 'loaded') slot.onLoaded?.();
        else this.#onDone(slot, msg.outcomes);
      },
      death: (how) => this.#onThreadDeath(slot, how),
    });
    slot = { worker, jobs: new Map(), aborted: new Set(), killTimers: new Map() };
    if (this.#preloadUrls.length > 0) worker.post({ t: 'preload', urls: this.#preloadUrls });
    return slot;
  }

  run(job: ThreadJob): void {
    if (this.#closed) return;
    this.#queue.push(job);
    // Jobs of one `run` frame arrive one call at a time: hand them to threads together, after
    // the frame's handler returns, so they cost one postMessage per thread, not one each.
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    queueMicrotask(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  #pumpScheduled = false;

  /**
   * Has every thread (and every thread started later, when one is replaced) import these
   * task modules before their first task: loading a module can take a second or more.
   */
  preload(urls: string[]): Promise<void> {
    this.#preloadUrls = urls;
    const loaded = this.#slots.map((slot) => new Promise<void>((resolve) => (slot.onLoaded = resolve)));
    for (const slot of this.#slots) slot.worker.post({ t: 'preload', urls });
    return Promise.all(loaded).then(() => {});
  }

  #preloadUrls: string[] = [];

  /** Stops a task: drops it if queued; aborts it if in a thread, then ends the thread if need be. */
  cancel(id: number, reason = 'cancelled by the coordinator'): void {
    const i = this.#queue.findIndex((j) => j.id === id);
    if (i >= 0) {
      this.#queue.splice(i, 1);
      return;
    }
    const slot = this.#slots.find((s) => s.jobs.has(id));
    if (!slot || slot.aborted.has(id)) return;
    slot.aborted.add(id);
    slot.worker.post({ t: 'abort', id, reason });
    // Ends the thread only if this job is the one it runs and it has not stopped in time. A job
    // still waiting behind another is dropped by the thread when it reads the abort; the timer
    // looks again later in case the thread only got to it by starting it.
    const check = () => {
      if (!slot.jobs.has(id)) return;
      if (slot.jobs.keys().next().value !== id) {
        slot.killTimers.set(id, setTimeout(check, this.#options.abortGraceMs));
        return;
      }
      this.#options.log?.(`task ${id} did not stop within ${this.#options.abortGraceMs} ms of being aborted: ending its thread`);
      this.#replace(slot);
    };
    slot.killTimers.set(id, setTimeout(check, this.#options.abortGraceMs));
  }

  /** Stops everything running or queued (the coordinator is gone; it will re-run them). */
  cancelAll(reason: string): void {
    this.#queue = [];
    for (const slot of this.#slots) for (const id of [...slot.jobs.keys()]) this.cancel(id, reason);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#queue = [];
    await Promise.all(
      this.#slots.map((s) => {
        for (const t of s.killTimers.values()) clearTimeout(t);
        return s.worker.terminate();
      }),
    );
  }

  /**
   * How many jobs one thread may hold. Tiny tasks: many, so a thread never waits a thread hop
   * for its next job. Long tasks: one, so a job never waits behind another in a busy thread
   * while a different thread idles.
   */
  #depth(): number {
    const ms = this.#meanMs;
    if (ms === undefined) return 1;
    return ms < 0.5 ? 64 : ms < 5 ? 8 : 1;
  }

  #pump(): void {
    if (this.#queue.length === 0) return;
    const depth = this.#depth();
    // Jobs go one at a time to the thread holding the fewest, not to the first thread until it
    // is full: with a deep queue per thread (set while tasks were tiny), filling in order would
    // put a burst of long tasks all on one thread while the others idle.
    const batches = new Map<Slot, ThreadJob[]>();
    while (this.#queue.length > 0) {
      let best: Slot | undefined;
      for (const slot of this.#slots) {
        if (slot.jobs.size >= depth) continue;
        if (!best || slot.jobs.size < best.jobs.size) best = slot;
      }
      if (!best) break;
      const job = this.#queue.shift()!;
      best.jobs.set(job.id, job);
      let batch = batches.get(best);
      if (!batch) batches.set(best, (batch = []));
      batch.push(job);
    }
    for (const [slot, jobs] of batches) {
      // `a` is a view into the received frame (which holds other tasks' arguments too): the
      // batch's arguments move to one buffer of their own, transferred to the thread.
      const buffer = packBytes(jobs, (j) => j.a, (j, a) => (j.a = a));
      slot.worker.post({ t: 'run', jobs }, buffer ? [buffer] : []);
    }
  }

  #onDone(slot: Slot, outcomes: ThreadOutcome[]): void {
    for (const o of outcomes) {
      if (!slot.jobs.delete(o.id)) continue;
      const timer = slot.killTimers.get(o.id);
      if (timer) {
        clearTimeout(timer);
        slot.killTimers.delete(o.id);
      }
      this.#meanMs = this.#meanMs === undefined ? o.d : this.#meanMs * 0.8 + o.d * 0.2;
      if (slot.aborted.delete(o.id)) continue;
      this.#options.onDone(o);
    }
    this.#pump();
  }

  #onThreadDeath(slot: Slot, how: string): void {
    if (this.#closed || !this.#slots.includes(slot)) return;
    // process.exit() in a task, an out-of-memory thread, or an uncaught error in a callback
    // the task left behind: the first job (the one running) fails with what happened; the
    // jobs queued behind it in that thread never started and go back to the queue.
    const [first, ...rest] = [...slot.jobs.values()];
    if (first && !slot.aborted.has(first.id)) {
      this.#options.onDone({ id: first.id, e: { name: 'Error', message: `the task's thread ${how}`, code: 'WSF_THREAD_DIED' }, d: 0 });
    }
    slot.jobs.clear();
    this.#queue.unshift(...rest.filter((j) => !slot.aborted.has(j.id)));
    this.#replace(slot);
  }

  /** Ends a thread and starts a new one in its place; jobs waiting in it go back to the queue. */
  #replace(slot: Slot): void {
    const i = this.#slots.indexOf(slot);
    if (i < 0) return;
    slot.onLoaded?.(); // a preload waiting on this thread must not wait for it any longer
    for (const t of slot.killTimers.values()) clearTimeout(t);
    const waiting = [...slot.jobs.values()].filter((j) => !slot.aborted.has(j.id));
    // The job the thread was running is the aborted one (the abort timer ends a thread only for
    // that). The others had not started, or had finished without reporting yet: they run again
    // (tasks are at-least-once).
    this.#queue.unshift(...waiting);
    void slot.worker.terminate();
    this.#slots[i] = this.#spawn();
    this.#pump();
  }
}
