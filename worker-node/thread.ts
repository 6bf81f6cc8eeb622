/**
 * A task thread: imports task modules, runs its jobs one after another, and reports outcomes
 * as msgpack bytes. A CPU-bound task blocks only this thread; the node stops such a task by
 * terminating the thread (see runner.ts), the one way to interrupt synchronous JavaScript.
 */
import { parentPort } from 'node:worker_threads';
import { canEncode, decodeValue, encodeValue } from '../shared/codec.ts';
import { UnknownTaskError, errorToWire } from '../shared/errors.ts';
import { threadTask, type TaskContext } from '../shared/task-context.ts';
import { packBytes } from './pack-bytes.ts';
import type { FromThread, ThreadJob, ThreadOutcome, ToThread } from './thread-protocol.ts';

/**
 * The channel to the node's network thread: node:worker_threads' parentPort under Node, the
 * web Worker scope under Deno (see task-thread.ts for why).
 */
const port: { post(msg: FromThread, transfer: ArrayBuffer[]): void; listen(fn: (msg: ToThread) => void): void } = parentPort
  ? { post: (m, t) => parentPort!.postMessage(m, t), listen: (fn) => parentPort!.on('message', fn) }
  : {
      post: (m, t) => (globalThis as unknown as { postMessage(m: unknown, t: ArrayBuffer[]): void }).postMessage(m, t),
      listen: (fn) => {
        (globalThis as unknown as { onmessage: (e: { data: ToThread }) => void }).onmessage = (e) => fn(e.data);
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
const queue: ThreadJob[] = [];
let outbox: ThreadOutcome[] = [];
let draining = false;

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
    throw new UnknownTaskError(`task module could not be imported on this worker node: ${(err as Error)?.message ?? err}`);
  }
}

function flush(): void {
  if (outbox.length === 0) return;
  const outcomes = outbox;
  outbox = [];
  // The results are views into msgpackr's working buffer: they move to one buffer of their
  // own, transferred (not cloned) to the network thread.
  const buffer = packBytes(outcomes, (o) => o.v, (o, v) => (o.v = v));
  port.post({ t: 'done', outcomes } satisfies FromThread, buffer ? [buffer] : []);
}

async function run(job: ThreadJob): Promise<ThreadOutcome> {
  const started = performance.now();
  const controller = new LazyAbort();
  controllers.set(job.id, controller);
  const context: TaskContext = {
    // Made on first use: most tiny tasks never look at their signal, and an AbortController
    // per task was a visible share of their cost.
    get signal() {
      return controller.signal;
    },
    taskId: String(job.id),
    attempt: job.attempt,
  };
  try {
    const ns = modules.get(job.url) ?? (await load(job.url));
    // Aborted while the module was loading: do not start it (the outcome is dropped anyway).
    if (controller.aborted) throw controller.reason;
    const fn = ns[job.f];
    if (typeof fn !== 'function') {
      throw new UnknownTaskError(`the task module has no exported function "${job.f}" on this worker node: is the worker's copy of the module out of date?`);
    }
    const decoded = decodeValue(job.a, 'task arguments');
    if (!job.chunk) {
      if (!Array.isArray(decoded)) throw new TypeError('task arguments must be an array');
      threadTask.current = context;
      let value = fn.apply(context, decoded);
      if (value instanceof Promise) value = await value;
      return { id: job.id, v: encodeValue(value, `the return value of ${job.f}()`), d: performance.now() - started };
    }
    // A chunk: the calls run in order; on the first error, report the values so far and the
    // error, so map() raises it at exactly the right position.
    const values: unknown[] = [];
    let error: unknown;
    let failed = false;
    // One context for the whole chunk: the calls share the chunk's signal.
    threadTask.current = context;
    for (const args of decoded as unknown[][]) {
      if (controller.aborted) break;
      try {
        let value = fn.apply(context, args);
        if (value instanceof Promise) value = await value;
        values.push(value);
      } catch (err) {
        error = err;
        failed = true;
        break;
      }
    }
    const v = encodeValue(values, `the return values of ${job.f}()`);
    return { id: job.id, v, e: failed ? errorToWire(error, canEncode) : undefined, d: performance.now() - started };
  } catch (err) {
    return { id: job.id, e: errorToWire(err, canEncode), d: performance.now() - started };
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
    for (let job = queue.shift(); job; job = queue.shift()) {
      outbox.push(await run(job));
      // A long job's outcome should not wait for the rest of the batch.
      if (outbox.length >= 64 || outbox[outbox.length - 1]!.d > 5) flush();
    }
  } finally {
    draining = false;
    flush();
  }
}

port.listen((msg: ToThread) => {
  if (msg.t === 'run') {
    for (const job of msg.jobs) queue.push(job);
    void drain();
  } else if (msg.t === 'preload') {
    // Errors are reported by the first task that needs the module, with the task's context.
    void Promise.allSettled(msg.urls.map((url) => load(url))).then(() => port.post({ t: 'loaded' }, []));
  } else if (msg.t === 'abort') {
    const c = controllers.get(msg.id);
    if (c) return c.abort(new Error(msg.reason));
    // Not started yet: drop it, and say so, so the runner stops waiting for it. (An abort for
    // a job that already finished finds nothing here and is ignored.)
    const i = queue.findIndex((j) => j.id === msg.id);
    if (i >= 0) {
      queue.splice(i, 1);
      outbox.push({ id: msg.id, d: 0 });
      if (!draining) flush();
    }
  }
});
