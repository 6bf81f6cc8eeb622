/**
 * Resources on real worker nodes: nodes declare them (`--resources gpu=1`), tasks ask for them
 * (`submitWith({ resources })`, `map(…, { resources })`) and run only where they fit, never more
 * at once than a node declared; a request no node can meet waits, warns, is picked up by a node
 * that joins with it, and fails clearly at its timeout.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AsyncPoolExecutor, ProcessPoolExecutor, TimeoutError } from '../coordinator/index.ts';
import { sleepSpan, whereAmI } from './fixtures/resource-tasks.ts';
import { spawnWorker, waitFor, within, type WorkerProcess } from './helpers/cluster.ts';
import { connectRawPeer } from './helpers/raw-peer.ts';

const TASKS = new URL('./fixtures/resource-tasks.ts', import.meta.url);

async function remotePool(logs?: string[]): Promise<ProcessPoolExecutor> {
  const pool = new ProcessPoolExecutor({ tasks: TASKS, maxWorkers: 0, log: logs ? (level, m) => logs.push(`${level}: ${m}`) : false });
  await waitFor(() => pool.url !== undefined, 10_000, 'the pool listening');
  return pool;
}

function node(pool: ProcessPoolExecutor, name: string, concurrency: number, resources?: string): WorkerProcess {
  return spawnWorker({ url: pool.url!, token: pool.token, name, concurrency, args: resources ? ['--resources', resources] : [] });
}

test('tasks asking for gpu:1 all run on the node that declares gpu=1, one at a time; the others run anywhere', async () => {
  const pool = await remotePool();
  const workers = [node(pool, 'plain', 2), node(pool, 'gpu', 2, 'gpu=1,mem=16GB')];
  try {
    await pool.ready(4, { timeout: 30_000 });
    const gpuNode = pool.stats().nodes.find((n) => n.name === 'gpu')!;
    assert.equal(gpuNode.resources?.declared, { gpu: 1, mem: 16e9 });
    const gpuPid = workers[1]!.child.pid;
    const gpu = Array.from({ length: 6 }, () => pool.submitWith({ resources: { gpu: 1 } }, sleepSpan, 80));
    const plain = Array.from({ length: 8 }, () => pool.submit(sleepSpan, 40));
    const mapped: { pid: number }[] = [];
    for await (const r of pool.map(sleepSpan, [30, 30], { resources: { gpu: 1, mem: '8GB' } })) mapped.push(r);
    const spans = await within(Promise.all(gpu), 20_000, 'the gpu tasks');
    const plainSpans = await Promise.all(plain);
    for (const s of [...spans, ...mapped]) assert.is(s.pid, gpuPid, 'a gpu task ran on the node with the GPU');
    // Never two at once: sorted by start, each starts after the one before has ended.
    const sorted = [...spans].sort((a, b) => a.start - b.start);
    for (let i = 1; i < sorted.length; i++) assert.ok(sorted[i]!.start >= sorted[i - 1]!.end, `gpu tasks overlapped: ${JSON.stringify(sorted)}`);
    assert.ok(plainSpans.some((s) => s.pid !== gpuPid), 'plain tasks ran on the other node too');
    assert.equal(pool.stats().nodes.find((n) => n.name === 'gpu')!.resources?.free, { gpu: 1, mem: 16e9 }, 'everything given back');
  } finally {
    await pool.shutdown({ cancelFutures: true });
    await Promise.all(workers.map((w) => w.kill()));
  }
});

test('a request no node can meet waits and warns once; a node that joins with it runs it; with a timeout it fails, naming what was asked and what nodes declare', async () => {
  const logs: string[] = [];
  const pool = await remotePool(logs);
  const workers = [node(pool, 'gpu-only', 1, 'gpu=1')];
  try {
    await pool.ready(1, { timeout: 30_000 });
    const waiting = pool.submitWith({ resources: { tpu: 2 } }, whereAmI);
    const timedOut = pool.submitWith({ resources: { gpu: 4 }, timeout: 300 }, whereAmI);
    const err = await within(timedOut.exception(), 5_000, 'the timeout');
    assert.instance(err, TimeoutError);
    assert.match(String((err as Error).message), /gpu=4/);
    assert.match(String((err as Error).message), /gpu-only.*gpu=1/);
    assert.match(String((err as Error).message), /--resources gpu=4/);
    // Its own from-start timeout does not apply to the wait; it is still queued.
    assert.is(waiting.state, 'PENDING');
    await waitFor(() => logs.some((l) => l.includes('no connected worker node declares')), 10_000, 'the warning');
    const warning = logs.filter((l) => l.includes('no connected worker node declares'));
    assert.is(warning.length, 1);
    assert.match(warning[0]!, /whereAmI\(\) asks for tpu=2/);
    assert.match(warning[0]!, /--resources tpu=2/);
    workers.push(node(pool, 'tpu', 1, 'tpu=2'));
    const pid = await within(waiting, 20_000, 'the tpu task once a tpu node joined');
    assert.is(pid, workers[1]!.child.pid);
  } finally {
    await pool.shutdown({ cancelFutures: true });
    await Promise.all(workers.map((w) => w.kill()));
  }
});

test('the only node declaring a resource leaves with requests for it queued: they warn, one with a timeout fails then, and a node that joins with it runs the rest', async () => {
  const logs: string[] = [];
  const pool = await remotePool(logs);
  const workers = [node(pool, 'plain', 1), node(pool, 'gpu', 1, 'gpu=1')];
  try {
    await pool.ready(2, { timeout: 30_000 });
    const running = pool.submitWith({ resources: { gpu: 1 } }, sleepSpan, 2_000);
    await waitFor(() => pool.stats().nodes.find((n) => n.name === 'gpu')?.running === 1, 10_000, 'the gpu task running');
    // Queued behind it while a node declares gpu: neither warns nor times out yet.
    const bounded = pool.submitWith({ resources: { gpu: 1 }, timeout: 1_500 }, whereAmI);
    const patient = pool.submitWith({ resources: { gpu: 1 } }, whereAmI);
    await workers[1]!.kill();
    const lostAt = Date.now();
    const err = await within(bounded.exception(), 10_000, 'the timeout of the task queued for gpu');
    assert.ok(Date.now() - lostAt >= 1_400, 'its timeout counts from the moment no node declared gpu');
    assert.instance(err, TimeoutError);
    assert.match(String((err as Error).message), /asked for resources gpu=1 and waited 1500 ms/);
    assert.match(String((err as Error).message), /Connected worker nodes declare plain.*: \(none\)/);
    assert.match(String((err as Error).message), /--resources gpu=1/);
    await waitFor(() => logs.some((l) => l.includes('no connected worker node declares')), 10_000, 'the warning');
    const warning = logs.filter((l) => l.includes('no connected worker node declares'));
    assert.is(warning.length, 1);
    assert.match(warning[0]!, /2 task\(s\)/);
    assert.match(warning[0]!, /sleepSpan\(\) asks for gpu=1; whereAmI\(\) asks for gpu=1/);
    assert.is(patient.state, 'PENDING');
    workers.push(node(pool, 'gpu2', 1, 'gpu=1'));
    const pid = await within(patient, 20_000, 'the patient task once a gpu node joined');
    assert.is(pid, workers[2]!.child.pid);
    assert.is((await within(running, 20_000, 'the task that was running on the lost node')).pid, workers[2]!.child.pid);
  } finally {
    await pool.shutdown({ cancelFutures: true });
    await Promise.all(workers.map((w) => w.kill()));
  }
});

test('bad resources are refused with the option, the value and the form expected', async () => {
  const pool = new ProcessPoolExecutor({ tasks: TASKS, maxWorkers: 0, log: false });
  const local = new AsyncPoolExecutor({ maxWorkers: 1 });
  try {
    assert.throws(
      () => pool.submitWith({ resources: { gpu: 0 } }, whereAmI),
      (e: Error) => e instanceof RangeError && /options\.resources\.gpu must be a positive number.*got 0/.test(e.message),
    );
    assert.throws(() => pool.submitWith({ resources: { gpu: 'lots' } }, whereAmI), (e: Error) => e instanceof RangeError && /options\.resources\.gpu.*got "lots"/.test(e.message));
    assert.throws(() => pool.submitWith({ resources: [1] as never }, whereAmI), (e: Error) => e instanceof TypeError && /options\.resources must be an object/.test(e.message));
    assert.throws(() => pool.submitWith({ resources: { 'bad name': 1 } }, whereAmI), /"bad name" is not a resource name/);
    assert.throws(() => pool.map(whereAmI, [1], { resources: { gpu: -1 } }), /options\.resources\.gpu/);
    assert.throws(
      () => local.submitWith({ resources: { gpu: 1 } }, whereAmI),
      (e: Error) => e instanceof TypeError && /options\.resources is for ProcessPoolExecutor/.test(e.message),
    );
    assert.throws(() => new ProcessPoolExecutor({ tasks: TASKS, maxWorkers: 0, localResources: { gpu: 'x' } }), /localResources\.gpu/);
    await waitFor(() => pool.url !== undefined, 10_000, 'the pool listening');
    const bad = spawnWorker({ url: pool.url!, token: pool.token, args: ['--resources', 'gpu'] });
    assert.is(await within(bad.exited, 20_000, 'the worker with a bad flag'), 2);
    assert.match(bad.output, /--resources: "gpu" is not NAME=AMOUNT/);
    const unit = spawnWorker({ url: pool.url!, token: pool.token, args: ['--resources', 'mem=16XB'] });
    assert.is(await within(unit.exited, 20_000, 'the worker with a bad unit'), 2);
    assert.match(unit.output, /KiB, MiB, GiB, TiB/);
  } finally {
    await pool.shutdown();
    await local.shutdown();
  }
});

test('a register whose resources are malformed closes that connection as a protocol error', async () => {
  const pool = new ProcessPoolExecutor({ tasks: TASKS, maxWorkers: 0, log: false });
  try {
    await waitFor(() => pool.url !== undefined, 10_000, 'the pool listening');
    for (const resources of [{ gpu: 'x' }, { gpu: -1 }, { __proto__x: 1, ['__proto__']: 1 }, [1], Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`r${i}`, 1]))]) {
      const peer = await connectRawPeer(pool.url!, pool.token);
      peer.send({ op: 'register', name: 'raw', slots: 1, runtime: 'node', runtimeVersion: '20', hostname: 'h', pid: 1, resources });
      const { code, reason } = await within(peer.closed, 5_000, 'the close');
      assert.is(code, 4000, `${JSON.stringify(resources)}: ${reason}`);
      assert.match(reason, /resources/);
    }
    assert.is(pool.stats().nodes.length, 0);
  } finally {
    await pool.shutdown();
  }
});

test.run();
