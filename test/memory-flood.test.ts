/**
 * Memory stays bounded under floods:
 * - 500,000 tiny tasks queued with no worker node connected: the heap grows by a bounded amount
 *   per queued task, and all of it is released once they are cancelled;
 * - 200 peers that connect and go silent (no HTTP upgrade request at all, half a request, or a
 *   completed WebSocket upgrade and then no authentication): the coordinator's heap and RSS
 *   stay bounded, and every one of those connections is closed once the handshake timeout
 *   (HANDSHAKE.TIMEOUT_MS) has passed, plus one heartbeat interval and a margin.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CancelledError } from '../coordinator/index.ts';
import { DEFAULTS, HANDSHAKE } from '../shared/protocol.ts';
import { triple } from './fixtures/chaos-tasks.ts';
import { CHAOS_TASKS_URL, mib } from './helpers/chaos.ts';
import { rejects } from './helpers/assert.ts';
import { startPool, waitFor } from './helpers/cluster.ts';

/** A full garbage collection where the runtime allows one (figures are noisier without). */
function makeGc(): (() => void) | undefined {
  const g = globalThis as { gc?: () => void };
  if (g.gc) return g.gc;
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as (() => void) | undefined;
    if (typeof gc === 'function') return gc;
  } catch {
    // not available (Deno)
  }
  return undefined;
}
const gc = makeGc();

async function settledHeap(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 20));
  }
  return process.memoryUsage().heapUsed;
}

test('500,000 queued tiny tasks: bounded heap per queued task, all of it released after cancelling them', async () => {
  const N = 500_000;
  const pool = await startPool({ tasks: CHAOS_TASKS_URL, maxWorkers: 0 });
  try {
    const before = await settledHeap();
    const started = Date.now();
    let futures = Array.from({ length: N }, (_, i) => pool.submit(triple, i));
    const submitMs = Date.now() - started;
    await new Promise((r) => setTimeout(r, 0)); // let the pool's pass over the queue run
    assert.is(pool.queuedCount, N);
    const queued = await settledHeap();
    const perTask = (queued - before) / N;
    const rss = process.memoryUsage().rss;

    const cancelled = Date.now();
    await pool.shutdown({ cancelFutures: true });
    const cancelMs = Date.now() - cancelled;
    const last = futures[N - 1]!;
    assert.ok(last.cancelled(), 'queued futures are cancelled by shutdown({ cancelFutures: true })');
    await rejects(last, CancelledError);
    futures = [];
    const after = await settledHeap();
    console.log(
      `  memory-flood: ${N} queued tasks: ${Math.round(perTask)} bytes of heap per queued task (future included${gc ? '' : '; no gc() under this runtime, so approximate'}), ` +
        `heap ${mib(before)} → ${mib(queued)} → ${mib(after)} MiB after cancelling, RSS ${mib(rss)} MiB; submit ${submitMs} ms, cancel and shut down ${cancelMs} ms`,
    );
    // The README's figure is ~370 bytes for the queue alone; the future and its promise come on
    // top. A regression that kept encoded arguments, or a copy per task, would show here.
    assert.ok(perTask < 1500, `at most 1500 bytes per queued task: got ${Math.round(perTask)}`);
    if (gc) assert.ok(after - before < 64 * 1024 * 1024, `released after cancelling: ${mib(after - before)} MiB left`);
  } finally {
    await pool.shutdown({ cancelFutures: true });
  }
});

test('200 silent peers (no upgrade, half an upgrade, upgraded but never authenticating): bounded memory, all closed after the handshake timeout', async () => {
  const pool = await startPool({ tasks: CHAOS_TASKS_URL, maxWorkers: 0 });
  const sockets: Socket[] = [];
  try {
    const { hostname, port } = new URL(pool.url!);
    const heapBefore = await settledHeap();
    const rssBefore = process.memoryUsage().rss;
    const kinds = ['no request', 'half a request', 'upgraded, silent'] as const;
    type Kind = (typeof kinds)[number];
    const closedAfter = new Map<Kind, number[]>(kinds.map((k) => [k, []]));
    const openedAt = Date.now();
    for (let i = 0; i < 200; i++) {
      const kind = kinds[i % 3]!;
      const s = connect(Number(port), hostname);
      s.on('error', () => {});
      s.on('close', () => closedAfter.get(kind)!.push(Date.now() - openedAt));
      s.on('data', () => {}); // read (and drop) what the server sends: HELLO, close frames
      const key = randomBytes(16).toString('base64');
      const request =
        `GET /wsfutures HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n`;
      if (kind === 'half a request') s.write(request); // the blank line that ends it never comes
      if (kind === 'upgraded, silent') s.write(`${request}\r\n`);
      sockets.push(s);
    }
    await new Promise((r) => setTimeout(r, 1000));
    const heapOpen = await settledHeap();
    const rssOpen = process.memoryUsage().rss;
    // Each kind is cut at HANDSHAKE.TIMEOUT_MS (the upgrade timer, or the authentication timer
    // and half a second for the close frame nobody answers). The rest is margin for a busy machine.
    const deadline = HANDSHAKE.TIMEOUT_MS + DEFAULTS.heartbeatIntervalMs + 2000;
    await waitFor(() => sockets.every((s) => s.destroyed), deadline, 'every silent connection closed').catch(() => {});
    const waitedMs = Date.now() - openedAt;
    const count = (k: Kind) => closedAfter.get(k)!.length;
    const total = (k: Kind) => sockets.filter((_, i) => kinds[i % 3] === k).length;
    const latest = (k: Kind) => (count(k) ? `${Math.min(...closedAfter.get(k)!)}–${Math.max(...closedAfter.get(k)!)} ms` : '-');
    console.log(
      `  memory-flood: 200 silent peers: heap ${mib(heapBefore)} → ${mib(heapOpen)} MiB (${Math.round((heapOpen - heapBefore) / 200)} bytes each), RSS ${mib(rssBefore)} → ${
        mib(rssOpen)
      } MiB; ` +
        `closed within ${waitedMs} ms: ${kinds.map((k) => `${k} ${count(k)}/${total(k)} (at ${latest(k)})`).join(', ')}`,
    );
    assert.ok(heapOpen - heapBefore < 32 * 1024 * 1024, `heap bounded: +${mib(heapOpen - heapBefore)} MiB for 200 silent connections`);
    assert.ok(rssOpen - rssBefore < 96 * 1024 * 1024, `RSS bounded: +${mib(rssOpen - rssBefore)} MiB for 200 silent connections`);
    assert.is(
      count('upgraded, silent'),
      total('upgraded, silent'),
      `every upgraded but silent connection closed within HANDSHAKE.TIMEOUT_MS + heartbeatIntervalMs + 2 s (${deadline} ms)`,
    );
    for (const t of closedAfter.get('upgraded, silent')!) assert.ok(t >= HANDSHAKE.TIMEOUT_MS - 500, `not closed before the handshake timeout (${t} ms)`);
    for (const k of ['no request', 'half a request'] as const) assert.is(count(k), total(k), `every "${k}" connection closed within ${deadline} ms`);
  } finally {
    for (const s of sockets) s.destroy();
    await pool.shutdown({ cancelFutures: true });
  }
});

test.run();
