/**
 * What the pool counts about its cluster, for `pool.stats()`, `/metrics` and the dashboard:
 * per node, per task function, and pool-wide, plus a short history (throughput, queue) and the
 * last errors. The pool tells it what happened; it never touches a socket or a timer. Counting
 * is a few increments per task, with durations counted in fixed buckets (DurationHistogram):
 * the same buckets give `/metrics` its Prometheus histograms and `stats()` its percentiles.
 *
 * Words: a *task* is one submit, or one chunk of a map with `chunksize` (a chunk counts once);
 * *completed* tasks returned a value, *failed* ones settled with an error (their own, a lost
 * node after its retries, a timeout), *cancelled* ones were cancelled or aborted before they
 * finished, *retried* counts re-runs after a node or a thread was lost.
 */
export type NodeState = 'joining' | 'ready' | 'draining' | 'lost';

/** One worker node, as `pool.stats()` shows it. */
export interface NodeStats {
  id: string;
  name: string;
  hostname: string;
  /** The address its control connection came from (`ip:port`). */
  address: string;
  runtime: string;
  /** Whether the pool started it on this machine (`maxWorkers`). */
  local: boolean;
  state: NodeState;
  slots: number;
  /** Tasks sent to it and not yet reported. */
  running: number;
  completed: number;
  failed: number;
  /** Tasks that were running on it when it (or one of its threads) was lost, and ran again. */
  retried: number;
  /** When it registered (ms since the epoch), and when it was lost. */
  connectedAt: number;
  lostAt?: number;
  /** Round trip of its last heartbeat, ms. */
  heartbeatRttMs?: number;
  /** The resources it declared (`--resources`), and what of them its tasks do not hold now. */
  resources?: { declared: Record<string, number>; free: Record<string, number> };
}

/** Durations of the tasks of one function, ms (percentiles estimated from buckets). */
export interface DurationStats {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface FunctionStats {
  /** The export name of the function. */
  name: string;
  completed: number;
  failed: number;
  /** How long its tasks ran on the nodes. */
  duration?: DurationStats;
  /** How long its tasks waited between submit and being sent to a node. */
  queueWait?: DurationStats;
}

/** A snapshot of the pool, cheap to take. */
export interface PoolStats {
  /** When it was taken (ms since the epoch). */
  at: number;
  state: 'running' | 'broken' | 'shut down';
  /** Slots of connected nodes that take work now. */
  slots: number;
  queued: number;
  running: number;
  completed: number;
  failed: number;
  cancelled: number;
  retried: number;
  /** Tasks a busy lane gave back before starting them, to run on an idle one (work stealing). */
  stolen: number;
  /** Tasks settled per second, over the last second and the last minute. */
  throughput: { last1s: number; last60s: number };
  /** Connected nodes, then the nodes lost most recently (at most 20), newest first. */
  nodes: NodeStats[];
  functions: FunctionStats[];
}

/** One task in the dashboard's task stream: where and when it ran, and how it ended. */
export interface TaskSpan {
  node: string;
  lane: number;
  fn: string;
  /** Start and end, ms since the epoch (the end is when its result reached the pool). */
  start: number;
  end: number;
  ok: boolean;
}

/** A recent error, with its remote stack. */
export interface RecentError {
  at: number;
  fn: string;
  node: string;
  name: string;
  message: string;
  stack?: string;
}

/** Per-function counters; the pool keeps a reference on each queued task. */
export class FunctionRecord {
  completed = 0;
  failed = 0;
  readonly duration = new DurationHistogram();
  readonly queueWait = new DurationHistogram();
  readonly name: string;
  constructor(name: string) {
    this.name = name;
  }
}

/** Per-node counters; the pool keeps one on each node. */
export class NodeRecord {
  state: NodeState = 'joining';
  completed = 0;
  failed = 0;
  retried = 0;
  readonly connectedAt = Date.now();
  lostAt: number | undefined;
  readonly id: string;
  readonly local: boolean;
  constructor(id: string, local: boolean) {
    this.id = id;
    this.local = local;
  }
}

/** What nodeStats reads of a node's control connection. */
export interface NodePeerFacts {
  id: string;
  name: string;
  hostname: string;
  remoteAddress: string;
  runtime: string;
  slots: number;
  /** Round trip of its last heartbeat, ms. */
  rttMs?: number;
}

/** A connected node as `stats().nodes` shows it: `running` is what it was sent and has not reported. */
export function nodeStats(peer: NodePeerFacts, stat: NodeRecord, running: number, resources?: { declared: Record<string, number>; free: Record<string, number> }): NodeStats {
  const out: NodeStats = {
    id: peer.id,
    name: peer.name,
    hostname: peer.hostname,
    address: peer.remoteAddress,
    runtime: peer.runtime,
    local: stat.local,
    state: stat.state,
    slots: peer.slots,
    running,
    completed: stat.completed,
    failed: stat.failed,
    retried: stat.retried,
    connectedAt: stat.connectedAt,
  };
  if (peer.rttMs !== undefined) out.heartbeatRttMs = peer.rttMs;
  if (resources) out.resources = { declared: { ...resources.declared }, free: { ...resources.free } };
  return out;
}

/**
 * Upper bounds of the duration buckets, in seconds (Prometheus' `le`): 50 µs to an hour, about
 * three per decade. Fixed and few, so that recording a task costs a handful of comparisons —
 * hdr-histogram-js's recordValue and prom-client's Histogram.observe measured 35–90× the cost
 * of this loop per value, which a pool running 100,000 tasks a second would feel — and so that
 * every function's series in `/metrics` has the same buckets.
 */
export const BUCKETS_SECONDS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600] as const;
const BUCKETS_MS = BUCKETS_SECONDS.map((s) => s * 1000);

