/**
 * Every error wsfutures raises, each with a stable `code`, and how errors cross the wire.
 *
 * Codes are part of the public contract: programs branch on `err.code`, never on messages.
 * The names follow Python's concurrent.futures where it has one (CancelledError, TimeoutError,
 * InvalidStateError, BrokenExecutor) so users of the seed guide recognise them.
 */

/** Base class of every error that wsfutures itself raises. */
export class WsFuturesError extends Error {
  /** Stable machine-readable code, e.g. `WSF_CANCELLED`. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The future was cancelled (by `cancel()`, `abort()`, or `shutdown({ cancelFutures: true })`). */
export class CancelledError extends WsFuturesError {
  constructor(message = 'the future was cancelled', options?: { cause?: unknown }) {
    super('WSF_CANCELLED', message, options);
  }
}

/** A wait ran out of time: `result(timeoutMs)`, `wait`, `asCompleted`, `map` or a task timeout. */
export class TimeoutError extends WsFuturesError {
  constructor(message = 'timed out', options?: { cause?: unknown }) {
    super('WSF_TIMEOUT', message, options);
  }
}

/** An operation was asked of a future in a state that does not allow it (e.g. setting a result twice). */
export class InvalidStateError extends WsFuturesError {
  constructor(message: string) {
    super('WSF_INVALID_STATE', message);
  }
}

/** The executor can no longer run work: it was shut down, or it broke. */
export class BrokenExecutorError extends WsFuturesError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'WSF_BROKEN_EXECUTOR', message, options);
  }
}

/** `submit`/`map` after `shutdown()`: Python raises RuntimeError here; ours has a code. */
export class ExecutorShutdownError extends BrokenExecutorError {
  constructor(message = 'cannot submit new tasks after shutdown(): create a new executor') {
    super(message, { code: 'WSF_SHUTDOWN' });
  }
}

/** The worker node running a task disconnected or died, and the task ran out of retries. */
export class WorkerLostError extends WsFuturesError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WSF_WORKER_LOST', message, options);
  }
}

/** A task named a module or export the worker node does not have. */
export class UnknownTaskError extends WsFuturesError {
  constructor(message: string) {
    super('WSF_UNKNOWN_TASK', message);
  }
}

/**
 * A task module could not be imported on the worker nodes that would run its tasks (a package
 * it imports is not installed there, or the runtime there cannot parse it). Its tasks go only
 * to nodes that loaded it; they fail with this error when every connected node failed it.
 */
export class ModuleLoadError extends WsFuturesError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WSF_MODULE_LOAD_FAILED', message, options);
  }
}

/** A value could not be serialized or deserialized (e.g. a function among the arguments). */
export class SerializationError extends WsFuturesError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WSF_SERIALIZATION', message, options);
  }
}

/**
 * The peer broke the protocol: a malformed, oversized or unexpected frame, a wrong token, or an
 * incompatible version. `code` says which (`WSF_PROTOCOL`, `WSF_AUTH_FAILED`, `WSF_FRAME_TOO_LARGE`,
 * `WSF_VERSION_MISMATCH`).
 */
export class ProtocolError extends WsFuturesError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

// ---------------------------------------------------------------------------------------------
// Errors on the wire.

/** The plain-object form of an error, as msgpack carries it. */
export interface WireError {
  name: string;
  message: string;
  stack?: string;
  code?: unknown;
  /** Own enumerable properties other than the above, if they serialize. */
  props?: Record<string, unknown>;
  cause?: WireError | { value: unknown };
  /** AggregateError's errors. */
  errors?: WireError[];
  /**
   * The error's class, by reference, when a task module exports it (as pickle names a class by
   * module and name): the coordinator, which imports the same module, rebuilds an instance of it.
   */
  cls?: WireClassRef;
}

/** An error class exported by a task module: the module's id and the export's name. */
export interface WireClassRef {
  m: number;
  e: string;
}

/** A class whose instances are errors, as a task module may export one. */
export type ErrorClass = abstract new (...args: never[]) => Error;

const BUILTIN_ERRORS: Record<string, new (message?: string) => Error> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

const OWN_ERRORS: Record<string, (message: string) => Error> = {
  CancelledError: (m) => new CancelledError(m),
  TimeoutError: (m) => new TimeoutError(m),
  InvalidStateError: (m) => new InvalidStateError(m),
  WorkerLostError: (m) => new WorkerLostError(m),
  UnknownTaskError: (m) => new UnknownTaskError(m),
  ModuleLoadError: (m) => new ModuleLoadError(m),
  SerializationError: (m) => new SerializationError(m),
};

const SKIPPED_PROPS = new Set(['name', 'message', 'stack', 'code', 'cause', 'errors']);
/**
 * Property names a remote error may not set on the local one: they would change what the error
 * is (its prototype), make it a thenable (`await` on it would call a peer-chosen value), or
 * break printing it (`${err}` calls toString).
 */
const UNSAFE_PROPS = new Set(['__proto__', 'constructor', 'prototype', 'then', 'toString', 'valueOf', 'toJSON', 'inspect']);

