/**
 * `/metrics`: the pool's figures in the Prometheus text format, made by prom-client from
 * `pool.stats()` and the per-function duration buckets at scrape time (nothing is counted twice
 * on the task path). Label sets are bounded: `function` by the task modules' exports, `node` by
 * the connected nodes (a lost node's series go with it).
 */
import client from 'prom-client';
import { BUCKETS_SECONDS, type ClusterStats, type DurationHistogram, type PoolStats } from './cluster-stats.ts';

interface Sample {
  labels?: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** A metric whose samples are computed when scraped; prom-client formats it. */
function collector(name: string, help: string, type: 'counter' | 'gauge' | 'histogram', samples: () => Sample[]) {
  return { name, help, type, aggregator: 'sum' as const, get: async () => ({ name, help, type, aggregator: 'sum' as const, values: samples() }) };
}

function histogramSamples(name: string, labels: Record<string, string>, h: DurationHistogram): Sample[] {
  const out: Sample[] = [];
  let cumulative = 0;
  for (let i = 0; i < BUCKETS_SECONDS.length; i++) {
    cumulative += h.counts[i]!;
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: BUCKETS_SECONDS[i]! }, value: cumulative });
  }
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: h.count });
  out.push({ metricName: `${name}_sum`, labels, value: h.sumMs / 1000 });
  out.push({ metricName: `${name}_count`, labels, value: h.count });
  return out;
}

export class PoolMetrics {
  readonly registry = new client.Registry();
  #snapshot: PoolStats | undefined;

  constructor(stats: () => PoolStats, cluster: ClusterStats) {
    // One snapshot per scrape, taken by the first metric asked and shared by the others.
    const snap = (): PoolStats => (this.#snapshot ??= stats());
    const connected = () => snap().nodes.filter((n) => n.state !== 'lost');
    const metrics = [
      collector('wsfutures_tasks_total', 'Tasks that ended, by how (a chunk of map() counts once).', 'counter', () => {
        const s = snap();
        return [
          { labels: { result: 'completed' }, value: s.completed },
          { labels: { result: 'failed' }, value: s.failed },
          { labels: { result: 'cancelled' }, value: s.cancelled },
        ];
      }),
      collector('wsfutures_task_retries_total', 'Re-runs of tasks whose node or thread was lost.', 'counter', () => [{ value: snap().retried }]),
      collector('wsfutures_tasks_queued', 'Tasks waiting for a slot.', 'gauge', () => [{ value: snap().queued }]),
      collector('wsfutures_tasks_running', 'Tasks sent to worker nodes and not yet settled.', 'gauge', () => [{ value: snap().running }]),
      collector('wsfutures_slots', 'Slots of connected worker nodes that take work.', 'gauge', () => [{ value: snap().slots }]),
      collector('wsfutures_nodes', 'Worker nodes by state (lost: the last ones, at most 20).', 'gauge', () => {
        const counts: Record<string, number> = { joining: 0, ready: 0, draining: 0, lost: 0 };
        for (const n of snap().nodes) counts[n.state]!++;
        return Object.entries(counts).map(([state, value]) => ({ labels: { state }, value }));
      }),
      collector(
        'wsfutures_node_slots',
        'Task slots of each connected worker node.',
        'gauge',
        () => connected().map((n) => ({ labels: { node: n.name, id: n.id }, value: n.slots })),
      ),
      collector(
        'wsfutures_node_tasks_running',
        'Tasks running on each connected worker node.',
        'gauge',
        () => connected().map((n) => ({ labels: { node: n.name, id: n.id }, value: n.running })),
      ),
      collector('wsfutures_node_tasks_total', 'Tasks that ended on each connected worker node, by how.', 'counter', () =>
        connected().flatMap((n) => [
          { labels: { node: n.name, id: n.id, result: 'completed' }, value: n.completed },
          { labels: { node: n.name, id: n.id, result: 'failed' }, value: n.failed },
          { labels: { node: n.name, id: n.id, result: 'retried' }, value: n.retried },
        ])),
      collector(
        'wsfutures_node_heartbeat_rtt_seconds',
        'Round trip of the last heartbeat of each connected worker node.',
        'gauge',
        () => connected().flatMap((n) => (n.heartbeatRttMs === undefined ? [] : [{ labels: { node: n.name, id: n.id }, value: n.heartbeatRttMs / 1000 }])),
      ),
      collector('wsfutures_function_tasks_total', 'Tasks that ended, per task function and how.', 'counter', () =>
        [...cluster.functionRecords].flatMap((f) => [
          { labels: { function: f.name, result: 'completed' }, value: f.completed },
          { labels: { function: f.name, result: 'failed' }, value: f.failed },
        ])),
      collector(
        'wsfutures_task_duration_seconds',
        'How long tasks ran on the worker nodes, per task function.',
        'histogram',
        () => [...cluster.functionRecords].flatMap((f) => histogramSamples('wsfutures_task_duration_seconds', { function: f.name }, f.duration)),
      ),
      collector(
        'wsfutures_task_queue_wait_seconds',
        'How long tasks waited between submit and being sent to a node, per task function.',
        'histogram',
        () => [...cluster.functionRecords].flatMap((f) => histogramSamples('wsfutures_task_queue_wait_seconds', { function: f.name }, f.queueWait)),
      ),
    ];
    for (const m of metrics) this.registry.registerMetric(m as unknown as client.Metric);
  }

  /** The exposition text, and its content type. */
  async scrape(): Promise<{ text: string; contentType: string }> {
    this.#snapshot = undefined;
    try {
      return { text: await this.registry.metrics(), contentType: this.registry.contentType };
    } finally {
      this.#snapshot = undefined;
    }
  }
}