/** Counts of durations per bucket (the last one: above an hour), their sum and their maximum. */
export class DurationHistogram {
  readonly counts = new Float64Array(BUCKETS_MS.length + 1);
  count = 0;
  sumMs = 0;
  maxMs = 0;

  record(ms: number): void {
    let i = 0;
    while (i < BUCKETS_MS.length && ms > BUCKETS_MS[i]!) i++;
    this.counts[i]!++;
    this.count++;
    this.sumMs += ms;
    if (ms > this.maxMs) this.maxMs = ms;
  }

  /**
   * The duration below which `p` percent of them fall, interpolated within its bucket as
   * Prometheus' histogram_quantile does (so within that bucket's bounds), never above the max.
   */
  percentile(p: number): number {
    const rank = (p / 100) * this.count;
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      const c = this.counts[i]!;
      if (c > 0 && seen + c >= rank) {
        const lower = i === 0 ? 0 : BUCKETS_MS[i - 1]!;
        const upper = i < BUCKETS_MS.length ? BUCKETS_MS[i]! : this.maxMs;
        return Math.min(this.maxMs, lower + (upper - lower) * ((rank - seen) / c));
      }
      seen += c;
    }
    return this.maxMs;
  }

  summary(): DurationStats | undefined {
    if (this.count === 0) return undefined;
    return { count: this.count, mean: this.sumMs / this.count, p50: this.percentile(50), p90: this.percentile(90), p99: this.percentile(99), max: this.maxMs };
  }
}

const HISTORY_SECONDS = 60;
const MAX_LOST_NODES = 20;
const MAX_ERRORS = 20;
/** Spans kept for the dashboard between two of its updates. */
const MAX_SPANS = 2000;

export class ClusterStats {
  completed = 0;
  failed = 0;
  cancelled = 0;
  retried = 0;
  stolen = 0;
  readonly #functions = new Map<string, FunctionRecord>();
  readonly #lost: NodeRecord[] = [];
  readonly #lostInfo = new Map<NodeRecord, NodeStats>();
  /** Tasks settled in each of the last 60 seconds (a ring indexed by second). */
  readonly #settledPerSecond = new Float64Array(HISTORY_SECONDS);
  #second = 0;
  readonly #errors: RecentError[] = [];
  /** Task spans are kept only while someone watches (the dashboard is open). */
  watching = false;
  #spans: TaskSpan[] = [];
  #spansDropped = 0;

