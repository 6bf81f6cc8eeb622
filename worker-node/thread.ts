/**
 * A task thread's lane: imports the task modules (through its TaskRunner, task-runner.ts), opens
 * its own connection to the coordinator, holds the tasks it reads from it (prefetched ones
 * included, until they start or are stolen back) and hands them to the runner one after
 * another, writing their outcomes back in batches. A CPU-bound task blocks only this thread; the
 * node stops such a task by terminating the thread (see lanes.ts), the one way to interrupt
 * synchronous JavaScript.
 */
import { parentPort } from 'node:worker_threads';
import { boundText } from '../shared/describe.ts';
import { FRAME_OVERHEAD_BYTES } from '../shared/frames.ts';
import { batchBySize, DEFAULTS, type Handlers, type TaskOutcome, type TaskSpec, type ToLaneMsg } from '../shared/protocol.ts';
import { BusyPoll } from '../shared/busy-poll.ts';
import { Connection } from './connection.ts';
import { fitOutcomes, outcomeBytes, TaskRunner } from './task-runner.ts';
import type { FromThread, LaneConfig, ToThread } from './thread-protocol.ts';
import { deno, type DenoNamespace, IS_DENO } from '../shared/runtime.ts';

/**
 * The channel to the node's main thread: node:worker_threads' parentPort under Node, the web
 * Worker scope under Deno (see task-thread.ts for why).
 */
const port: { post(msg: FromThread): void; listen(fn: (msg: ToThread) => void): void } = parentPort
  ? { post: (m) => parentPort!.postMessage(m), listen: (fn) => parentPort!.on('message', fn) }
  : {
    post: (m) => (globalThis as unknown as { postMessage(m: unknown): void }).postMessage(m),
    listen: (fn) => {
      const scope = globalThis as unknown as { onmessage: (e: { data: ToThread }) => void; __wsfuturesEarlyMessages?: ToThread[] };
      scope.onmessage = (e) => fn(e.data);
      // Messages that came while this module was loading (see thread-entry.mjs), in order.
      for (const msg of scope.__wsfuturesEarlyMessages?.splice(0) ?? []) fn(msg);
    },
  };
const queue: TaskSpec[] = [];
let outbox: TaskOutcome[] = [];
let draining = false;
let lane: Connection<ToLaneMsg> | undefined;
let config: LaneConfig | undefined;
/** Runs the tasks; made at start, from the lane's config. */
let runner: TaskRunner;
/** Shared with the node's main thread: the running task's id, and an exit code (LaneConfig.state). */
let shared: BigInt64Array | undefined;
/** Set from the lane's config; see `drain`. */
let busyPoll = new BusyPoll(0);
/** LaneConfig.busy: how many of the node's threads run a task now. */
let nodeBusy: Int32Array | undefined;
/**
 * How long to poll for the next task after answering the last `run`, µs: the coordinator, which
 * sees both sides of a round trip, decides (shared/busy-poll.ts); 0: sleep.
 */
let pollAfter = 0;

/**
 * Results whose large typed arrays are being sent from the task's own memory (shared/codec.ts):
 * the next task waits until they are written out, so a task that reuses a buffer it returned
 * cannot change bytes still on their way.
 */
let unwritten = 0;
let onWritten: (() => void) | undefined;
const written = (): void => {
  if (unwritten === 0 || --unwritten > 0) return;
  const resume = onWritten;
  onWritten = undefined;
  resume?.();
};

function sendResults(items: TaskOutcome[]): void {
  if (!items.some((o) => o.x !== undefined)) return lane!.send({ op: 'results', items });
  unwritten++;
  lane!.send({ op: 'results', items }, written);
}

function flush(): void {
  if (outbox.length === 0) return;
  const outcomes = outbox;
  outbox = [];
  if (!lane?.isOpen) return; // the coordinator is gone: it re-runs these elsewhere
  const limit = config!.peerMaxMessageBytes - FRAME_OVERHEAD_BYTES;
  const total = fitOutcomes(outcomes, config!.peerMaxMessageBytes);
  // Batches stay within the coordinator's frame limit too, when that is below batchBytes.
  const batchLimit = Math.min(DEFAULTS.batchBytes, limit);
  if (total <= batchLimit) return sendResults(outcomes);
  for (const items of batchBySize(outcomes, outcomeBytes, batchLimit)) sendResults(items);
}

/** Runs queued jobs in order; outcomes leave together when the queue runs dry. */
async function drain(): Promise<void> {
  if (draining) return;
  draining = true;
  try {
    while (queue.length > 0) {
      if (unwritten > 0) {
        // Still queued while it waits, so a cancel can still drop it.
        await new Promise<void>((resolve) => (onWritten = resolve));
        continue;
      }
      const job = queue.shift()!;
      if (shared) Atomics.store(shared, 0, BigInt(job.id));
      if (nodeBusy) Atomics.add(nodeBusy, 0, 1);
      let outcome = runner.run(job);
      if (outcome instanceof Promise) outcome = await outcome;
      if (nodeBusy) Atomics.sub(nodeBusy, 0, 1);
      if (shared) Atomics.store(shared, 0, 0n);
      outbox.push(outcome);
      // A long job's outcome should not wait for the rest of the batch, nor should large arrays
      // (they leave from the task's memory, and the next task waits until they have).
      if (outbox.length >= 64 || (outcome.d ?? 0) > 0.2 || outcome.x !== undefined) flush();
    }
  } finally {
    draining = false;
    flush();
    // A task awaited on its own, and the coordinator expects the next soon: polling for it skips
    // a wake-up (shared/busy-poll.ts). Only while no other thread of this node runs a task:
    // polling would take its CPU.
    if (pollAfter > 0 && queue.length === 0 && (!nodeBusy || Atomics.load(nodeBusy, 0) === 0)) busyPoll.pollFor(pollAfter);
  }
}

