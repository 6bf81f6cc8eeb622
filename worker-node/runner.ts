/**
 * The worker node's task slots: one thread per slot, a local queue of tasks the coordinator
 * sent ahead (prefetch), and the means to stop one running task without stopping the node.
 */
import { Worker } from 'node:worker_threads';
import type { WireError } from '../shared/errors.ts';
import type { FromThread, ThreadRun } from './thread-protocol.ts';

export interface RunnerOutcome {
  id: number;
  v?: Uint8Array;
  e?: WireError;
  d: number;
}

export interface RunnerOptions {
  slots: number;
  /** Called once per task that ran to its end (not for aborted tasks). */
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
  worker: Worker;
  job: ThreadRun | undefined;
  /** Set once the job was aborted: its outcome is dropped. */
  aborted: boolean;
  killTimer: ReturnType<typeof setTimeout> | undefined;
}

const THREAD_URL = new URL('./thread-entry.mjs', import.meta.url);

export class TaskRunner {
  readonly #options: Required<Omit<RunnerOptions, 'log'>> & Pick<RunnerOptions, 'log'>;
  readonly #slots: Slot[] = [];
  #queue: ThreadRun[] = [];
  #idleWaiters: (() => void)[] = [];
  #closed = false;

  constructor(options: RunnerOptions) {
    this.#options = { abortGraceMs: 1000, ...options };
    for (let i = 0; i < options.slots; i++) this.#slots.push(this.#spawn());
  }

  get running(): number {
    return this.#slots.filter((s) => s.job && !s.aborted).length;
  }

  get queued(): number {
    return this.#queue.length;
  }

  #spawn(): Slot {
    const worker = new Worker(THREAD_URL);
    const slot: Slot = { worker, job: undefined, aborted: false, killTimer: undefined };
    worker.on('message', (msg: FromThread) => this.#onDone(slot, msg));
    worker.on('error', (err) => this.#onThreadDeath(slot, `threw outside any task: ${err?.stack ?? err}`));
    worker.on('exit', (code) => this.#onThreadDeath(slot, `exited with code ${code}`));
    return slot;
  }

  run(job: ThreadRun): void {
    if (this.#closed) return;
    this.#queue.push(job);
    this.#pump();
  }

  /** Stops a task: drops it if queued; aborts it if running, then ends its thread if need be. */
  cancel(id: number, reason = 'cancelled by the coordinator'): void {
    const i = this.#queue.findIndex((j) => j.id === id);
    if (i >= 0) {
      this.#queue.splice(i, 1);
      this.#checkIdle();
      return;
    }
    const slot = this.#slots.find((s) => s.job?.id === id);
    if (!slot || slot.aborted) return;
    slot.aborted = true;
    slot.worker.postMessage({ t: 'abort', id, reason });
    slot.killTimer = setTimeout(() => {
      if (slot.job?.id !== id) return;
      this.#options.log?.(`task ${id} did not stop within ${this.#options.abortGraceMs} ms of being aborted: ending its thread`);
      this.#replace(slot);
    }, this.#options.abortGraceMs);
  }

  /** Stops everything running or queued (the coordinator is gone; it will re-run them). */
  cancelAll(reason: string): void {
    this.#queue = [];
    for (const slot of this.#slots) if (slot.job) this.cancel(slot.job.id, reason);
    this.#checkIdle();
  }

  /** Resolves when nothing runs and nothing is queued. */
  idle(): Promise<void> {
    if (this.running === 0 && this.#queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.#idleWaiters.push(r));
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#queue = [];
    await Promise.all(
      this.#slots.map((s) => {
        if (s.killTimer) clearTimeout(s.killTimer);
        s.worker.removeAllListeners('exit');
        return s.worker.terminate();
      }),
    );
  }

  #pump(): void {
    for (const slot of this.#slots) {
      if (this.#queue.length === 0) break;
      if (slot.job) continue;
      const job = this.#queue.shift()!;
      slot.job = job;
      slot.aborted = false;
      // Transfer the argument bytes when they own their buffer; a view into a larger frame is
      // copied by postMessage (the frame may hold other tasks' arguments).
      const a = job.a;
      const transfer = a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && a.buffer instanceof ArrayBuffer ? [a.buffer] : [];
      slot.worker.postMessage(job, transfer);
    }
  }

  #onDone(slot: Slot, msg: FromThread): void {
    const job = slot.job;
    if (!job || msg.id !== job.id) return;
    if (slot.killTimer) clearTimeout(slot.killTimer);
    slot.killTimer = undefined;
    const aborted = slot.aborted;
    slot.job = undefined;
    slot.aborted = false;
    if (!aborted) this.#options.onDone({ id: msg.id, v: msg.v, e: msg.e, d: msg.d });
    this.#pump();
    this.#checkIdle();
  }

  #onThreadDeath(slot: Slot, how: string): void {
    if (this.#closed) return;
    const job = slot.job;
    const i = this.#slots.indexOf(slot);
    if (i < 0) return; // already replaced
    if (job && !slot.aborted) {
      // process.exit() in a task, an out-of-memory thread, or an uncaught error in a callback
      // the task left behind: the task fails with what happened; the node lives on.
      this.#options.onDone({ id: job.id, e: { name: 'Error', message: `the task's thread ${how}`, code: 'WSF_THREAD_DIED' }, d: 0 });
    }
    this.#replace(slot);
  }

  #replace(slot: Slot): void {
    const i = this.#slots.indexOf(slot);
    if (i < 0) return;
    if (slot.killTimer) clearTimeout(slot.killTimer);
    slot.worker.removeAllListeners();
    slot.worker.on('error', () => {});
    void slot.worker.terminate();
    this.#slots[i] = this.#spawn();
    this.#pump();
    this.#checkIdle();
  }

  #checkIdle(): void {
    if (this.running > 0 || this.#queue.length > 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }
}