  /** The record of a function, made on first use. */
  functionRecord(name: string): FunctionRecord {
    let r = this.#functions.get(name);
    if (!r) this.#functions.set(name, r = new FunctionRecord(name));
    return r;
  }

  /** A task was sent after waiting `waitedMs` in the queue. */
  sent(fn: FunctionRecord, waitedMs: number): void {
    fn.queueWait.record(waitedMs);
  }

  /** A task ended on a node (`ranMs` there, when it says). Called once per settled task. */
  settled(fn: FunctionRecord, node: NodeRecord, ok: boolean, ranMs: number | undefined, nowMs: number): void {
    if (ok) {
      this.completed++;
      fn.completed++;
      node.completed++;
    } else {
      this.failed++;
      fn.failed++;
      node.failed++;
    }
    if (ranMs !== undefined) fn.duration.record(ranMs);
    this.#tick(nowMs);
    this.#settledPerSecond[this.#second % HISTORY_SECONDS]!++;
  }

  /** A task failed without running on a node (lost after its retries, could not be sent). */
  failedElsewhere(fn: FunctionRecord, nowMs: number): void {
    this.failed++;
    fn.failed++;
    this.#tick(nowMs);
    this.#settledPerSecond[this.#second % HISTORY_SECONDS]!++;
  }

  /** A task ended (for the task stream): built into a span only while there is room for it. */
  span(node: string, lane: number, fn: string, start: number, end: number, ok: boolean): void {
    if (this.#spans.length >= MAX_SPANS) {
      this.#spansDropped++;
      return;
    }
    this.#spans.push({ node, lane, fn, start, end, ok });
  }

  /** The spans since the last call, and how many did not fit. */
  takeSpans(): { spans: TaskSpan[]; dropped: number } {
    const out = { spans: this.#spans, dropped: this.#spansDropped };
    this.#spans = [];
    this.#spansDropped = 0;
    return out;
  }

  error(e: RecentError): void {
    this.#errors.unshift(e);
    if (this.#errors.length > MAX_ERRORS) this.#errors.length = MAX_ERRORS;
  }

  get recentErrors(): readonly RecentError[] {
    return this.#errors;
  }

  nodeLost(node: NodeRecord, last: NodeStats): void {
    node.state = 'lost';
    node.lostAt = Date.now();
    this.#lost.unshift(node);
    this.#lostInfo.set(node, { ...last, state: 'lost', running: 0, lostAt: node.lostAt });
    while (this.#lost.length > MAX_LOST_NODES) this.#lostInfo.delete(this.#lost.pop()!);
  }

  get lostNodes(): NodeStats[] {
    return this.#lost.map((n) => this.#lostInfo.get(n)!);
  }

  /** Moves the per-second ring to `nowMs`, clearing the seconds that passed without tasks. */
  #tick(nowMs: number): void {
    const second = Math.floor(nowMs / 1000);
    if (second === this.#second) return;
    const gap = Math.min(HISTORY_SECONDS, second - this.#second);
    for (let i = 1; i <= gap; i++) this.#settledPerSecond[(this.#second + i) % HISTORY_SECONDS] = 0;
    this.#second = second;
  }

  /** Tasks settled per second over the last full second, and over the last minute. */
  throughput(nowMs: number): { last1s: number; last60s: number } {
    this.#tick(nowMs);
    const ring = this.#settledPerSecond;
    let sum = 0;
    for (let i = 0; i < HISTORY_SECONDS; i++) sum += ring[i]!;
    // The current second is still filling: the last full one is the one before it.
    return { last1s: ring[(this.#second + HISTORY_SECONDS - 1) % HISTORY_SECONDS]!, last60s: sum / HISTORY_SECONDS };
  }

  functions(): FunctionStats[] {
    return [...this.#functions.values()].map((f) => {
      const out: FunctionStats = { name: f.name, completed: f.completed, failed: f.failed };
      const d = f.duration.summary();
      const q = f.queueWait.summary();
      if (d) out.duration = d;
      if (q) out.queueWait = q;
      return out;
    });
  }

  /** The function records, for exporters that read the histograms themselves. */
  get functionRecords(): IterableIterator<FunctionRecord> {
    return this.#functions.values();
  }
}
