/**
 * A worker node: connects to a coordinator, authenticates, offers its task slots, runs what it
 * is sent, and reconnects with backoff when the coordinator goes away. SIGINT/SIGTERM drain it:
 * running tasks finish and report before it exits.
 */
import WebSocket from 'ws';
import { availableParallelism, hostname } from 'node:os';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { answerHello, checkAuthOk, deriveKey } from '../shared/auth.ts';
import { decodeMessage, encodeMessage } from '../shared/codec.ts';
import { CLOSE, CLOSE_ERROR_CODES, DEFAULTS, batchBySize, invalidC2W, type C2W, type Handlers, type ModuleInfo, type TaskOutcome, type W2C } from '../shared/protocol.ts';
import { bundleModule, hashCode, toModuleUrl } from '../shared/bundle.ts';
import { ModuleCache } from './module-cache.ts';
import { TaskRunner } from './runner.ts';

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
  ca?: string | Buffer;
  /** Largest frame accepted. */
  maxMessageBytes?: number;
  /** Leave out informational lines (connected, draining); warnings are always shown. */
  quiet?: boolean;
  log?: (message: string) => void;
}

/** Why a worker node stopped for good. */
export class WorkerNodeFatalError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'WorkerNodeFatalError';
    this.code = code;
  }
}

type State = 'idle' | 'connecting' | 'handshake' | 'registering' | 'ready' | 'draining' | 'stopped';

export class WorkerNode {
  readonly options: Required<Omit<WorkerNodeOptions, 'tasks' | 'ca' | 'log'>> & Pick<WorkerNodeOptions, 'tasks' | 'ca' | 'log'>;
  readonly #key: Uint8Array;
  readonly #cache: ModuleCache;
  readonly #runner: TaskRunner;
  #ws: WebSocket | undefined;
  #state: State = 'idle';
  #moduleUrls = new Map<number, string>();
  #pendingModules = new Set<number>();
  #localHashes: Map<string, { path: string; code: string }> | undefined;
  #outbox: TaskOutcome[] = [];
  #flushScheduled = false;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #lastSeen = 0;
  #attempt = 0;
  #stopped: Promise<void>;
  #resolveStopped!: () => void;
  #rejectStopped!: (err: Error) => void;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  /** Tasks received from the current connection and not yet reported. */
  #inFlight = new Set<number>();

