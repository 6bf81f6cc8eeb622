/**
 * A task thread: imports the task modules, opens its own lane to the coordinator, and runs the
 * tasks it reads from it one after another, writing their outcomes back in batches. A CPU-bound
 * task blocks only this thread; the node stops such a task by terminating the thread (see
 * lanes.ts), the one way to interrupt synchronous JavaScript.
 */
import { parentPort } from 'node:worker_threads';
import { attachedBytes, canEncode, decodeValue, encodeMessage, encodeValue } from '../shared/codec.ts';
import { boundText } from '../shared/describe.ts';
import { FRAME_OVERHEAD_BYTES, itemOverheadBytes } from '../shared/frames.ts';
import { errorToWire, ModuleLoadError, UnknownTaskError, type WireClassRef } from '../shared/errors.ts';
import { batchBySize, DEFAULTS, type Handlers, MAX_MODULE_ERROR_CHARS, type TaskOutcome, type TaskSpec, type ToLaneMsg } from '../shared/protocol.ts';
import { MAX_REPORTS_PER_SECOND, type TaskContext, threadTask } from '../shared/task-context.ts';
import { BusyPoll } from '../shared/busy-poll.ts';
import { Connection } from './connection.ts';
import { describeImportFailure } from './import-failure.ts';
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
const modules = new Map<string, Record<string, unknown>>();
const loading = new Map<string, Promise<Record<string, unknown>>>();
/** An AbortController made only when someone asks for its signal. */
class LazyAbort {
  #controller: AbortController | undefined;
  aborted = false;
  reason: unknown;
  get signal(): AbortSignal {
    this.#controller ??= new AbortController();
    if (this.aborted && !this.#controller.signal.aborted) this.#controller.abort(this.reason);
    return this.#controller.signal;
  }
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.#controller?.abort(reason);
  }
}

const controllers = new Map<number, LazyAbort>();
const queue: TaskSpec[] = [];
let outbox: TaskOutcome[] = [];
let draining = false;
let lane: Connection<ToLaneMsg> | undefined;
let config: LaneConfig | undefined;
let moduleUrls = new Map<number, string>();
/** Shared with the node's main thread: the running task's id, and an exit code (LaneConfig.state). */
let shared: BigInt64Array | undefined;
/** Set from the lane's config; see `drain`. */
let busyPoll = new BusyPoll(0);
/** LaneConfig.busy: how many of the node's threads run a task now. */
let nodeBusy: Int32Array | undefined;
/** Tasks in the last `run` frame: 1 when the coordinator awaits them one at a time. */
let lastRunSize = 0;

async function load(url: string): Promise<Record<string, unknown>> {
  const ready = modules.get(url);
  if (ready) return ready;
  let p = loading.get(url);
  if (!p) {
    p = import(url) as Promise<Record<string, unknown>>;
    loading.set(url, p);
  }
  try {
    const ns = await p;
    modules.set(url, ns);
    return ns;
  } catch (err) {
    loading.delete(url); // let a later task retry a failed import
    const info = config?.modules.find((m) => m.url === url);
    throw new ModuleLoadError(describeImportFailure(info?.name ?? url, err, config?.installDir ?? process.cwd()), { cause: err });
  }
}

/** Error classes the task modules export, by constructor: see classOf. */
const exportedClasses = new Map<unknown, WireClassRef | null>();

/**
 * The task-module export that is `err`'s class, if any: the error then travels with a reference
 * to it, and the coordinator (which imports the same module) rebuilds an instance of that class.
 */
function classOf(err: Error): WireClassRef | undefined {
  const ctor = err.constructor;
  let ref = exportedClasses.get(ctor);
  if (ref === undefined) {
    ref = null;
    for (const [id, url] of moduleUrls) {
      const ns = modules.get(url);
      const name = ns && Object.keys(ns).find((k) => ns[k] === ctor);
      if (name !== undefined) {
        ref = { m: id, e: name };
        break;
      }
    }
    exportedClasses.set(ctor, ref);
  }
  return ref ?? undefined;
}

