/**
 * A worker node: connects to a coordinator, authenticates, offers its task slots, runs what it
 * is sent, and reconnects with backoff when the coordinator goes away. SIGINT/SIGTERM drain it:
 * running tasks finish and report before it exits.
 */
import { availableParallelism, hostname } from 'node:os';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deriveKey } from '../shared/auth.ts';
import { CLOSE, DEFAULTS, type Handlers, MAX_BUSY_POLL_MICROS, MIN_MAX_MESSAGE_BYTES, type ModuleInfo, type ToControlMsg, type W2C } from '../shared/protocol.ts';
import { bundleModule, hashCode, toModuleUrl } from '../shared/bundle.ts';
import { ModuleCache } from './module-cache.ts';
import { boundText } from '../shared/describe.ts';
import { Connection, WorkerNodeFatalError } from './connection.ts';
import { LaneThreads } from './lanes.ts';
import { checkResources, type Resources } from '../shared/resources.ts';
import { runtimeInfo } from '../shared/runtime.ts';
import { backoffMs } from '../shared/backoff.ts';
import { checkInteger, type IntegerRange } from '../shared/validate.ts';

/** The allowed values of the options the CLI and the API share (see cli.ts). */
export const BUSY_POLL_RANGE: IntegerRange = { min: 0, max: MAX_BUSY_POLL_MICROS, expected: `a number of microseconds from 0 to ${MAX_BUSY_POLL_MICROS}` };
export const MESSAGE_BYTES_RANGE: IntegerRange = { min: MIN_MAX_MESSAGE_BYTES };

export { WorkerNodeFatalError };

export interface WorkerNodeOptions {
  /** The coordinator's URL, e.g. ws://192.168.1.10:8765/wsfutures (the path is optional). */
  connect: string;
  /** The shared token (required). */
  token: string;
  /** Task slots; default: available cores. */
  concurrency?: number;
  /** Shown in the coordinator's logs and in remote stacks; default `hostname-pid`. */
  name?: string;
  /** Where shipped task modules are cached. */
  cacheDir?: string;
  /** Local copies of task modules, checked against the coordinator's by hash. */
  tasks?: string[];
  /** Reconnect after losing the coordinator (default true). */
  reconnect?: boolean;
  /** Exit (rather than reconnect) when the coordinator says it is shutting down for good. */
  exitOnShutdown?: boolean;
  /** Trust this CA certificate (PEM) for wss:// coordinators with a self-signed certificate. */
  ca?: string | Uint8Array;
  /** Largest frame accepted. */
  maxMessageBytes?: number;
  /**
   * The most this node's task threads busy-poll after sending results, µs; the coordinator's
   * `busyPollMicros` applies when lower. Default: no cap of its own. 0 turns it off here.
   */
  busyPollMicros?: number;
  /**
   * What this node offers to tasks that ask for resources, e.g. `{ gpu: 1, mem: '16GB' }`
   * (numbers, or amounts with a unit: K, M, G, T, KiB, MiB, GiB, TiB). Such a task runs here only
   * while its request fits in what the node's running tasks do not hold. Default: none.
   */
  resources?: Record<string, number | string>;
  /** Leave out informational lines (connected, draining); warnings are always shown. */
  quiet?: boolean;
  log?: (message: string) => void;
}

type State = 'idle' | 'connecting' | 'handshake' | 'registering' | 'ready' | 'draining' | 'stopped';

export class WorkerNode {
  readonly options: Required<Omit<WorkerNodeOptions, 'tasks' | 'ca' | 'log' | 'resources'>> & Pick<WorkerNodeOptions, 'tasks' | 'ca' | 'log'>;
  /** The resources it declares, as numbers (options.resources checked). */
  readonly resources: Resources | undefined;
  readonly #key: Uint8Array;
  readonly #cache: ModuleCache;
  readonly #lanes: LaneThreads;
  #conn: Connection<ToControlMsg> | undefined;
  #state: State = 'idle';
  #moduleUrls = new Map<number, string>();
  /** Task modules' names on the coordinator's machine (tasks.ts), for messages. */
  #moduleNames = new Map<number, string>();
  #pendingModules = new Set<number>();
  #localHashes: Map<string, { path: string; code: string }> | undefined;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #attempt = 0;
  #stopped: Promise<void>;
  #resolveStopped!: () => void;
  #rejectStopped!: (err: Error) => void;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  /** From the current welcome: what the lanes need to attach. */
  #workerId = '';
  #laneTicket = '';
  /** The current connection got its welcome. */
  #welcomed = false;

