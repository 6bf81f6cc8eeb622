/**
 * Busy polling (shared/busy-poll.ts): after a message, a coordinator or task thread may keep its
 * event loop polling for a short budget instead of sleeping. What a user would check: it costs
 * CPU only while on, never blocks the loop (sockets and timers are served while it polls), is
 * off under Deno, does not burn CPU where it cannot help, and a worker node started with
 * `--busy-poll 0` spends nothing on it. When it polls is the rule's business (its own tests:
 * poll-rule.test.ts).
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { type AddressInfo, connect, createServer } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProcessPoolExecutor } from '../coordinator/index.ts';
import { BusyPoll, coresContended } from '../shared/busy-poll.ts';
import { add } from './fixtures/tasks.ts';
import { spawnWorker, startPool, TASKS_URL } from './helpers/cluster.ts';

const IS_DENO = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined';
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('expectAnswer() polls until answered(), serving sockets and timers; not while answers take longer than the budget', async () => {
  const poll = new BusyPoll(60_000);
  if (IS_DENO) {
    // Measured slower under Deno, so it is always off there (see busy-poll.ts).
    assert.is(poll.enabled, false);
    return;
  }
  assert.is(poll.enabled, true);
  const server = createServer((s) => s.pipe(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  try {
    await sleep(50);
    const idle0 = cpuMs();
    await sleep(60);
    const idleCpu = cpuMs() - idle0;

    // The first wait is not measured: the other side had not been told to poll for it.
    poll.expectAnswer();
    poll.answered();
    assert.is(poll.state.polledMs, undefined);
    // The next: the typical wait is unknown, so it polls up to the whole budget.
    const t0 = performance.now();
    const c0 = cpuMs();
    poll.expectAnswer();
    const timerLate = await new Promise<number>((r) => {
      const due = performance.now() + 5;
      setTimeout(() => r(performance.now() - due), 5);
    });
    const echoed = await new Promise<string>((r) => {
      socket.once('data', (d) => r(d.toString()));
      socket.write('ping');
    });
    await sleep(Math.max(0, 50 - (performance.now() - t0)));
    poll.answered();
    const spinCpu = cpuMs() - c0;
    assert.is(echoed, 'ping');
    assert.ok(timerLate < 40, `a 5 ms timer fired ${timerLate.toFixed(1)} ms late while polling`);
    // CPU time is what a user would see in top: most of the 50 ms while polling (less when other
    // processes share the cores), ~nothing idle.
    assert.ok(spinCpu > Math.max(8, idleCpu * 3), `polling for 50 ms used ${spinCpu.toFixed(1)} ms of CPU (idle: ${idleCpu.toFixed(1)} ms)`);
    const polled = poll.state.polledMs!;
    assert.ok(polled >= 30 && polled < 200, `the polled wait was measured: ${polled} ms`);

    await sleep(20); // the last turn of the loop ends
    const after0 = cpuMs();
    await sleep(60);
    const afterCpu = cpuMs() - after0;
    assert.ok(afterCpu < Math.max(15, idleCpu * 3), `60 ms after answered() it used ${afterCpu.toFixed(1)} ms of CPU (idle: ${idleCpu.toFixed(1)} ms)`);
  } finally {
    socket.destroy();
    server.close();
  }

  // Answers that take longer than the budget, polled or not: polling would only burn CPU first.
  const short = new BusyPoll(5_000);
  for (let i = 0; i < 3; i++) {
    short.expectAnswer();
    await sleep(25);
    short.answered();
  }
  assert.is(short.state.polling, false);
  const c1 = cpuMs();
  short.expectAnswer();
  await sleep(40);
  short.answered();
  assert.ok(cpuMs() - c1 < 15, `it polled for an answer that typically takes ${short.state.sleptMs} ms, past its 5 ms budget`);

  const off = new BusyPoll(0);
  assert.is(off.enabled, false);
  const c2 = cpuMs();
  off.expectAnswer();
  await sleep(40);
  assert.ok(cpuMs() - c2 < 15, 'a budget of 0 polls nothing');
});

test('cores are seen as contended within seconds of other work taking them all, and free again within seconds after', async () => {
  if (IS_DENO || process.platform !== 'linux') return; // off under Deno; elsewhere the load average
  const { Worker } = await import('node:worker_threads');
  const free = async (): Promise<boolean> => {
    for (let i = 0; i < 30; i++, await sleep(100)) if (!coresContended()) return true;
    return false;
  };
  // Another process may be busy already on a shared machine: then only the first half is asked.
  const wasFree = await free();
  const spinners = Array.from({ length: availableParallelism() }, () => new Worker('for (;;);', { eval: true }));
  try {
    let seen = false;
    for (let i = 0; i < 30 && !seen; i++, await sleep(100)) seen = coresContended();
    assert.ok(seen, `${availableParallelism()} threads spinning for 3 s, and the cores were not seen as contended`);
  } finally {
    await Promise.all(spinners.map((w) => w.terminate()));
  }
  if (wasFree) assert.ok(await free(), 'the cores were still seen as contended 3 s after the spinning stopped');
});

test('busyPollMicros is checked: a non-negative integer of at most 10000', () => {
  const make = (busyPollMicros: unknown) => () => new ProcessPoolExecutor({ tasks: TASKS_URL, maxWorkers: 0, busyPollMicros: busyPollMicros as number, log: false });
  assert.throws(make(-1), (e: Error) => e instanceof RangeError && e.message === 'busyPollMicros must be a non-negative integer: got -1');
  assert.throws(make(2.5), (e: Error) => e instanceof RangeError && e.message === 'busyPollMicros must be a non-negative integer: got 2.5');
  assert.throws(make('50'), (e: Error) => e instanceof TypeError && e.message === 'busyPollMicros must be a non-negative integer: got "50"');
  assert.throws(make(20_000), (e: Error) => e instanceof RangeError && e.message === 'busyPollMicros must be at most 10000 (10 ms): got 20000; 0 turns busy polling off');
});

test('a bad --busy-poll is refused (exit 2, naming the flag and the value)', async () => {
  const w = spawnWorker({ url: 'ws://127.0.0.1:9/wsfutures', token: 'tok-12345678', args: ['--busy-poll', '20000'] });
  assert.is(await w.exited, 2);
  assert.match(w.output, '--busy-poll must be a number of microseconds from 0 to 10000: got "20000"');
});

/** CPU time of a process, ms, from /proc (Linux). */
function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in 1/100 s
}