/** The modules that cannot be imported here, each with what to do about it. */
async function loadAll(c: LaneConfig): Promise<{ id: number; error: string }[]> {
  const outcomes = await Promise.allSettled(c.modules.map(({ url }) => load(url)));
  const failed: { id: number; error: string }[] = [];
  outcomes.forEach((o, i) => {
    if (o.status === 'rejected') failed.push({ id: c.modules[i]!.id, error: String((o.reason as Error)?.message ?? o.reason).slice(0, MAX_MODULE_ERROR_CHARS) });
  });
  return failed;
}

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
  let total = 0;
  for (let i = 0; i < outcomes.length; i++) {
    const o = outcomes[i]!;
    const size = outcomeBytes(o);
    total += size;
    if (size <= limit) continue;
    // Sending it would make the coordinator close the lane (frame too large) and re-run the
    // task elsewhere, where it would fail the same way: report why instead.
    const valueBytes = (o.v?.byteLength ?? 0) + attachedBytes(o.x) + itemOverheadBytes(o.x?.length ?? 0);
    if (valueBytes <= limit && o.e !== undefined) {
      // The error is what is too large (a huge message or stack): send it cut short.
      const { name, message, code } = o.e;
      const cut = `${message.slice(0, 1000)}… (the error was cut short: it encodes to ${size - valueBytes} bytes, more than the coordinator's maxMessageBytes allows)`;
      outcomes[i] = { ...o, e: { name, message: cut, code: typeof code === 'string' || typeof code === 'number' ? code : undefined } };
      continue;
    }
    outcomes[i] = {
      id: o.id,
      d: o.d,
      e: {
        name: 'SerializationError',
        code: 'WSF_SERIALIZATION',
        message: `the task's result encodes to ${valueBytes} bytes with its frame, more than the coordinator's maxMessageBytes (${
          config!.peerMaxMessageBytes
        }): raise maxMessageBytes on the pool or return less`,
      },
    };
  }
  // Batches stay within the coordinator's frame limit too, when that is below batchBytes.
  const batchLimit = Math.min(DEFAULTS.batchBytes, limit);
  if (total <= batchLimit) return sendResults(outcomes);
  for (const items of batchBySize(outcomes, outcomeBytes, batchLimit)) sendResults(items);
}

/** An outcome's bytes in a `results` frame: its value, its error (rare: encoded to be measured), its fields. */
function outcomeBytes(o: TaskOutcome): number {
  return (o.v?.byteLength ?? 0) + attachedBytes(o.x) + itemOverheadBytes(o.x?.length ?? 0) + (o.e === undefined ? 0 : errorBytes(o));
}

/**
 * The bytes of an outcome's error in the envelope. Its properties passed the values codec,
 * which keeps circular references; the envelope's plain msgpack does not, and would fail the
 * whole frame: such an error travels without its properties and cause.
 */
function errorBytes(o: TaskOutcome): number {
  try {
    return encodeMessage(o.e).byteLength;
  } catch {
    const { name, message, stack, code } = o.e!;
    o.e = { name, message, stack, code: typeof code === 'string' || typeof code === 'number' ? code : undefined };
    return encodeMessage(o.e).byteLength;
  }
}

/**
 * Runs one task. The common case (a plain function of a module already imported, returning a
 * value) runs without a single await: per tiny task, every microtask turn shows in the round
 * trip. Chunks, modules still loading and errors take the general path, runSlow.
 */
function run(job: TaskSpec): TaskOutcome | Promise<TaskOutcome> {
  const url = moduleUrls.get(job.m);
  const ns = url === undefined ? undefined : modules.get(url);
  const fn = ns?.[job.f];
  if (job.c !== undefined || typeof fn !== 'function') return runSlow(job);
  const started = performance.now();
  const controller = new LazyAbort();
  controllers.set(job.id, controller);
  let value: unknown;
  try {
    const decoded = decodeValue(job.a, 'task arguments', job.x);
    if (!Array.isArray(decoded)) throw new TypeError('task arguments must be an array');
    const context = taskContext(job, controller);
    threadTask.current = context;
    value = fn.apply(context, decoded);
    if (value instanceof Promise) return settleLater(job, value, started);
    return valueOutcome(job, value, started, () => `the return value of ${job.f}()`);
  } catch (err) {
    return { id: job.id, e: errorToWire(err, canEncode, classOf), d: performance.now() - started };
  } finally {
    if (!(value instanceof Promise)) {
      threadTask.current = undefined;
      controllers.delete(job.id);
    }
  }
}

/** A successful outcome: the value's msgpack bytes, with its large typed arrays beside them. */
function valueOutcome(job: TaskSpec, value: unknown, started: number, what: () => string): TaskOutcome {
  // One reused list: most values have no attachments, and tiny tasks need no array each.
  const x = attachments;
  x.length = 0;
  const v = encodeValue(value, what, x);
  return { id: job.id, v, x: x.length > 0 ? x.slice() : undefined, d: performance.now() - started };
}
const attachments: Uint8Array[] = [];

/** The end of a task whose function returned a promise. */
async function settleLater(job: TaskSpec, pending: Promise<unknown>, started: number): Promise<TaskOutcome> {
  try {
    const value = await pending;
    return valueOutcome(job, value, started, () => `the return value of ${job.f}()`);
  } catch (err) {
    return { id: job.id, e: errorToWire(err, canEncode, classOf), d: performance.now() - started };
  } finally {
    threadTask.current = undefined;
    controllers.delete(job.id);
  }
}

/**
 * What a task sees as `this` and from currentTask(). A class, not an object literal with a
 * getter: one is made per task, and a literal's accessor made each of them slower to build.
 */
