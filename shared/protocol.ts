/**
 * The wsfutures wire protocol, in one place. Both sides import it; the README's protocol
 * section is a summary of this file.
 *
 * A connection goes through three phases:
 *
 * 1. **Handshake** (raw binary frames, never msgpack, so nothing from an unauthenticated peer is
 *    ever decoded by the general decoder):
 *    - coordinator → worker `HELLO`:    "WSFH" | u8 min version | u8 max version | 32-byte nonce Nc
 *    - worker → coordinator `AUTH`:     "WSFA" | u8 chosen version | 32-byte nonce Nw | 32-byte proof
 *                                       proof = HMAC-SHA256(key, "wsfutures/worker" | Nc | Nw)
 *    - coordinator → worker `AUTH_OK`:  "WSFO" | 32-byte proof
 *                                       proof = HMAC-SHA256(key, "wsfutures/coordinator" | Nw | Nc)
 *    key = SHA-256("wsfutures/key" | token). The token never crosses the wire; each side proves
 *    it holds it (mutual authentication), and fresh nonces make a recorded exchange useless.
 * 2. **Registration** (msgpack from here on). A worker node opens one *control* connection:
 *    `register` → `welcome` (with a lane ticket); it fetches task modules it does not have
 *    (`fetch-module` → `module`). Then each of its task threads opens a *lane* of its own:
 *    the same handshake, then `attach` (node id, lane number, ticket, and the task modules its
 *    thread could not import, whose tasks it must not be sent) → `attached`. The node
 *    says `ready` on the control connection once every lane is attached.
 * 3. **Work**, on the lanes: coordinator `run` (a batch of tasks) → the thread's `results` (a
 *    batch of outcomes, in the order the thread ran them); `cancel` stops tasks. Tasks never
 *    pass through the node's main thread: a task thread reads its tasks off its own socket and
 *    writes its results to it, which saves two thread hops per task (~120 µs of round trip and
 *    half the throughput on the machine the benchmarks ran on).
 *    On the control connection: `ping`/`pong` prove liveness (lanes are never pinged: a thread
 *    running a long synchronous task cannot answer, and its node answers for it); `kill` ends a
 *    lane's thread whose aborted task did not stop in time (or whose lane closed), `lane-died`
 *    says a thread is gone and exactly which task it was running; `drain` says a node is going away and `drained` that it has nothing left running;
 *    `shutdown` says the coordinator is going away.
 *
 * Every message after the handshake is one msgpack map with an `op` field — except that a `run`
 * or `results` message with payloads of 64 KiB or more carries them as raw attachments after
 * the map (shared/frames.ts says how), so they are never copied into it. A frame whose `op`
 * is unknown, or whose fields do not have the types below, is a protocol error: that one
 * connection is closed with `CLOSE.PROTOCOL` and nothing else is affected.
 *
 * Guarantees: each task is *executed at least once* (a task whose worker is lost runs again,
 * up to `maxRetries` more times) and its future is *settled exactly once* (results that arrive
 * for a task already settled — a duplicate after a retry, or an aborted task — are dropped).
 */
import type { WireError } from './errors.ts';
import { describePeerValue } from './describe.ts';
import { MAX_RESOURCE_NAMES, RESOURCE_NAME } from './resources.ts';

/**
 * Protocol versions this build speaks. A peer picks the highest both sides know.
 * 2: tasks travel on per-thread lanes (attach/attached, kill, lane-died, drained).
 * 3: large typed arrays travel as attachments of their own (`x` in tasks and outcomes), and
 *    `welcome` carries the busy-poll budget. A version-2 peer would misread a frame with `x`
 *    attachments, so 2 is no longer spoken: it gets WSF_VERSION_MISMATCH at the handshake.
 * 4: a chunk of `map` calls may carry its items as one flat array (`c: 2`), each item its call's
 *    only argument, without an argument array per call. A version-3 peer still gets `c: 1`.
 *    Lanes may send `report` (a running task's values) and `attach` may list the modules a
 *    thread could not import; a version-3 coordinator would close a lane that reports, so a
 *    task's reports need a coordinator of version 4 (upgrade coordinators first).
 * 5: work stealing: the coordinator may ask a lane to give back tasks it has not started
 *    (`steal`); the lane answers with the ids it removed before starting them (`stolen`). Lanes
 *    of version-4 nodes are never asked (their tasks are simply not stolen).
 */
