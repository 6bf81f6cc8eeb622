/**
 * `/metrics` and `pool.stats()` after real work on real worker nodes: the exposition is valid
 * (checked by Prometheus' own `promtool check metrics`, when installed; CI installs it), its
 * counters match `stats()`, and beyond loopback the metrics and the dashboard refuse a request
 * without the token (bearer header for metrics, a login and a session cookie for the page).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import { add, failWith, sleepThenEcho } from './fixtures/tasks.ts';
import { startPool, waitFor } from './helpers/cluster.ts';

const promtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;

/** The value of one sample line of the exposition, e.g. `wsfutures_tasks_total{result="completed"}`. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  assert.ok(line, `no ${series} in /metrics`);
  return Number(line!.slice(series.length + 1));
}

test('stats() and /metrics agree after a run, and /metrics is valid Prometheus exposition', async () => {
  const pool = await startPool({ maxWorkers: 2 }, 2);
  try {
    const events: string[] = [];
    pool.on('nodeLost', (n) => events.push(`lost ${n.name}`));
    const ok = await Promise.all(Array.from({ length: 500 }, (_, i) => pool.submit(add, i, 1)));
    assert.equal(ok.length, 500);
    const bad = await Promise.allSettled([pool.submit(failWith, 'TypeError', 'boom'), pool.submit(failWith, 'RangeError', 'bang')]);
    assert.ok(bad.every((r) => r.status === 'rejected'));
    await pool.submit(sleepThenEcho, 30, 'slow');
    const stats = pool.stats();
    assert.equal(stats.completed, 501);
    assert.equal(stats.failed, 2);
    assert.equal(stats.running, 0);
    assert.equal(pool.runningCount, 0);
    assert.equal(stats.nodes.length, 1);
    const node = stats.nodes[0]!;
    assert.equal([node.state, node.slots, node.completed, node.failed, node.local], ['ready', 2, 501, 2, true]);
    const byName = Object.fromEntries(stats.functions.map((f) => [f.name, f]));
    assert.equal([byName.add!.completed, byName.failWith!.failed, byName.sleepThenEcho!.completed], [500, 2, 1]);
    // The 30 ms sleep ran about that long (estimated from buckets: within its bucket, 25–50 ms).
    assert.ok(byName.sleepThenEcho!.duration!.p50 >= 25 && byName.sleepThenEcho!.duration!.p50 <= 50, JSON.stringify(byName.sleepThenEcho!.duration));
    assert.ok(byName.sleepThenEcho!.duration!.max >= 29, 'its max is the measured duration');

    const res = await fetch(`http://127.0.0.1:${new URL(pool.url!).port}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, 'text/plain');
    const text = await res.text();
    assert.equal(sample(text, 'wsfutures_tasks_total{result="completed"}'), stats.completed);
    assert.equal(sample(text, 'wsfutures_tasks_total{result="failed"}'), stats.failed);
    assert.equal(sample(text, 'wsfutures_slots'), 2);
    assert.equal(sample(text, `wsfutures_node_tasks_total{node="local-1",id="${node.id}",result="completed"}`), 501);
    assert.equal(sample(text, 'wsfutures_function_tasks_total{function="add",result="completed"}'), 500);
    assert.equal(sample(text, 'wsfutures_task_duration_seconds_count{function="add"}'), 500);
    assert.equal(sample(text, 'wsfutures_task_duration_seconds_bucket{function="add",le="+Inf"}'), 500);
    if (promtool) {
      const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      assert.equal(check.status, 0, `promtool check metrics: ${check.stdout}${check.stderr}`);
      console.log(`promtool check metrics: ok (${text.split('\n').filter((l) => l && !l.startsWith('#')).length} samples)`);
    } else {
      console.log('promtool is not installed here (apt-get install prometheus): exposition not checked by it');
    }
    assert.equal(events, []);
  } finally {
    await pool.shutdown();
  }
});

test('a node that leaves is reported: nodeLost event, stats() marks it lost', async () => {
  const pool = await startPool({ maxWorkers: 1 }, 1);
  try {
    const lost: string[] = [];
    pool.on('nodeLost', (n) => lost.push(`${n.name} ${n.state}`));
    pool.killLocalWorkers('SIGKILL');
    await waitFor(() => lost.length > 0, 10_000, 'the nodeLost event');
    assert.equal(lost[0], 'local-1 lost');
    assert.ok(pool.stats().nodes.some((n) => n.name === 'local-1' && n.state === 'lost' && n.lostAt !== undefined));
  } finally {
    await pool.shutdown();
  }
});

/** A non-loopback IPv4 address of this machine: requests from it are "beyond loopback". */
function lanAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (!a.internal && a.family === 'IPv4') return a.address;
  return undefined;
}

test('beyond loopback, /metrics and the dashboard need the token', async () => {
  const address = lanAddress();
  if (!address) return console.log('no non-loopback IPv4 address on this machine: test skipped');
  const token = 'a-token-for-the-lan-123';
  const pool = await startPool({ maxWorkers: 1, listen: { host: address }, token }, 1);
  try {
    const base = `http://${address}:${new URL(pool.url!).port}`;
    const noToken = await fetch(`${base}/metrics`);
    assert.equal(noToken.status, 401);
    await noToken.text();
    const wrong = await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer not-the-token' } });
    assert.equal(wrong.status, 401);
    await wrong.text();
    const right = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(right.status, 200);
    assert.match(await right.text(), 'wsfutures_tasks_total');

    const page = await fetch(`${base}/wsfutures/`, { redirect: 'manual' });
    assert.equal(page.status, 303);
    assert.equal(page.headers.get('location'), '/wsfutures/login');
    await page.text();
    const feed = await fetch(`${base}/wsfutures/feed`);
    assert.equal(feed.status, 401);
    await feed.text();
    const badLogin = await fetch(`${base}/wsfutures/login`, { method: 'POST', body: new URLSearchParams({ token: 'wrong' }), redirect: 'manual' });
    assert.equal(badLogin.status, 401);
    assert.equal(badLogin.headers.get('set-cookie'), null);
    await badLogin.text();
    const login = await fetch(`${base}/wsfutures/login`, { method: 'POST', body: new URLSearchParams({ token }), redirect: 'manual' });
    assert.equal(login.status, 303);
    const cookie = login.headers.get('set-cookie')!;
    assert.match(cookie, /^wsf_session=[\w-]+; HttpOnly; SameSite=Strict/);
    assert.not.match(cookie, token);
    await login.text();
    const inside = await fetch(`${base}/wsfutures/`, { headers: { cookie: cookie.split(';')[0]! } });
    assert.equal(inside.status, 200);
    assert.match(await inside.text(), '<title>wsfutures</title>');
    // The same pool, asked from loopback: open.
    const local = await fetch(`http://127.0.0.1:${new URL(pool.url!).port}/metrics`).catch(() => undefined);
    if (local) {
      // Listening on one address only: loopback may not reach it at all.
      assert.equal(local.status, 200);
      await local.text();
    }
  } finally {
    await pool.shutdown();
  }
});

test.run();
