/**
 * The task runner of a task thread: given a task, runs it and produces its outcome. It imports
 * the task modules (and remembers them), runs a plain call or a chunk of calls, aborts a running
 * task, and fits outcomes to the coordinator's frame limit. It holds no socket: the lane
 * (thread.ts) hands it tasks and sends what it returns; a task's `report()` goes out through the
 * ReportSink the lane gives it.
 */
import { attachedBytes, canEncode, decodeValue, encodeMessage, encodeValue } from '../shared/codec.ts';
import { FRAME_OVERHEAD_BYTES, itemOverheadBytes } from '../shared/frames.ts';
import { errorToWire, ModuleLoadError, UnknownTaskError, type WireClassRef } from '../shared/errors.ts';
import { MAX_MODULE_ERROR_CHARS, type TaskOutcome, type TaskSpec } from '../shared/protocol.ts';
import { MAX_REPORTS_PER_SECOND, type TaskContext, threadTask } from '../shared/task-context.ts';
import { describeImportFailure } from './import-failure.ts';

/** A task module: the coordinator's id for it, the URL to import here, its name on the coordinator's machine. */
export interface RunnerModule {
  id: number;
  url: string;
  name: string;
}

/** Where a running task's `report()` values go (the lane). */
export interface ReportSink {
  /** False once the lane closed: reports are dropped then. */
  readonly isOpen: boolean;
  /** Sends one report; resolves once it is on its way. */
  send(id: number, v: Uint8Array): Promise<void>;
}

export interface TaskRunnerOptions {
  modules: RunnerModule[];
  /** Where this node resolves the packages task modules import (named in import failures). */
  installDir: string;
  reports?: ReportSink;
  /** Whether this task's node is draining (`currentTask().draining`); absent: never. */
  draining?: () => boolean;
}

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

export class TaskRunner {
  readonly #modules = new Map<string, Record<string, unknown>>();
  readonly #loading = new Map<string, Promise<Record<string, unknown>>>();
  /** The running tasks (one, or none, between tasks: the lane runs them in turn). */
  readonly #controllers = new Map<number, LazyAbort>();
  readonly #moduleInfo: RunnerModule[];
  readonly #moduleUrls: Map<number, string>;
  readonly #installDir: string;
  readonly #reports: ReportSink | undefined;
  readonly #draining: () => boolean;
  /** Error classes the task modules export, by constructor: see classOf. */
  readonly #exportedClasses = new Map<unknown, WireClassRef | null>();
  /** One reused list: most values have no attachments, and tiny tasks need no array each. */
  readonly #attachments: Uint8Array[] = [];
  readonly #classOf = (err: Error): WireClassRef | undefined => this.#classOfError(err);

  constructor(options: TaskRunnerOptions) {
    this.#moduleInfo = options.modules;
    this.#moduleUrls = new Map(options.modules.map(({ id, url }) => [id, url]));
    this.#installDir = options.installDir;
    this.#reports = options.reports;
    this.#draining = options.draining ?? (() => false);
  }

  /** Whether the node is draining: tasks that run on (a load test's slot) hand in what they have. */
  get draining(): boolean {
    return this.#draining();
  }

  /** Whether task `id` is running now (reports of a task that ended are dropped). */
  isRunning(id: number): boolean {
    return this.#controllers.has(id);
  }

  /** Aborts task `id` if it is running; false if it is not (not started, or done). */
  abort(id: number, reason: unknown): boolean {
    const c = this.#controllers.get(id);
    if (!c) return false;
    c.abort(reason);
    return true;
  }

