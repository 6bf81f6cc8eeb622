/**
 * What an authenticated peer that misbehaves can and cannot do to a pool, on real pools over
 * real sockets: a frame with values no message has (a bigint op) closes only its connection;
 * a lane that reports tasks it does not hold cannot steer the pool; an outcome with neither
 * value nor error does not settle a future; a huge `error` message is logged bounded; a node
 * that goes silent is found within heartbeatTimeoutMs; a remote error cannot set `then` or
 * `constructor` on the local one.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeValue } from '../shared/codec.ts';
import { errorFromWire, ProtocolError } from '../shared/errors.ts';
import { rejects } from './helpers/assert.ts';
import { CLOSE } from '../shared/protocol.ts';
import { add, echo, sleepThenWhere } from './fixtures/tasks.ts';
import { startPool, waitFor, within } from './helpers/cluster.ts';
import { connectRawPeer, registerAsNode } from './helpers/raw-peer.ts';

test('a message whose op is a bigint closes only that connection (CLOSE.PROTOCOL); the pool keeps working', async () => {
  const logs: string[] = [];
  const pool = await startPool({ maxWorkers: 1, log: (_l, m) => logs.push(m) });
  try {
    for (const field of ['op', 'name'] as const) {
      const peer = await connectRawPeer(pool.url!, pool.token);
      // {op: <bigint 1>} or a register whose name is a bigint: msgpack's bigint extension (0x42).
      const bigint = [0xd4, 0x42, 0x01];
      const bytes = field === 'op'
        ? Uint8Array.of(0x81, 0xa2, 0x6f, 0x70, ...bigint)
        : Uint8Array.of(0x82, 0xa2, 0x6f, 0x70, 0xa8, ...Buffer.from('register'), 0xa4, ...Buffer.from('name'), ...bigint);
      peer.sendRaw(bytes);
      const { code, reason } = await within(peer.closed, 5000, 'the close');
      assert.is(code, CLOSE.PROTOCOL, field);
      assert.match(reason, field === 'op' ? 'unknown op 1n' : 'malformed "register"');
    }
    assert.is(await within(pool.submit(add, 2, 3), 10_000, 'a task after'), 5);
  } finally {
    await pool.shutdown({ cancelFutures: true });
  }
});

test("results for tasks a lane does not hold do not change the pool's prefetch (its mean task duration)", async () => {
  const pool = await startPool({ maxWorkers: 1 });
  const control = await connectRawPeer(pool.url!, pool.token);
  try {
    const welcome = await registerAsNode(control);
    // Draining first: its lane attaches but is given no task.
    control.send({ op: 'drain' });
    await control.next('drained');
    const lane = await connectRawPeer(pool.url!, pool.token);
    lane.send({ op: 'attach', node: welcome.workerId, lane: 0, ticket: welcome.laneTicket });
    await lane.next('attached');
    // "Tiny tasks" for ids it never held: if counted, the pool would think tasks take 0.01 ms
    // and send 256 per slot at once.
    lane.send({ op: 'results', items: Array.from({ length: 50 }, (_, i) => ({ id: 1000 + i, v: encodeValue(0), d: 0.01 })) });
    lane.send({ op: 'ping', t: 1 });
    await lane.next('pong');
    const futures = Array.from({ length: 4 }, () => pool.submit(sleepThenWhere, 400));
    await waitFor(() => futures.some((f) => f.running()), 10_000, 'a task running');
    await new Promise((r) => setTimeout(r, 100));
    assert.is(futures.filter((f) => f.running()).length, 1, 'one long task at a time on the one slot');
    await within(Promise.all(futures), 15_000, 'the tasks');
    assert.is(lane.isClosed(), false, 'stale results are dropped, not punished');
    lane.close();
  } finally {
    control.close();
    await pool.shutdown({ cancelFutures: true });
  }
});

test('an outcome with neither value nor error closes the lane (CLOSE.PROTOCOL) and the task runs again; a real undefined return settles to undefined', async () => {
  const pool = await startPool({ maxWorkers: 0 });
  const control = await connectRawPeer(pool.url!, pool.token);
  try {
    const welcome = await registerAsNode(control);
    const lane = await connectRawPeer(pool.url!, pool.token);
    lane.send({ op: 'attach', node: welcome.workerId, lane: 0, ticket: welcome.laneTicket });
    await lane.next('attached');
    const f = pool.submit(echo, undefined);
    const run = (await lane.next('run')) as { tasks: { id: number }[] };
    const id = run.tasks[0]!.id;
    const from = control.received.length;
    lane.send({ op: 'results', items: [{ id, d: 1 }] });
    const { code, reason } = await within(lane.closed, 5000, 'the lane closing');
    assert.is(code, CLOSE.PROTOCOL);
    assert.match(reason, 'neither a value nor an error');
    assert.is(f.done(), false, 'the future was not settled by it');
    // The node is told to end that lane's thread, says so, and a new lane gets the task again.
    const kill = (await control.next('kill', 5000, from)) as { lane: number };
    control.send({ op: 'lane-died', lane: kill.lane, how: 'was ended', task: id, crashed: false });
    const lane2 = await connectRawPeer(pool.url!, pool.token);
    lane2.send({ op: 'attach', node: welcome.workerId, lane: 1, ticket: welcome.laneTicket });
    const rerun = (await lane2.next('run')) as { tasks: { id: number; n: number }[] };
    assert.is(rerun.tasks[0]!.id, id);
    assert.is(rerun.tasks[0]!.n, 2, 'its second attempt');
    lane2.send({ op: 'results', items: [{ id, v: encodeValue(undefined), d: 1 }] });
    assert.is(await within(f, 5000, 'the future'), undefined);
    assert.is(f.done(), true);
    lane2.close();
  } finally {
    control.close();
    await pool.shutdown({ cancelFutures: true });
  }
});

test('a node that answers a chunk of map() with a value that is not one value per call fails it with ProtocolError', async () => {
  const pool = await startPool({ maxWorkers: 0 });
  const control = await connectRawPeer(pool.url!, pool.token, { autoPong: true });
  try {
    const welcome = await registerAsNode(control);
    const lane = await connectRawPeer(pool.url!, pool.token);
    lane.send({ op: 'attach', node: welcome.workerId, lane: 0, ticket: welcome.laneTicket });
    await lane.next('attached');
    const results: unknown[] = [];
    const done = (async () => {
      for await (const v of pool.map(echo, ['a', 'b', 'c'], { chunksize: 3 })) results.push(v);
    })();
    const run = (await lane.next('run')) as { tasks: { id: number; c?: number }[] };
    assert.ok(run.tasks[0]!.c === 1 || run.tasks[0]!.c === 2, 'a chunk');
    // A string where an array of three values belongs: its characters must not become results.
    lane.send({ op: 'results', items: [{ id: run.tasks[0]!.id, v: encodeValue('xyz'), d: 1 }] });
    const err = (await within(rejects(done, ProtocolError), 5000, 'map failing')) as ProtocolError;
    assert.is(err.code, 'WSF_PROTOCOL');
    assert.match(err.message, 'answered a chunk of 3 call(s) of echo() with "xyz"');
    assert.equal(results, []);
    lane.close();
  } finally {
    control.close();
    await pool.shutdown({ cancelFutures: true });
  }
});

test('an `error` message of 1 MB is logged cut short', async () => {
  const logs: string[] = [];
  const pool = await startPool({ maxWorkers: 0, log: (_l, m) => logs.push(m) });
  try {
    const peer = await connectRawPeer(pool.url!, pool.token);
    peer.send({ op: 'error', code: 'X'.repeat(10_000), message: 'y'.repeat(1 << 20) });
    await waitFor(() => logs.some((m) => m.includes('yyyy')), 5000, 'the log line');
    const line = logs.find((m) => m.includes('yyyy'))!;
    assert.ok(line.length < 3000, `a ${line.length}-character log line`);
    assert.match(line, 'more characters)');
    peer.close();
  } finally {
    await pool.shutdown({ cancelFutures: true });
  }
});

test('a message of another kind of connection closes only that connection (CLOSE.PROTOCOL), saying where it belongs', async () => {
  const pool = await startPool({ maxWorkers: 0 });
  const control = await connectRawPeer(pool.url!, pool.token);
  try {
    const welcome = await registerAsNode(control, 2);
    const cases: [string, { op: string } & Record<string, unknown>, RegExp][] = [
      ['drain on a lane', { op: 'drain' }, /"drain" on a connection that is not a node's control connection/],
      [
        'register again on a lane',
        { op: 'register', name: 'x', slots: 1, runtime: 'node', runtimeVersion: '20', hostname: 'h', pid: 1 },
        /"register" on a connection that is not a new connection/,
      ],
      ['ready before register', { op: 'ready' }, /"ready" on a connection that is not a node's control connection/],
      ['results on a control connection', { op: 'results', items: [] }, /"results" on a connection that is not an attached lane/],
    ];
    let laneNumber = 0;
    for (const [what, msg, reason] of cases) {
      let peer = await connectRawPeer(pool.url!, pool.token);
      if (what.endsWith('on a lane')) {
        peer.send({ op: 'attach', node: welcome.workerId, lane: laneNumber++, ticket: welcome.laneTicket });
        await peer.next('attached');
      } else if (what.endsWith('on a control connection')) {
        peer = control;
      }
      peer.send(msg);
      const closed = await within(peer.closed, 5000, what);
      assert.is(closed.code, CLOSE.PROTOCOL, what);
      assert.match(closed.reason, reason, what);
    }
    // The pool goes on with a real node.
    const node = await connectRawPeer(pool.url!, pool.token);
    await registerAsNode(node);
    node.close();
  } finally {
    control.close();
    await pool.shutdown({ cancelFutures: true });
  }
});

test('a worker node that goes silent is lost heartbeatTimeoutMs after its last message, not up to a ping interval later', async () => {
  const pool = await startPool({ maxWorkers: 0, heartbeatIntervalMs: 1500, heartbeatTimeoutMs: 1500 });
  const peer = await connectRawPeer(pool.url!, pool.token);
  try {
    await registerAsNode(peer);
    // Answer one ping at once, then say nothing more: the pool's next check comes one interval
    // after that ping, when the node has been silent for just under the timeout.
    const ping = (await peer.next('ping', 5000)) as { t: number };
    peer.send({ op: 'pong', t: ping.t });
    const silentSince = Date.now();
    await within(peer.closed, 5000, 'the pool ending the silent node');
    const after = Date.now() - silentSince;
    // Checked at each ping, it was found at the second ping after, 3000 ms.
    assert.ok(after >= 1400, `lost after ${after} ms`);
    assert.ok(after < 2500, `lost after ${after} ms: more than the 1500 ms timeout allows`);
  } finally {
    peer.close();
    await pool.shutdown({ cancelFutures: true });
  }
});

test("a remote error's own properties named constructor, then, toString or __proto__ are not copied onto the local error", async () => {
  const props = JSON.parse('{"__proto__": {"polluted": 1}, "constructor": 1, "then": 2, "toString": 3, "message": "other", "kept": 4}');
  const err = errorFromWire({ name: 'QuotaError', message: 'over quota', props }) as Error & Record<string, unknown>;
  assert.is(err.constructor, Error);
  assert.is(err.then, undefined);
  assert.is(String(err), 'QuotaError: over quota');
  assert.is(err.message, 'over quota');
  assert.is(err.polluted, undefined);
  assert.is(err.kept, 4);
  // Awaiting it gives the error itself back (it is not a thenable).
  assert.is(await Promise.resolve(err), err);
});

test.run();
