/**
 * Security by default, on a real cluster: a worker node with a wrong token is refused while
 * real work goes on; garbage (random bytes before and after authentication, a text frame, an
 * oversized frame) closes only the connection that sent it, with the documented close code;
 * a lane cannot attach to a node without its ticket; listening beyond loopback without a token
 * is refused.
 */
import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import WebSocket from 'ws';
import { ProcessPoolExecutor } from '../coordinator/index.ts';
import { answerHello, checkAuthOk, deriveKey } from '../shared/auth.ts';
import { CLOSE, HANDSHAKE, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION } from '../shared/protocol.ts';
import { add, sleepThenWhere } from './fixtures/tasks.ts';
import { spawnWorker, startPool, TASKS_URL, within, type WorkerProcess } from './helpers/cluster.ts';

const MAX_MESSAGE_BYTES = 64 * 1024;
let pool: ProcessPoolExecutor;

test.before(async () => {
  pool = await startPool({ maxWorkers: 1, maxMessageBytes: MAX_MESSAGE_BYTES });
});

test.after(async () => {
  await pool?.shutdown({ cancelFutures: true });
});

/** A raw `ws` client: the frames it got, and how its connection ended. */
function rawClient(url: string): { ws: WebSocket; frames: Buffer[]; opened: Promise<void>; closed: Promise<{ code: number; reason: string }> } {
  const ws = new WebSocket(url, { maxPayload: 1 << 20 });
  const frames: Buffer[] = [];
  ws.on('message', (d: Buffer) => frames.push(d));
  ws.on('error', () => {});
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('close', () => reject(new Error('closed before open')));
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return { ws, frames, opened, closed };
}

