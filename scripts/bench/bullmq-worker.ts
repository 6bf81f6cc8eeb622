/**
 * One BullMQ worker process of the BullMQ peer (`bullmq.ts` starts two). Usage:
 * bullmq-worker.ts PORT QUEUE CONCURRENCY. It runs the benchmark's task module on the jobs of
 * QUEUE at 127.0.0.1:PORT; a job's name picks the task, its data is the argument. It writes
 * "ready" to stdout once it is connected, and runs until it is killed.
 */
import { Worker } from 'bullmq';
import { noop, spin } from './tasks.ts';

const [port, queue, concurrency] = process.argv.slice(2);
if (!port || !queue || !concurrency) throw new TypeError('usage: bullmq-worker.ts PORT QUEUE CONCURRENCY');

// Job data travels as JSON: a payload is a base64 string, returned as is.
const TASKS: Record<string, (data: never) => unknown> = {
  noop: (value: number) => noop(value),
  'noop-chunk': (values: number[]) => values.map(noop),
  echo: (data: string) => data,
  spin: (rounds: number) => spin(rounds),
  pid: () => process.pid,
  sleep: ({ value, ms }: { value: number; ms: number }) => new Promise((resolve) => setTimeout(resolve, ms, value)),
};

const worker = new Worker(
  queue,
  async (job) => {
    const task = TASKS[job.name];
    if (!task) throw new Error(`no task named ${job.name}`);
    return task(job.data as never);
  },
  { connection: { host: '127.0.0.1', port: Number(port) }, concurrency: Number(concurrency), removeOnComplete: { count: 0 }, removeOnFail: { count: 0 } },
);
await worker.waitUntilReady();
process.stdout.write('ready\n');
