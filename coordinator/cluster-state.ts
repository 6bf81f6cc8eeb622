/**
 * The cluster as one pure state machine: worker nodes, their lanes, the tasks sent on each lane
 * and not yet reported, the queue (the Scheduler, wrapped), retries, draining, duration
 * estimates and slowness, and the deadlines of kills, lost lanes and waits (for a slot, or for
 * resources no connected node declares). It never touches a socket, a timer or the clock: the
 * process pool feeds it events (a node registered, a lane attached,
 * results, a connection lost, an abort, `tick(now)` when a deadline it asked for is due, ...)
 * and carries out the instructions it leaves in `out` (send these tasks on that lane, cancel,
 * kill a lane's thread, tell a node it is drained, settle a task, log, ...), in the shape of
 * dask/distributed's `handle_stimulus(events) -> instructions`. Unit tests drive it with event
 * sequences and no network (test/cluster-state.test.ts).
 *
 * Glossary (one meaning per word, here and in process-pool.ts):
 * - **node**: one worker node process, known by its control connection (`register`).
 * - **slot**: room for one task running at a time; a node offers `slots` of them.
 * - **lane**: one slot's task thread and its own connection (`attach`); lanes run their tasks
 *   in the order sent, so the first one not yet reported is the one running.
 * - **peer**: any connection the coordinator holds (a node's control connection or a lane);
 *   the pool and server deal in peers, this state only in their ids.
 * - **task**: one call (or one map chunk) submitted to the pool; its **kind** is its function
 *   (chunks of a function apart), by which durations are estimated.
 * ("Worker" is only the product's name for nodes in the public API: `pool.workers()`.)
 *
 * A node's states: `joining` (registered, its lanes attaching) → `ready` → `draining` (it
 * asked to leave: nothing new is sent, `drained` goes out once every lane has reported all it
 * was sent) → `lost` (its control connection ended: every lane goes, their tasks requeued or
 * failed). A lane's states: `open` → `closing` (its connection ended while its node is still
 * here: the node is asked to end the thread and say which task it ran; its `lane-died` or the
 * LANE_DEATH_WAIT_MS deadline settles its tasks) → removed.
 */
import type { TaskOutcome } from '../shared/protocol.ts';
import { describePeerValue } from '../shared/describe.ts';
import { type Assignment, type LossKind, type NodeResources, Scheduler } from './scheduler.ts';
import { formatResources, type Resources } from '../shared/resources.ts';

/** What the state needs of a task's payload: its kind, for estimates. */
export interface TaskPayload {
  readonly kind: { readonly id: number };
}

export type NodePhase = 'joining' | 'ready' | 'draining' | 'lost';

export interface NodeInfo {
  id: string;
  /** For messages: "name (hostname, address)". */
  label: string;
  slots: number;
  /** The node the pool started on this machine. */
  local: boolean;
  /** What its lanes present in `attach`. */
  ticket: string;
  /** What it declared (`--resources`), shared by its lanes; undefined: none. */
  resources?: NodeResources;
}

interface NodeS {
  info: NodeInfo;
  phase: NodePhase;
  lanes: Map<number, LaneS>;
  drainedSent: boolean;
  /** Task modules its threads could not import, with the node's explanation. */
  failedModules: Map<number, string>;
}

interface LaneS {
  id: string;
  node: NodeS;
  lane: number;
  /** Its connection ended; the node has been asked what happened (see LANE_DEATH_WAIT_MS). */
  closing: boolean;
  /** Tasks sent on this lane and not yet reported, cancelled ones included, in order. */
  unreported: Set<number>;
  /** Its tasks' measured time over their estimates (see Scheduler.setSlowness). */
  slowness: number;
  /** Its thread can give back tasks it has not started (`steal`, protocol 5). */
  canSteal: boolean;
  /** A `steal` was sent to it and not yet answered. */
  stealing: boolean;
}

/** A deadline the pool is to wake the state for (see tick). */
interface Deadline {
  at: number;
  lane: LaneS;
  /** The aborted task to kill if still unreported; undefined: the lane's death wait. */
  task: number | undefined;
  reason: string;
}