  constructor(options: WorkerNodeOptions) {
    const concurrency = options.concurrency ?? availableParallelism();
    checkInteger('concurrency', concurrency);
    if (typeof options.token !== 'string' || options.token.length === 0) throw new TypeError("token is required: pass --token or set WSFUTURES_TOKEN to the coordinator's token");
    let url: URL;
    try {
      // `host:port` (no scheme) means ws://host:port, as the pool's join command prints it.
      url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(options.connect) ? options.connect : `ws://${options.connect}`);
    } catch {
      throw new TypeError(`connect must be a ws:// or wss:// URL, or host:port: got ${JSON.stringify(options.connect)}`);
    }
    const cap = options.busyPollMicros;
    checkInteger('busyPollMicros', cap, BUSY_POLL_RANGE);
    const max = options.maxMessageBytes;
    checkInteger('maxMessageBytes', max, MESSAGE_BYTES_RANGE);
    if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new TypeError(`connect must be a ws:// or wss:// URL, or host:port: got ${JSON.stringify(options.connect)}`);
    if (url.pathname === '/' || url.pathname === '') url.pathname = '/wsfutures';
    this.resources = checkResources('resources', options.resources, false);
    // Field by field, not `{ ...defaults, ...options }`: an option passed as undefined (as the
    // CLI does for flags not given) must not erase its default.
    this.options = {
      ...options,
      concurrency,
      name: options.name ?? `${hostname()}-${process.pid}`,
      cacheDir: options.cacheDir ?? '',
      reconnect: options.reconnect ?? true,
      exitOnShutdown: options.exitOnShutdown ?? false,
      quiet: options.quiet ?? false,
      maxMessageBytes: options.maxMessageBytes ?? DEFAULTS.maxMessageBytes,
      busyPollMicros: options.busyPollMicros ?? MAX_BUSY_POLL_MICROS,
      connect: url.href,
    };
    this.#key = deriveKey(options.token);
    this.#cache = new ModuleCache(options.cacheDir || undefined);
    this.#lanes = new LaneThreads({
      slots: concurrency,
      onGone: (lane, how, task, crashed) => this.#conn?.send({ op: 'lane-died', lane, how, task, crashed }),
      onImportFailed: (failed) => this.#onImportFailed(failed),
      log: (m) => this.#log(m),
    });
    this.#stopped = new Promise((resolve, reject) => {
      this.#resolveStopped = resolve;
      this.#rejectStopped = reject;
    });
    this.#stopped.catch(() => {});
  }

  get state(): State {
    return this.#state;
  }

  /** Reports what the node does; `info` lines are left out with `quiet`, warnings never are. */
  #log(message: string, level: 'info' | 'warn' = 'warn'): void {
    if (level === 'info' && this.options.quiet) return;
    (this.options.log ?? ((m: string) => console.error(m)))(`[wsfutures-worker ${this.options.name}] ${message}`);
  }

  /** Connects (and keeps reconnecting); resolves when the node stops, rejects on a fatal error. */
  start(): Promise<void> {
    if (this.#state === 'idle') {
      void this.#prepareLocalModules().then(() => this.#connect());
    }
    return this.#stopped;
  }

  async #prepareLocalModules(): Promise<void> {
    if (!this.options.tasks?.length) return;
    this.#localHashes = new Map();
    for (const [i, entry] of this.options.tasks.entries()) {
      const url = toModuleUrl(entry, i);
      const { code, hash } = await bundleModule(url);
      this.#localHashes.set(hash, { path: fileURLToPath(url), code });
    }
  }

  #connect(): void {
    if (this.#state === 'stopped') return;
    this.#state = 'connecting';
    const conn: Connection<ToControlMsg> = new Connection<ToControlMsg>(
      { url: this.options.connect, key: this.#key, ca: this.options.ca, maxMessageBytes: this.options.maxMessageBytes, lane: false },
      {
        open: () => {
          this.#state = 'handshake';
        },
        authenticated: () => {
          this.#state = 'registering';
          this.#register();
        },
        message: (msg) => this.#dispatch(msg),
        closed: (code, reason, fatal) => this.#onClosed(conn, code, reason, fatal),
        log: (m) => this.#log(m),
      },
    );
    this.#conn = conn;
  }

  #onClosed(conn: Connection<ToControlMsg>, code: number, reason: string, fatal: WorkerNodeFatalError | undefined): void {
    if (this.#conn !== conn) return;
    this.#conn = undefined;
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    // Welcomed counts as in: its lanes may have attached and run tasks before the node itself
    // said ready (the pool counts a slot as soon as its lane attaches).
    const wasRegistered = this.#welcomed || this.#state === 'ready' || this.#state === 'draining';
    this.#welcomed = false;
    // Whatever the coordinator had sent the lanes, it will now run elsewhere: stop it here.
    void this.#lanes.stop();
    if (this.#state === 'stopped') return;
    if (this.#state === 'draining') return void this.#finish();
    if (fatal) return void this.#fail(fatal);
    if (this.#shutdownSeen && this.options.exitOnShutdown) return void this.#finish();
    if (!this.options.reconnect) {
      // Ending after work was done is a normal stop; never getting in is a failure the
      // caller (a script, a supervisor) must be able to see in the exit code.
      if (wasRegistered) return void this.#finish();
      return void this.#fail(
        new WorkerNodeFatalError('WSF_CONNECT_FAILED', `could not connect to the coordinator at ${this.options.connect}${reason ? `: ${reason}` : ` (${code})`}`),
      );
    }
    if (wasRegistered) this.#attempt = 0;
    const delay = backoffMs(this.#attempt++);
    const why = wasRegistered
      ? `lost the coordinator (${code}${reason ? `: ${reason}` : ''})`
      : `cannot reach the coordinator at ${this.options.connect}${reason ? ` (${reason})` : ` (${code})`}`;
    this.#log(`${why}; retrying in ${(delay / 1000).toFixed(1)} s`);
    this.#state = 'connecting';
    this.#reconnectTimer = setTimeout(() => this.#connect(), delay);
  }

  #shutdownSeen = false;
  /** The coordinator's frame limit, from its welcome. */
  #peerMaxMessageBytes: number = DEFAULTS.maxMessageBytes;
  /** The coordinator's busy-poll budget, from its welcome. */
  #peerBusyPollMicros = 0;

  #register(): void {
    const local: Record<string, string> = {};
    for (const [hash, { path }] of this.#localHashes ?? []) local[path] = hash;
    this.#send({
      op: 'register',
      name: this.options.name,
      slots: this.options.concurrency,
      runtime: runtimeInfo().runtime,
      runtimeVersion: runtimeInfo().version,
      hostname: hostname(),
      pid: process.pid,
      localModules: this.#localHashes ? local : undefined,
      maxMessageBytes: this.options.maxMessageBytes,
      resources: this.resources,
    });
  }

  #dispatch(msg: ToControlMsg): void {
    const handlers: Handlers<ToControlMsg> = {
      welcome: (m) => {
        if (this.#state !== 'registering') return this.#abortConnection(CLOSE.PROTOCOL, 'unexpected welcome');
        this.#startHeartbeat(m.heartbeatIntervalMs, m.heartbeatTimeoutMs);
        this.#peerMaxMessageBytes = m.maxMessageBytes;
        this.#peerBusyPollMicros = m.busyPollMicros ?? 0;
        this.#welcomed = true;
        this.#workerId = m.workerId;
        this.#laneTicket = m.laneTicket;
        this.#moduleUrls.clear();
        this.#moduleNames.clear();
        this.#importFailuresSaid.clear();
        this.#pendingModules.clear();
        for (const info of m.modules) this.#resolveModule(info);
        if (this.#pendingModules.size === 0) this.#becomeReady();
      },
      module: (m) => {
        if (!this.#pendingModules.has(m.id)) return;
        try {
          this.#moduleUrls.set(m.id, this.#cache.put(m.hash, m.code));
        } catch (err) {
          return this.#abortConnection(CLOSE.PROTOCOL, `bad module ${m.id}: ${(err as Error).message}`);
        }
        this.#pendingModules.delete(m.id);
        if (this.#pendingModules.size === 0) this.#becomeReady();
      },
      kill: (m) => this.#lanes.kill(m.lane, m.reason, m.task),
      drained: () => {
        if (this.#state === 'draining') this.#conn?.close(CLOSE.NORMAL, 'worker node drained');
      },
      ping: (m) => this.#conn?.send({ op: 'pong', t: m.t }),
      pong: () => {},
      shutdown: (m) => {
        this.#shutdownSeen = true;
        if (m.exit) this.options.exitOnShutdown = true;
      },
      error: (m) => this.#log(`the coordinator reported ${boundText(m.code, 64)}: ${boundText(m.message)}`),
    };
    (handlers[msg.op] as (m: ToControlMsg) => void)(msg);
  }

  #resolveModule(info: ModuleInfo): void {
    this.#moduleNames.set(info.id, moduleName(info.url));
    const cached = this.#cache.get(info.hash);
    if (cached) {
      this.#moduleUrls.set(info.id, cached);
      return;
    }
    const local = this.#localHashes?.get(info.hash);
    if (local) {
      this.#moduleUrls.set(info.id, this.#cache.put(info.hash, local.code));
      return;
    }
    if (this.#localHashes) {
      const name = moduleName(info.url);
      const same = [...this.#localHashes.values()].find((l) => basename(l.path) === name);
      if (same) {
        this.#log(
          `local task module ${same.path} differs from the coordinator's ${boundText(info.url, 200)} (sha256 ${hashCode(same.code).slice(0, 12)}… here, ${
            info.hash.slice(0, 12)
          }… there): ` +
            `running the coordinator's version; update this machine's copy to silence this`,
        );
      }
    }
    this.#pendingModules.add(info.id);
    this.#send({ op: 'fetch-module', id: info.id });
  }

  #becomeReady(): void {
    // Ready means ready to run at full speed: every thread has started, imported the task
    // modules (a second or more on a cold node) and attached its lane, so the first tasks and
    // the caller's `await pool.ready()` do not pay for it. Bounded, so a module that hangs on
    // import cannot keep the node out; that module's tasks then report the problem.
    const conn = this.#conn;
    const attached = this.#lanes.start({
      url: this.options.connect,
      key: this.#key,
      ca: this.options.ca === undefined ? undefined : String(this.options.ca),
      maxMessageBytes: this.options.maxMessageBytes,
      peerMaxMessageBytes: this.#peerMaxMessageBytes,
      busyPollMicros: Math.min(this.#peerBusyPollMicros, this.options.busyPollMicros),
      node: this.#workerId,
      ticket: this.#laneTicket,
      modules: [...this.#moduleUrls].map(([id, url]) => ({ id, url, name: this.#moduleNames.get(id) ?? url })),
      installDir: this.#cache.installDir,
    });
    const limit = new Promise<'late'>((r) => setTimeout(() => r('late'), 30_000).unref?.());
    void Promise.race([attached, limit]).then((late) => {
      if (this.#conn !== conn || this.#state !== 'registering') return;
      if (late) {
        this.#log(`only ${this.#lanes.attachedCount} of ${this.options.concurrency} task threads attached within 30 s (a task module slow to import?): going on with those`);
      }
      this.#sendReady();
    });
  }

  /**
   * Every thread imports the task modules and reports the ones it could not: said once per
   * module and connection, on this node's own stderr, where the person who can install the
   * missing package looks. (The coordinator hears it from each lane's attach.)
   */
  #onImportFailed(failed: { id: number; error: string }[]): void {
    for (const { id, error } of failed) {
      if (this.#importFailuresSaid.has(id)) continue;
      this.#importFailuresSaid.add(id);
      this.#log(`${error}; the coordinator sends that module's tasks to other worker nodes`);
    }
  }
  /** Task modules whose import failure was said since the last welcome. */
  #importFailuresSaid = new Set<number>();

  #sendReady(): void {
    this.#state = 'ready';
    this.#attempt = 0;
    this.#conn?.send({ op: 'ready' });
    this.#log(`connected to ${this.options.connect} with ${this.options.concurrency} slot(s)`, 'info');
  }

  #startHeartbeat(intervalMs: number, timeoutMs: number): void {
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#heartbeat = setInterval(() => {
      const conn = this.#conn;
      if (!conn) return;
      if (Date.now() - conn.lastSeen > timeoutMs) {
        this.#log(`no message from the coordinator for ${Date.now() - conn.lastSeen} ms: reconnecting`);
        conn.terminate();
        return;
      }
      conn.send({ op: 'ping', t: Date.now() });
    }, intervalMs);
    this.#heartbeat.unref?.();
  }

  #send(msg: W2C): void {
    this.#conn?.send(msg);
  }

  #abortConnection(code: number, reason: string): void {
    this.#conn?.abort(code, reason);
  }

  /**
   * Stops the node. With `drain` (the default, and what SIGINT/SIGTERM do), it tells the
   * coordinator, which sends it nothing more and says `drained` once the node's running tasks
   * have reported; the node closes then. Otherwise it closes now.
   */
  async stop({ drain = true }: { drain?: boolean } = {}): Promise<void> {
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    if (this.#state === 'stopped') return this.#stopped.catch(() => {});
    // Welcomed is enough: lanes take tasks as soon as they attach, before the node says ready.
    if (drain && (this.#state === 'ready' || (this.#state === 'registering' && this.#welcomed)) && this.#conn) {
      this.#state = 'draining';
      this.#lanes.markDraining();
      this.#send({ op: 'drain' });
      this.#log('draining: finishing running tasks before exit', 'info');
    } else if (this.#state !== 'draining') {
      const conn = this.#conn;
      this.#state = 'stopped';
      conn?.close(CLOSE.NORMAL, 'worker node stopped');
      await this.#finish();
    }
    return this.#stopped.catch(() => {});
  }

  async #finish(): Promise<void> {
    this.#state = 'stopped';
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    await this.#lanes.stop();
    this.#resolveStopped();
  }

  /** Stops for good: start() rejects with `err`, which its caller shows (the CLI prints it once). */
  async #fail(err: WorkerNodeFatalError): Promise<void> {
    this.#state = 'stopped';
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    await this.#lanes.stop();
    this.#rejectStopped(err);
  }
}

/** A task module's file name on the coordinator's machine, from its URL there. */
function moduleName(url: string): string {
  try {
    return basename(fileURLToPath(url));
  } catch {
    return url;
  }
}
