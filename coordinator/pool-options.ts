/**
 * The options of `ProcessPoolExecutor`, and their checks: every option is checked up front, and
 * a bad one fails with a TypeError (wrong type) or RangeError (out of range) naming the option,
 * the value and what to do.
 */
import { availableParallelism } from 'node:os';
import { toModuleUrl } from '../shared/bundle.ts';
import { DEFAULTS, MAX_BUSY_POLL_MICROS, MAX_TIMER_MS, MIN_MAX_MESSAGE_BYTES } from '../shared/protocol.ts';
import { checkResources, type Resources } from '../shared/resources.ts';
import { checkPositiveInt, describeValue } from './executor.ts';
import type { WorkerRuntime } from './local-workers.ts';
import { isMainModule } from './task-registry.ts';

/** Hosts only this machine can reach: listening on another needs a token. */
export const LOOPBACK: ReadonlySet<string> = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

export interface ProcessPoolExecutorOptions {
  /** The task module(s): URLs or paths of ES modules whose exported functions can be submitted. */
  tasks: URL | string | (URL | string)[];
  /** Task slots on worker nodes the pool starts on this machine. Default: available cores; 0: none. */
  maxWorkers?: number;
  /** Where to listen. Default 127.0.0.1 on a free port; a non-loopback host requires `token`. */
  listen?: { host?: string; port?: number };
  /** Shared secret worker nodes must prove they know. Default: a random one (see `pool.token`). */
  token?: string;
  /** Re-runs of a task whose worker node was lost (default 2). */
  maxRetries?: number;
  /** Serve wss:// with this certificate and key (PEM). */
  tls?: { cert: string | Uint8Array; key: string | Uint8Array };
  /**
   * What the worker node the pool starts on this machine declares, as `--resources` does for
   * other nodes: e.g. `{ gpu: 1, mem: '16GB' }`. Default: none.
   */
  localResources?: Record<string, number | string>;
  /** Runtime of the local worker nodes: 'node' or 'deno'. Default: the coordinator's own. */
  workerRuntime?: WorkerRuntime;
  /**
   * Largest frame, in bytes, that the coordinator and the local worker nodes it starts accept
   * (default 64 MiB). Remote nodes state theirs (`--max-message-bytes`); a task too large for
   * the node it would go to fails with `SerializationError` instead of breaking the connection.
   */
  maxMessageBytes?: number;
  /** How often pings are sent, ms (default 2500). */
  heartbeatIntervalMs?: number;
  /** A worker node silent this long is lost, ms (default 10000). */
  heartbeatTimeoutMs?: number;
  /**
   * Busy polling, in microseconds (default 250, at most 10000; 0 turns it off): the longest the
   * coordinator, and the task threads of its worker nodes, keep polling their sockets for a
   * quick answer instead of sleeping — a caller awaiting results one at a time skips two
   * wake-ups per round trip. The coordinator polls, and tells the task thread to, only while its
   * measured round trips show that polling brings answers sooner, and not while other work
   * waits for the cores; a poll stops when the answer is in. The cost is CPU while waiting (see
   * shared/busy-poll.ts).
   */
  busyPollMicros?: number;
  /**
   * The dashboard (`/wsfutures/`) and `/metrics` on the pool's port are open to requests from
   * this machine; from elsewhere they need the token (a login form, or `Authorization: Bearer`)
   * unless `requireToken` is false.
   */
  monitoring?: { requireToken?: boolean };
  /**
   * Where pool events are reported. Default: warnings, remote nodes joining and leaving, and
   * how to join, to stderr. `false` silences them.
   */
  log?: ((level: 'info' | 'warn', message: string) => void) | false;
}

/** The options, checked, with their defaults. */
export interface PoolSettings {
  urls: URL[];
  maxWorkers: number;
  host: string;
  port: number;
  token: string | undefined;
  maxRetries: number;
  tls: { cert: string | Uint8Array; key: string | Uint8Array } | undefined;
  workerRuntime: WorkerRuntime | undefined;
  maxMessageBytes: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  busyPollMicros: number;
  localResources: Resources | undefined;
}