export type Instruction<P> =
  /** Send these tasks on this lane (the pool encodes them; one it cannot send comes back as `unsendable`). */
  | { op: 'run'; lane: string; tasks: { id: number; payload: P; attempt: number }[] }
  /** Tell the lane to stop this task (its future already settled). */
  | { op: 'cancel'; lane: string; id: number }
  /** Ask the lane to give back these tasks if it has not started them (it answers `stolen`). */
  | { op: 'steal'; lane: string; ids: number[] }
  /** A task a lane gave back is queued again (its future is pending again; not a retry). */
  | { op: 'taken-back'; payload: P }
  /** Ask the node to end a lane's thread (if `task`: only if it still runs that task). */
  | { op: 'kill'; node: string; lane: number; task?: number; reason: string }
  /** Tell a draining node it may go. */
  | { op: 'drained'; node: string }
  /** Close a lane's connection (its node is gone), or end it at once (its thread is gone). */
  | { op: 'close-lane'; lane: string; reason: string; terminate: boolean }
  /** Settle a task with what its lane reported (or a made-up error for a thread that died). */
  | { op: 'settle'; payload: P; outcome: TaskOutcome; node: string; lane: number }
  /** A task goes back to the queue after its node or lane was lost. */
  | { op: 'requeued'; id: number; payload: P; node: string; attempt: number }
  /** A task lost with its node once too often: fail it (WorkerLostError). */
  | { op: 'lost'; id: number; payload: P; node: string; attempts: number; reason: string }
  /** No connected node can import this task's module: fail it (ModuleLoadError). */
  | { op: 'unloadable'; payload: P; module: number; reasons: string[] }
  | { op: 'node-ready'; node: string; failedModules: number[] }
  | { op: 'node-draining'; node: string }
  /** The node is gone; `drained` if it had been told it could go. */
  | { op: 'node-lost'; node: string; reason: string; requeued: number; failed: number; drained: boolean }
  | { op: 'lane-lost'; node: string; lane: number; reason: string; requeued: number; failed: number }
  /** Tasks have waited warnAfterMs with no slot connected (said once, until a lane attaches). */
  | { op: 'no-slot-warning'; queued: number }
  /**
   * Tasks have waited warnAfterMs for resources no connected node declares (said once, until
   * none waits so); `declared`: what the connected nodes declare, in words.
   */
  | { op: 'unmet-warning'; tasks: { payload: P; resources: Resources }[]; declared: string }
  /** A task waited its timeout for a node that declares its resources: fail it (TimeoutError); it is no longer queued. */
  | { op: 'unmet-timeout'; id: number; payload: P; resources: Resources; waitedMs: number; declared: string }
  | { op: 'log'; level: 'info' | 'warn'; message: string };

/** A lane asks to join its node (see attach). */
export interface AttachEvent {
  /** The lane's peer id. */
  lane: string;
  node: string;
  laneNumber: number;
  ticket: string;
  /** The modules its thread could not import, each with the node's explanation. */
  failedModules: { id: number; error: string }[];
  /** Names a module by id; undefined: no such module. */
  moduleUrl: (id: number) => string | undefined;
  /** Its thread speaks protocol 5 and can give back tasks it has not started. */
  canSteal?: boolean;
}

/** How a task is queued (see submit). */
export interface TaskRequest {
  /** The task module it needs. */
  module: number;
  /** Higher first; in submission order within one priority. */
  priority: number;
  /** What it asks of a node's declared resources; undefined: nothing. */
  resources?: Resources;
  /**
   * How long it may wait for a connected node that declares its resources, ms (its `timeout`;
   * undefined or Infinity: as long as it takes). Only with `resources`.
   */
  timeout?: number;
  /** When it is submitted (the clock of tick). */
  now: number;
}

/** A node says a lane's thread is gone (see laneDied). */
export interface LaneDiedEvent {
  node: string;
  laneNumber: number;
  /** The task it ran ended it (that task fails, it is not re-run). */
  crashed: boolean;
  how: string;
  /** The task it was running; undefined: none. */
  task: number | undefined;
  now: number;
}

/** Events, for handle(): the same as the methods of the same names. */
export type ClusterEvent<P> =
  | { type: 'register'; node: NodeInfo }
  | ({ type: 'attach' } & AttachEvent)
  | { type: 'ready'; node: string }
  | { type: 'drain'; node: string; now: number }
  | ({ type: 'submit'; id: number; payload: P } & TaskRequest)
  | { type: 'assign' }
  | { type: 'unsendable'; id: number }
  | { type: 'results'; lane: string; items: TaskOutcome[] }
  | { type: 'stolen'; lane: string; ids: number[] }
  | { type: 'abort'; id: number; now: number }
  | { type: 'connection-lost'; peer: string; reason: string; now: number }
  | ({ type: 'lane-died' } & LaneDiedEvent)
  | { type: 'tick'; now: number };

export interface ClusterStateOptions<P> {
  maxRetries: number;
  /** Estimated work a slot may hold before it is handed more, ms (see Scheduler.prefetchMs). */
  prefetchMs: number;
  /** At most this many tasks per slot (see Scheduler.depthPerSlot). */
  maxTasksPerSlot: number;
  /** How long an aborted task gets to end on its own before its thread is ended, ms. */
  abortGraceMs: number;
  /** How long a closed lane waits for its node to say what happened, ms. */
  laneDeathWaitMs: number;
  /**
   * How long tasks wait with no slot connected, or for resources no connected node declares,
   * before the pool is told (`no-slot-warning`, `unmet-warning`), ms.
   */
  warnAfterMs: number;
  /**
   * Asked before a queued task is handed out: false drops it (its future was cancelled while
   * it waited). A query of the futures, not an action on the cluster.
   */
  accept: (payload: P) => boolean;
  /**
   * Whether a task's future has settled (cancelled while it waited): a pure query, unlike
   * `accept`. Such a task is not one to warn about or time out. Default: never.
   */
  settled?: (payload: P) => boolean;
}

/**
 * Steal only when the tasks behind a lane's running one add up to at least this much estimated
 * work: below it, the round trip of asking costs about what moving them saves.
 */