let drainScheduled = false;
/**
 * Starts the queue after the current job rather than at once: the thread reads its socket only
 * between runs of its queue (synchronous tasks run back to back), so several `run` messages
 * are often waiting together; parsed in one go, they run as one batch instead of each running
 * the queue dry and flushing its few results on its own.
 */
function scheduleDrain(): void {
  if (drainScheduled) return;
  drainScheduled = true;
  queueMicrotask(() => {
    drainScheduled = false;
    void drain();
  });
}

function cancel(id: number): void {
  if (runner.abort(id, new Error('cancelled by the coordinator'))) return;
  // Not started yet: drop it, and say so: the coordinator counts it as held by this lane until
  // it hears of it. (A cancel for a task that already finished finds nothing and is ignored.)
  const i = queue.findIndex((j) => j.id === id);
  if (i >= 0) {
    queue.splice(i, 1);
    // No duration: it did not run, and a zero would drag down the mean the pool tunes from.
    outbox.push({ id });
    if (!draining) flush();
  }
}

/** Every message a lane may receive (ToLaneMsg); the connection refuses any other. */
const handlers: Handlers<ToLaneMsg> = {
  attached: () => port.post({ t: 'attached' }),
  run: (m) => {
    busyPoll.stop();
    pollAfter = m.poll ?? 0;
    for (const task of m.tasks) queue.push(task);
    scheduleDrain();
  },
  cancel: (m) => {
    for (const id of m.ids) cancel(id);
  },
  // Work stealing: give back what has not started, and say exactly which (the coordinator
  // sends elsewhere only those, so no task runs twice because of a steal).
  steal: (m) => {
    const ids: number[] = [];
    for (const id of m.ids) {
      const i = queue.findIndex((j) => j.id === id);
      if (i < 0) continue; // started (or done) already: it runs here
      queue.splice(i, 1);
      ids.push(id);
    }
    lane?.send({ op: 'stolen', ids });
  },
  ping: (m) => lane?.send({ op: 'pong', t: m.t }),
  pong: () => {},
  error: (m) => port.post({ t: 'log', message: `the coordinator reported ${boundText(m.code, 64)} on lane ${config?.lane}: ${boundText(m.message)}` }),
};

async function start(c: LaneConfig): Promise<void> {
  config = c;
  busyPoll = new BusyPoll(c.busyPollMicros);
  shared = new BigInt64Array(c.state);
  nodeBusy = new Int32Array(c.busy);
  if (IS_DENO) recordExits(shared);
  runner = new TaskRunner({
    modules: c.modules,
    installDir: c.installDir,
    reports: {
      get isOpen() {
        return lane?.isOpen ?? false;
      },
      send: (id, v) => new Promise<void>((resolve) => lane!.send({ op: 'report', id, v }, resolve)),
    },
    // The node sets the busy counters' second cell when it starts to drain.
    draining: () => nodeBusy !== undefined && Atomics.load(nodeBusy, 1) === 1,
  });
  // Imported before the lane attaches: the node is ready only when every thread can run its
  // first task at full speed (loading a module can take a second). A module that cannot be
  // imported here is named in the attach, and its tasks go to other nodes.
  const failedModules = await runner.loadAll();
  if (failedModules.length > 0) port.post({ t: 'import-failed', failed: failedModules });
  lane = new Connection<ToLaneMsg>(
    { url: c.url, key: c.key, ca: c.ca, maxMessageBytes: c.maxMessageBytes, lane: true },
    {
      authenticated: () => lane!.send({ op: 'attach', node: c.node, lane: c.lane, ticket: c.ticket, failedModules: failedModules.length > 0 ? failedModules : undefined }),
      message: (m) => (handlers[m.op] as (m: ToLaneMsg) => void)(m),
      closed: (code, reason) => {
        // Whatever the coordinator sent here will run elsewhere: stop it.
        queue.length = 0;
        outbox = [];
        unwritten = 1;
        written();
        runner.abortAll(new Error('the lane to the coordinator closed'));
        port.post({ t: 'closed', code, reason });
      },
      log: (message) => port.post({ t: 'log', message: `lane ${c.lane}: ${message}` }),
    },
  );
}

/**
 * A Deno web Worker that calls process.exit() (or Deno.exit) just stops: its parent gets no
 * exit event. The code is written to shared memory first, where the node finds it when the
 * coordinator asks it to end the thread (its lane closed). Node's worker_threads report exits.
 */
function recordExits(state: BigInt64Array): void {
  const d = deno as DenoNamespace;
  const denoExit = d.exit.bind(d);
  const processExit = process.exit.bind(process);
  d.exit = (code?: number): never => {
    Atomics.store(state, 1, BigInt((code ?? 0) + 1));
    return denoExit(code);
  };
  process.exit = ((code?: number | string | null): never => {
    Atomics.store(state, 1, BigInt(Number(code ?? 0) + 1));
    return processExit(code as number);
  }) as typeof process.exit;
}

port.listen((msg: ToThread) => {
  if (msg.t === 'start') void start(msg.config);
});
