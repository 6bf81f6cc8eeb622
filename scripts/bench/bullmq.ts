/**
 * The BullMQ peer: a Redis job queue with 2 worker processes (`bullmq-worker.ts`), each running
 * the benchmark's task module. The suite starts its own `redis-server` on a free loopback port,
 * with no persistence (no RDB snapshots, no AOF), and kills it at the end.
 *
 * Each workload uses what BullMQ offers as its fastest way:
 * - tiny tasks: `queue.addBulk` of every job at once, results read from `QueueEvents`
 *   ("completed", with the return value), tasks/s;
 * - sequential round trips: `queue.add`, then the job's "completed" event (p50, p99; what
 *   `job.waitUntilFinished` waits for, without its extra look-up of a job that
 *   `removeOnComplete` may already have removed);
 * - chunked map: jobs of 1000 items each, added with `addBulk`, the values read back in order;
 * - 1 MiB and 16 MiB payloads: job data is JSON, so the bytes travel as a base64 string and come
 *   back as one (counted as the raw bytes, 4 in flight);
 * - CPU-bound tasks: the speed-up of 2 worker processes over 1;
 * - recovery: a worker process killed (SIGKILL) while a batch of jobs runs. BullMQ moves the
 *   jobs it held back to the queue once their lock expires (stalled-job check); the figure is the
 *   batch's time over the same batch undisturbed.
 * Workers run the tiny and chunked workloads with CONCURRENCY jobs at a time each: on the 2-core
 * VM 1 and 10 were slower, and 50, 100, 200 and 500 alike within its noise (tiny tasks 4,000-7,500
 * jobs/s, jobs of 1000 items 1-2 M items/s). The CPU-bound and recovery workloads use 1.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { emitError, emitFigure, emitInfo, emitSkip, MiB, now, percentile, perSecond, progress, sequentialWarmup, suiteOptions, windowed } from './measure.ts';

const SUITE = 'bullmq';
const WORKERS = 2;
const CHUNKSIZE = 1_000;
const PAYLOAD_WINDOW = 4;
const CONCURRENCY = Number(process.env.WSF_BENCH_BULLMQ_CONCURRENCY ?? 100);
const { smoke } = suiteOptions();
const sizes = smoke
  ? { warmup: 200, tiny: 500, sequential: 50, mapped: 5_000, echo1: 2, echo16: 1, spinTasks: 2, spinRounds: 1_000_000, recovery: 0, maxMs: 2_000 }
  : { warmup: 5_000, tiny: 30_000, sequential: 3_000, mapped: 2_000_000, echo1: 100, echo16: 12, spinTasks: 8, spinRounds: 50_000_000, recovery: 40, maxMs: 10_000 };

type BullMQ = typeof import('bullmq');
let bullmq: BullMQ;
try {
  bullmq = await import('bullmq');
  await import('ioredis');
} catch (err) {
  emitSkip(`bullmq or ioredis is not installed (${(err as Error).message.split('\n')[0]})`);
  process.exit(0);
}
const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8', timeout: 10_000 });
if (probe.error || probe.status !== 0) {
  emitSkip('redis-server is not on the PATH (Debian: apt-get install redis-server)');
  process.exit(0);
}
const redisVersion = /v=(\S+)/.exec(probe.stdout)?.[1] ?? 'unknown';
emitInfo({ bullmq: (await import('bullmq/package.json', { with: { type: 'json' } })).default.version, redis: redisVersion });

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once the child prints `marker` on stdout; rejects if it exits first. */
function started(child: ChildProcess, marker: string, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      if (out.includes(marker)) {
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code, signal) => reject(new Error(`${what} exited (${code ?? signal}) before it was ready: ${out.slice(-500)}`)));
  });
}

const children = new Set<ChildProcess>();
const killAll = (): void => children.forEach((c) => c.kill('SIGKILL'));
process.on('exit', killAll);

const port = await freePort();
const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
children.add(redis);
await started(redis, 'Ready to accept connections', 'redis-server');
const connection = { host: '127.0.0.1', port };

const workerScript = fileURLToPath(new URL('./bullmq-worker.ts', import.meta.url));
let queueCount = 0;

/**
 * A queue with its own workers and its QueueEvents reader. Results are collected by job id as
 * "completed" events arrive, which may be before `add`/`addBulk` has returned the job's id.
 */
class Bench {
  readonly name = `bench-${process.pid}-${++queueCount}`;
  readonly queue = new bullmq.Queue(this.name, { connection, streams: { events: { maxLen: 100_000 } }, defaultJobOptions: { removeOnComplete: true, removeOnFail: true } });
  readonly events = new bullmq.QueueEvents(this.name, { connection });
  readonly workers: ChildProcess[] = [];
  #done = new Map<string, unknown>();
  #waiting = new Map<string, (value: unknown) => void>();
  #failed: Error | undefined;

