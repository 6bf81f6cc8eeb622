/**
 * A task thread: imports task modules, runs one task at a time, and reports its outcome as
 * msgpack bytes. A CPU-bound task blocks only this thread; the node stops such a task by
 * terminating the thread (see runner.ts), the one way to interrupt synchronous JavaScript.
 */
import { parentPort } from 'node:worker_threads';
import { canEncode, decodeValue, encodeValue } from '../shared/codec.ts';
import { UnknownTaskError, errorToWire } from '../shared/errors.ts';
import { taskStorage, type TaskContext } from '../shared/task-context.ts';
import type { FromThread, ThreadRun, ToThread } from './thread-protocol.ts';

const port = parentPort!;
const modules = new Map<string, Promise<Record<string, unknown>>>();
const controllers = new Map<number, AbortController>();

function load(url: string): Promise<Record<string, unknown>> {
  let p = modules.get(url);
  if (!p) {
    p = import(url) as Promise<Record<string, unknown>>;
    modules.set(url, p);
    p.catch(() => modules.delete(url)); // let a later task retry a failed import
  }
  return p;
}

function post(msg: FromThread, transfer: ArrayBuffer[] = []): void {
  port.postMessage(msg, transfer);
}

/** Copies bytes into a buffer of their own so it can be transferred without copying again. */
function own(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

async function run(job: ThreadRun): Promise<void> {
  const started = performance.now();
  const controller = new AbortController();
  controllers.set(job.id, controller);
  const context: TaskContext = { signal: controller.signal, taskId: String(job.id), attempt: job.attempt };
  try {
    const ns = await load(job.url).catch((err: unknown) => {
      throw new UnknownTaskError(`task module could not be imported on this worker node: ${(err as Error)?.message ?? err}`);
    });
    const fn = ns[job.f];
    if (typeof fn !== 'function') {
      throw new UnknownTaskError(`the task module has no exported function "${job.f}" on this worker node: is the worker's copy of the module out of date?`);
    }
    const decoded = decodeValue(job.a, 'task arguments');
    if (!job.chunk) {
      if (!Array.isArray(decoded)) throw new TypeError('task arguments must be an array');
      const value = await taskStorage.run(context, () => fn.apply(context, decoded));
      const v = own(encodeValue(value, `the return value of ${job.f}()`));
      post({ t: 'done', id: job.id, v, d: performance.now() - started }, [v.buffer as ArrayBuffer]);
      return;
    }
    // A chunk: the calls run in order; on the first error, report the values so far and the
    // error, so map() raises it at exactly the right position.
    const values: unknown[] = [];
    let error: unknown;
    let failed = false;
    for (const args of decoded as unknown[][]) {
      if (controller.signal.aborted) break;
      try {
        values.push(await taskStorage.run(context, () => fn.apply(context, args)));
      } catch (err) {
        error = err;
        failed = true;
        break;
      }
    }
    const v = own(encodeValue(values, `the return values of ${job.f}()`));
    post({ t: 'done', id: job.id, v, e: failed ? errorToWire(error, canEncode) : undefined, d: performance.now() - started }, [v.buffer as ArrayBuffer]);
  } catch (err) {
    post({ t: 'done', id: job.id, e: errorToWire(err, canEncode), d: performance.now() - started });
  } finally {
    controllers.delete(job.id);
  }
}

port.on('message', (msg: ToThread) => {
  if (msg.t === 'run') void run(msg);
  else if (msg.t === 'abort') controllers.get(msg.id)?.abort(new Error(msg.reason));
});
