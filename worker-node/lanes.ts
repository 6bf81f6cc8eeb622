/**
 * A worker node's task threads, one per slot. Each thread opens its own lane to the coordinator
 * and takes its tasks from it (thread.ts); this side only starts the threads, tells when they
 * are all attached, ends one on the coordinator's `kill` (its aborted task did not stop), and
 * replaces one that died or lost its lane.
 */
import { boundText } from '../shared/describe.ts';
import { startTaskThread, type TaskThread } from './task-thread.ts';
import type { FromThread, LaneConfig } from './thread-protocol.ts';
import { backoffMs } from '../shared/backoff.ts';

export interface LaneThreadsOptions {
  slots: number;
  /**
   * A thread is gone: it died by itself (`crashed`), or was ended on the coordinator's request.
   * `task` is the task it was running, if any. The coordinator is told.
   */
  onGone: (lane: number, how: string, task: number | undefined, crashed: boolean) => void;
  /** A thread could not import these task modules (each with why, and what to do). */
  onImportFailed: (failed: { id: number; error: string }[]) => void;
  log: (message: string) => void;
}

interface LaneThread {
  lane: number;
  worker: TaskThread;
  attached: boolean;
  /** Shared with the thread: [0] its running task's id (0: none), [1] exit code + 1 (0: none). */
  state: BigInt64Array;
  /** Its lane closed and the coordinator asked for it to be ended: waiting to see if it died. */
  ended?: boolean;
}

/** Everything a lane needs but its number and its shared state. */
export type LaneSession = Omit<LaneConfig, 'lane' | 'state' | 'busy'>;

function runningTask(t: LaneThread): number | undefined {
  const id = Number(Atomics.load(t.state, 0));
  return id === 0 ? undefined : id;
}

export class LaneThreads {
  readonly #options: LaneThreadsOptions;
  #threads: LaneThread[] = [];
  #session: LaneSession | undefined;
  #nextLane = 0;
  /** Lanes lost in a row without one attaching: spaces out replacements of failing threads. */
  #failures = 0;
  #onAllAttached: (() => void) | undefined;
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  /** How many threads run a task now, and whether the node drains (LaneConfig.busy). */
  readonly #busy = new Int32Array(new SharedArrayBuffer(8));

  constructor(options: LaneThreadsOptions) {
    this.#options = options;
  }