  constructor(options: WorkerNodeOptions) {
    const concurrency = options.concurrency ?? availableParallelism();
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer: got ${String(options.concurrency)}`);
    if (typeof options.token !== 'string' || options.token.length === 0) throw new TypeError('token is required: pass --token or set WSFUTURES_TOKEN to the coordinator\'s token');
    let url: URL;
    try {
      url = new URL(options.connect);
    } catch {
      throw new TypeError(`connect must be a ws:// or wss:// URL: got ${JSON.stringify(options.connect)}`);
    }
    if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new TypeError(`connect must be a ws:// or wss:// URL: got ${JSON.stringify(options.connect)}`);
    if (url.pathname === '/' || url.pathname === '') url.pathname = '/wsfutures';
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
      connect: url.href,
    };
    this.#key = deriveKey(options.token);
    this.#cache = new ModuleCache(options.cacheDir || undefined);
    this.#runner = new TaskRunner({
      slots: concurrency,
      onDone: (o) => this.#report({ id: o.id, v: o.v, e: o.e, d: o.d }),
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
    const ws = new WebSocket(this.options.connect, { maxPayload: this.options.maxMessageBytes, handshakeTimeout: 10_000, ca: this.options.ca });
    this.#ws = ws;
    let helloNonce: Uint8Array | undefined;
    let nonce: Uint8Array | undefined;
    let fatal: WorkerNodeFatalError | undefined;
    ws.binaryType = 'nodebuffer';
    ws.on('open', () => {
      this.#state = 'handshake';
      this.#lastSeen = Date.now();
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.#lastSeen = Date.now();
      if (!isBinary) return this.#abortConnection(CLOSE.PROTOCOL, 'text frames are not part of the protocol');
      if (this.#state === 'handshake') {
        if (!helloNonce) {
          const r = answerHello(data, this.#key);
          if (!r.ok) {
            if (r.code === 'WSF_VERSION_MISMATCH') fatal = new WorkerNodeFatalError(r.code, r.message);
            return this.#abortConnection(r.code === 'WSF_VERSION_MISMATCH' ? CLOSE.VERSION_MISMATCH : CLOSE.PROTOCOL, r.message);
          }
          helloNonce = r.helloNonce;
          nonce = r.nonce;
          ws.send(r.auth);
          return;
        }
        const ok = checkAuthOk(data, this.#key, helloNonce, nonce!);
        if (ok !== true) {
          fatal = new WorkerNodeFatalError(ok.code, ok.message);
          return this.#abortConnection(ok.code === 'WSF_AUTH_FAILED' ? CLOSE.AUTH_FAILED : CLOSE.PROTOCOL, ok.message);
        }
        this.#state = 'registering';
        this.#register();
        return;
      }
      let msg: unknown;
      try {
        msg = decodeMessage(data);
      } catch (err) {
        return this.#abortConnection(CLOSE.PROTOCOL, `malformed msgpack frame from the coordinator: ${(err as Error).message}`);
      }
      const invalid = invalidC2W(msg);
      if (invalid) return this.#abortConnection(CLOSE.PROTOCOL, invalid);
      this.#dispatch(msg as C2W);
    });
    ws.on('error', (err: Error & { code?: string }) => {
      // Followed by 'close'; the reason is logged there with the retry plan.
      (ws as unknown as { lastError?: string }).lastError = err.code ? `${err.code}: ${err.message}` : err.message;
    });
    ws.on('close', (code: number, reasonBuf: Buffer) => {
      if (this.#ws !== ws) return;
      this.#ws = undefined;
      if (this.#heartbeat) clearInterval(this.#heartbeat);
      const reason = reasonBuf?.toString() || (ws as unknown as { lastError?: string }).lastError || '';
      const wasRegistered = this.#state === 'ready' || this.#state === 'draining';
      // Whatever the coordinator had sent us, it will now run elsewhere: stop it here.
      if (this.#inFlight.size > 0) this.#runner.cancelAll('the connection to the coordinator was lost');
      this.#inFlight.clear();
      this.#outbox = [];
      if (this.#state === 'stopped') return;
      if (this.#state === 'draining') return this.#finish();
      if (code === CLOSE.AUTH_FAILED || code === CLOSE.VERSION_MISMATCH) {
        fatal ??= new WorkerNodeFatalError(CLOSE_ERROR_CODES[code]!, `the coordinator refused this worker node: ${reason || CLOSE_ERROR_CODES[code]}`);
      }
      if (fatal) return this.#fail(fatal);
      if (this.#shutdownSeen && this.options.exitOnShutdown) return this.#finish();
      if (!this.options.reconnect) {
        // Ending after work was done is a normal stop; never getting in is a failure the
        // caller (a script, a supervisor) must be able to see in the exit code.
        if (wasRegistered) return this.#finish();
        return this.#fail(new WorkerNodeFatalError('WSF_CONNECT_FAILED', `could not connect to the coordinator at ${this.options.connect}${reason ? `: ${reason}` : ` (${code})`}`));
      }
      if (wasRegistered) this.#attempt = 0;
      // Exponential backoff with jitter, from 0.25 s up to 10 s: quick after a blip, gentle on
      // a coordinator that is down for a while, and nodes that lost it together spread out.
      const delay = Math.min(10_000, 250 * 2 ** this.#attempt++) * (0.5 + Math.random() / 2);
      const why = wasRegistered ? `lost the coordinator (${code}${reason ? `: ${reason}` : ''})` : `cannot reach the coordinator at ${this.options.connect}${reason ? ` (${reason})` : ` (${code})`}`;
      this.#log(`${why}; retrying in ${(delay / 1000).toFixed(1)} s`);
      this.#state = 'connecting';
      this.#reconnectTimer = setTimeout(() => this.#connect(), delay);
    });
  }

  #shutdownSeen = false;
  /** The coordinator's frame limit, from its welcome. */
  #peerMaxMessageBytes: number = DEFAULTS.maxMessageBytes;

  #register(): void {
    const local: Record<string, string> = {};
    for (const [hash, { path }] of this.#localHashes ?? []) local[path] = hash;
    this.#send({
      op: 'register',
      name: this.options.name,
      slots: this.options.concurrency,
      runtime: isDeno() ? 'deno' : 'node',
      runtimeVersion: isDeno() ? (globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno : process.versions.node,
      hostname: hostname(),
      pid: process.pid,
      localModules: this.#localHashes ? local : undefined,
      maxMessageBytes: this.options.maxMessageBytes,
    });
  }

  #dispatch(msg: C2W): void {
    const handlers: Handlers<C2W> = {
      welcome: (m) => {
        if (this.#state !== 'registering') return this.#abortConnection(CLOSE.PROTOCOL, 'unexpected welcome');
        this.#startHeartbeat(m.heartbeatIntervalMs, m.heartbeatTimeoutMs);
        this.#peerMaxMessageBytes = m.maxMessageBytes;
        this.#moduleUrls.clear();
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
      run: (m) => {
        if (this.#state !== 'ready' && this.#state !== 'draining') return this.#abortConnection(CLOSE.PROTOCOL, 'run before ready');
        for (const t of m.tasks) {
          const url = this.#moduleUrls.get(t.m);
          this.#inFlight.add(t.id);
          if (!url) {
            this.#report({ id: t.id, e: { name: 'UnknownTaskError', message: `unknown task module id ${t.m}`, code: 'WSF_UNKNOWN_TASK' } });
            continue;
          }
          this.#runner.run({ id: t.id, url, f: t.f, a: t.a, chunk: t.c === 1, attempt: t.n });
        }
      },
      cancel: (m) => {
        for (const id of m.ids) {
          this.#inFlight.delete(id);
          this.#runner.cancel(id);
        }
        // A draining node waits for its last task; if that task was just cancelled, no result
        // will come to end the wait.
        if (this.#state === 'draining' && this.#inFlight.size === 0 && this.#outbox.length === 0) this.#closeAfterDrain();
      },
      ping: (m) => this.#send({ op: 'pong', t: m.t }),
      pong: () => {},
      shutdown: (m) => {
        this.#shutdownSeen = true;
        if (m.exit) this.options.exitOnShutdown = true;
      },
      error: (m) => this.#log(`the coordinator reported ${m.code}: ${m.message}`),
    };
    (handlers[msg.op] as (m: C2W) => void)(msg);
  }

  #resolveModule(info: ModuleInfo): void {
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
      const name = basename(fileURLToPath(info.url));
      const same = [...this.#localHashes.values()].find((l) => basename(l.path) === name);
      if (same) {
        this.#log(
          `local task module ${same.path} differs from the coordinator's ${info.url} (sha256 ${hashCode(same.code).slice(0, 12)}… here, ${info.hash.slice(0, 12)}… there): ` +
            `running the coordinator's version; update this machine's copy to silence this`,
        );
      }
    }
    this.#pendingModules.add(info.id);
    this.#send({ op: 'fetch-module', id: info.id });
  }

  #becomeReady(): void {
    // Ready means ready to run at full speed: every thread has started and imported the task
    // modules (a second or more on a cold node), so the first tasks and the caller's
    // `await pool.ready()` do not pay for it. Bounded, so a module that hangs on import cannot
    // keep the node out; that module's tasks then report the problem.
    const ws = this.#ws;
    const loaded = this.#runner.preload([...this.#moduleUrls.values()]);
    const limit = new Promise<void>((r) => setTimeout(r, 30_000).unref?.());
    void Promise.race([loaded, limit]).then(() => {
      if (this.#ws === ws && this.#state === 'registering') this.#sendReady();
    });
  }

  #sendReady(): void {
    this.#state = 'ready';
    this.#attempt = 0;
    this.#send({ op: 'ready' });
    this.#log(`connected to ${this.options.connect} with ${this.options.concurrency} slot(s)`, 'info');
  }

  #startHeartbeat(intervalMs: number, timeoutMs: number): void {
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#heartbeat = setInterval(() => {
      const ws = this.#ws;
      if (!ws) return;
      if (Date.now() - this.#lastSeen > timeoutMs) {
        this.#log(`no message from the coordinator for ${Date.now() - this.#lastSeen} ms: reconnecting`);
        ws.terminate();
        return;
      }
      this.#send({ op: 'ping', t: Date.now() });
    }, intervalMs);
    this.#heartbeat.unref?.();
  }

  #report(outcome: TaskOutcome): void {
    if (!this.#inFlight.delete(outcome.id)) return; // cancelled, or from a connection now gone
    const size = outcome.v?.byteLength ?? 0;
    if (size > this.#peerMaxMessageBytes - 4096) {
      // Sending it would make the coordinator close the connection (frame too large) and re-run
      // the task elsewhere, where it would fail the same way: report why instead.
      outcome = {
        id: outcome.id,
        d: outcome.d,
        e: { name: 'SerializationError', code: 'WSF_SERIALIZATION', message: `the task's result encodes to ${size} bytes, more than the coordinator's maxMessageBytes (${this.#peerMaxMessageBytes}): raise maxMessageBytes on the pool or return less` },
      };
    }
    this.#outbox.push(outcome);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // When little is in flight (a caller waiting on one result at a time), outcomes leave on a
    // microtask, right after the thread's message that carried them: no extra tick of latency.
    // When much is in flight, they wait for the end of this turn of the event loop, so the
    // outcomes of every thread share one frame: one socket write costs as much as the tasks.
    const flush = () => {
      this.#flushScheduled = false;
      if (this.#outbox.length === 0) return;
      const items = this.#outbox;
      this.#outbox = [];
      for (const batch of batchBySize(items, (o) => (o.v?.byteLength ?? 0) + 64)) this.#send({ op: 'results', items: batch });
      if (this.#state === 'draining' && this.#inFlight.size === 0) this.#closeAfterDrain();
    };
    if (this.#inFlight.size + this.#outbox.length <= this.options.concurrency) queueMicrotask(flush);
    else setImmediate(flush);
  }

  #send(msg: W2C): void {
    const ws = this.#ws;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(encodeMessage(msg));
  }

  #abortConnection(code: number, reason: string): void {
    this.#log(`closing the connection: ${reason}`);
    const ws = this.#ws;
    if (!ws) return;
    if (this.#state === 'registering' || this.#state === 'ready') {
      this.#send({ op: 'error', code: CLOSE_ERROR_CODES[code] ?? 'WSF_PROTOCOL', message: reason });
    }
    ws.close(code, reason.slice(0, 120));
  }

  /**
   * Stops the node. With `drain` (the default, and what SIGINT/SIGTERM do), it tells the
   * coordinator, finishes and reports what it is running, then closes; otherwise it closes now.
   */
  async stop({ drain = true }: { drain?: boolean } = {}): Promise<void> {
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    if (this.#state === 'stopped') return this.#stopped.catch(() => {});
    if (drain && this.#state === 'ready' && this.#ws) {
      this.#state = 'draining';
      this.#send({ op: 'drain' });
      this.#log(`draining: finishing ${this.#inFlight.size} task(s) before exit`, 'info');
      if (this.#inFlight.size === 0) this.#closeAfterDrain();
    } else {
      const ws = this.#ws;
      this.#state = 'stopped';
      if (ws) ws.close(CLOSE.NORMAL, 'worker node stopped');
      await this.#finish();
    }
    return this.#stopped.catch(() => {});
  }

  #closeAfterDrain(): void {
    const ws = this.#ws;
    if (!ws) return void this.#finish();
    // The results frame was queued before this close frame, so it is delivered first.
    ws.close(CLOSE.NORMAL, 'worker node drained');
  }

  async #finish(): Promise<void> {
    this.#state = 'stopped';
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    await this.#runner.close();
    this.#resolveStopped();
  }

  async #fail(err: WorkerNodeFatalError): Promise<void> {
    this.#state = 'stopped';
    this.#log(`${err.code}: ${err.message}`);
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    await this.#runner.close();
    this.#rejectStopped(err);
  }
}

function isDeno(): boolean {
  return typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined';
}

