/**
 * `ProcessPoolExecutor`: Python's process pool, where the processes are worker nodes connected
 * over WebSockets — spawned on this machine (`maxWorkers` slots) and/or started on any LAN
 * machine with `npx wsfutures-worker`. This file is the public face and the wiring only:
 * - the task registry (functions by reference, the modules shipped to nodes);
 * - the cluster state (cluster-state.ts: nodes, lanes, tasks, queue, retries, draining,
 *   deadlines), a pure state machine: this class turns what the server reports into its events
 *   and carries out the instructions it returns (send, cancel, kill, settle futures, log, emit
 *   pool events, count stats), with one timer for its earliest deadline;
 * - the server (sockets and protocol) and the local worker nodes;
 * - task-wire.ts for what a task looks like on the wire (encoding one, settling its outcome).
 * Words (node, slot, lane, peer, task, kind) are as cluster-state.ts defines them.
 */
import { availableParallelism, hostname } from 'node:os';
import { nanoid } from 'nanoid';
import { deriveKey, generateToken } from '../shared/auth.ts';
import { decodeValue } from '../shared/codec.ts';
import { BrokenExecutorError, ModuleLoadError, TimeoutError, type WireClassRef, WorkerLostError } from '../shared/errors.ts';
import { BusyPoll } from '../shared/busy-poll.ts';
import { boundText } from '../shared/describe.ts';
import { type AttachMsg, type C2W, CLOSE, type LaneDiedMsg, type RegisterMsg, STEAL_VERSION, type TaskOutcome, type TaskSpec } from '../shared/protocol.ts';
import { type AnyFunction, BaseExecutor, checkPositiveInt, type ChunkOutcome } from './executor.ts';
import { checkTimeout, type Future } from './future.ts';
import { isDenoRuntime, LocalWorkers, type Signal } from './local-workers.ts';
import { ClusterState, type Instruction } from './cluster-state.ts';
import { checkPoolOptions, LOOPBACK, type ProcessPoolExecutorOptions } from './pool-options.ts';
import { NodeResources } from './scheduler.ts';
import { formatResources, type Resources } from '../shared/resources.ts';
import { CoordinatorServer, type WorkerPeer } from './server.ts';
import { joinCommands } from './addresses.ts';
import { ClusterStats, NodeRecord, type NodeStats, nodeStats, type PoolStats } from './cluster-stats.ts';
import { type PoolEventListener, type PoolEventName, PoolEvents } from './pool-events.ts';
import { PoolMetrics } from './metrics.ts';
import { DashboardFeed } from './dashboard-feed.ts';
import { digestToken, HttpRoutes } from './http-routes.ts';
import { type TaskRef, TaskRegistry } from './task-registry.ts';
import { encodeTask, type PoolTask, settleTask, type TaskKind } from './task-wire.ts';

export type { ProcessPoolExecutorOptions };
import { mapWireStacks } from './remote-stack.ts';

export interface WorkerInfo {
  id: string;
  name: string;
  hostname: string;
  address: string;
  runtime: string;
  slots: number;
}

/** A task as the pool keeps it until it settles (see task-wire.ts). */
type Entry = PoolTask;

/** What the pool keeps of a node beside the cluster state: its control connection, its counters. */
interface NodeWiring {
  peer: WorkerPeer;
  stat: NodeRecord;
  /** What it declared in `register` (`--resources`), shared by its lanes; undefined: none. */
  resources: NodeResources | undefined;
}

/**
 * How long an aborted task gets to end on its own (its AbortSignal fired) before its thread is
 * ended. A synchronous CPU-bound task never sees the signal, so this bounds how long a slot
 * stays blocked after abort.
 */
const ABORT_GRACE_MS = 1000;
/**
 * A lane that closes while its node is connected: the coordinator asks the node to end that
 * thread (if it still runs) and say which task it was running; the answer usually comes within
 * milliseconds. If none comes, the lane's tasks are treated as lost.
 */
const LANE_DEATH_WAIT_MS = 3000;
/**
 * Prefetch: a slot is handed more tasks while the estimated work queued on it is under
 * PREFETCH_MS (and it holds fewer than MAX_TASKS_PER_SLOT). Tiny tasks then pile up many deep,
 * so a slot never waits a round trip for its next one; a long task goes only to a slot with
 * almost nothing queued, so it never waits behind another while a slot idles. A function not
 * measured yet counts as long (Scheduler.unknownEstimateMs).
 */
const PREFETCH_MS = 10;
const MAX_TASKS_PER_SLOT = 256;
/**
 * Submits in one synchronous job after which an assignment pass runs at once rather than when
 * the job ends (see #queue): enough to tell a burst from a few submits, whose futures stay
 * pending until the job ends, as they always did.
 */
const EARLY_PASS_AFTER = 256;
/** Tasks that wait this long with no slot anywhere make the pool say how to start a node. */
const NO_SLOT_WARNING_MS = 5000;

/** How long importing the task modules may take before the pool says it looks stuck. */
const SLOW_IMPORT_MS = 5000;
/** A `module` frame beyond its code: op, id, the 64-character hash and msgpack headers. */
const MODULE_FRAME_OVERHEAD_BYTES = 128;

/**
 * A pool of worker nodes connected over WebSockets.
 *
 * @example
 * import { factorial } from './tasks.ts';
 * await using pool = new ProcessPoolExecutor({ tasks: new URL('./tasks.ts', import.meta.url), maxWorkers: 4 });
 * await pool.ready();
 * console.log(await pool.submit(factorial, 1000));
 */