  /**
   * Starts one thread per slot for a new control connection. Resolves once every thread has
   * imported the task modules and attached its lane.
   */
  start(session: LaneSession): Promise<void> {
    this.#stopThreads();
    this.#session = session;
    this.#nextLane = 0;
    this.#failures = 0;
    const attached = new Promise<void>((resolve) => (this.#onAllAttached = resolve));
    for (let i = 0; i < this.#options.slots; i++) this.#threads.push(this.#spawn());
    return attached;
  }

  /** Threads whose lane is attached. */
  get attachedCount(): number {
    return this.#threads.filter((t) => t.attached).length;
  }

  /** The node is draining: its running tasks may see it (`currentTask().draining`). */
  markDraining(): void {
    Atomics.store(this.#busy, 1, 1);
  }

  /** Ends every thread (the control connection is gone, or the node stops). */
  async stop(): Promise<void> {
    this.#session = undefined;
    await this.#stopThreads();
  }

  /**
   * The coordinator asks: end this lane's thread — only if it still runs `task`, when given (an
   * aborted task that did not stop; it may have ended since). Says which task it was running.
   */
  kill(lane: number, coordinatorReason: string, task?: number): void {
    const reason = boundText(coordinatorReason, 300);
    const t = this.#threads.find((x) => x.lane === lane);
    if (!t) return;
    if (task === undefined && !t.ended) {
      // The lane closed. If the thread closed it by dying (process.exit, an uncaught error), its
      // death event may not have reached this thread yet: give it a moment to, so the task is
      // blamed for the crash rather than re-run as a mere connection loss.
      t.ended = true;
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        this.kill(lane, reason);
      }, 250);
      this.#timers.add(timer);
      return;
    }
    const running = runningTask(t);
    if (task !== undefined && running !== task) return;
    const exit = Number(Atomics.load(t.state, 1));
    // A Deno web Worker that called process.exit left its code here, and no exit event.
    if (exit > 0) {
      this.#options.log(`the task thread of lane ${lane} exited with code ${exit - 1}; starting another`);
      this.#options.onGone(lane, `exited with code ${exit - 1}`, running, true);
    } else {
      this.#options.log(`ending the thread of lane ${lane}: ${reason}`);
      this.#options.onGone(lane, `was ended: ${reason}`, running, false);
    }
    this.#replace(t, 0);
  }

  #spawn(): LaneThread {
    const session = this.#session!;
    const lane = this.#nextLane++;
    const shared = new SharedArrayBuffer(16);
    const t: LaneThread = { lane, attached: false, worker: undefined as unknown as TaskThread, state: new BigInt64Array(shared) };
    t.worker = startTaskThread({
      message: (data) => this.#onMessage(t, data as FromThread),
      death: (how) => {
        if (!this.#threads.includes(t)) return;
        this.#options.log(`the task thread of lane ${lane} ${how}; starting another`);
        this.#options.onGone(lane, how, runningTask(t), true);
        // A thread that dies before it ever attached (a task module that exits on import)
        // is replaced after a growing pause, not in a tight loop.
        if (!t.attached) this.#failures++;
        this.#replace(t, t.attached ? 0 : this.#backoff());
      },
    });
    t.worker.post({ t: 'start', config: { ...session, lane, state: shared, busy: this.#busy.buffer as SharedArrayBuffer } });
    return t;
  }

  #backoff(): number {
    return backoffMs(this.#failures);
  }

  #onMessage(t: LaneThread, msg: FromThread): void {
    if (!this.#threads.includes(t)) return;
    if (msg.t === 'log') return this.#options.log(msg.message);
    if (msg.t === 'import-failed') return this.#options.onImportFailed(msg.failed);
    if (msg.t === 'attached') {
      t.attached = true;
      this.#failures = 0;
      if (this.#onAllAttached && this.#threads.every((x) => x.attached)) {
        this.#onAllAttached();
        this.#onAllAttached = undefined;
      }
      return;
    }
    // The lane closed while the node's control connection is up (or about to be found down):
    // start a fresh thread, waiting longer after each lane in a row that failed to attach.
    if (!t.attached) this.#failures++;
    // A normal close comes with the coordinator's shutdown or the node's own loss: the control
    // connection reports those.
    if (msg.code !== 1000) this.#options.log(`lane ${t.lane} closed (${msg.code}${msg.reason ? `: ${msg.reason}` : ''})`);
    this.#replace(t, this.#backoff());
  }

  /** Ends a thread and, unless the node is stopping, starts another on a new lane number. */
  #replace(t: LaneThread, delayMs: number): void {
    const i = this.#threads.indexOf(t);
    if (i < 0) return;
    this.#threads.splice(i, 1);
    void t.worker.terminate();
    // A thread ended while running a task never says it stopped: count it out here.
    if (runningTask(t) !== undefined && Atomics.load(this.#busy, 0) > 0) Atomics.sub(this.#busy, 0, 1);
    if (!this.#session) return;
    const session = this.#session;
    const spawn = () => {
      if (this.#session !== session) return;
      this.#threads.push(this.#spawn());
    };
    if (delayMs === 0) return spawn();
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      spawn();
    }, delayMs);
    this.#timers.add(timer);
  }

  async #stopThreads(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    const threads = this.#threads;
    this.#threads = [];
    Atomics.store(this.#busy, 0, 0);
    Atomics.store(this.#busy, 1, 0);
    this.#onAllAttached?.();
    this.#onAllAttached = undefined;
    await Promise.all(threads.map((t) => t.worker.terminate()));
  }
}