export const PROTOCOL_VERSION = 5;
/** The first version that understands `c: 2` chunks. */
export const FLAT_CHUNK_VERSION = 4;
/** The first version whose lanes answer `steal`. */
export const STEAL_VERSION = 5;
export const MIN_PROTOCOL_VERSION = 3;

/** The WebSocket path the coordinator serves. */
export const WS_PATH = '/wsfutures';

/** Handshake frame magics (4 ASCII bytes each) and sizes. */
export const HANDSHAKE = {
  HELLO: 'WSFH',
  AUTH: 'WSFA',
  AUTH_OK: 'WSFO',
  NONCE_BYTES: 32,
  PROOF_BYTES: 32,
  /** A handshake frame is never larger than this; a larger one fails the handshake. */
  MAX_FRAME_BYTES: 128,
  /** An unauthenticated connection is closed after this long. */
  TIMEOUT_MS: 10_000,
  /**
   * Bytes a peer may send before it has authenticated (an AUTH frame is under 100): beyond
   * this its connection is closed (TOO_LARGE) and no more of its data is read, so a stranger
   * cannot make the coordinator buffer a frame up to maxMessageBytes.
   */
  MAX_PREAUTH_BYTES: 4096,
} as const;

/**
 * WebSocket close codes (4000–4999 is the range RFC 6455 leaves to applications). The close
 * reason carries the human-readable message; the code carries the stable `WSF_*` meaning.
 */
export const CLOSE = {
  /** Normal end: the coordinator shut down, or the worker node drained. */
  NORMAL: 1000,
  /** A frame exceeded the size limit (the `ws` library also uses 1009 for this). */
  TOO_LARGE: 1009,
  /**
   * The receiving side failed while handling a message it had accepted as valid: a defect of
   * wsfutures, not of the peer. Only that connection closes; the process goes on.
   */
  INTERNAL: 1011,
  PROTOCOL: 4000,
  AUTH_FAILED: 4001,
  VERSION_MISMATCH: 4002,
} as const;

/** Stable error codes that go with the close codes. */
export const CLOSE_ERROR_CODES: Record<number, string> = {
  [CLOSE.TOO_LARGE]: 'WSF_FRAME_TOO_LARGE',
  [CLOSE.INTERNAL]: 'WSF_INTERNAL',
  [CLOSE.PROTOCOL]: 'WSF_PROTOCOL',
  [CLOSE.AUTH_FAILED]: 'WSF_AUTH_FAILED',
  [CLOSE.VERSION_MISMATCH]: 'WSF_VERSION_MISMATCH',
};

/** Default limits; each can be changed by an option of the same name. */
export const DEFAULTS = {
  /** Largest frame either side accepts, in bytes (64 MiB). */
  maxMessageBytes: 64 * 1024 * 1024,
  /** How often each side sends `ping`. */
  heartbeatIntervalMs: 2_500,
  /** A peer silent for this long is considered lost (the issue asks for within 10 s). */
  heartbeatTimeoutMs: 10_000,
  /** Re-runs of a task whose worker node was lost. */
  maxRetries: 2,
  /**
   * Payload bytes batched into one `run` or `results` frame. Small items share frames (that is
   * what makes tiny tasks cheap); a large one travels alone, so a batch never exceeds the peer's
   * frame limit just because several large items finished in the same tick.
   */
  batchBytes: 1024 * 1024,
  /**
   * The longest a coordinator or task thread keeps polling its sockets for a quick answer, µs
   * (see shared/busy-poll.ts); 0 turns busy polling off.
   */
  busyPollMicros: 250,
} as const;

/** The longest explanation a lane may give for a task module it could not import. */
export const MAX_MODULE_ERROR_CHARS = 2000;
/**
 * The smallest frame limit (`maxMessageBytes`, `--max-message-bytes`) either side accepts: below
 * it, ordinary protocol messages (a welcome, a batch of tiny tasks) would not fit.
 */