/** Checks every option up front; throws a TypeError or RangeError that names the one at fault. */
export function checkPoolOptions(options: ProcessPoolExecutorOptions): PoolSettings {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`ProcessPoolExecutor(options): options must be an object with at least { tasks }: got ${describeValue(options)}`);
  }
  const { tasks, maxWorkers, listen = {}, token, maxRetries = DEFAULTS.maxRetries, tls, workerRuntime, maxMessageBytes = DEFAULTS.maxMessageBytes } = options;
  const { heartbeatIntervalMs = DEFAULTS.heartbeatIntervalMs, heartbeatTimeoutMs = DEFAULTS.heartbeatTimeoutMs, busyPollMicros = DEFAULTS.busyPollMicros } = options;
  if (tasks === undefined) throw new TypeError("tasks is required: the task module(s) whose exported functions workers run, e.g. new URL('./tasks.ts', import.meta.url)");
  const list = Array.isArray(tasks) ? tasks : [tasks];
  if (list.length === 0) throw new TypeError('tasks must name at least one task module');
  const urls = list.map((t, i) => toModuleUrl(t, Array.isArray(tasks) ? i : -1));
  const main = urls.findIndex(isMainModule);
  if (main >= 0) {
    throw new TypeError(
      `tasks${Array.isArray(tasks) ? `[${main}]` : ''} is the program's main module (${urls[main]!.href}): the pool would import it again and wait for it, ` +
        `while it waits for the pool; and every worker node would run the program. Move the task functions into a module of their own ` +
        `(e.g. tasks.ts), export them, import them from there, and pass that module as tasks.`,
    );
  }
  checkPositiveInt('maxWorkers', maxWorkers, true);
  checkPositiveInt('maxRetries', maxRetries, true);
  checkPositiveInt('maxMessageBytes', maxMessageBytes);
  if (maxMessageBytes < MIN_MAX_MESSAGE_BYTES) {
    throw new RangeError(`maxMessageBytes must be at least ${MIN_MAX_MESSAGE_BYTES} (protocol messages need that much): got ${maxMessageBytes}`);
  }
  checkPositiveInt('heartbeatIntervalMs', heartbeatIntervalMs);
  checkPositiveInt('heartbeatTimeoutMs', heartbeatTimeoutMs);
  // Node and Deno fire a timer set beyond 2^31-1 ms after 1 ms: a ping storm, not a long wait.
  for (const [name, ms] of [['heartbeatIntervalMs', heartbeatIntervalMs], ['heartbeatTimeoutMs', heartbeatTimeoutMs]] as const) {
    if (ms > MAX_TIMER_MS) throw new RangeError(`${name} must be at most ${MAX_TIMER_MS} (about 24.8 days): got ${ms}`);
  }
  checkPositiveInt('busyPollMicros', busyPollMicros, true);
  if (busyPollMicros > MAX_BUSY_POLL_MICROS) {
    throw new RangeError(`busyPollMicros must be at most ${MAX_BUSY_POLL_MICROS} (10 ms): got ${busyPollMicros}; 0 turns busy polling off`);
  }
  if (listen === null || typeof listen !== 'object') throw new TypeError(`listen must be an object like { host: '0.0.0.0', port: 8765 }: got ${describeValue(listen)}`);
  const host = listen.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host.length === 0) throw new TypeError(`listen.host must be a host name or address: got ${describeValue(listen.host)}`);
  checkPositiveInt('listen.port', listen.port, true);
  if (listen.port !== undefined && listen.port > 65535) throw new RangeError(`listen.port must be at most 65535: got ${listen.port}`);
  if (token !== undefined && (typeof token !== 'string' || token.length < 8)) {
    throw new TypeError(
      `token must be a string of at least 8 characters (prefer 32 random ones): got ${typeof token === 'string' ? `${token.length} characters` : describeValue(token)}`,
    );
  }
  if (!LOOPBACK.has(host) && token === undefined) {
    throw new TypeError(
      `listen.host is ${
        JSON.stringify(host)
      }, which is reachable beyond this machine: pass a token (e.g. token: process.env.WSFUTURES_TOKEN) so only your worker nodes can connect`,
    );
  }
  if (workerRuntime !== undefined && workerRuntime !== 'node' && workerRuntime !== 'deno') {
    throw new RangeError(`workerRuntime must be 'node' or 'deno': got ${describeValue(workerRuntime)}`);
  }
  const localResources = checkResources('localResources', options.localResources, false);
  if (tls !== undefined && (tls === null || typeof tls !== 'object' || !tls.cert || !tls.key)) throw new TypeError('tls must be { cert, key } with PEM strings or Buffers');

  return {
    urls,
    maxWorkers: maxWorkers ?? availableParallelism(),
    host,
    port: listen.port ?? 0,
    token,
    maxRetries,
    tls,
    workerRuntime,
    maxMessageBytes,
    heartbeatIntervalMs,
    heartbeatTimeoutMs,
    busyPollMicros,
    localResources,
  };
}