const STEAL_MIN_MS = 1;

export class ClusterState<P extends TaskPayload> {
  /** Instructions for the pool, in order; the pool empties it as it carries them out. */
  readonly out: Instruction<P>[] = [];
  readonly scheduler: Scheduler<P>;
  readonly #options: ClusterStateOptions<P>;
  readonly #nodes = new Map<string, NodeS>();
  readonly #lanes = new Map<string, LaneS>();
  /** Tasks sent to a lane and not yet settled (queued ones live in the scheduler only). */
  readonly #sent = new Map<number, P>();
  /** Pending kill checks and lane death waits; few (aborts and lost lanes are rare). */
  #deadlines: Deadline[] = [];
  /** Duration estimates per kind, ms (exponentially weighted means). */
  readonly #estimates: number[] = [];
  readonly #accept: (id: number) => boolean;
  /** Lanes that were idle when a lane gave tasks back: the next assign() serves them first. */
  #thieves: Set<string> | undefined;
  /**
   * The finite timeouts of tasks that ask for resources (rare), ms: what bounds their wait if
   * the nodes that declare their resources leave. Entries of tasks that are gone are pruned
   * when the map has doubled (see #requested).
   */
  readonly #requestTimeouts = new Map<number, number>();
  #requestTimeoutsPruned = 0;
  /** Queued tasks whose resources no connected node declares: when their wait ends. */
  readonly #unmet = new Map<number, { resources: Resources; at: number; timeout: number }>();
  /** The earliest `at` in #unmet (Infinity: none). */
  #unmetNext = Infinity;
  /** When to say that tasks wait for resources (Infinity: not armed). */
  #unmetWarnAt = Infinity;
  /** Said already, and not since none waits so. */
  #warnedUnmet = false;
  /** When to say that tasks wait with no slot connected (Infinity: not armed). */
  #noSlotWarnAt = Infinity;
  /** Said already, and no lane attached since. */
  #warnedNoSlots = false;

