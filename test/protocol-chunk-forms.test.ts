/**
 * The two wire forms of a chunk of map calls, checked from a worker node's side of the socket: a
 * node that speaks protocol 4 gets the items as one flat array (`c: 2`), a node of protocol 3
 * gets an argument array per call (`c: 1`), and map yields the same values either way. The node
 * here is played by hand over a raw WebSocket, so that what the coordinator sends can be read.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import WebSocket from 'ws';
import type { ProcessPoolExecutor } from '../coordinator/index.ts';
import { answerHello, deriveKey } from '../shared/auth.ts';
import { decodeValue, encodeMessage, encodeValue } from '../shared/codec.ts';
import { decodeFrame } from '../shared/frames.ts';
import type { RunMsg, TaskSpec, WelcomeMsg } from '../shared/protocol.ts';
import { echo } from './fixtures/tasks.ts';
import { startPool, within } from './helpers/cluster.ts';

let pool: ProcessPoolExecutor;

test.before(async () => {
  pool = await startPool({ maxWorkers: 0 });
});

test.after(async () => {
  await pool?.shutdown({ cancelFutures: true });
});

/** A connection that has completed the handshake at `version`, and its decoded messages. */
async function connect(version: number): Promise<{ ws: WebSocket; next(op: string): Promise<Record<string, unknown>> }> {
  const ws = new WebSocket(pool.url!);
  const raw: Buffer[] = [];
  const messages: Record<string, unknown>[] = [];
  let authenticated = false;
  ws.on('message', (d: Buffer) => {
    if (raw.length < 2) raw.push(d);
    else messages.push(decodeFrame(new Uint8Array(d)) as Record<string, unknown>);
  });
  ws.on('error', () => {});
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('close', () => reject(new Error('closed before open')));
  });
  const wait = async (ready: () => boolean, what: string): Promise<void> => {
    const end = Date.now() + 10_000;
    while (!ready()) {
      if (Date.now() > end) throw new Error(`no ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  await wait(() => raw.length >= 1, 'HELLO');
  const hello = answerHello(raw[0]!, deriveKey(pool.token));
  if (!hello.ok) throw new Error(hello.message);
  const auth = Buffer.from(hello.auth);
  auth[4] = version; // the version this node chooses (the proof does not cover it)
  ws.send(auth);
  await wait(() => raw.length >= 2, 'AUTH_OK');
  authenticated = true;
  return {
    ws,
    async next(op) {
      let found: Record<string, unknown> | undefined;
      await wait(() => authenticated && (found = messages.find((m) => m.op === op)) !== undefined, `"${op}" message`);
      messages.splice(messages.indexOf(found!), 1);
      return found!;
    },
  };
}

/** A worker node with one lane, speaking `version`; returns the lane. */
async function fakeNode(version: number): Promise<{ control: WebSocket; lane: Awaited<ReturnType<typeof connect>> }> {
  const control = await connect(version);
  control.ws.send(encodeMessage({ op: 'register', name: `v${version}`, slots: 1, runtime: 'node', runtimeVersion: process.versions.node, hostname: 'fake', pid: 1 }));
  const welcome = (await control.next('welcome')) as unknown as WelcomeMsg;
  control.ws.send(encodeMessage({ op: 'ready' }));
  const lane = await connect(version);
  lane.ws.send(encodeMessage({ op: 'attach', node: welcome.workerId, lane: 0, ticket: welcome.laneTicket }));
  await lane.next('attached');
  return { control: control.ws, lane };
}

for (
  const [version, form, expected] of [
    [4, 2, (items: unknown[]) => items],
    [3, 1, (items: unknown[]) => items.map((item) => [item])],
  ] as const
) {
  test(`a protocol-${version} node gets a chunk of map calls with c: ${form}, and map yields the same values`, async () => {
    const { control, lane } = await fakeNode(version);
    try {
      const items: unknown[] = [[1, 2], 'a', undefined, { b: [3] }];
      const mapping = pool.map(echo, items, { chunksize: 4 });
      const run = (await within(lane.next('run'), 10_000, 'a run message')) as unknown as RunMsg;
      assert.is(run.tasks.length, 1);
      const task = run.tasks[0] as TaskSpec;
      // The node answers as a task thread would, the values in order, before anything is
      // checked: a map left waiting would hold up the pool's shutdown.
      lane.ws.send(encodeMessage({ op: 'results', items: [{ id: task.id, v: encodeValue(items), d: 0.1 }] }));
      const out: unknown[] = [];
      for await (const v of mapping) out.push(v);
      assert.equal(out, items);
      assert.is(task.c, form);
      assert.equal(decodeValue(task.a), expected(items));
    } finally {
      lane.ws.close();
      control.close();
    }
  });
}

test.run();
