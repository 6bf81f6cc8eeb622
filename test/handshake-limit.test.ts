/**
 * Token guessing is slowed down: an address with too many failed handshakes is refused at the
 * HTTP upgrade (429) for a while, while connections that are already in keep working. The
 * limiter's arithmetic is checked alone; the refusal on a real pool over real sockets.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type Socket } from 'node:net';
import WebSocket from 'ws';
import { HANDSHAKE } from '../shared/protocol.ts';
import { DEFAULT_HANDSHAKE_LIMITS, HandshakeLimiter } from '../coordinator/handshake-limiter.ts';
import { answerHello, deriveKey } from '../shared/auth.ts';
import { add } from './fixtures/tasks.ts';
import { startPool, within } from './helpers/cluster.ts';

test('the limiter blocks after `failures` within the window, for blockMs, then counts afresh', () => {
  const l = new HandshakeLimiter({ failures: 3, windowMs: 1000, blockMs: 5000 });
  assert.is(l.fail('a', 0), false);
  assert.is(l.fail('a', 10), false);
  assert.is(l.isBlocked('a', 20), false);
  assert.is(l.fail('a', 20), true, 'the third failure blocks');
  assert.is(l.isBlocked('a', 21), true);
  assert.is(l.isBlocked('b', 21), false, 'other addresses are not affected');
  assert.is(l.isBlocked('a', 5019), true);
  assert.is(l.isBlocked('a', 5020), false, 'the block ends');
  assert.is(l.fail('a', 5021), false, 'counting starts again');
  // Failures spread wider than the window never block.
  const m = new HandshakeLimiter({ failures: 3, windowMs: 1000, blockMs: 5000 });
  for (let t = 0; t < 20_000; t += 600) assert.is(m.fail('c', t), false);
});

/** Opens a connection and answers the HELLO with a proof made from the wrong token. */
function wrongTokenAttempt(url: string): Promise<{ code?: number; status?: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.on('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode });
      ws.terminate();
    });
    ws.on('error', () => {});
    ws.on('message', (data: Buffer) => {
      const r = answerHello(data, deriveKey('not-the-token'));
      if (r.ok) ws.send(r.auth);
    });
    ws.on('close', (code) => resolve({ code }));
  });
}

test(`after ${DEFAULT_HANDSHAKE_LIMITS.failures} failed handshakes an address gets 429; the node already connected keeps working`, async () => {
  const pool = await startPool({ maxWorkers: 1 });
  try {
    for (let i = 0; i < DEFAULT_HANDSHAKE_LIMITS.failures; i++) {
      const r = await within(wrongTokenAttempt(pool.url!), 10_000, `attempt ${i + 1}`);
      assert.is(r.code, 4001, `attempt ${i + 1} is refused by the handshake (WSF_AUTH_FAILED)`);
    }
    const blocked = await within(wrongTokenAttempt(pool.url!), 10_000, 'the attempt after the limit');
    assert.is(blocked.status, 429, 'refused at the upgrade, before any handshake');
    assert.is(await within(pool.submit(add, 40, 2), 10_000, 'a task on the connected node'), 42);
  } finally {
    await pool.shutdown({ cancelFutures: true });
  }
});

test(`connections that never complete the HTTP upgrade are closed after ${HANDSHAKE.TIMEOUT_MS} ms and count as failed handshakes`, async () => {
  const pool = await startPool({ maxWorkers: 0 });
  const sockets: Socket[] = [];
  const { port } = new URL(pool.url!);
  try {
    const opened = Date.now();
    const closedAfter = (socket: Socket) => new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - opened)));
    const ends: Promise<number>[] = [];
    for (let i = 0; i < DEFAULT_HANDSHAKE_LIMITS.failures; i++) {
      const socket = connect(Number(port), '127.0.0.1');
      socket.on('error', () => {});
      sockets.push(socket);
      ends.push(closedAfter(socket));
    }
    // One of them trickles its request headers, a byte a second; the others send nothing.
    sockets[0]!.write('GET /wsfutures HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
    const trickle = setInterval(() => sockets[0]!.write('a'), 1000);
    try {
      const times = await within(Promise.all(ends), HANDSHAKE.TIMEOUT_MS + 5000, 'the silent connections closing');
      for (const ms of times) assert.ok(ms >= HANDSHAKE.TIMEOUT_MS - 500 && ms < HANDSHAKE.TIMEOUT_MS + 4000, `closed after ${ms} ms`);
    } finally {
      clearInterval(trickle);
    }
    const blocked = await within(wrongTokenAttempt(pool.url!), 10_000, 'an attempt after them');
    assert.is(blocked.status, 429, 'the address is refused: they counted as failed handshakes');
  } finally {
    for (const s of sockets) s.destroy();
    await pool.shutdown({ cancelFutures: true });
  }
});

test.run();
