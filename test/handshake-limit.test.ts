/**
 * Token guessing is slowed down: an address with too many failed handshakes is refused at the
 * HTTP upgrade (429) for a while, while connections that are already in keep working. The
 * limiter's arithmetic is checked alone; the refusal on a real pool over real sockets.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import WebSocket from 'ws';
import { HandshakeLimiter, DEFAULT_HANDSHAKE_LIMITS } from '../coordinator/handshake-limiter.ts';
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

test.run();
