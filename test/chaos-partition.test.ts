/**
 * Chaos: a network partition. A worker node runs inside a network namespace, joined to this
 * one by a veth pair on a private /30; the coordinator listens on the host side's address (with
 * a token, as any non-loopback pool must) and also has a local node. Taking the namespace's end
 * of the link down drops every packet both ways with no close on either side: the pool must
 * find the remote node lost by heartbeats and finish its tasks on the local node; once the link
 * is back, the remote node must reconnect and take work again.
 *
 * Needs root and iproute2 (`ip`); .ci/run installs iproute2 and runs as root. Elsewhere the
 * test says why it did not run and passes. It runs under Node only: it exercises the kernel's
 * network and the coordinator's heartbeats, not the runtime, and one run is enough for the CI
 * budget.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { where } from './fixtures/chaos-tasks.ts';
import { CHAOS_TASKS_URL, IS_DENO } from './helpers/chaos.ts';
import { spawnWorker, startPool, waitFor, within, type WorkerProcess } from './helpers/cluster.ts';

const INTERVAL_MS = 300;
const TIMEOUT_MS = 1500;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Why this test cannot run here, or undefined when it can. */
function cannotRun(): string | undefined {
  if (IS_DENO) return 'runs under Node only (the partition does not depend on the runtime; one run keeps the CI budget)';
  if (process.getuid?.() !== 0) return 'needs root to create a network namespace';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'needs iproute2 (`ip`): apt-get install iproute2';
  }
  return undefined;
}

test('a partitioned node is found lost by heartbeats, its tasks finish on the local node, and it reconnects and works once the link is back', async () => {
  const why = cannotRun();
  if (why) return void console.log(`  chaos-partition: SKIPPED: ${why}`);
  // Unique names: another run of this test may share the machine.
  const tag = randomBytes(3).toString('hex');
  const ns = `wsf-part-${tag}`;
  const hostIf = `wsfh${tag}`;
  const nsIf = `wsfn${tag}`;
  // In 198.18.0.0/15, the range set aside for network tests (RFC 2544): unlikely to be a real
  // network the machine needs.
  const subnet = `198.${18 + (parseInt(tag.slice(0, 2), 16) % 2)}.${parseInt(tag.slice(2, 4), 16)}`;
  const hostAddr = `${subnet}.1`;
  const nsAddr = `${subnet}.2`;
  let pool: Awaited<ReturnType<typeof startPool>> | undefined;
  let remote: WorkerProcess | undefined;
  try {
    try {
      ip('netns', 'add', ns);
    } catch (err) {
      return void console.log(`  chaos-partition: SKIPPED: cannot create a network namespace here: ${(err as { stderr?: Buffer }).stderr?.toString().trim() ?? err}`);
    }
    ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
    ip('link', 'set', nsIf, 'netns', ns);
    ip('addr', 'add', `${hostAddr}/30`, 'dev', hostIf);
    ip('link', 'set', hostIf, 'up');
    ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${nsAddr}/30`, 'dev', nsIf);
    ip('netns', 'exec', ns, 'ip', 'link', 'set', nsIf, 'up');
    ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');

    pool = await startPool({
      tasks: CHAOS_TASKS_URL,
      maxWorkers: 1,
      listen: { host: hostAddr, port: 0 },
      token: randomBytes(16).toString('hex'),
      heartbeatIntervalMs: INTERVAL_MS,
      heartbeatTimeoutMs: TIMEOUT_MS,
    });
    const localPid = pool.localWorkerPid!;
    remote = spawnWorker({ url: pool.url!, token: pool.token, name: 'partitioned', prefix: ['ip', 'netns', 'exec', ns], args: ['--quiet'] });
    await pool.ready(2, { timeout: 30_000 });
    const remotePid = remote.child.pid!;
    assert.ok(pool.workers().some((w) => w.name === 'partitioned' && w.address.startsWith(nsAddr)), 'the remote node connected from inside the namespace');

    // One long task per slot at a time: both nodes are busy when the link goes.
    const N = 8;
    const futures = Array.from({ length: N }, () => pool!.submit(where, 400));
    await waitFor(() => futures.filter((f) => f.running()).length >= 2, 20_000, 'both nodes running a task');
    const cutAt = Date.now();
    ip('netns', 'exec', ns, 'ip', 'link', 'set', nsIf, 'down');
    await waitFor(() => !pool!.workers().some((w) => w.name === 'partitioned'), TIMEOUT_MS + 10_000, 'the partitioned node found lost');
    const detectionMs = Date.now() - cutAt;
    const results = await within(Promise.all(futures), 30_000, 'every future, during the partition');
    const doneMs = Date.now() - cutAt;
    const onLocal = results.filter((r) => r.pid === localPid).length;
    assert.is(results.filter((r) => r.pid !== localPid && r.pid !== remotePid).length, 0, 'every task ran on one of the two nodes');
    assert.ok(results.some((r) => r.pid === localPid && r.attempt >= 2), 'a task the remote node was running was re-run on the local node');

    const restoredAt = Date.now();
    ip('netns', 'exec', ns, 'ip', 'link', 'set', nsIf, 'up');
    await waitFor(() => pool!.workers().some((w) => w.name === 'partitioned'), 30_000, 'the remote node reconnected');
    const reconnectMs = Date.now() - restoredAt;
    await pool.ready(2, { timeout: 20_000 });
    const later = await within(Promise.all(Array.from({ length: 6 }, () => pool!.submit(where, 300))), 30_000, 'tasks after the link came back');
    assert.ok(later.some((r) => r.pid === remotePid), 'the reconnected node ran some of them');
    console.log(
      `  chaos-partition: link cut: node found lost after ${detectionMs} ms (heartbeat ${INTERVAL_MS}/${TIMEOUT_MS} ms), ` +
        `all ${N} futures settled after ${doneMs} ms (${onLocal} on the local node); link restored: reconnected after ${reconnectMs} ms and took work`,
    );
    assert.ok(detectionMs <= TIMEOUT_MS + INTERVAL_MS + 1500, `found lost within heartbeatTimeoutMs + one interval (+ margin): ${detectionMs} ms`);
  } finally {
    await remote?.kill();
    await pool?.shutdown({ cancelFutures: true });
    // Deleting the namespace deletes its end of the veth pair, and with it the host's end.
    try {
      ip('netns', 'del', ns);
    } catch {
      // not created
    }
    try {
      ip('link', 'del', hostIf);
    } catch {
      // already gone with the namespace
    }
  }
});

test.run();