class ThreadTaskContext implements TaskContext {
  readonly taskId: string;
  readonly attempt: number;
  readonly #controller: LazyAbort;
  readonly #id: number;
  readonly #fn: string;
  /** When its next report may leave (performance.now()), for the rate bound. */
  #nextReportAt = 0;
  constructor(job: TaskSpec, controller: LazyAbort) {
    this.taskId = String(job.id);
    this.attempt = job.n;
    this.#controller = controller;
    this.#id = job.id;
    this.#fn = job.f;
  }
  async report(value: unknown): Promise<void> {
    const now = performance.now();
    const at = Math.max(now, this.#nextReportAt);
    this.#nextReportAt = at + 1000 / MAX_REPORTS_PER_SECOND;
    if (at > now) await new Promise((r) => setTimeout(r, at - now));
    // The task ended meanwhile (or its lane closed): nobody listens any more.
    if (!controllers.has(this.#id) || !lane?.isOpen) return;
    const v = encodeValue(value, () => `a report of ${this.#fn}()`);
    await new Promise<void>((resolve) => lane!.send({ op: 'report', id: this.#id, v }, resolve));
  }
  /** Made on first use: most tiny tasks never look at their signal. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }
  get draining(): boolean {
    return nodeBusy !== undefined && Atomics.load(nodeBusy, 1) === 1;
  }
}

function taskContext(job: TaskSpec, controller: LazyAbort): TaskContext {
  return new ThreadTaskContext(job, controller);
}

async function runSlow(job: TaskSpec): Promise<TaskOutcome> {
  const started = performance.now();
  const controller = new LazyAbort();
  controllers.set(job.id, controller);
  const context = taskContext(job, controller);
  try {
    const url = moduleUrls.get(job.m);
    if (url === undefined) throw new UnknownTaskError(`unknown task module id ${job.m}`);
    const ns = modules.get(url) ?? (await load(url));
    // Aborted while the module was loading: do not start it (the outcome is dropped anyway).
    if (controller.aborted) throw controller.reason;
    const fn = ns[job.f];
    if (typeof fn !== 'function') {
      throw new UnknownTaskError(`the task module has no exported function "${job.f}" on this worker node: is the worker's copy of the module out of date?`);
    }
    const decoded = decodeValue(job.a, 'task arguments', job.x);
    if (job.c === undefined) {
      if (!Array.isArray(decoded)) throw new TypeError('task arguments must be an array');
      threadTask.current = context;
      let value = fn.apply(context, decoded);
      if (value instanceof Promise) value = await value;
      return valueOutcome(job, value, started, () => `the return value of ${job.f}()`);
    }
    // A chunk: the calls run in order; on the first error, report the values so far and the
    // error, so map() raises it at exactly the right position. `c: 1` carries an argument array
    // per call, `c: 2` each call's single argument.
    if (!Array.isArray(decoded)) throw new TypeError('chunk arguments must be an array');
    const spread = job.c === 1;
    const values: unknown[] = [];
    let error: unknown;
    let failed = false;
    // One context for the whole chunk: the calls share the chunk's signal.
    threadTask.current = context;
    for (const call of decoded) {
      if (controller.aborted) break;
      try {
        let value = spread ? fn.apply(context, call as unknown[]) : fn.call(context, call);
        if (value instanceof Promise) value = await value;
        values.push(value);
      } catch (err) {
        error = err;
        failed = true;
        break;
      }
    }
    const outcome = valueOutcome(job, values, started, () => `the return values of ${job.f}()`);
    if (failed) outcome.e = errorToWire(error, canEncode, classOf);
    return outcome;
  } catch (err) {
    return { id: job.id, e: errorToWire(err, canEncode, classOf), d: performance.now() - started };
  } finally {
    threadTask.current = undefined;
    controllers.delete(job.id);
  }
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
      let outcome = run(job);
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
    // Tasks that come one at a time are usually awaited one at a time: the next is probably on
    // its way, and polling for it skips a wake-up (shared/busy-poll.ts). Tasks that come in
    // batches are a burst: polling would only take CPU from the coordinator.
    // (Only while no other thread of this node runs a task: polling would take its CPU.)
    if (lastRunSize === 1 && queue.length === 0 && (!nodeBusy || Atomics.load(nodeBusy, 0) === 0)) busyPoll.expectAnswer();
  }
}

function cancel(id: number): void {
  const c = controllers.get(id);
  if (c) return c.abort(new Error('cancelled by the coordinator'));
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
    busyPoll.answered();
    lastRunSize = m.tasks.length;
    for (const task of m.tasks) queue.push(task);
    void drain();
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
  moduleUrls = new Map(c.modules.map(({ id, url }) => [id, url]));
  // Imported before the lane attaches: the node is ready only when every thread can run its
  // first task at full speed (loading a module can take a second). A module that cannot be
  // imported here is named in the attach, and its tasks go to other nodes.
  const failedModules = await loadAll(c);
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
        for (const controller of controllers.values()) controller.abort(new Error('the lane to the coordinator closed'));
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