export const MIN_MAX_MESSAGE_BYTES = 1024;
/** Longest node name, hostname, runtime version, node id or lane ticket a peer may send. */
export const MAX_NAME_CHARS = 256;
/** The longest delay a timer can be set to (2^31-1 ms, about 24.8 days). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The most a pool or worker node may busy-poll after one message, in microseconds. */
export const MAX_BUSY_POLL_MICROS = 10_000;

/**
 * Splits items into batches whose payload (`sizeOf`) stays within `DEFAULTS.batchBytes`; an
 * item larger than that forms a batch of its own.
 */
export function batchBySize<T>(items: T[], sizeOf: (item: T) => number, maxBytes: number = DEFAULTS.batchBytes): T[][] {
  const batches: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const n = sizeOf(item);
    if (current.length > 0 && bytes + n > maxBytes) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += n;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

// ---------------------------------------------------------------------------------------------
// Messages. `W2C` = worker node → coordinator, `C2W` = coordinator → worker node.

/** A task module as the coordinator describes it. */
export interface ModuleInfo {
  /** Small integer id used in `run` messages instead of the URL. */
  id: number;
  /** The module's URL on the coordinator's machine, for messages (not for loading). */
  url: string;
  /** SHA-256 (hex) of the bundled code: the module's identity. */
  hash: string;
}

/** One task as it travels in `run`. */
export interface TaskSpec {
  /** Task id, unique per coordinator. */
  id: number;
  /** ModuleInfo.id of the module exporting the function. */
  m: number;
  /** The export name. */
  f: string;
  /**
   * The arguments, msgpack-encoded separately from the envelope so the worker node's network
   * thread can hand them to a task thread undecoded (decoding happens in parallel there).
   * For a chunk with `c: 1` it encodes an array of argument arrays; with `c: 2`, an array of
   * items, each the single argument of one call.
   */
  a: Uint8Array;
  /**
   * The large typed arrays among the arguments, sent as they are rather than copied into `a`,
   * which refers to them by position (shared/codec.ts). Absent when there are none.
   */
  x?: Uint8Array[];
  /**
   * Set for a chunk of calls from `map`/`starmap` with `chunksize`: 1 when `a` holds argument
   * arrays, 2 when it holds the calls' single arguments (protocol version 4).
   */
  c?: 1 | 2;
  /** Which attempt this is (1 = first). */
  n: number;
}

/** One outcome as it travels in `results`. */
export interface TaskOutcome {
  id: number;
  /**
   * The msgpack-encoded return value (for a chunk: the array of values up to the first error).
   * Absent when the task failed before producing anything.
   */
  v?: Uint8Array;
  /** The large typed arrays of the value, as TaskSpec.x. */
  x?: Uint8Array[];
  /** The error, when the task (or, for a chunk, call number values.length) threw. */
  e?: WireError;
  /** Milliseconds the task ran on the node: the coordinator tunes prefetch from it. */
  d?: number;
}

export interface RegisterMsg {
  op: 'register';
  /** The node's name (default: hostname-pid). */
  name: string;
  /** Task slots (threads) the node offers. */
  slots: number;
  runtime: 'node' | 'deno';
  runtimeVersion: string;
  hostname: string;
  pid: number;
  /** Hashes of task modules the node has as local files, by URL or path, to be compared. */
  localModules?: Record<string, string>;
  /** The largest frame the node accepts: the coordinator sends it nothing larger. */
  maxMessageBytes?: number;
  /**
   * What the node offers to tasks that ask for resources (`--resources gpu=1,mem=16GB`), amounts
   * by name, memory in bytes (shared/resources.ts). Absent: none, and such tasks never go to it.
   * A coordinator that predates the field ignores it (fields are checked, unknown ones ignored).
   */
  resources?: Record<string, number>;
}

export interface WelcomeMsg {
  op: 'welcome';
  /** The id the coordinator gave this node. */
  workerId: string;
  modules: ModuleInfo[];
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  maxMessageBytes: number;
  /** Presented by this node's lanes in `attach`, so a lane joins the node it belongs to. */
  laneTicket: string;
  /**
   * How long the node's task threads may busy-poll their lane after sending results, µs (the
   * pool's `busyPollMicros`; a node started with a lower `--busy-poll` uses its own). Absent: 0.
   */
  busyPollMicros?: number;
}

/** The first message on a lane (a task thread's own connection), after the handshake. */
export interface AttachMsg {
  op: 'attach';
  /** The node's workerId, from its welcome. */
  node: string;
  /** The lane's number within the node; a thread started in place of a dead one gets a new one. */
  lane: number;
  ticket: string;
  /**
   * Task modules this lane's thread could not import (a package missing on the node's machine,
   * a syntax its runtime does not know), each with the node's explanation: the coordinator
   * sends their tasks only to lanes that loaded them. Absent: every module loaded.
   */
  failedModules?: { id: number; error: string }[];
}

/** The lane is attached: `run` may follow. */
export interface AttachedMsg {
  op: 'attached';
}

/**
 * Control: end the thread of this lane and start another — its aborted task did not stop (then
 * `task` is set: end it only if it is still running that task), or its lane closed while the
 * node is connected. The node answers with `lane-died`, unless `task` had already ended.
 */
export interface KillMsg {
  op: 'kill';
  lane: number;
  reason: string;
  task?: number;
}

/**
 * Control: the thread of this lane is gone. `task` is the task it was running (the node knows
 * exactly: each thread publishes its current task in shared memory), absent if it was between
 * tasks. `crashed`: it died by itself (process.exit, out of memory), so that task is to blame;
 * false when the node ended it because the coordinator asked.
 */
export interface LaneDiedMsg {
  op: 'lane-died';
  lane: number;
  how: string;
  task?: number;
  crashed: boolean;
}

/** Control: a draining node has nothing left running; it may close now. */
export interface DrainedMsg {
  op: 'drained';
}

export interface FetchModuleMsg {
  op: 'fetch-module';
  id: number;
}

export interface ModuleMsg {
  op: 'module';
  id: number;
  hash: string;
  /** The bundled ES module source (packages stay imports, resolved from the node's node_modules). */
  code: string;
}

export interface ReadyMsg {
  op: 'ready';
}

export interface RunMsg {
  op: 'run';
  tasks: TaskSpec[];
  /**
   * How long the lane should busy-poll for its next message after answering these tasks, µs
   * (absent or 0: it sleeps). The coordinator decides for both sides of a round trip
   * (shared/busy-poll.ts); the lane polls at most its own budget.
   */
  poll?: number;
}

export interface ResultsMsg {
  op: 'results';
  items: TaskOutcome[];
}

/**
 * Lane: a value the running task `id` reports (`currentTask().report(value)`), msgpack-encoded
 * as a result is. Sent before that task's outcome, on the same lane, so it arrives first; the
 * coordinator drops a report for a task the lane no longer runs. A task sends at most
 * MAX_REPORTS_PER_SECOND (shared/task-context.ts).
 */
export interface ReportMsg {
  op: 'report';
  id: number;
  v: Uint8Array;
}

export interface CancelMsg {
  op: 'cancel';
  ids: number[];
}

/** Coordinator → lane: give back these tasks if you have not started them (work stealing). */
export interface StealMsg {
  op: 'steal';
  ids: number[];
}

/**
 * Lane → coordinator, the answer to `steal`: the ids it removed from its queue before starting
 * them (it will run and report none of them). Only these may run elsewhere.
 */
export interface StolenMsg {
  op: 'stolen';
  ids: number[];
}

export interface PingMsg {
  op: 'ping';
  t: number;
}

export interface PongMsg {
  op: 'pong';
  t: number;
}

export interface DrainMsg {
  op: 'drain';
}

export interface ShutdownMsg {
  op: 'shutdown';
  /**
   * Whether the node should exit rather than reconnect. The coordinator sends false today:
   * nodes started with --exit-on-shutdown exit on any `shutdown`, the others reconnect.
   */
  exit: boolean;
}

/** A fatal error explained just before the sender closes the connection. */
export interface ErrorMsg {
  op: 'error';
  code: string;
  message: string;
}

// One union per connection kind and direction. A connection's first message after the handshake
// says its kind: `register` makes it a node's control connection, `attach` a lane. Every side
// dispatches on a complete table for the kind it is (see Handlers); a message not in its kind's
// union closes that connection with CLOSE.PROTOCOL (see connectionKindReason).

/** A new connection (authenticated, not yet registered or attached), to the coordinator. The
 *  coordinator's heartbeat may already ping it. */
export type OpeningMsg = RegisterMsg | AttachMsg | PingMsg | PongMsg | ErrorMsg;
/** A node's control connection, to the coordinator. */
export type ControlMsg = FetchModuleMsg | ReadyMsg | LaneDiedMsg | DrainMsg | PingMsg | PongMsg | ErrorMsg;
/**
 * A lane, to the coordinator. (A `pong`: a ping sent while it was new may be answered after it
 * attached. A `ping`: task threads send none, but a peer may use one as a round-trip barrier.)
 */
export type LaneMsg = ResultsMsg | ReportMsg | StolenMsg | PingMsg | PongMsg | ErrorMsg;
/** The coordinator, to a node's control connection. */
export type ToControlMsg = WelcomeMsg | ModuleMsg | KillMsg | DrainedMsg | ShutdownMsg | PingMsg | PongMsg | ErrorMsg;
/** The coordinator, to a lane. (A `ping` only while it is new: lanes are not watched.) */
export type ToLaneMsg = AttachedMsg | RunMsg | CancelMsg | StealMsg | PingMsg | PongMsg | ErrorMsg;

/** Anything a worker node's connections send, and anything the coordinator sends. */
export type W2C = OpeningMsg | ControlMsg | LaneMsg;
export type C2W = ToControlMsg | ToLaneMsg;
/** What a connection is, to the coordinator: which table its messages are checked against. */
export type ConnectionKind = 'opening' | 'control' | 'lane';

/** A table with one handler per op: leaving an op out is a type error. */
export type Handlers<M extends { op: string }> = { [K in M['op']]: (msg: Extract<M, { op: K }>) => void };

// ---------------------------------------------------------------------------------------------
// Validation of decoded messages: the shape of every field, checked before any handler runs.

type Check = (v: unknown) => boolean;
const isStr: Check = (v) => typeof v === 'string';
/** Names and ids a peer gives (node name, hostname, ticket): they end up in every log line about it. */
const isName: Check = (v) => typeof v === 'string' && v.length <= MAX_NAME_CHARS;
const isHash: Check = (v) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
const isNum: Check = (v) => typeof v === 'number' && Number.isFinite(v);
const isInt: Check = (v) => Number.isSafeInteger(v);
/** A delay a timer can be set to: Node turns anything above 2^31-1 ms into 1 ms. */
const isTimerMs: Check = (v) => Number.isSafeInteger(v) && (v as number) >= 1 && (v as number) <= MAX_TIMER_MS;
const isFrameLimit: Check = (v) => Number.isSafeInteger(v) && (v as number) >= MIN_MAX_MESSAGE_BYTES;
const isBool: Check = (v) => typeof v === 'boolean';
const isBytes: Check = (v) => v instanceof Uint8Array;
const opt = (c: Check): Check => (v) => v === undefined || c(v);
const arrayOf = (c: Check): Check => (v) => {
  if (!Array.isArray(v)) return false;
  for (const item of v) if (!c(item)) return false;
  return true;
};
const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
/** Declared resources: a few names of the documented form, each a finite amount ≥ 0. */
const isResources: Check = (v) => {
  if (!isObj(v)) return false;
  const names = Object.keys(v);
  if (names.length > MAX_RESOURCE_NAMES) return false;
  for (const k of names) if (!RESOURCE_NAME.test(k) || !isNum(v[k]) || (v[k] as number) < 0) return false;
  return true;
};

/** A check of a map's fields, which can also say which field failed (for the close reason). */
type Shape = Check & { fields: [string, Check][] };
const shape = (fields: Record<string, Check>): Shape => {
  // Entries listed once, not per check: every task and outcome of every frame goes through here.
  const entries = Object.entries(fields);
  const check = (v: unknown) => {
    if (!isObj(v)) return false;
    for (const [k, c] of entries) if (!c(v[k])) return false;
    return true;
  };
  return Object.assign(check, { fields: entries });
};
const isClassRef = shape({ m: isInt, e: isStr });
const isWireError: Check = (v) => isObj(v) && isStr(v.name) && isStr(v.message) && (v.cls === undefined || isClassRef(v.cls));
const isModuleInfo = shape({ id: isInt, url: isStr, hash: isHash });
const isTaskSpec = shape({ id: isInt, m: isInt, f: isStr, a: isBytes, x: opt(arrayOf(isBytes)), c: opt((v) => v === 1 || v === 2), n: isInt });
/** An outcome carries a value (`v`, possibly an encoded undefined), an error (`e`), or both (a chunk that failed part way); neither only when a cancelled task did not run. */
const isOutcome = shape({ id: isInt, v: opt(isBytes), x: opt(arrayOf(isBytes)), e: opt(isWireError), d: opt((v) => isNum(v) && (v as number) >= 0) });

const W2C_SHAPES: Record<W2C['op'], Shape> = {
  register: shape({
    name: isName,
    slots: (v) => isInt(v) && (v as number) >= 1 && (v as number) <= 4096,
    runtime: (v) => v === 'node' || v === 'deno',
    runtimeVersion: isName,
    hostname: isName,
    pid: isInt,
    localModules: opt((v) => isObj(v) && Object.values(v).every(isStr)),
    maxMessageBytes: opt(isFrameLimit),
    resources: opt(isResources),
  }),
  'fetch-module': shape({ id: isInt }),
  ready: shape({}),
  attach: shape({
    node: isName,
    lane: isInt,
    ticket: isName,
    failedModules: opt(arrayOf(shape({ id: isInt, error: (v) => isStr(v) && (v as string).length <= MAX_MODULE_ERROR_CHARS }))),
  }),
  'lane-died': shape({ lane: isInt, how: isStr, task: opt(isInt), crashed: isBool }),
  results: shape({ items: arrayOf(isOutcome) }),
  report: shape({ id: isInt, v: isBytes }),
  stolen: shape({ ids: arrayOf(isInt) }),
  ping: shape({ t: isNum }),
  pong: shape({ t: isNum }),
  drain: shape({}),
  error: shape({ code: isStr, message: isStr }),
};

const C2W_SHAPES: Record<C2W['op'], Shape> = {
  welcome: shape({
    workerId: isName,
    modules: arrayOf(isModuleInfo),
    heartbeatIntervalMs: isTimerMs,
    heartbeatTimeoutMs: isTimerMs,
    maxMessageBytes: isFrameLimit,
    laneTicket: isName,
    busyPollMicros: opt((v) => isNum(v) && (v as number) >= 0 && (v as number) <= MAX_BUSY_POLL_MICROS),
  }),
  attached: shape({}),
  kill: shape({ lane: isInt, reason: isStr, task: opt(isInt) }),
  drained: shape({}),
  module: shape({ id: isInt, hash: isHash, code: isStr }),
  run: shape({ tasks: arrayOf(isTaskSpec), poll: opt((v) => isInt(v) && (v as number) >= 0 && (v as number) <= MAX_BUSY_POLL_MICROS) }),
  cancel: shape({ ids: arrayOf(isInt) }),
  steal: shape({ ids: arrayOf(isInt) }),
  ping: shape({ t: isNum }),
  pong: shape({ t: isNum }),
  shutdown: shape({ exit: isBool }),
  error: shape({ code: isStr, message: isStr }),
};

/**
 * Returns why `msg` is not a valid message of the table, or undefined if it is. Never throws,
 * whatever `msg` is: it runs on every frame a peer sends, inside the socket handler.
 */
function invalidReason(msg: unknown, table: Record<string, Shape>): string | undefined {
  if (!isObj(msg)) return `expected a map with an "op" field, got ${describePeerValue(msg)}`;
  const op = msg.op;
  if (typeof op !== 'string' || !Object.hasOwn(table, op)) return `unknown op ${describePeerValue(op, 40)}`;
  const check = table[op]!;
  if (check(msg)) return undefined;
  const bad = check.fields.find(([k, c]) => !c(msg[k]));
  return bad ? `malformed "${op}" message: "${bad[0]}" is ${describePeerValue(msg[bad[0]], 40)}` : `malformed "${op}" message`;
}

/** The shapes of one union's ops (the rest of the table left out). */
function only<M extends { op: string }>(table: Record<string, Shape>, ops: Record<M['op'], true>): Record<string, Shape> {
  const out: Record<string, Shape> = {};
  for (const op of Object.keys(ops)) out[op] = table[op]!;
  return out;
}

// `Record<Union['op'], true>`: leaving an op of the union out, or adding one that is not in it,
// is a type error.
const TO_COORDINATOR: Record<ConnectionKind, Record<string, Shape>> = {
  opening: only<OpeningMsg>(W2C_SHAPES, { register: true, attach: true, ping: true, pong: true, error: true }),
  control: only<ControlMsg>(W2C_SHAPES, { 'fetch-module': true, ready: true, 'lane-died': true, drain: true, ping: true, pong: true, error: true }),
  lane: only<LaneMsg>(W2C_SHAPES, { results: true, report: true, stolen: true, ping: true, pong: true, error: true }),
};
const TO_CONTROL = only<ToControlMsg>(C2W_SHAPES, { welcome: true, module: true, kill: true, drained: true, shutdown: true, ping: true, pong: true, error: true });
const TO_LANE = only<ToLaneMsg>(C2W_SHAPES, { attached: true, run: true, cancel: true, steal: true, ping: true, pong: true, error: true });

/** Where each op belongs, for the reason a connection of another kind is closed with. */
const W2C_WHERE: Record<W2C['op'], string> = {
  register: 'a new connection (register and attach come once, first)',
  attach: 'a new connection (register and attach come once, first)',
  'fetch-module': "a node's control connection",
  ready: "a node's control connection",
  'lane-died': "a node's control connection",
  drain: "a node's control connection",
  results: 'an attached lane',
  report: 'an attached lane',
  stolen: 'an attached lane',
  ping: 'any connection',
  pong: 'any connection',
  error: 'any connection',
};

/** Whether `msg` is any message a worker node may send (whatever its connection). */
export function invalidW2C(msg: unknown): string | undefined {
  return invalidReason(msg, W2C_SHAPES);
}

/** Whether `msg` is any message the coordinator may send (whatever the connection). */
export function invalidC2W(msg: unknown): string | undefined {
  return invalidReason(msg, C2W_SHAPES);
}

/**
 * Why `msg` is not a message a connection of `kind` may send the coordinator (a message of the
 * protocol on the wrong kind of connection says where it belongs), or undefined if it is one.
 */
export function invalidFor(kind: ConnectionKind, msg: unknown): string | undefined {
  const table = TO_COORDINATOR[kind];
  if (isObj(msg) && typeof msg.op === 'string' && !Object.hasOwn(table, msg.op) && Object.hasOwn(W2C_WHERE, msg.op)) {
    return `"${msg.op}" on a connection that is not ${W2C_WHERE[msg.op as W2C['op']]}`;
  }
  return invalidReason(msg, table);
}

/** Why `msg` is not a message the coordinator may send a node's control connection (or a lane). */
export function invalidToWorker(lane: boolean, msg: unknown): string | undefined {
  const table = lane ? TO_LANE : TO_CONTROL;
  if (isObj(msg) && typeof msg.op === 'string' && !Object.hasOwn(table, msg.op) && Object.hasOwn(C2W_SHAPES, msg.op)) {
    return `"${msg.op}" on ${lane ? 'a lane' : 'the control connection'}`;
  }
  return invalidReason(msg, table);
}