/** Opens a connection and completes the handshake with the pool's real token, as a worker would. */
async function authenticatedClient(): Promise<ReturnType<typeof rawClient>> {
  const c = rawClient(pool.url!);
  const key = deriveKey(pool.token);
  const next = async (i: number) => {
    const end = Date.now() + 5000;
    while (c.frames.length <= i) {
      if (Date.now() > end) throw new Error(`no handshake frame ${i}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return c.frames[i]!;
  };
  await c.opened;
  const hello = answerHello(await next(0), key);
  if (!hello.ok) throw new Error(hello.message);
  c.ws.send(hello.auth);
  assert.is(checkAuthOk(await next(1), key, hello.helloNonce, hello.nonce), true, 'the coordinator proved it knows the token');
  return c;
}

/** Real work keeps flowing: a task submitted now settles with the right value. */
async function stillServing(): Promise<void> {
  assert.is(await within(pool.submit(add, 20, 22), 10_000, 'a task on the pool'), 42);
}

test('a worker node with a wrong token is refused (exit 2, WSF_AUTH_FAILED) while real work continues', async () => {
  const running = pool.submit(sleepThenWhere, 800);
  let intruder: WorkerProcess | undefined;
  try {
    intruder = spawnWorker({ url: pool.url!, token: 'not-the-right-token' });
    const code = await within(intruder.exited, 20_000, 'the refused worker node');
    assert.is(code, 2);
    assert.match(intruder.output, /WSF_AUTH_FAILED/);
    // Said once, whole: not cut where the coordinator's close reason ends.
    assert.is(intruder.output.split('WSF_AUTH_FAILED').length - 1, 1, `said once: ${intruder.output}`);
    assert.match(intruder.output, /wrong token|refused this worker node's token/);
    assert.match(intruder.output, /\(--token or WSFUTURES_TOKEN\)\n/);
    assert.equal(pool.workers().map((w) => w.name), ['local-1'], 'only the real node is connected');
    assert.is((await running).attempt, 1, 'the running task was untouched');
    await stillServing();
  } finally {
    await intruder?.kill();
  }
});

test('random bytes instead of the AUTH frame close the connection with CLOSE.PROTOCOL', async () => {
  const running = pool.submit(sleepThenWhere, 300);
  const c = rawClient(pool.url!);
  await c.opened;
  c.ws.send(randomBytes(57));
  const { code } = await within(c.closed, 5000, 'close');
  assert.is(code, CLOSE.PROTOCOL);
  assert.is((await running).attempt, 1);
  await stillServing();
});

test('a forged AUTH frame of the right shape closes with CLOSE.AUTH_FAILED', async () => {
  const c = rawClient(pool.url!);
  await c.opened;
  c.ws.send(Buffer.concat([Buffer.from('WSFA'), Buffer.of(1), randomBytes(64)]));
  const { code, reason } = await within(c.closed, 5000, 'close');
  assert.is(code, CLOSE.AUTH_FAILED);
  assert.match(reason, /WSF_AUTH_FAILED/);
  await stillServing();
});

test('a worker node of an older protocol version (2: no typed-array attachments) is refused with CLOSE.VERSION_MISMATCH, naming both versions', async () => {
  const c = rawClient(pool.url!);
  await c.opened;
  while (c.frames.length === 0) await new Promise((r) => setTimeout(r, 5));
  const hello = answerHello(c.frames[0]!, deriveKey(pool.token));
  if (!hello.ok) throw new Error(hello.message);
  const auth = Buffer.from(hello.auth);
  auth[4] = 2; // the version it chose: what a version-2 node would answer
  c.ws.send(auth);
  const { code, reason } = await within(c.closed, 5000, 'close');
  assert.is(code, CLOSE.VERSION_MISMATCH);
  assert.match(reason, `protocol version 2; this coordinator speaks ${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION}`);
  await stillServing();
});

test('random bytes after authentication close that connection with CLOSE.PROTOCOL', async () => {
  const running = pool.submit(sleepThenWhere, 300);
  const c = await authenticatedClient();
  // 0xc1 is the one byte msgpack never uses: the frame cannot decode as anything.
  c.ws.send(Buffer.concat([Buffer.of(0xc1), randomBytes(200)]));
  const { code } = await within(c.closed, 5000, 'close');
  assert.is(code, CLOSE.PROTOCOL);
  assert.is((await running).attempt, 1);
  await stillServing();
});

test('a well-formed msgpack frame with an unknown op closes with CLOSE.PROTOCOL', async () => {
  const { encodeMessage } = await import('../shared/codec.ts');
  const c = await authenticatedClient();
  c.ws.send(encodeMessage({ op: 'steal-everything' }));
  const { code, reason } = await within(c.closed, 5000, 'close');
  assert.is(code, CLOSE.PROTOCOL);
  assert.match(reason, /unknown op/);
  await stillServing();
});

test("a lane that attaches to an unknown node, or with a wrong ticket, is refused with CLOSE.PROTOCOL; the real node's lanes are untouched", async () => {
  const { encodeMessage } = await import('../shared/codec.ts');
  const [node] = pool.workers();
  const running = pool.submit(sleepThenWhere, 300);
  const unknown = await authenticatedClient();
  unknown.ws.send(encodeMessage({ op: 'attach', node: 'w-nobody', lane: 0, ticket: 'x' }));
  const a = await within(unknown.closed, 5000, 'close');
  assert.is(a.code, CLOSE.PROTOCOL);
  assert.match(a.reason, /no worker node/);
  const forged = await authenticatedClient();
  forged.ws.send(encodeMessage({ op: 'attach', node: node!.id, lane: 99, ticket: 'guessed' }));
  const b = await within(forged.closed, 5000, 'close');
  assert.is(b.code, CLOSE.PROTOCOL);
  assert.match(b.reason, /wrong lane ticket/);
  assert.is(pool.slots, 1, "the node's one lane is still attached");
  assert.is((await running).attempt, 1);
  await stillServing();
});

test('results from a connection that is not an attached lane close it with CLOSE.PROTOCOL', async () => {
  const { encodeMessage } = await import('../shared/codec.ts');
  const c = await authenticatedClient();
  c.ws.send(encodeMessage({ op: 'results', items: [{ id: 1, d: 0 }] }));
  const { code, reason } = await within(c.closed, 5000, 'close');
  assert.is(code, CLOSE.PROTOCOL);
  assert.match(reason, /not an attached lane/);
  await stillServing();
});

test('a frame whose attachments do not add up closes with CLOSE.PROTOCOL', async () => {
  const { encodeMessage } = await import('../shared/codec.ts');
  const c = await authenticatedClient();
  // The attachment form (shared/frames.ts) claiming 1 MiB of result that is not there.
  const env = Buffer.from(encodeMessage({ op: 'results', items: [{ id: 1, v: 1 << 20 }] }));
  const head = Buffer.alloc(5);
  head.writeUInt32BE(env.length, 1);
  c.ws.send(Buffer.concat([head, env, Buffer.alloc(10)]));
  const { code, reason } = await within(c.closed, 5000, 'close');
  assert.is(code, CLOSE.PROTOCOL);
  assert.match(reason, /malformed/);
  await stillServing();
});

test('a text frame closes with CLOSE.PROTOCOL, before and after authentication', async () => {
  const before = rawClient(pool.url!);
  await before.opened;
  before.ws.send('hello?');
  assert.is((await within(before.closed, 5000, 'close')).code, CLOSE.PROTOCOL);
  const after = await authenticatedClient();
  after.ws.send('{"op":"ready"}');
  assert.is((await within(after.closed, 5000, 'close')).code, CLOSE.PROTOCOL);
  await stillServing();
});

test('a frame beyond maxMessageBytes closes with CLOSE.TOO_LARGE, before and after authentication', async () => {
  const running = pool.submit(sleepThenWhere, 300);
  const before = rawClient(pool.url!);
  await before.opened;
  before.ws.send(randomBytes(MAX_MESSAGE_BYTES + 1));
  assert.is((await within(before.closed, 5000, 'close')).code, CLOSE.TOO_LARGE);
  const after = await authenticatedClient();
  after.ws.send(randomBytes(MAX_MESSAGE_BYTES + 1));
  assert.is((await within(after.closed, 5000, 'close')).code, CLOSE.TOO_LARGE);
  assert.is((await running).attempt, 1);
  await stillServing();
});

test('before authentication even a frame within maxMessageBytes is refused once it passes the pre-auth budget', async () => {
  const stranger = rawClient(pool.url!);
  await stranger.opened;
  // 16 KiB: a quarter of this pool's maxMessageBytes, but far more than any handshake needs.
  stranger.ws.send(randomBytes(16 * 1024));
  assert.is((await within(stranger.closed, 5000, 'close')).code, CLOSE.TOO_LARGE);
  // The same size is fine once authenticated: it is then an ordinary (here malformed) frame.
  const member = await authenticatedClient();
  member.ws.send(randomBytes(16 * 1024));
  assert.is((await within(member.closed, 5000, 'close')).code, CLOSE.PROTOCOL);
  await stillServing();
});

test('a stranger streaming a large frame is cut off after the pre-auth budget, not after maxMessageBytes', async () => {
  const logs: string[] = [];
  const big = await startPool({ maxWorkers: 0, maxMessageBytes: 64 * 1024 * 1024, log: (_level, m) => logs.push(m) });
  try {
    const stranger = rawClient(big.url!);
    await stranger.opened;
    stranger.ws.send(randomBytes(8 * 1024 * 1024)); // within maxMessageBytes; arrives in many chunks
    assert.is((await within(stranger.closed, 10_000, 'close')).code, CLOSE.TOO_LARGE);
    assert.ok(logs.some((m) => m.includes(`more than ${HANDSHAKE.MAX_PREAUTH_BYTES} bytes before authentication`)), logs.join('\n'));
  } finally {
    await big.shutdown({ cancelFutures: true });
  }
});

test('listen beyond loopback without a token throws TypeError', () => {
  for (const host of ['0.0.0.0', '192.168.1.10', '::']) {
    assert.throws(
      () => new ProcessPoolExecutor({ tasks: TASKS_URL, maxWorkers: 0, listen: { host }, log: false }),
      (e: unknown) => e instanceof TypeError && /token/.test((e as Error).message),
      host,
    );
  }
});

test.run();