  async start(workers: number, concurrency: number): Promise<this> {
    this.events.on('completed', ({ jobId, returnvalue }) => {
      const resolve = this.#waiting.get(jobId);
      if (resolve) {
        this.#waiting.delete(jobId);
        resolve(returnvalue);
      } else this.#done.set(jobId, returnvalue);
    });
    this.events.on('failed', ({ jobId, failedReason }) => {
      this.#failed = new Error(`job ${jobId} failed: ${failedReason}`);
    });
    await this.events.waitUntilReady();
    await this.queue.waitUntilReady();
    await Promise.all(Array.from({ length: workers }, () => this.addWorker(concurrency)));
    return this;
  }

  async addWorker(concurrency: number): Promise<void> {
    const child = spawn(process.execPath, ['--import', 'tsx', workerScript, String(port), this.name, String(concurrency)], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.add(child);
    this.workers.push(child);
    await started(child, 'ready', 'a BullMQ worker');
  }

  result(jobId: string | undefined): Promise<unknown> {
    if (jobId === undefined) throw new Error('a job has no id');
    if (this.#failed) throw this.#failed;
    if (this.#done.has(jobId)) {
      const value = this.#done.get(jobId);
      this.#done.delete(jobId);
      return Promise.resolve(value);
    }
    return new Promise((resolve) => this.#waiting.set(jobId, resolve));
  }

  /** Adds the jobs in one `addBulk` and resolves with their results in order. */
  async all(name: string, data: unknown[]): Promise<unknown[]> {
    const jobs = await this.queue.addBulk(data.map((d) => ({ name, data: d })));
    return Promise.all(jobs.map((job) => this.result(job.id)));
  }

  async close(): Promise<void> {
    for (const w of this.workers) {
      w.kill('SIGKILL');
      children.delete(w);
    }
    await Promise.allSettled([this.events.close(), this.queue.obliterate({ force: true }).finally(() => this.queue.close())]);
  }
}

async function tinyAllAtOnce(bench: Bench): Promise<void> {
  const t0 = now();
  const values = await bench.all('noop', Array.from({ length: sizes.tiny }, (_, i) => i));
  const ms = now() - t0;
  if (values[7] !== 7) throw new Error(`noop(7) returned ${String(values[7])}`);
  emitFigure({
    suite: SUITE,
    workload: 'tiny-all-at-once',
    label: 'bullmq tiny tasks all at once',
    value: perSecond(sizes.tiny, ms),
    unit: 'tasks/s',
    count: sizes.tiny,
    seconds: ms / 1000,
    note: `${WORKERS} worker processes, concurrency ${CONCURRENCY}, addBulk of ${sizes.tiny} jobs, results from QueueEvents`,
  });
}

async function sequential(bench: Bench): Promise<void> {
  const trip = async (i: number): Promise<void> => {
    const job = await bench.queue.add('noop', i);
    if ((await bench.result(job.id)) !== i) throw new Error(`noop(${i}) returned something else`);
  };
  for (let i = 0; i < Math.min(sequentialWarmup(smoke), 1_000); i++) await trip(i);
  const samples = new Float64Array(sizes.sequential);
  const t0 = now();
  let n = 0;
  for (; n < sizes.sequential && (n === 0 || now() < t0 + sizes.maxMs); n++) {
    const t = now();
    await trip(n);
    samples[n] = (now() - t) * 1000;
  }
  const seconds = (now() - t0) / 1000;
  const measured = samples.subarray(0, n);
  emitFigure({
    suite: SUITE,
    workload: 'sequential-p50',
    label: 'bullmq sequential p50',
    value: percentile(measured, 50),
    unit: 'µs',
    count: n,
    seconds,
    note: 'queue.add, then its completed event',
  });
  emitFigure({ suite: SUITE, workload: 'sequential-p99', label: 'bullmq sequential p99', value: percentile(measured, 99), unit: 'µs', count: n, seconds });
}

async function mapped(bench: Bench): Promise<void> {
  const t0 = now();
  const chunks: number[][] = [];
  for (let start = 0; start < sizes.mapped; start += CHUNKSIZE) chunks.push(Array.from({ length: Math.min(CHUNKSIZE, sizes.mapped - start) }, (_, i) => start + i));
  let n = 0;
  for (const values of (await bench.all('noop-chunk', chunks)) as number[][]) {
    for (const value of values) if (value === n) n++;
  }
  const ms = now() - t0;
  if (n !== sizes.mapped) throw new Error(`the chunks returned ${n} of ${sizes.mapped} values in order`);
  emitFigure({
    suite: SUITE,
    workload: 'map-chunked',
    label: `bullmq jobs of ${CHUNKSIZE} items`,
    value: perSecond(n, ms),
    unit: 'tasks/s',
    count: n,
    seconds: ms / 1000,
    note: `addBulk of ${chunks.length} jobs, each an array of ${CHUNKSIZE}`,
  });
}

async function payload(bench: Bench, mib: number, count: number): Promise<void> {
  const data = Buffer.alloc(mib * MiB, 7).toString('base64');
  const trip = async (): Promise<void> => {
    const job = await bench.queue.add('echo', data);
    const back = await bench.result(job.id);
    if (typeof back !== 'string' || back.length !== data.length) throw new Error('echo returned the wrong length');
  };
  await windowed(smoke ? 1 : 8, PAYLOAD_WINDOW, sizes.maxMs, trip);
  const { completed, ms } = await windowed(count, PAYLOAD_WINDOW, sizes.maxMs, trip);
  emitFigure({
    suite: SUITE,
    workload: `payload-${mib}mib`,
    label: `bullmq ${mib} MiB (base64) round trip`,
    value: perSecond(completed * mib, ms),
    unit: 'MiB/s',
    count: completed,
    seconds: ms / 1000,
    note: `${PAYLOAD_WINDOW} in flight, counted once as raw bytes; job data is JSON, so they travel as base64`,
  });
}

async function cpuSpeedup(): Promise<void> {
  const seconds: number[] = [];
  for (const workers of [1, WORKERS]) {
    const bench = await new Bench().start(workers, 1);
    try {
      await bench.all('noop', Array.from({ length: workers * 2 }, (_, i) => i));
      const t0 = now();
      await bench.all('spin', Array.from({ length: sizes.spinTasks }, () => sizes.spinRounds));
      seconds.push((now() - t0) / 1000);
    } finally {
      await bench.close();
    }
  }
  const [one, all] = seconds as [number, number];
  emitFigure({
    suite: SUITE,
    workload: 'cpu-speedup',
    label: `bullmq CPU-bound speed-up 1 -> ${WORKERS} workers`,
    value: one / all,
    unit: 'x',
    count: sizes.spinTasks,
    seconds: one + all,
    note: `${sizes.spinTasks} tasks: ${one.toFixed(2)} s on 1 worker, ${all.toFixed(2)} s on ${WORKERS}`,
  });
}

/**
 * A batch of 50 ms jobs (1 at a time per worker, as the other suites' slots), undisturbed, then
 * again with one worker process killed a quarter of the way in and a new one started in its
 * place, as a supervisor would. The lost job waits for BullMQ's stalled-job check: lockDuration
 * (30 s by default) is what the figure mostly measures.
 */
async function recovery(): Promise<void> {
  const n = sizes.recovery;
  const jobs = Array.from({ length: n }, (_, value) => ({ value, ms: 50 }));
  const bench = await new Bench().start(WORKERS, 1);
  try {
    const t0 = now();
    await bench.all('sleep', jobs);
    const calm = now() - t0;
    const t1 = now();
    const batch = bench.all('sleep', jobs);
    await new Promise((resolve) => setTimeout(resolve, calm / 4));
    bench.workers[0]!.kill('SIGKILL');
    await bench.addWorker(1);
    const values = await batch;
    const hit = now() - t1;
    if (!values.every((v, i) => v === i)) throw new Error('the batch came back wrong after a worker was killed');
    emitFigure({
      suite: SUITE,
      workload: 'recovery',
      label: 'bullmq batch with a worker killed, time ratio',
      value: hit / calm,
      unit: 'x',
      count: n,
      seconds: (calm + hit) / 1000,
      note: `${n} jobs of 50 ms: ${(calm / 1000).toFixed(2)} s undisturbed, ${
        (hit / 1000).toFixed(2)
      } s with one worker process killed a quarter of the way in (and a new one started)`,
    });
  } finally {
    await bench.close();
  }
}

async function step(name: string, run: () => Promise<void>): Promise<void> {
  progress(SUITE, name);
  try {
    await run();
  } catch (err) {
    emitError(SUITE, name, err);
  }
}

try {
  const bench = await new Bench().start(WORKERS, CONCURRENCY);
  await bench.all('noop', Array.from({ length: sizes.warmup }, (_, i) => i));
  await step('tiny tasks all at once', () => tinyAllAtOnce(bench));
  await step('sequential round trips', () => sequential(bench));
  await step(`jobs of ${CHUNKSIZE} items`, () => mapped(bench));
  await step('1 MiB', () => payload(bench, 1, sizes.echo1));
  // The smoke run checks that the suite runs: the rest starts more worker processes, seconds each.
  if (!smoke) {
    await step('16 MiB', () => payload(bench, 16, sizes.echo16));
    await bench.close();
    await step('CPU-bound speed-up', cpuSpeedup);
    await step('a worker killed mid-batch', recovery);
  }
} finally {
  killAll();
}
process.exit(0);