/**
 * Turns any thrown value into its wire form. `propsOk` says whether a value can be sent as it is
 * (the caller's codec decides); properties that cannot are dropped rather than failing the
 * whole report, because the error itself is what the user needs to see.
 */
export function errorToWire(err: unknown, propsOk: (v: unknown) => boolean = () => true, classOf?: (err: Error) => WireClassRef | undefined, depth = 0): WireError {
  if (!(err instanceof Error)) {
    // `throw 'text'` or `throw 42`: keep the value, as Python keeps any exception object.
    return { name: 'Error', message: `non-Error value thrown: ${describe(err)}`, props: propsOk(err) ? { value: err } : undefined };
  }
  const wire: WireError = { name: err.name, message: err.message, stack: err.stack };
  const cls = classOf?.(err);
  if (cls) wire.cls = cls;
  const code = (err as { code?: unknown }).code;
  if (code !== undefined && propsOk(code)) wire.code = code;
  const props: Record<string, unknown> = {};
  let any = false;
  for (const key of Object.keys(err)) {
    if (SKIPPED_PROPS.has(key)) continue;
    const v = (err as unknown as Record<string, unknown>)[key];
    if (propsOk(v)) {
      props[key] = v;
      any = true;
    }
  }
  if (any) wire.props = props;
  if (err.cause !== undefined && depth < 8) {
    wire.cause = err.cause instanceof Error ? errorToWire(err.cause, propsOk, classOf, depth + 1) : propsOk(err.cause) ? { value: err.cause } : { value: describe(err.cause) };
  }
  if (err instanceof AggregateError && depth < 8) {
    wire.errors = err.errors.map((e) => errorToWire(e, propsOk, classOf, depth + 1));
  }
  return wire;
}

/**
 * Rebuilds an error from its wire form: a class a task module exports as that class (found by
 * `classFor`, by reference), built-in classes as their class, our own errors as ours, anything
 * else as an `Error` whose `name` is the remote class name. `stackSuffix` is appended to the
 * remote stack so it shows where the error crossed the wire (which node ran the task).
 */
export function errorFromWire(wire: WireError, stackSuffix = '', classFor?: (ref: WireClassRef) => ErrorClass | undefined, depth = 0): Error {
  let err: Error;
  // Own properties only: a remote error named "toString" or "constructor" must not find
  // Object.prototype's members here (that once crashed the coordinator).
  const name = typeof wire.name === 'string' ? wire.name : 'Error';
  const message = typeof wire.message === 'string' ? wire.message : String(wire.message);
  const nested = (w: unknown): Error => (isWireShaped(w) && depth < 8 ? errorFromWire(w, '', classFor, depth + 1) : new Error(describe(w)));
  const Class = wire.cls && classFor ? classFor(wire.cls) : undefined;
  if (Class) {
    // As pickle does: an instance made without running the constructor (whose arguments are
    // unknown here), its fields set as plain own properties (no setter of the class runs). A
    // native Error given the class's prototype, rather than Object.create(prototype): it stays
    // an error to the runtime too (util.types.isNativeError, how consoles print it).
    err = new Error(message);
    Object.setPrototypeOf(err, Class.prototype);
    if (err.name !== name) define(err, 'name', name);
  } else if (name === 'AggregateError') {
    err = new AggregateError(Array.isArray(wire.errors) ? wire.errors.map(nested) : [], message);
  } else if (Object.hasOwn(BUILTIN_ERRORS, name)) {
    err = new BUILTIN_ERRORS[name]!(message);
  } else if (Object.hasOwn(OWN_ERRORS, name)) {
    err = OWN_ERRORS[name]!(message);
  } else {
    err = new Error(message);
    err.name = name;
  }
  if (wire.props !== null && typeof wire.props === 'object') {
    for (const [k, v] of Object.entries(wire.props)) if (!SKIPPED_PROPS.has(k) && !UNSAFE_PROPS.has(k)) define(err, k, v, true);
  }
  if (wire.code !== undefined) define(err, 'code', wire.code, true);
  const cause = wire.cause as unknown;
  if (cause !== null && typeof cause === 'object') define(err, 'cause', 'value' in cause ? (cause as { value: unknown }).value : nested(cause));
  const remoteStack = typeof wire.stack === 'string' ? wire.stack : `${name}: ${message}`;
  Object.defineProperty(err, 'stack', {
    value: remoteStack + stackSuffix,
    writable: true,
    configurable: true,
    enumerable: false,
  });
  return err;
}

/** Sets an own data property: never calls a setter (a revived class may define some). */
function define(target: object, key: string, value: unknown, enumerable = false): void {
  Object.defineProperty(target, key, { value, writable: true, configurable: true, enumerable });
}

function isWireShaped(v: unknown): v is WireError {
  return v !== null && typeof v === 'object' && typeof (v as WireError).name === 'string' && typeof (v as WireError).message === 'string';
}

function describe(v: unknown): string {
  try {
    return typeof v === 'string' ? JSON.stringify(v) : String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}