test('task threads do not poll through gaps that polling cannot shorten, though the budget would cover them', async () => {
  // Two pools, one node each, fed in turns (so both see the same load from whatever else runs
  // on this machine): 200 tasks each, awaited one at a time, 3 ms apart. A 10 ms budget would
  // let a task thread poll through every gap (~600 ms of CPU), but the next task comes 3 ms
  // later either way: polling would save a wake-up of tens of microseconds out of 3 ms. The
  // node measures that and sleeps, bar a few probes: about the CPU of a node started with
  // --busy-poll 0, which never polls.
  const polling = await startPool({ maxWorkers: 0, busyPollMicros: 10_000 }, undefined);
  const quiet = await startPool({ maxWorkers: 0, busyPollMicros: 10_000 }, undefined);
  const pollingNode = spawnWorker({ url: polling.url!, token: polling.token });
  const quietNode = spawnWorker({ url: quiet.url!, token: quiet.token, args: ['--busy-poll', '0'] });
  try {
    await Promise.all([polling.ready(1, { timeout: 30_000 }), quiet.ready(1, { timeout: 30_000 })]);
    for (let i = 0; i < 20; i++) {
      assert.is(await polling.submit(add, i, 1), i + 1);
      assert.is(await quiet.submit(add, i, 1), i + 1);
      await sleep(3);
    }
    const before = [processCpuMs(pollingNode.child.pid!), processCpuMs(quietNode.child.pid!)];
    for (let i = 0; i < 200; i++) {
      assert.is(await polling.submit(add, i, 2), i + 2);
      assert.is(await quiet.submit(add, i, 3), i + 3);
      await sleep(3);
    }
    const used = [processCpuMs(pollingNode.child.pid!) - before[0]!, processCpuMs(quietNode.child.pid!) - before[1]!];
    assert.ok(used[0]! < used[1]! * 1.5 + 60, `the node allowed to poll used ${used[0]} ms of CPU for 200 tasks, the one started with --busy-poll 0 ${used[1]} ms`);
  } finally {
    await Promise.all([pollingNode.kill(), quietNode.kill()]);
    await Promise.all([polling.shutdown(), quiet.shutdown()]);
  }
});

test.run();