export class ProcessPoolExecutor extends BaseExecutor {
  protected readonly kind = 'ProcessPoolExecutor';
  protected override readonly acceptsResources = true;
  /** The token worker nodes must present (generated if none was given). */
  readonly token: string;
  readonly maxWorkers: number;
  readonly maxRetries: number;
  readonly #registry: TaskRegistry;
  /** Nodes, lanes, tasks and the queue: the pure state this class carries out (see cluster-state.ts). */
  readonly #state: ClusterState<Entry>;
  readonly #server: CoordinatorServer;
  readonly #local: LocalWorkers | undefined;
  /** Worker nodes by control connection id, and lanes' connections by their id. */
  readonly #nodes = new Map<string, NodeWiring>();
  readonly #lanePeers = new Map<string, WorkerPeer>();
  /** Carrying out the state's instructions (see #apply). */
  #applying = false;
  /** The one timer for the state's earliest deadline, and when it fires (Infinity: none). */
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  readonly #started: Promise<void>;
  readonly #listening: Promise<string>;
  readonly #log: (level: 'info' | 'warn', message: string) => void;
  readonly #logOption: ProcessPoolExecutorOptions['log'];
  readonly #stats = new ClusterStats();
  readonly #metrics: PoolMetrics;
  readonly #feed: DashboardFeed;
  readonly #routes: HttpRoutes;
  readonly #events = new PoolEvents((err, name) => this.#log('warn', `a '${name}' event listener threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`));
  readonly #listenHost: string;
  #nextId = 0;
  #pumpScheduled = false;
  /** Submits since the pending pass was scheduled: the current synchronous job's (see #queue). */
  #submitsThisJob = 0;
  /** Where #pump collects a task's typed-array attachments (see encodeValue). */
  readonly #attachments: Uint8Array[] = [];
  #broken: BrokenExecutorError | undefined;
  #readyWaiters: { slots: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  /**
   * Kinds of task for the state's duration estimates: one per function, and one per function
   * for its map() chunks (which take longer).
   */
  readonly #kinds = new Map<string, TaskKind>();
  /** Keeps the event loop polling while a quick answer is due (see #awaitQuickAnswer). */
  readonly #busyPoll: BusyPoll;
  readonly #busyPollMicros: number;
  /**
   * What keeps the program alive (see #holdHandles): unfinished futures, ready() calls waiting,
   * and close() running (its handshakes and the local node's exit are awaited).
   */
  #busy = false;
  #readyCalls = 0;
  #closing = false;

