/**
 * `wsfutures loadtest --self`: a load test of the cluster itself. Tiny, sleeping, CPU-bound or
 * payload tasks at a given rate (open model) or concurrency (closed), on worker nodes this
 * command starts (`nodes` of them, `slotsPerNode` each) and on any that join over the LAN;
 * optionally with chaos: a random local node SIGKILLed every so often and replaced, or frozen
 * (SIGSTOP) for a while. Every result is checked against its input and every future must
 * settle: the run fails if one is lost (never settles) or wrong.
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as hdr from 'hdr-histogram-js';
import type { SelfTestResult } from '../shared/selftest-tasks.ts';
import { isDenoRuntime, LocalWorkers } from './local-workers.ts';
import { ProcessPoolExecutor, type ProcessPoolExecutorOptions } from './process-pool.ts';
import type { Future } from './future.ts';

export type SelfTestTask = { kind: 'tiny' } | { kind: 'sleep'; ms: number } | { kind: 'cpu'; ms: number } | { kind: 'payload'; bytes: number };

export interface ClusterLoadTestOptions {
  task: SelfTestTask;
  /** Open model: tasks submitted per second. */
  rate?: number;
  /** Closed model: tasks in flight (default 1000 when no rate is given). */
  concurrency?: number;
  /** Stop submitting after this long, ms (default 10 s unless `tasks` is given). */
  durationMs?: number;
  /** Stop after this many tasks. */
  tasks?: number;
  /** Local worker-node processes to start, and slots each (default: 2 nodes sharing the cores). */
  nodes?: number;
  slotsPerNode?: number;
  /** SIGKILL a random local node this often (ms) and start a replacement. */
  killEveryMs?: number;
  /** Freeze (SIGSTOP) a random local node this often for this long (ms), then let it go on. */
  stop?: { everyMs: number; forMs: number };
  pool?: Omit<ProcessPoolExecutorOptions, 'tasks' | 'maxWorkers'>;
  /** Wait for this many slots before starting (default: the local ones). */
  minSlots?: number;
  onProgress?: (p: { elapsedMs: number; submitted: number; settled: number; rate: number; kills: number; stops: number; slots: number }) => void;
}

export interface ClusterLoadTestResult {
  ok: boolean;
  submitted: number;
  completed: number;
  /** Settled with an error, by code (a lost node after its retries, a timeout…). */
  failed: Record<string, number>;
  /** Never settled. Must be 0. */
  lost: number;
  /** Settled with a value other than the right one. Must be 0. */
  wrong: number;
  /** Tasks sent again after their node was lost while they were on it: they may have run twice. */
  reruns: number;
  kills: number;
  stops: number;
  durationMs: number;
  /** Settled tasks per second. */
  throughput: number;
  /** From submit to settled, ms. */
  latency: { p50: number; p90: number; p99: number; max: number };
}

const FROM_SOURCES = import.meta.url.endsWith('.ts');
const TASKS = new URL(FROM_SOURCES ? '../shared/selftest-tasks.ts' : '../shared/selftest-tasks.js', import.meta.url);