  constructor(options: ClusterStateOptions<P>) {
    this.#options = options;
    this.scheduler = new Scheduler<P>({ maxRetries: options.maxRetries });
    this.scheduler.depthPerSlot = options.maxTasksPerSlot;
    this.scheduler.prefetchMs = options.prefetchMs;
    const accept = options.accept;
    this.#accept = (id) => {
      const p = this.scheduler.payloadOf(id);
      return p !== undefined && accept(p);
    };
  }

  // ---- queries ----------------------------------------------------------------------------------

  /** Tasks sent to lanes and not yet settled. */
  get sentCount(): number {
    return this.#sent.size;
  }
  get queuedCount(): number {
    return this.scheduler.queuedCount;
  }
  /** Slots of the lanes that accept work now. */
  get slotCount(): number {
    return this.scheduler.slotCount;
  }
  get nodeCount(): number {
    return this.#nodes.size;
  }
  nodePhase(node: string): NodePhase | undefined {
    return this.#nodes.get(node)?.phase;
  }
  /** Tasks sent to a node's lanes and not yet reported. */
  unreportedOn(node: string): number {
    let n = 0;
    for (const lane of this.#nodes.get(node)?.lanes.values() ?? []) n += lane.unreported.size;
    return n;
  }
  /** The lane's node id and lane number, while the lane is known. */
  laneOf(lane: string): { node: string; lane: number } | undefined {
    const l = this.#lanes.get(lane);
    return l && { node: l.node.info.id, lane: l.lane };
  }
  /** Live (not closing) lanes of a node. */
  openLanes(node: string): number {
    let n = 0;
    for (const l of this.#nodes.get(node)?.lanes.values() ?? []) if (!l.closing) n++;
    return n;
  }
  /** The payload of a task sent on `lane` and not yet reported: a report from it may be shown. */
  reportable(lane: string, id: number): P | undefined {
    const l = this.#lanes.get(lane);
    if (!l || !l.unreported.has(id)) return undefined;
    return this.#sent.get(id);
  }
  /** The earliest deadline to wake the state at (tick), or Infinity. */
  get nextDeadline(): number {
    let at = Math.min(this.#unmetNext, this.#unmetWarnAt, this.#noSlotWarnAt);
    for (const d of this.#deadlines) if (d.at < at) at = d.at;
    return at;
  }
  /** The current estimate for a kind, ms (undefined: not measured yet). */
  estimateOf(kind: number): number | undefined {
    return this.#estimates[kind];
  }

  /** Tasks queued for resources no connected node declares. */
  get unmetCount(): number {
    return this.#unmet.size;
  }

  /** What the connected nodes declare, in words, for messages about requests none of them can meet. */
  declaredResources(): string {
    const nodes = [...this.#nodes.values()];
    if (nodes.length === 0) return 'No worker node is connected';
    const shown = nodes.slice(0, 8).map((n) => `${n.info.label}: ${formatResources(n.info.resources?.declared ?? {})}`);
    return `Connected worker nodes declare ${shown.join('; ')}${nodes.length > 8 ? ` (and ${nodes.length - 8} more)` : ''}`;
  }

  /**
   * The reasons no connected node can run tasks of `module`: every node has at least one lane
   * attached and said it could not import it. Undefined while some node can (or may yet) run
   * it, or no node is connected (tasks then wait for one).
   */
  unloadableReasons(module: number): string[] | undefined {
    if (this.#nodes.size === 0 || this.scheduler.canRun(module)) return undefined;
    const reasons: string[] = [];
    for (const node of this.#nodes.values()) {
      const error = node.failedModules.get(module);
      if (error === undefined) return undefined; // its lanes have not attached yet: it may run it
      reasons.push(`worker node ${node.info.label}: ${error}`);
    }
    return reasons;
  }

  // ---- events -----------------------------------------------------------------------------------

  /** dask's handle_stimulus: one event in; its instructions are appended to `out`. */
  handle(event: ClusterEvent<P>): string | undefined {
    switch (event.type) {
      case 'register':
        return this.register(event.node);
      case 'attach':
        return this.attach(event);
      case 'ready':
        return this.ready(event.node);
      case 'drain':
        return this.drain(event.node, event.now);
      case 'submit':
        return this.submit(event.id, event.payload, event);
      case 'assign':
        return this.assign();
      case 'unsendable':
        return this.unsendable(event.id);
      case 'results':
        return this.results(event.lane, event.items);
      case 'stolen':
        return this.stolen(event.lane, event.ids);
      case 'abort':
        return this.abort(event.id, event.now);
      case 'connection-lost':
        return this.connectionLost(event.peer, event.reason, event.now);
      case 'lane-died':
        return this.laneDied(event);
      case 'tick':
        return this.tick(event.now);
    }
  }

  /** A node registered on its control connection. */
  register(info: NodeInfo): undefined {
    if (this.#nodes.has(info.id)) throw new Error(`cluster state: node ${info.id} registered twice`);
    this.#nodes.set(info.id, { info, phase: 'joining', lanes: new Map(), drainedSent: false, failedModules: new Map() });
    return undefined;
  }

  /**
   * A lane asks to join its node. Returns why it may not (the lane is refused and nothing
   * changes), or undefined once attached.
   */
  attach(event: AttachEvent): string | undefined {
    const { lane, node: nodeId, laneNumber, ticket, failedModules, moduleUrl, canSteal = false } = event;
    const node = this.#nodes.get(nodeId);
    if (!node || node.phase === 'lost') return `attach: no worker node ${describePeerValue(nodeId, 40)} is connected`;
    if (ticket !== node.info.ticket) return `attach: wrong lane ticket for worker node ${node.info.label}`;
    if (node.lanes.has(laneNumber)) return `attach: lane ${laneNumber} of worker node ${node.info.label} is already attached`;
    // Lanes whose connection closed are still listed while the node says why; they do not count.
    let live = 0;
    for (const l of node.lanes.values()) if (!l.closing) live++;
    if (live >= node.info.slots) return `attach: worker node ${node.info.label} has ${node.info.slots} slot(s) and as many lanes already`;
    for (const { id } of failedModules) if (moduleUrl(id) === undefined) return `attach: no task module with id ${id}`;
    const cannotRun = new Set<number>();
    for (const { id, error } of failedModules) {
      cannotRun.add(id);
      if (node.failedModules.has(id)) continue;
      node.failedModules.set(id, error);
      this.out.push({
        op: 'log',
        level: 'warn',
        message: `worker node ${node.info.label} could not import task module ${moduleUrl(id)}: ${error}. Its tasks go only to worker nodes that loaded it.`,
      });
    }
    this.#warnedNoSlots = false;
    const l: LaneS = { id: lane, node, lane: laneNumber, closing: false, unreported: new Set(), slowness: 1, canSteal, stealing: false };
    node.lanes.set(laneNumber, l);
    this.#lanes.set(lane, l);
    this.scheduler.addLane(lane, 1, cannotRun, node.info.resources);
    if (node.phase === 'draining') this.scheduler.drainLane(lane);
    if (cannotRun.size > 0) this.#failUnloadable();
    // Tasks waiting for resources this node declares wait as any task does now.
    if (node.info.resources && this.#unmet.size > 0) this.#pruneUnmet();
    return undefined;
  }

  /** A node's threads have all imported the modules and attached. */
  ready(nodeId: string): undefined {
    const node = this.#nodes.get(nodeId);
    if (!node) return undefined;
    if (node.phase === 'joining') node.phase = 'ready';
    this.out.push({ op: 'node-ready', node: nodeId, failedModules: [...node.failedModules.keys()] });
    return undefined;
  }

  /** A node asks to leave once its work is done: nothing new goes to it. */
  drain(nodeId: string, now: number): undefined {
    const node = this.#nodes.get(nodeId);
    if (!node || node.phase === 'lost' || node.phase === 'draining') return undefined;
    node.phase = 'draining';
    this.out.push({ op: 'node-draining', node: nodeId });
    for (const lane of node.lanes.values()) this.scheduler.drainLane(lane.id);
    this.#checkDrained(node);
    if (node.info.resources) this.#rearmUnmet(now);
    return undefined;
  }

  /**
   * Queues a task (ids are the pool's, unique). If tasks still wait after warnAfterMs with no
   * slot connected, a `no-slot-warning` says so (once, until a lane attaches). One that asks for resources no connected node
   * declares waits for a node that does: if tasks still wait so after warnAfterMs, an
   * `unmet-warning` says so (once, until none waits so); with a `timeout`, the task fails
   * (`unmet-timeout`) once it has waited that long. The same holds from the moment the last
   * node declaring them leaves or drains while such tasks are queued. (A timeout otherwise counts
   * from the start of a task: waiting behind other work is not the task's doing, but waiting for
   * a kind of node that is not there will not end by itself.)
   */
  submit(id: number, payload: P, task: TaskRequest): undefined {
    this.scheduler.submit(id, payload, task.module, task.priority, payload.kind.id, task.resources);
    if (this.scheduler.slotCount === 0 && this.#noSlotWarnAt === Infinity && !this.#warnedNoSlots) this.#noSlotWarnAt = task.now + this.#options.warnAfterMs;
    if (task.resources !== undefined) this.#requested(id, task.resources, task.timeout ?? Infinity, task.now);
    return undefined;
  }

  /**
   * Hands queued tasks to lanes with room: one `run` instruction per lane. Then, if the queue is
   * empty and a lane is idle, steals for it (see #steal).
   */
  assign(): undefined {
    // Tasks a lane gave back go to the lanes that were idle first (see stolen).
    if (this.#thieves !== undefined) {
      this.#emitRuns(this.scheduler.assign(this.#accept, this.#thieves));
      this.#thieves = undefined;
    }
    this.#emitRuns(this.scheduler.assign(this.#accept));
    // (Not while some lane cannot run some module: tasks taken back for an idle lane that
    // cannot run them would only go back where they were, and be stolen again.)
    // (A lane gives back only tasks behind another: with one task out there is nothing to take.)
    if (this.scheduler.queuedCount === 0 && this.#sent.size > 1 && !this.scheduler.restricted) this.#steal();
    return undefined;
  }

  #emitRuns(assignments: Assignment<P>[]): void {
    for (const a of assignments) {
      const lane = this.#lanes.get(a.laneId)!;
      for (const t of a.tasks) {
        lane.unreported.add(t.id);
        this.#sent.set(t.id, t.payload);
      }
      this.out.push({ op: 'run', lane: a.laneId, tasks: a.tasks });
    }
  }

  /**
   * Work stealing: for each idle lane (open, not draining, holding nothing), the lane holding
   * the most estimated work is asked to give back the tasks at the end of its queue (about half
   * the work behind the one it runs, when that is worth a round trip: STEAL_MIN_MS). Nothing
   * moves until the lane answers with the ids it removed before starting them (`stolen`): a
   * task never runs twice because of a steal. One request per lane at a time.
   */
  #steal(): void {
    // Most passes of a busy pool find every lane holding work: known without looking at each.
    if (this.scheduler.emptyLaneCount === 0) return;
    let idle = 0;
    for (const lane of this.#lanes.values()) if (this.#isIdle(lane)) idle++;
    if (idle === 0) return;
    const victims: LaneS[] = [];
    for (const lane of this.#lanes.values()) {
      // Its held work (the running task's included) bounds what is behind the running one: a
      // lane under STEAL_MIN_MS has nothing worth stealing, found without looking at its tasks
      // (with many lanes full of tiny tasks, looking at each lane's tasks on every pass cost
      // more than the tasks themselves).
      if (lane.canSteal && !lane.stealing && !lane.closing && this.scheduler.heldBy(lane.id) > 1 && this.scheduler.queuedMsOf(lane.id) >= STEAL_MIN_MS) victims.push(lane);
    }
    if (victims.length === 0) return;
    victims.sort((a, b) => this.scheduler.queuedMsOf(b.id) - this.scheduler.queuedMsOf(a.id));
    for (let i = 0; i < victims.length && idle > 0; i++) {
      const victim = victims[i]!;
      const ids = this.scheduler.stealable(victim.id, STEAL_MIN_MS);
      if (ids.length === 0) continue;
      victim.stealing = true;
      idle--;
      this.out.push({ op: 'steal', lane: victim.id, ids });
    }
  }

  #isIdle(lane: LaneS): boolean {
    return !lane.closing && lane.node.phase !== 'draining' && this.scheduler.heldBy(lane.id) === 0;
  }

  /**
   * A lane answers a steal with the tasks it removed before starting them: they go back to the
   * front of the queue (no attempt counted: they never ran), the lane no longer holds them, and
   * the next assignment pass gives them to the lanes idle now first (then to anyone). Not at
   * once: the pool first makes their futures pending again (`taken-back`).
   */
  stolen(laneId: string, ids: number[]): undefined {
    const lane = this.#lanes.get(laneId);
    if (!lane) return undefined;
    lane.stealing = false;
    // The lane will report none of them, whatever became of them here meanwhile (an aborted
    // one would otherwise wait for an outcome that never comes).
    for (const id of ids) lane.unreported.delete(id);
    for (const id of this.scheduler.takeBack(laneId, ids)) {
      const payload = this.#sent.get(id);
      this.#sent.delete(id);
      if (payload !== undefined) this.out.push({ op: 'taken-back', payload });
    }
    this.#checkDrained(lane.node);
    for (const l of this.#lanes.values()) if (this.#isIdle(l)) (this.#thieves ??= new Set()).add(l.id);
    return undefined;
  }

  /**
   * A task handed out by assign() could not be sent (its arguments do not encode, or are too
   * large for its node): the pool fails it; its place on the lane is free again.
   */
  unsendable(id: number): undefined {
    const lane = this.#lanes.get(this.scheduler.complete(id) ?? '');
    this.#sent.delete(id);
    if (!lane) return undefined;
    lane.unreported.delete(id);
    this.#checkDrained(lane.node);
    return undefined;
  }

  /**
   * A lane's outcomes. Returns why the lane broke the protocol, if it did (the pool closes it,
   * and its connection-lost follows).
   */
  results(laneId: string, items: TaskOutcome[]): string | undefined {
    const lane = this.#lanes.get(laneId);
    if (!lane) return undefined;
    let broken: string | undefined;
    const scheduler = this.scheduler;
    for (const item of items) {
      // Exactly-once settlement: an outcome for a task that is no longer this lane's (finished
      // elsewhere after a retry, aborted, timed out) is dropped here, before anything of it is
      // used: a lane that reports tasks it does not hold must not steer the pool's tuning.
      if (!scheduler.holds(item.id, laneId)) {
        this.#forgetUnreported(lane, item.id);
        continue;
      }
      // A thread reports "did not run" (neither value nor error) only for a task it was told
      // to cancel, and a cancelled task is no longer held: for a live task it would settle the
      // future with a value no task returned. (A task that returns undefined sends an encoded
      // undefined.) The lane is closed; its tasks, this one included, are handled as lost.
      if (item.v === undefined && item.e === undefined) {
        broken = `an outcome for task ${item.id} with neither a value nor an error`;
        break;
      }
      this.#forgetUnreported(lane, item.id);
      scheduler.complete(item.id, laneId);
      const payload = this.#sent.get(item.id);
      if (payload === undefined) continue;
      this.#sent.delete(item.id);
      if (item.d !== undefined) this.#measured(payload.kind.id, item.d, lane);
      this.out.push({ op: 'settle', payload, outcome: item, node: lane.node.info.id, lane: lane.lane });
    }
    this.#checkDrained(lane.node);
    return broken;
  }

  /**
   * A sent task's future was aborted or timed out: forget it and tell its lane to stop it. If
   * it is still unreported after abortGraceMs (a synchronous task never sees its signal), its
   * node is asked to end the lane's thread if it still runs it, and asked again every
   * abortGraceMs while it is unreported (it may have waited behind another task at first).
   * Returns nothing; a task not sent (only queued, or unknown) is just dropped from the queue.
   */
  abort(id: number, now: number): undefined {
    this.#sent.delete(id);
    const lane = this.#lanes.get(this.scheduler.cancel(id) ?? '');
    if (!lane) return undefined;
    this.out.push({ op: 'cancel', lane: lane.id, id });
    this.#deadlines.push({ at: now + this.#options.abortGraceMs, lane, task: id, reason: `task ${id} did not stop within ${this.#options.abortGraceMs} ms of being aborted` });
    return undefined;
  }

  /** Whether a task is sent and unsettled (the pool counts an abort of one as a cancellation). */
  isSent(id: number): boolean {
    return this.#sent.has(id);
  }

  /**
   * A peer's connection ended. A node's: the node is lost with every lane. A lane's while its
   * node is here: the node is asked to end the thread and say which task it ran (`lane-died`);
   * nothing new goes to the lane meanwhile, and after laneDeathWaitMs its tasks count as lost.
   */
  connectionLost(peer: string, reason: string, now: number): undefined {
    const node = this.#nodes.get(peer);
    if (node) {
      this.#nodes.delete(peer);
      const drained = node.drainedSent;
      node.phase = 'lost';
      let requeued = 0;
      let failed = 0;
      for (const lane of [...node.lanes.values()]) {
        const r = this.#removeLane(lane, 'lost', reason, undefined);
        requeued += r.requeued;
        failed += r.failed;
        this.out.push({ op: 'close-lane', lane: lane.id, reason: 'its worker node is gone', terminate: false });
      }
      this.out.push({ op: 'node-lost', node: peer, reason, requeued, failed, drained });
      // The nodes left may all be ones that cannot import some module, or declare too little.
      this.#failUnloadable();
      if (node.info.resources) this.#rearmUnmet(now);
      return undefined;
    }
    const lane = this.#lanes.get(peer);
    if (!lane || lane.closing) return undefined;
    lane.closing = true;
    this.scheduler.drainLane(lane.id);
    this.out.push({ op: 'kill', node: lane.node.info.id, lane: lane.lane, reason: `its lane closed: ${reason}` });
    this.#deadlines.push({ at: now + this.#options.laneDeathWaitMs, lane, task: undefined, reason });
    return undefined;
  }

  /**
   * A node says a lane's thread is gone: `crashed` if the task it ran ended it (that task
   * fails, it is not re-run), and which task it was running (undefined: none).
   */
  laneDied(event: LaneDiedEvent): undefined {
    const { node: nodeId, laneNumber, crashed, how, task, now } = event;
    const lane = this.#nodes.get(nodeId)?.lanes.get(laneNumber);
    if (!lane) return undefined;
    if (crashed) {
      this.out.push({
        op: 'log',
        level: 'warn',
        message: `a task thread of worker node ${lane.node.info.label} died: it ${how}${task === undefined ? '' : ` while running task ${task}`}`,
      });
    }
    this.#removeLane(lane, crashed ? 'crashed' : 'lost', how, task ?? null);
    // Its socket may outlive it for a while (under Deno): done with it now.
    this.out.push({ op: 'close-lane', lane: lane.id, reason: 'its thread is gone', terminate: true });
    if (lane.node.info.resources) this.#rearmUnmet(now);
    return undefined;
  }

  /** Time passed: deadlines at or before `now` fire. */
  tick(now: number): undefined {
    if (this.#unmetNext <= now || this.#unmetWarnAt <= now) this.#tickUnmet(now);
    if (this.#noSlotWarnAt <= now) {
      this.#noSlotWarnAt = Infinity;
      if (this.scheduler.slotCount === 0 && this.scheduler.queuedCount > 0) {
        this.#warnedNoSlots = true;
        this.out.push({ op: 'no-slot-warning', queued: this.scheduler.queuedCount });
      }
    }
    if (this.#deadlines.length === 0) return undefined;
    const due = this.#deadlines.filter((d) => d.at <= now);
    if (due.length === 0) return undefined;
    this.#deadlines = this.#deadlines.filter((d) => d.at > now);
    for (const d of due) {
      const lane = d.lane;
      if (this.#lanes.get(lane.id) !== lane) continue; // gone meanwhile
      if (d.task === undefined) {
        const r = this.#removeLane(lane, 'lost', d.reason, undefined);
        if (r.requeued || r.failed) this.out.push({ op: 'lane-lost', node: lane.node.info.id, lane: lane.lane, reason: d.reason, ...r });
        this.out.push({ op: 'close-lane', lane: lane.id, reason: 'its thread did not answer', terminate: true });
        if (lane.node.info.resources) this.#rearmUnmet(now);
        continue;
      }
      if (!lane.unreported.has(d.task)) continue;
      this.out.push({ op: 'kill', node: lane.node.info.id, lane: lane.lane, task: d.task, reason: d.reason });
      this.#deadlines.push({ ...d, at: now + this.#options.abortGraceMs });
    }
    return undefined;
  }

  /** The pool broke or shuts down: every queued task is removed; their payloads, in order. */
  removeQueued(): { id: number; payload: P }[] {
    return this.scheduler.removeQueued();
  }

  // ---- internals --------------------------------------------------------------------------------

  /** A task asking for resources was queued at `now`. */
  #requested(id: number, resources: Resources, timeout: number, now: number): void {
    if (timeout !== Infinity) {
      const timeouts = this.#requestTimeouts;
      timeouts.set(id, timeout);
      if (timeouts.size > 2 * this.#requestTimeoutsPruned + 1024) {
        for (const t of timeouts.keys()) if (!this.scheduler.hasTask(t)) timeouts.delete(t);
        this.#requestTimeoutsPruned = timeouts.size;
      }
    }
    if (!this.scheduler.canSatisfy(resources)) this.#watchUnmet(id, resources, timeout, now);
  }

  #watchUnmet(id: number, resources: Resources, timeout: number, now: number): void {
    if (this.#unmet.has(id)) return;
    const at = now + timeout;
    this.#unmet.set(id, { resources, at, timeout });
    if (at < this.#unmetNext) this.#unmetNext = at;
    if (!this.#warnedUnmet && this.#unmetWarnAt === Infinity) this.#unmetWarnAt = now + this.#options.warnAfterMs;
  }

  /**
   * Nodes that declared resources left or drain: queued tasks whose resources no node left
   * declares wait as tasks submitted for them do (warned, timed out), from `now`.
   */
  #rearmUnmet(now: number): void {
    for (const { id, payload, resources } of this.scheduler.queuedRequests()) {
      if (this.#unmet.has(id) || this.scheduler.canSatisfy(resources) || this.#options.settled?.(payload)) continue;
      this.#watchUnmet(id, resources, this.#requestTimeouts.get(id) ?? Infinity, now);
    }
  }

  /** Forgets the waiting tasks a connected node now declares enough for, and those no longer queued. */
  #pruneUnmet(): void {
    let next = Infinity;
    for (const [id, u] of this.#unmet) {
      const payload = this.scheduler.payloadOf(id);
      if (payload === undefined || this.scheduler.laneOf(id) !== undefined || this.#options.settled?.(payload) || this.scheduler.canSatisfy(u.resources)) {
        this.#unmet.delete(id);
      } else if (u.at < next) next = u.at;
    }
    this.#unmetNext = next;
    if (this.#unmet.size === 0) {
      this.#warnedUnmet = false;
      this.#unmetWarnAt = Infinity;
    }
  }

  /** An unmet wait's deadline or the warning is due. */
  #tickUnmet(now: number): void {
    this.#pruneUnmet();
    if (this.#unmetNext <= now) {
      for (const [id, u] of this.#unmet) {
        if (u.at > now) continue;
        this.#unmet.delete(id);
        this.#requestTimeouts.delete(id);
        const payload = this.scheduler.payloadOf(id)!;
        this.scheduler.cancel(id);
        this.out.push({ op: 'unmet-timeout', id, payload, resources: u.resources, waitedMs: u.timeout, declared: this.declaredResources() });
      }
      this.#pruneUnmet();
    }
    if (this.#unmetWarnAt <= now) {
      this.#unmetWarnAt = Infinity;
      if (this.#unmet.size === 0) return;
      this.#warnedUnmet = true;
      const tasks: { payload: P; resources: Resources }[] = [];
      for (const [id, u] of this.#unmet) tasks.push({ payload: this.scheduler.payloadOf(id)!, resources: u.resources });
      this.out.push({ op: 'unmet-warning', tasks, declared: this.declaredResources() });
    }
  }

  #forgetUnreported(lane: LaneS, id: number): void {
    lane.unreported.delete(id);
  }

  /** Tells a draining node it may go once nothing it was sent is unreported. */
  #checkDrained(node: NodeS): void {
    if (node.phase !== 'draining' || node.drainedSent) return;
    for (const lane of node.lanes.values()) if (lane.unreported.size > 0) return;
    node.drainedSent = true;
    this.out.push({ op: 'drained', node: node.info.id });
  }

  /**
   * A task of `kind` ran `ms` on `lane`: the kind's estimate moves towards it. One sample
   * counts for at most four times the estimate (plus 0.1 ms): a tiny task that met a garbage
   * collection must not make its kind look long and shallow the prefetch of the thousands
   * behind it; a kind that really got slower gets there in a few samples.
   */
  #measured(kind: number, ms: number, lane: LaneS): void {
    const before = this.#estimates[kind];
    const estimate = before === undefined ? ms : before * 0.9 + Math.min(ms, before * 4 + 0.1) * 0.1;
    this.#estimates[kind] = estimate;
    this.scheduler.setEstimate(kind, estimate);
    // The lane's slowness: how its tasks compare with their kind's estimate (from all lanes).
    // Tasks of a few µs say more about timers than about the lane: they are left out.
    if (before !== undefined && before > 0.05) {
      lane.slowness = Math.min(16, Math.max(1 / 16, lane.slowness * 0.9 + (ms / before) * 0.1));
      this.scheduler.setSlowness(lane.id, lane.slowness);
    }
  }

  /** Forgets a lane; its tasks are requeued or failed as `how` says (see LossKind). */
  #removeLane(lane: LaneS, how: LossKind, reason: string, running: number | null | undefined): { requeued: number; failed: number } {
    if (this.#lanes.get(lane.id) !== lane) return { requeued: 0, failed: 0 };
    this.#lanes.delete(lane.id);
    lane.node.lanes.delete(lane.lane);
    if (this.#deadlines.length > 0) this.#deadlines = this.#deadlines.filter((d) => d.lane !== lane);
    const { requeued, failed, crashed } = this.scheduler.removeLane(lane.id, how, running);
    const node = lane.node.info.id;
    for (const id of requeued) {
      const s = this.#sent.get(id);
      this.#sent.delete(id);
      if (!s) continue;
      this.out.push({ op: 'requeued', id, payload: s, node, attempt: this.scheduler.attemptsOf(id) + 1 });
    }
    for (const { id, attempts } of failed) {
      const s = this.#sent.get(id);
      this.#sent.delete(id);
      if (!s) continue;
      this.out.push({ op: 'lost', id, payload: s, node, attempts, reason });
    }
    if (crashed !== undefined) {
      const s = this.#sent.get(crashed);
      this.#sent.delete(crashed);
      if (s) {
        this.out.push({
          op: 'settle',
          payload: s,
          outcome: { id: crashed, e: { name: 'Error', message: `the task's thread ${reason}`, code: 'WSF_THREAD_DIED' } },
          node,
          lane: lane.lane,
        });
      }
    }
    this.#checkDrained(lane.node);
    return { requeued: requeued.length, failed: failed.length + (crashed === undefined ? 0 : 1) };
  }

  /** Fails the queued tasks of every module that no connected node can run now. */
  #failUnloadable(): void {
    const modules = new Set<number>();
    for (const node of this.#nodes.values()) for (const m of node.failedModules.keys()) modules.add(m);
    for (const module of modules) {
      const reasons = this.unloadableReasons(module);
      if (!reasons) continue;
      for (const { payload } of this.scheduler.removeQueuedOf(module)) this.out.push({ op: 'unloadable', payload, module, reasons });
    }
  }
}