  constructor(options: ProcessPoolExecutorOptions) {
    super();
    const { urls, maxWorkers, host, port, token, maxRetries, tls, workerRuntime, maxMessageBytes, heartbeatIntervalMs, heartbeatTimeoutMs, busyPollMicros, localResources } =
      checkPoolOptions(options);
    this.token = token ?? generateToken();
    this.maxWorkers = maxWorkers;
    this.maxRetries = maxRetries;
    this.#listenHost = host;
    this.#logOption = options.log;
    this.#log = options.log === false ? () => {} : (options.log ?? ((level, m) => level === 'warn' && console.error(`[wsfutures] ${m}`)));
    this.#registry = new TaskRegistry(urls);
    // A task module that imports the main module (which waits for this pool) never finishes
    // importing, and the pool would wait without a word: say what is likely going on.
    const slowImport = setTimeout(() => {
      this.#log(
        'warn',
        `the task modules have not finished importing after ${SLOW_IMPORT_MS / 1000} s (${
          urls.map((u) => u.href).join(', ')
        }). If one of them imports the program's main script, which waits for the pool, each waits for the other: move the task functions into modules that do not import the main script.`,
      );
    }, SLOW_IMPORT_MS);
    slowImport.unref?.();
    this.#registry.imported.then(() => clearTimeout(slowImport), () => clearTimeout(slowImport));
    this.#state = new ClusterState<Entry>({
      maxRetries,
      prefetchMs: PREFETCH_MS,
      maxTasksPerSlot: MAX_TASKS_PER_SLOT,
      abortGraceMs: ABORT_GRACE_MS,
      laneDeathWaitMs: LANE_DEATH_WAIT_MS,
      warnAfterMs: NO_SLOT_WARNING_MS,
      accept: (entry) => {
        if (this.markRunning(entry.future)) return true;
        this.#stats.cancelled++; // cancelled while it waited: dropped here, never sent
        return false;
      },
      settled: (entry) => entry.future.done(),
    });
    this.#busyPollMicros = busyPollMicros;
    this.#busyPoll = new BusyPoll(busyPollMicros);
    this.#server = new CoordinatorServer(
      {
        host,
        port,
        key: deriveKey(this.token),
        maxMessageBytes,
        heartbeatIntervalMs,
        heartbeatTimeoutMs,
        tls,
        onRequest: (req, res) => this.#routes.handle(req, res),
      },
      {
        register: (peer, msg) => this.#onRegister(peer, msg),
        attach: (peer, msg) => this.#onAttach(peer, msg),
        laneDied: (peer, msg) => this.#onLaneDied(peer, msg),
        fetchModule: (peer, id) => this.#onFetchModule(peer, id),
        ready: (peer) => this.#event(this.#state.ready(peer.id)),
        results: (peer, items) => this.#onResults(peer, items),
        report: (peer, id, v) => this.#onReport(peer, id, v),
        stolen: (peer, ids) => {
          this.#state.stolen(peer.id, ids);
          this.#apply();
          this.#schedulePump();
        },
        drain: (peer) => this.#event(this.#state.drain(peer.id, performance.now())),
        lost: (peer, reason) => this.#onLost(peer, reason),
        log: (level, m) => this.#log(level, m),
      },
    );
    this.#metrics = new PoolMetrics(() => this.stats(), this.#stats);
    this.#feed = new DashboardFeed(() => this.stats(), this.#stats);
    this.#routes = new HttpRoutes({
      tokenDigest: digestToken(this.token),
      requireToken: options.monitoring?.requireToken ?? true,
      tls: tls !== undefined,
      limiter: this.#server.limiter,
      metrics: () => this.#metrics.scrape(),
      feed: (send) => this.#feed.open(send),
      log: (level, m) => this.#log(level, m),
    });
    this.#local = this.maxWorkers > 0
      ? new LocalWorkers({
        token: this.token,
        slots: this.maxWorkers,
        maxMessageBytes,
        resources: localResources,
        runtime: workerRuntime ?? (isDenoRuntime() ? 'deno' : 'node'),
        onBroken: (m) => this.#break(m),
        log: (level, m) => this.#log(level, m),
      })
      : undefined;
    // Nothing to do yet: the server and the local node let the program exit until there is.
    this.#holdHandles();
    this.#listening = this.#server.start();
    this.#listening.catch(() => {});
    this.#started = this.#start();
    this.#started.catch((err) => this.#break(`the pool could not start: ${(err as Error).message}`, err));
  }

  async #start(): Promise<void> {
    await this.#listening;
    this.#local?.start(this.#server.localUrl);
    if (!LOOPBACK.has(this.#listenHost)) this.#announce();
    await this.#registry.loaded;
  }

  /** Tells a person at the terminal how other machines join (the pool listens beyond loopback). */
  #announce(): void {
    const lines = [
      `listening on ${this.#listenHost}:${this.#server.port}; worker nodes join with one of these (the pool's token in WSFUTURES_TOKEN):`,
      ...this.joinCommands().map((c) => `  ${c}`),
    ];
    this.#notice(lines.join('\n'));
  }

  /**
   * What a person at the terminal should see even with default logging (nodes joining from
   * elsewhere and leaving, how to join): printed to stderr by default, passed to a custom `log`
   * as 'info', left out with `log: false`.
   */
  #notice(message: string): void {
    if (this.#logOption === undefined) console.error(message.split('\n').map((l) => `[wsfutures] ${l}`).join('\n'));
    else this.#log('info', message);
  }

  /**
   * Shell commands that start a worker node joining this pool from another machine, once it
   * listens: with only Node (downloads the single-file worker from the pool), with only Deno
   * (runs it from the pool's URL), and where wsfutures is installed — for each address the pool
   * is reached at (the LAN addresses, when listening on 0.0.0.0). The token is not in them: set
   * WSFUTURES_TOKEN on that machine.
   */
  joinCommands(): string[] {
    if (!this.#server.port) return [];
    return joinCommands({ hosts: this.#server.hosts, port: this.#server.port, tls: this.#server.tls });
  }

  /**
   * Resolves to the URL worker nodes connect to, once the pool listens (before any worker
   * connects): what to print for remote `wsfutures-worker` nodes when `maxWorkers` is 0.
   */
  get listening(): Promise<string> {
    return this.#listening;
  }

  /** The URL worker nodes connect to (`ws://host:port/wsfutures`); set once listening. */
  get url(): string | undefined {
    return this.#server.url || undefined;
  }

  /** Slots of connected worker nodes that accept work now. */
  get slots(): number {
    return this.#state.slotCount;
  }

  /**
   * Tasks waiting for a slot. A task cancelled while queued is counted until the queue reaches
   * it (it is dropped then, without running): removing it at once would cost every task a
   * lookup from its future to its queue entry.
   */
  get queuedCount(): number {
    return this.#state.queuedCount;
  }

  /** Tasks sent to worker nodes and not yet settled (as `AsyncPoolExecutor.runningCount`). */
  get runningCount(): number {
    return this.#state.sentCount;
  }

  /**
   * A snapshot of the pool: every node (connected, then the last ones lost) with its slots,
   * running, completed, failed and retried tasks and heartbeat round trip; the queue; pool-wide
   * counts; throughput over the last second and minute; per task function, counts and duration
   * percentiles. Cheap: take it as often as you like.
   */
  stats(): PoolStats {
    const now = Date.now();
    const s = this.#stats;
    return {
      at: now,
      state: this.#broken ? 'broken' : this.isShutdown ? 'shut down' : 'running',
      slots: this.#state.slotCount,
      queued: this.#state.queuedCount,
      running: this.#state.sentCount,
      completed: s.completed,
      failed: s.failed,
      cancelled: s.cancelled,
      retried: s.retried,
      stolen: s.stolen,
      throughput: s.throughput(now),
      nodes: [...[...this.#nodes.values()].map((n) => this.#nodeStats(n)), ...s.lostNodes],
      functions: s.functions(),
    };
  }

  /**
   * Subscribes to pool events (`nodeJoined`, `nodeReady`, `nodeDraining`, `nodeLost`,
   * `taskRetried`, `broken`); returns a function that unsubscribes.
   *
   * @example
   * pool.on('nodeLost', (node) => console.log(`${node.name} left: ${node.reason}`));
   */
  on<K extends PoolEventName>(name: K, listener: PoolEventListener<K>): () => void {
    return this.#events.on(name, listener);
  }

  /**
   * The live figures of a load test running on this pool, shown by open dashboards beside the
   * pool's own (coordinator/loadtest.ts sets it; undefined removes them).
   * @internal
   */
  showLoadTest(figures: (() => unknown) | undefined): void {
    this.#feed.loadTest = figures;
  }

  #nodeStats(node: NodeWiring): NodeStats {
    return nodeStats(node.peer, node.stat, this.#state.unreportedOn(node.peer.id), node.resources);
  }

  /** The connected worker nodes. */
  workers(): WorkerInfo[] {
    return [...this.#nodes.values()].map(({ peer: p }) => ({ id: p.id, name: p.name, hostname: p.hostname, address: p.remoteAddress, runtime: p.runtime, slots: p.slots }));
  }

  /**
   * Resolves once worker nodes with at least `slots` task slots are connected (default:
   * `maxWorkers`, or 1 when it is 0), each with the task modules imported in every thread, so
   * the first tasks run at full speed. Rejects with
   * `TimeoutError` after `options.timeout` ms, or `BrokenExecutorError` if the pool broke.
   */
  async ready(slots?: number, options: { timeout?: number } = {}): Promise<void> {
    // A program awaiting ready() has work outstanding: the pool keeps it alive meanwhile.
    this.#readyCalls++;
    this.#holdHandles();
    try {
      await this.#ready(slots, options);
    } finally {
      this.#readyCalls--;
      this.#holdHandles();
    }
  }
  async #ready(slots: number | undefined, options: { timeout?: number }): Promise<void> {
    checkPositiveInt('slots', slots);
    checkTimeout('options.timeout', options.timeout);
    const want = slots ?? Math.max(1, this.maxWorkers);
    const started = this.#started;
    let waiter: { slots: number; resolve: () => void; reject: (e: Error) => void } | undefined;
    const waitSlots = new Promise<void>((resolve, reject) => {
      if (this.#broken) return reject(this.#broken);
      if (this.#state.slotCount >= want) return resolve();
      waiter = { slots: want, resolve, reject };
      this.#readyWaiters.push(waiter);
    });
    const all = Promise.all([started, waitSlots]).then(() => {});
    if (options.timeout === undefined || options.timeout === Infinity) return all;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new TimeoutError(
              `ProcessPoolExecutor.ready(${want}): only ${this.#state.slotCount} slot(s) connected after ${options.timeout} ms; start worker nodes with: ${
                this.joinCommands()[0] ?? 'npx wsfutures-worker --connect HOST:PORT'
              } (token in WSFUTURES_TOKEN)`,
            ),
          ),
        options.timeout,
      );
    });
    try {
      await Promise.race([all, timeout]);
    } finally {
      clearTimeout(timer);
      // A ready() that timed out must not stay on the list (a caller polling with a timeout
      // would grow it without end).
      this.#readyWaiters = this.#readyWaiters.filter((w) => w !== waiter);
    }
  }

  /** Kills the local worker node process (for tests and demos of failure handling). */
  killLocalWorkers(signal: Signal = 'SIGKILL'): void {
    this.#local?.kill(signal);
  }

  /** The pid of the local worker node process, if one runs. */
  get localWorkerPid(): number | undefined {
    return this.#local?.pid;
  }

  // ---- Executor hooks ---------------------------------------------------------------------------

  protected override checkCallable(fn: AnyFunction, where: string): void {
    if (this.#broken) throw this.#broken;
    // Until the task modules are imported (the first moments after construction: imports are
    // asynchronous) no function can be known not to be a task: then the future fails with this
    // same TypeError as soon as they are (see #enqueue). From then on it throws here, at once.
    if (this.#registry.isImported && !this.#registry.lookup(fn)) throw this.#registry.notATask(fn, where);
  }

  protected schedule(future: Future<unknown>, fn: AnyFunction, args: unknown[], priority: number, resources?: Resources, timeout?: number): void {
    this.#enqueue(future, fn, args, 0, priority, resources, timeout);
  }

  protected override scheduleChunk(future: Future<ChunkOutcome<unknown>>, fn: AnyFunction, calls: unknown[], spread: boolean, priority: number, resources?: Resources): void {
    this.#enqueue(future as Future<unknown>, fn, calls, spread ? 1 : 2, priority, resources);
  }

  #enqueue(future: Future<unknown>, fn: AnyFunction, args: unknown, chunk: Entry['chunk'], priority: number, resources?: Resources, timeout?: number): void {
    const ref = this.#registry.lookup(fn);
    if (ref) return this.#queue(future, ref, fn.name, args, chunk, priority, resources, timeout);
    this.#registry.imported.then(
      () => {
        const r = this.#registry.lookup(fn);
        if (future.done()) return;
        if (r) this.#queue(future, r, fn.name, args, chunk, priority, resources, timeout);
        else future.setException(this.#registry.notATask(fn, chunk ? `${this.kind}.map` : `${this.kind}.submit`));
      },
      (err) => {
        if (!future.done()) future.setException(err);
      },
    );
  }

  /**
   * Queues a task. Its arguments are kept as they are and encoded only when the task is sent
   * (as Python pickles in its feeder thread): a queued task then costs a few small objects, not
   * an encoded buffer, which is what lets a million tasks wait in well under 1 KiB each.
   */
  #queue(future: Future<unknown>, ref: TaskRef, fn: string, args: unknown, chunk: Entry['chunk'], priority: number, resources?: Resources, timeout?: number): void {
    // A map() still reading its input when the pool broke submits here, past checkCallable.
    if (this.#broken) return future.setException(this.#broken);
    const unloadable = this.#moduleLoadError(ref.moduleId, fn);
    if (unloadable) return future.setException(unloadable);
    const id = ++this.#nextId;
    const kind = this.#kindOf(ref.exportName, chunk);
    const entry: Entry = { future, m: ref.moduleId, f: ref.exportName, args, chunk, fn, kind, queuedAt: performance.now() };
    if (resources === undefined) this.#state.submit(id, entry, { module: ref.moduleId, priority, now: entry.queuedAt });
    else this.#state.submit(id, entry, { module: ref.moduleId, priority, resources, timeout, now: entry.queuedAt });
    // It may wait for a node (or one that declares its resources): the state may have a deadline now.
    if (resources !== undefined || this.#state.slotCount === 0) this.#armTimer();
    this.#schedulePump();
    // A long synchronous loop of submits would otherwise send nothing until it returns (20,000
    // submits take 50-150 ms, while every slot idles): once it is clearly a burst, one pass
    // hands the idle slots their first tasks at once. One pass per job, so a burst still leaves
    // in a few large frames.
    if (++this.#submitsThisJob === EARLY_PASS_AFTER) {
      this.#state.assign();
      this.#apply();
    }
  }

  /**
   * The error for a task of `module` when no connected worker node can run it: there is at
   * least one, and every one failed to import that module. Undefined otherwise (with no node
   * connected, tasks wait for one, as they always do).
   */
  #moduleLoadError(module: number, fn: string): ModuleLoadError | undefined {
    const reasons = this.#state.unloadableReasons(module);
    return reasons && this.#unloadableError(module, fn, reasons);
  }

  #unloadableError(module: number, fn: string, reasons: string[]): ModuleLoadError {
    const url = this.#registry.modules[module]?.url ?? `#${module}`;
    return new ModuleLoadError(`cannot run ${fn || 'the task'}(): no connected worker node could import its task module ${url}; ${reasons.join('; ')}`);
  }

  /**
   * Work outstanding or not (unfinished futures, or a ready() waiting): while there is none,
   * the listening socket, the connections and the local node process do not keep the program
   * alive, so a program that never calls shutdown() exits once its work is done.
   */
  protected override busyChanged(busy: boolean): void {
    this.#busy = busy;
    this.#holdHandles();
  }

  #holdHandles(): void {
    const held = this.#busy || this.#readyCalls > 0 || this.#closing;
    this.#server.hold(held);
    this.#local?.hold(held);
  }

  protected async close(): Promise<void> {
    this.#closing = true;
    this.#holdHandles();
    await this.#started.catch(() => {});
    // Whatever is still queued now was cancelled (close runs once every future has settled):
    // release it, arguments and all, even if no node ever came to skip past it.
    this.#state.removeQueued();
    clearTimeout(this.#timer);
    this.#feed.close();
    await this.#server.close();
    await this.#local?.close();
  }

  // ---- engine: events in, instructions out ------------------------------------------------------

  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    // One assignment pass after the current job, whatever the number of submits in it: a burst
    // of submit() calls becomes a few large frames. A microtask rather than setImmediate: the
    // burst is over once the synchronous code returns, and a lone submit leaves a tick sooner.
    queueMicrotask(() => {
      this.#pumpScheduled = false;
      this.#submitsThisJob = 0;
      this.#state.assign();
      this.#apply();
    });
  }

  /** After an event handled by the state: carries out its instructions. */
  #event(_: undefined): void {
    this.#apply();
  }

  /**
   * Carries out the state's instructions, in order. Re-entrant calls (a future's callback that
   * submits, an event fired while applying) return at once: the outer loop reads the list's
   * length on every turn, so it carries out what they added too.
   */
  #apply(): void {
    if (this.#applying) return;
    this.#applying = true;
    const out = this.#state.out;
    try {
      for (let i = 0; i < out.length; i++) this.#carry(out[i]!);
    } finally {
      out.length = 0;
      this.#applying = false;
    }
    this.#armTimer();
  }

  /** The timer for the state's earliest deadline, if that is earlier than the one set. */
  #armTimer(): void {
    const at = this.#state.nextDeadline;
    if (at < this.#timerAt) this.#wakeAt(at);
  }

  /** One timer for the state's earliest deadline (kill checks, lanes waiting to be declared lost). */
  #wakeAt(at: number): void {
    clearTimeout(this.#timer);
    this.#timerAt = at;
    if (at === Infinity) return;
    this.#timer = setTimeout(() => {
      this.#timerAt = Infinity;
      this.#timer = undefined;
      this.#state.tick(performance.now());
      this.#apply();
      this.#wakeAt(this.#state.nextDeadline);
    }, Math.max(0, at - performance.now()));
    // Deadlines are about work already out: futures keep the program alive, not this timer.
    this.#timer.unref?.();
  }

  #carry(ins: Instruction<Entry>): void {
    switch (ins.op) {
      case 'run':
        return this.#run(ins.lane, ins.tasks);
      case 'settle':
        return this.#settle(ins.payload, ins.outcome, ins.node, ins.lane);
      case 'cancel':
        return this.#lanePeers.get(ins.lane)?.cancel(ins.id);
      case 'steal':
        return this.#lanePeers.get(ins.lane)?.send({ op: 'steal', ids: ins.ids });
      case 'taken-back':
        this.#stats.stolen++;
        return ins.payload.future.setPendingAgain();
      case 'kill': {
        const msg: C2W = { op: 'kill', lane: ins.lane, reason: ins.reason };
        if (ins.task !== undefined) (msg as { task?: number }).task = ins.task;
        return this.#nodes.get(ins.node)?.peer.send(msg);
      }
      case 'drained':
        return this.#nodes.get(ins.node)?.peer.send({ op: 'drained' });
      case 'close-lane': {
        const peer = this.#lanePeers.get(ins.lane);
        this.#lanePeers.delete(ins.lane);
        if (ins.terminate) peer?.terminate();
        else peer?.close(CLOSE.NORMAL, ins.reason);
        return;
      }
      case 'requeued': {
        const entry = ins.payload;
        entry.future.setPendingAgain();
        this.#stats.retried++;
        const node = this.#nodes.get(ins.node);
        if (node) node.stat.retried++;
        if (this.#events.has('taskRetried')) this.#events.emit('taskRetried', { taskId: ins.id, fn: entry.fn, node: node?.peer.label ?? ins.node, attempt: ins.attempt });
        return;
      }
      case 'lost': {
        const entry = ins.payload;
        if (entry.future.done()) return;
        this.#stats.failedElsewhere(entry.kind.stat, Date.now());
        const label = this.#nodes.get(ins.node)?.peer.label ?? ins.node;
        entry.future.setException(
          new WorkerLostError(
            `task ${ins.id} (${entry.fn}) was lost with worker node ${label}: ${ins.reason}; it has now been lost while running ${ins.attempts} time(s), and maxRetries is ${this.maxRetries}`,
          ),
        );
        return;
      }
      case 'unloadable': {
        const { future, fn } = ins.payload;
        if (!future.done()) future.setException(this.#unloadableError(ins.module, fn, ins.reasons));
        return;
      }
      case 'node-ready':
        return this.#nodeReady(ins.node, ins.failedModules);
      case 'node-draining': {
        const node = this.#nodes.get(ins.node);
        if (!node) return;
        this.#log('info', `worker node ${node.peer.label} is draining`);
        node.stat.state = 'draining';
        if (this.#events.has('nodeDraining')) this.#events.emit('nodeDraining', this.#nodeStats(node));
        return;
      }
      case 'node-lost':
        return this.#nodeLost(ins.node, ins.reason, ins.requeued, ins.failed, ins.drained);
      case 'lane-lost': {
        const label = this.#nodes.get(ins.node)?.peer.label ?? ins.node;
        this.#log('warn', `lane ${ins.lane} of worker node ${label} lost: ${ins.reason}; ${ins.requeued} task(s) requeued, ${ins.failed} failed`);
        return;
      }
      case 'no-slot-warning': {
        if (this.isShutdown || this.#broken) return;
        const join = this.joinCommands()[0];
        return this.#log(
          'warn',
          `${ins.queued} task(s) have waited ${NO_SLOT_WARNING_MS / 1000} s with no worker node connected${
            this.maxWorkers > 0 ? ' (the local node has not connected yet)' : ''
          }; start one with: ${join ?? 'npx wsfutures-worker --connect HOST:PORT'} (token in WSFUTURES_TOKEN)`,
        );
      }
      case 'unmet-warning':
        return this.#unmetWarning(ins.tasks, ins.declared);
      case 'unmet-timeout': {
        const { payload: entry, resources } = ins;
        if (entry.future.done()) return;
        this.#stats.failedElsewhere(entry.kind.stat, Date.now());
        entry.future.setException(
          new TimeoutError(
            `task ${ins.id} (${entry.fn || 'the task'}) asked for resources ${
              formatResources(resources)
            } and waited ${ins.waitedMs} ms, its timeout, for a worker node that declares them. ` +
              `${ins.declared}. Start a node with them (wsfutures-worker --resources ${formatResources(resources)}), or ask for less`,
          ),
        );
        return;
      }
      case 'log':
        return this.#log(ins.level, ins.message);
    }
  }

  /** Tasks have waited NO_SLOT_WARNING_MS for resources no connected node declares. */
  #unmetWarning(tasks: { payload: Entry; resources: Resources }[], declared: string): void {
    if (this.isShutdown || this.#broken) return;
    const asks = new Map<string, string>();
    for (const { payload: e, resources: r } of tasks) asks.set(`${e.fn}\0${formatResources(r)}`, `${e.fn || 'a task'}() asks for ${formatResources(r)}`);
    const shown = [...asks.values()];
    const more = shown.length > 3 ? ` (and ${shown.length - 3} other request(s))` : '';
    this.#log(
      'warn',
      `${tasks.length} task(s) have waited ${NO_SLOT_WARNING_MS / 1000} s for resources that no connected worker node declares: ${
        shown.slice(0, 3).join('; ')
      }${more}. ${declared}. Start a node that has them, e.g. npx wsfutures-worker --connect HOST:PORT --resources ${formatResources(tasks[0]!.resources)}`,
    );
  }

  /** Encodes and sends the tasks the state handed to a lane. */
  #run(laneId: string, tasks: { id: number; payload: Entry; attempt: number }[]): void {
    const peer = this.#lanePeers.get(laneId);
    const now = performance.now();
    const specs: TaskSpec[] = [];
    let refused = false;
    for (const t of tasks) {
      const entry = t.payload;
      try {
        specs.push(encodeTask(entry, t.id, t.attempt, peer, this.#server.maxMessageBytes, this.#attachments));
      } catch (err) {
        // Its slot is free again: the pass that handed it out may have stopped because that
        // lane was full, so another pass must follow, or the tasks behind it wait for an
        // unrelated event.
        this.#state.unsendable(t.id);
        if (!entry.future.done()) {
          entry.future.setException(err);
          this.#stats.failedElsewhere(entry.kind.stat, Date.now());
        }
        refused = true;
        continue;
      }
      if (t.attempt === 1) this.#stats.sent(entry.kind.stat, now - entry.queuedAt);
      const id = t.id;
      entry.future.setAbortHook(() => this.#stopTask(id));
    }
    // Decided before sending: the lane hears with these tasks whether to poll for its next one.
    const poll = this.#awaitQuickAnswer();
    if (specs.length > 0) peer?.run(specs, specs.length === 1 ? poll : 0);
    if (refused) this.#schedulePump();
  }

  /**
   * A running task's future was aborted or timed out: forget it and tell its lane to stop it.
   * If it has not stopped after ABORT_GRACE_MS (a synchronous task never sees its signal), its
   * node is told to end the lane's thread.

  /**
   * A running task's future was aborted or timed out: the state forgets it, tells its lane to
   * stop it, and has its thread ended if it does not stop within ABORT_GRACE_MS.
   */
  #stopTask(id: number): void {
    if (this.#state.isSent(id)) this.#stats.cancelled++;
    this.#state.abort(id, performance.now());
    this.#apply();
    this.#schedulePump();
  }

  /** Welcomes a registered node once the modules are bundled. (The node itself compares any
   *  local copies of task modules against the hashes in the welcome, and says if they differ.) */
  #onRegister(peer: WorkerPeer, msg: RegisterMsg): void {
    const local = this.#isLocal(peer);
    const ticket = nanoid();
    // The shape was checked with the message; copied into an object with no prototype.
    const resources = msg.resources === undefined ? undefined : new NodeResources(Object.assign(Object.create(null) as Record<string, number>, msg.resources));
    const node: NodeWiring = { peer, stat: new NodeRecord(peer.id, local), resources };
    this.#nodes.set(peer.id, node);
    this.#state.register({ id: peer.id, label: peer.label, slots: peer.slots, local, ticket, resources });
    this.#apply();
    if (this.#events.has('nodeJoined')) this.#events.emit('nodeJoined', this.#nodeStats(node));
    this.#registry.loaded.then(
      () => {
        if (peer.phase === 'closed') return;
        peer.send({
          laneTicket: ticket,
          op: 'welcome',
          workerId: peer.id,
          modules: this.#registry.modules.map(({ id, url, hash }) => ({ id, url, hash })),
          heartbeatIntervalMs: this.#server.heartbeatIntervalMs,
          heartbeatTimeoutMs: this.#server.heartbeatTimeoutMs,
          maxMessageBytes: this.#server.maxMessageBytes,
          busyPollMicros: this.#busyPollMicros,
        });
      },
      () => peer.close(CLOSE.INTERNAL, 'the coordinator could not load its task modules'),
    );
  }

  #onFetchModule(peer: WorkerPeer, id: number): void {
    const mod = this.#registry.modules[id];
    if (!mod) return peer.close(CLOSE.PROTOCOL, `no task module with id ${id}`);
    const bytes = Buffer.byteLength(mod.code) + MODULE_FRAME_OVERHEAD_BYTES;
    if (bytes > peer.maxMessageBytes) {
      // Sending it would only make the node close the connection, with a less helpful reason.
      const message =
        `task module ${mod.url} is ${bytes} bytes, more than worker node ${peer.label} accepts (--max-message-bytes ${peer.maxMessageBytes}): start it with a larger --max-message-bytes, or with --tasks pointing to a local copy`;
      this.#log('warn', message);
      peer.send({ op: 'error', code: 'WSF_FRAME_TOO_LARGE', message });
      return peer.close(CLOSE.TOO_LARGE, message);
    }
    peer.send({ op: 'module', id, hash: mod.hash, code: mod.code });
  }

  readonly #moduleUrl = (id: number): string | undefined => this.#registry.modules[id]?.url;

  #onAttach(peer: WorkerPeer, msg: AttachMsg): string | undefined {
    const refused = this.#state.attach({
      lane: peer.id,
      node: msg.node,
      laneNumber: msg.lane,
      ticket: msg.ticket,
      failedModules: msg.failedModules ?? [],
      moduleUrl: this.#moduleUrl,
      canSteal: peer.version >= STEAL_VERSION,
    });
    if (refused) {
      this.#apply();
      return refused;
    }
    peer.node = this.#nodes.get(msg.node)!.peer.node;
    peer.slots = 1;
    this.#lanePeers.set(peer.id, peer);
    this.#apply();
    const have = this.#state.slotCount;
    this.#readyWaiters = this.#readyWaiters.filter((w) => {
      if (have < w.slots) return true;
      w.resolve();
      return false;
    });
    this.#schedulePump();
    return undefined;
  }

  /** Whether a node is the one the pool started (recognised by process, not by name: a remote
   * node may well call itself "local-1"). */
  #isLocal(peer: WorkerPeer): boolean {
    return this.#local !== undefined && peer.pid === this.#local.pid && peer.hostname === hostname();
  }

  #nodeReady(id: string, failedModules: number[]): void {
    const node = this.#nodes.get(id);
    if (!node) return;
    const peer = node.peer;
    node.stat.state = this.#state.nodePhase(id) === 'draining' ? 'draining' : 'ready';
    if (node.stat.local) this.#local!.connected();
    const failed = failedModules.map((m) => this.#registry.modules[m]?.url);
    const joined = `worker node ${peer.label} joined: ${peer.slots} slot(s), ${peer.runtime}`;
    // Its slots count (ready() keeps its meaning), but not for the modules it could not import.
    if (failed.length > 0) this.#log('warn', `${joined}; it could not import ${failed.join(', ')} and runs none of those tasks`);
    // A person at the terminal hears of the nodes that join from elsewhere; the pool's own
    // local nodes are part of it, like a process pool's processes.
    else if (node.stat.local) this.#log('info', joined);
    else this.#notice(joined);
    if (this.#events.has('nodeReady')) this.#events.emit('nodeReady', this.#nodeStats(node));
  }

  /** A lane's outcomes. Returns why the lane broke the protocol, if it did (it is then closed). */
  #onResults(peer: WorkerPeer, items: TaskOutcome[]): string | undefined {
    const broken = this.#state.results(peer.id, items);
    this.#apply();
    this.#busyPoll.answered();
    this.#awaitQuickAnswer();
    this.#schedulePump();
    return broken;
  }

  /** A running task's report: to its future's listeners, if the task is still this lane's. */
  #onReport(peer: WorkerPeer, id: number, bytes: Uint8Array): void {
    const entry = this.#state.reportable(peer.id, id);
    if (!entry || entry.future.done()) return;
    let value: unknown;
    try {
      value = decodeValue(bytes, () => `a report of ${entry.fn}()`);
    } catch (err) {
      this.#log('warn', `a report of task ${id} (${entry.fn}) from worker node ${peer.label} could not be decoded: ${(err as Error).message}`);
      return;
    }
    entry.future.pushReport(value);
  }

  readonly #sourceMap = (hash: string) => this.#registry.sourceMap(hash);

  /** Error classes of the task modules, which remote errors name by reference. */
  readonly #errorClass = (ref: WireClassRef) => this.#registry.errorClass(ref);

  #settle(entry: Entry, item: TaskOutcome, nodeId: string, lane: number): void {
    const { future } = entry;
    if (future.done()) return;
    // Settled tasks come from a lane of a connected node (a thread that crashed is reported by
    // its node, on its control connection).
    const node = this.#nodes.get(nodeId)!;
    const peer = node.peer;
    const now = Date.now();
    const stats = this.#stats;
    stats.settled(entry.kind.stat, node.stat, item.e === undefined, item.d, now);
    if (stats.watching) stats.span(peer.name, lane, entry.fn, now - (item.d ?? 0), now, item.e === undefined);
    // Its frames in the shipped bundle, read back to the user's own files and lines.
    if (item.e) mapWireStacks(item.e, this.#sourceMap);
    if (item.e) {
      stats.error({
        at: now,
        fn: entry.fn,
        node: peer.label,
        name: String(item.e.name),
        message: String(item.e.message).slice(0, 2000),
        stack: typeof item.e.stack === 'string' ? item.e.stack.slice(0, 8000) : undefined,
      });
    }
    settleTask(entry, item, peer, this.#errorClass);
  }

  /**
   * Busy-polls (see shared/busy-poll.ts) while results are awaited and little is out: a caller
   * awaiting results one at a time, where waking up is most of the round trip. Not during bursts
   * (many tasks out: the coordinator is busy anyway, and polling would take CPU from the task
   * threads); BusyPoll itself decides whether polling pays (long tasks, busy cores: it does not).
   * Returns how long the lane that answers should poll for its next task, µs (0: not at all):
   * the coordinator decides for both sides (see BusyPoll).
   */
  #awaitQuickAnswer(): number {
    const running = this.#state.sentCount;
    if (running === 0 || running > this.#busyPollMaxRunning) return 0;
    return this.#busyPoll.expectAnswer();
  }

  /**
   * Polls only while at most this many tasks are out: one on a 2-core machine, where a polling
   * coordinator took CPU from the task threads of its local nodes (pairs of 150 µs tasks ran
   * 7–17% slower), half the cores on larger ones.
   */
  readonly #busyPollMaxRunning = Math.max(1, Math.floor(availableParallelism() / 2));

  /**
   * The kind of a task of `fn` (chunks of it apart), made on first use: one lookup per submit
   * for both the state's estimates and the function's counters.
   */
  #kindOf(fn: string, chunk: Entry['chunk']): TaskKind {
    const key = chunk ? `${fn} (chunk)` : fn;
    let kind = this.#kinds.get(key);
    if (kind === undefined) this.#kinds.set(key, kind = { id: this.#kinds.size, stat: this.#stats.functionRecord(fn) });
    return kind;
  }

  /**
   * A connection ended: a node's (the node is lost with every lane; the threads are ended by
   * the node itself, if it is still alive, when it sees its control connection close) or a
   * lane's (the node is asked what happened to that thread).
   */
  #onLost(peer: WorkerPeer, reason: string): void {
    this.#state.connectionLost(peer.id, reason, performance.now());
    this.#apply();
    this.#schedulePump();
  }

  #nodeLost(id: string, reason: string, requeued: number, failed: number, drained: boolean): void {
    const node = this.#nodes.get(id);
    if (!node) return;
    const last = this.#nodeStats(node);
    this.#nodes.delete(id);
    this.#stats.nodeLost(node.stat, last);
    const label = node.peer.label;
    if (requeued || failed || (!this.isShutdown && !drained)) {
      this.#log(this.isShutdown ? 'info' : 'warn', `worker node ${label} lost: ${reason}; ${requeued} task(s) requeued, ${failed} failed`);
    } else if (!this.isShutdown && !node.stat.local) {
      this.#notice(`worker node ${label} left (drained)`);
    }
    if (this.#events.has('nodeLost')) this.#events.emit('nodeLost', { ...last, state: 'lost', running: 0, lostAt: node.stat.lostAt, reason });
  }

  #onLaneDied(peer: WorkerPeer, msg: LaneDiedMsg): void {
    this.#state.laneDied({ node: peer.id, laneNumber: msg.lane, crashed: msg.crashed, how: boundText(msg.how), task: msg.task, now: performance.now() });
    this.#apply();
    this.#schedulePump();
  }

  #break(message: string, cause?: unknown): void {
    if (this.#broken) return;
    this.#broken = new BrokenExecutorError(`ProcessPoolExecutor is broken: ${message}`, { cause });
    this.#log('warn', this.#broken.message);
    this.#events.emit('broken', { message: this.#broken.message });
    for (const w of this.#readyWaiters) w.reject(this.#broken);
    this.#readyWaiters = [];
    // Nothing queued here will ever run: fail it rather than let it hang.
    for (const { payload } of this.#state.removeQueued()) {
      if (!payload.future.done()) payload.future.setException(this.#broken);
    }
  }
}