export async function clusterLoadTest(options: ClusterLoadTestOptions): Promise<ClusterLoadTestResult> {
  const nodes = options.nodes ?? 2;
  const slotsPerNode = options.slotsPerNode ?? Math.max(1, Math.floor(availableParallelism() / nodes));
  const pool = new ProcessPoolExecutor({
    heartbeatIntervalMs: 500,
    heartbeatTimeoutMs: 2500,
    // Chaos may hit a task several times: it must still settle with its value.
    maxRetries: 20,
    // Nodes come and go on purpose here: their lines would only hide the summary.
    log: false,
    ...options.pool,
    tasks: fileURLToPath(TASKS),
    maxWorkers: 0,
  });
  const tasks = (await import(TASKS.href)) as typeof import('../shared/selftest-tasks.ts');
  const url = await pool.listening;
  const locals: LocalWorkers[] = [];
  // A node that connected started well: its LocalWorkers stops counting failed starts.
  const offReady = pool.on('nodeReady', (n) => locals.find((_, i) => n.name.startsWith(`self${i + 1}-`))?.connected());
  for (let i = 0; i < nodes; i++) {
    const l = new LocalWorkers({
      token: pool.token,
      slots: slotsPerNode,
      runtime: isDenoRuntime() ? 'deno' : 'node',
      maxMessageBytes: 64 * 1024 * 1024,
      name: `self${i + 1}`,
      onBroken: (m) => console.error(`[wsfutures loadtest] ${m}`),
      log: () => {},
    });
    l.start(pool.url ?? url);
    locals.push(l);
  }
  const timers: ReturnType<typeof setInterval>[] = [];
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
  try {
    await pool.ready(options.minSlots ?? nodes * slotsPerNode, { timeout: 60_000 });
    const payloadData = options.task.kind === 'payload' ? new Uint8Array(options.task.bytes).fill(7) : undefined;
    const submit = (i: number): Future<SelfTestResult> => {
      const t = options.task;
      if (t.kind === 'tiny') return pool.submit(tasks.tiny, i);
      if (t.kind === 'sleep') return pool.submit(tasks.sleep, i, t.ms);
      if (t.kind === 'cpu') return pool.submit(tasks.cpu, i, t.ms);
      return pool.submit(tasks.payload, i, payloadData!) as Future<SelfTestResult>;
    };
    let kills = 0;
    let stops = 0;
    // Chaos strikes nodes that are up, as it would in production: a node still starting is
    // left alone (hitting it again and again would only count as a node that cannot start).
    const pick = (): LocalWorkers | undefined => {
      const up = locals.filter((l) => l.isConnected);
      return up[Math.floor(Math.random() * up.length)];
    };
    if (options.killEveryMs) {
      timers.push(setInterval(() => {
        const l = pick();
        if (!l) return;
        l.kill('SIGKILL'); // LocalWorkers starts a replacement
        kills++;
      }, options.killEveryMs));
    }
    if (options.stop) {
      const { everyMs, forMs } = options.stop;
      timers.push(setInterval(() => {
        const l = pick();
        if (!l) return;
        l.kill('SIGSTOP');
        stops++;
        setTimeout(() => l.kill('SIGCONT'), forMs);
      }, everyMs));
    }

    const started = Date.now();
    const durationMs = options.durationMs ?? (options.tasks !== undefined ? Infinity : 10_000);
    const limit = options.tasks ?? Infinity;
    let submitted = 0;
    let settled = 0;
    let completed = 0;
    let wrong = 0;
    let reruns = 0;
    const failed: Record<string, number> = {};
    const pending = new Set<Future<SelfTestResult>>();
    const track = (i: number) => {
      const t0 = performance.now();
      const f = submit(i);
      submitted++;
      pending.add(f);
      // Counted as settled at once (done callbacks run in order: before any refill); the value
      // is checked when it is read.
      f.addDoneCallback(() => {
        settled++;
        pending.delete(f);
      });
      f.then<void, void>(
        (r) => {
          histogram.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
          completed++;
          if (r.v !== 3 * i + 1) wrong++;
          if (r.attempt > 1) reruns++;
        },
        (err: unknown) => {
          const e = err as { code?: string; name?: string } | undefined;
          const code = e?.code ?? e?.name ?? 'Error';
          failed[code] = (failed[code] ?? 0) + 1;
        },
      );
      return f;
    };
    const more = () => submitted < limit && Date.now() - started < durationMs;
    let lastSettled = 0;
    const progress = setInterval(() => {
      options.onProgress?.({ elapsedMs: Date.now() - started, submitted, settled, rate: settled - lastSettled, kills, stops, slots: pool.slots });
      lastSettled = settled;
    }, 1000);
    timers.push(progress);
    if (options.rate !== undefined) {
      // Open model: submits at the asked rate, in small batches on a timer.
      let due = 0;
      const tick = 10;
      while (more()) {
        due += (options.rate * tick) / 1000;
        while (due >= 1 && more()) {
          track(submitted);
          due--;
        }
        await new Promise((r) => setTimeout(r, tick));
      }
    } else {
      const concurrency = options.concurrency ?? 1000;
      await new Promise<void>((resolve) => {
        const refill = () => {
          while (pending.size < concurrency && more()) track(submitted).addDoneCallback(() => queueMicrotask(refill));
          if (pending.size === 0 && !more()) resolve();
        };
        refill();
      });
    }
    // Everything submitted must settle; what has not within a minute is lost.
    const deadline = Date.now() + 60_000;
    while (pending.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const elapsed = Date.now() - started;
    const lost = pending.size;
    await new Promise((r) => setTimeout(r, 0)); // the last values are read
    const ms = (us: number) => us / 1000;
    return {
      ok: lost === 0 && wrong === 0,
      submitted,
      completed,
      failed,
      lost,
      wrong,
      reruns,
      kills,
      stops,
      durationMs: elapsed,
      throughput: settled / (elapsed / 1000),
      latency: {
        p50: ms(histogram.getValueAtPercentile(50)),
        p90: ms(histogram.getValueAtPercentile(90)),
        p99: ms(histogram.getValueAtPercentile(99)),
        max: ms(histogram.maxValue),
      },
    };
  } finally {
    for (const t of timers) clearInterval(t);
    offReady();
    for (const l of locals) l.kill('SIGCONT');
    await pool.shutdown({ cancelFutures: true });
    await Promise.all(locals.map((l) => l.close()));
    histogram.destroy();
  }
}