  /** Aborts every running task. */
  abortAll(reason: unknown): void {
    for (const controller of this.#controllers.values()) controller.abort(reason);
  }

  async #load(url: string): Promise<Record<string, unknown>> {
    const ready = this.#modules.get(url);
    if (ready) return ready;
    let p = this.#loading.get(url);
    if (!p) {
      p = import(url) as Promise<Record<string, unknown>>;
      this.#loading.set(url, p);
    }
    try {
      const ns = await p;
      this.#modules.set(url, ns);
      return ns;
    } catch (err) {
      this.#loading.delete(url); // let a later task retry a failed import
      const info = this.#moduleInfo.find((m) => m.url === url);
      throw new ModuleLoadError(describeImportFailure(info?.name ?? url, err, this.#installDir), { cause: err });
    }
  }

  /**
   * The task-module export that is `err`'s class, if any: the error then travels with a reference
   * to it, and the coordinator (which imports the same module) rebuilds an instance of that class.
   */
  #classOfError(err: Error): WireClassRef | undefined {
    const ctor = err.constructor;
    let ref = this.#exportedClasses.get(ctor);
    if (ref === undefined) {
      ref = null;
      for (const [id, url] of this.#moduleUrls) {
        const ns = this.#modules.get(url);
        const name = ns && Object.keys(ns).find((k) => ns[k] === ctor);
        if (name !== undefined) {
          ref = { m: id, e: name };
          break;
        }
      }
      this.#exportedClasses.set(ctor, ref);
    }
    return ref ?? undefined;
  }

  /** Imports every task module; returns those that cannot be imported here, each with what to do about it. */
  async loadAll(): Promise<{ id: number; error: string }[]> {
    const modules = this.#moduleInfo;
    const outcomes = await Promise.allSettled(modules.map(({ url }) => this.#load(url)));
    const failed: { id: number; error: string }[] = [];
    outcomes.forEach((o, i) => {
      if (o.status === 'rejected') failed.push({ id: modules[i]!.id, error: String((o.reason as Error)?.message ?? o.reason).slice(0, MAX_MODULE_ERROR_CHARS) });
    });
    return failed;
  }

  /**
   * Runs one task. The common case (a plain function of a module already imported, returning a
   * value) runs without a single await: per tiny task, every microtask turn shows in the round
   * trip. Chunks, modules still loading and errors take the general path, runSlow.
   */
  run(job: TaskSpec): TaskOutcome | Promise<TaskOutcome> {
    const url = this.#moduleUrls.get(job.m);
    const ns = url === undefined ? undefined : this.#modules.get(url);
    const fn = ns?.[job.f];
    if (job.c !== undefined || typeof fn !== 'function') return this.#runSlow(job);
    const started = performance.now();
    const controller = new LazyAbort();
    this.#controllers.set(job.id, controller);
    let value: unknown;
    try {
      const decoded = decodeValue(job.a, 'task arguments', job.x);
      if (!Array.isArray(decoded)) throw new TypeError('task arguments must be an array');
      const context = this.#taskContext(job, controller);
      threadTask.current = context;
      value = fn.apply(context, decoded);
      if (value instanceof Promise) return this.#settleLater(job, value, started);
      return this.#valueOutcome(job, value, started, () => `the return value of ${job.f}()`);
    } catch (err) {
      return { id: job.id, e: errorToWire(err, canEncode, this.#classOf), d: performance.now() - started };
    } finally {
      if (!(value instanceof Promise)) {
        threadTask.current = undefined;
        this.#controllers.delete(job.id);
      }
    }
  }

  /** A successful outcome: the value's msgpack bytes, with its large typed arrays beside them. */
  #valueOutcome(job: TaskSpec, value: unknown, started: number, what: () => string): TaskOutcome {
    const x = this.#attachments;
    x.length = 0;
    const v = encodeValue(value, what, x);
    return { id: job.id, v, x: x.length > 0 ? x.slice() : undefined, d: performance.now() - started };
  }

  /** The end of a task whose function returned a promise. */
  async #settleLater(job: TaskSpec, pending: Promise<unknown>, started: number): Promise<TaskOutcome> {
    try {
      const value = await pending;
      return this.#valueOutcome(job, value, started, () => `the return value of ${job.f}()`);
    } catch (err) {
      return { id: job.id, e: errorToWire(err, canEncode, this.#classOf), d: performance.now() - started };
    } finally {
      threadTask.current = undefined;
      this.#controllers.delete(job.id);
    }
  }

  #taskContext(job: TaskSpec, controller: LazyAbort): TaskContext {
    return new ThreadTaskContext(job, controller, this, this.#reports);
  }

  async #runSlow(job: TaskSpec): Promise<TaskOutcome> {
    const started = performance.now();
    const controller = new LazyAbort();
    this.#controllers.set(job.id, controller);
    const context = this.#taskContext(job, controller);
    try {
      const url = this.#moduleUrls.get(job.m);
      if (url === undefined) throw new UnknownTaskError(`unknown task module id ${job.m}`);
      const ns = this.#modules.get(url) ?? (await this.#load(url));
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
        return this.#valueOutcome(job, value, started, () => `the return value of ${job.f}()`);
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
      // One try around the loop, not one per call, and the abort looked at only after an await:
      // nothing can abort the chunk while its calls run synchronously. With tiny calls this
      // halves the loop's cost per call (about 20 → 10 ns).
      const count = decoded.length;
      try {
        for (let i = 0; i < count; i++) {
          let value = spread ? fn.apply(context, decoded[i] as unknown[]) : fn.call(context, decoded[i]);
          if (value instanceof Promise) {
            value = await value;
            values.push(value);
            if (controller.aborted) break;
          } else values.push(value);
        }
      } catch (err) {
        error = err;
        failed = true;
      }
      const outcome = this.#valueOutcome(job, values, started, () => `the return values of ${job.f}()`);
      if (failed) outcome.e = errorToWire(error, canEncode, this.#classOf);
      return outcome;
    } catch (err) {
      return { id: job.id, e: errorToWire(err, canEncode, this.#classOf), d: performance.now() - started };
    } finally {
      threadTask.current = undefined;
      this.#controllers.delete(job.id);
    }
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
  readonly #runner: TaskRunner;
  readonly #reports: ReportSink | undefined;
  readonly #id: number;
  readonly #fn: string;
  /** When its next report may leave (performance.now()), for the rate bound. */
  #nextReportAt = 0;
  constructor(job: TaskSpec, controller: LazyAbort, runner: TaskRunner, reports: ReportSink | undefined) {
    this.taskId = String(job.id);
    this.attempt = job.n;
    this.#controller = controller;
    this.#runner = runner;
    this.#reports = reports;
    this.#id = job.id;
    this.#fn = job.f;
  }
  async report(value: unknown): Promise<void> {
    const now = performance.now();
    const at = Math.max(now, this.#nextReportAt);
    this.#nextReportAt = at + 1000 / MAX_REPORTS_PER_SECOND;
    if (at > now) await new Promise((r) => setTimeout(r, at - now));
    // The task ended meanwhile (or its lane closed): nobody listens any more.
    if (!this.#runner.isRunning(this.#id) || !this.#reports?.isOpen) return;
    const v = encodeValue(value, () => `a report of ${this.#fn}()`);
    await this.#reports.send(this.#id, v);
  }
  /** Made on first use: most tiny tasks never look at their signal. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }
  get draining(): boolean {
    return this.#runner.draining;
  }
}

/**
 * Makes outcomes fit the coordinator's frame limit (`peerMaxMessageBytes`), in place, replacing
 * one too large by an error that says so. Returns the outcomes' total bytes.
 */
export function fitOutcomes(outcomes: TaskOutcome[], peerMaxMessageBytes: number): number {
  const limit = peerMaxMessageBytes - FRAME_OVERHEAD_BYTES;
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
        message:
          `the task's result encodes to ${valueBytes} bytes with its frame, more than the coordinator's maxMessageBytes (${peerMaxMessageBytes}): raise maxMessageBytes on the pool or return less`,
      },
    };
  }
  return total;
}

/** An outcome's bytes in a `results` frame: its value, its error (rare: encoded to be measured), its fields. */
export function outcomeBytes(o: TaskOutcome): number {
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
