/**
 * The cluster's state machine without sockets (coordinator/cluster-state.ts): event sequences in,
 * instructions out. Every event in every node state (joining, ready, draining, lost), and the
 * failure orders integration tests can only hit by chance: lost while draining, results after
 * loss, abort during a retry, a lane that died while its node stayed then the node lost,
 * results for a cancelled task, duplicate results.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClusterState, type ClusterStateOptions, type Instruction } from '../coordinator/cluster-state.ts';
import { NodeResources } from '../coordinator/scheduler.ts';
import type { TaskOutcome } from '../shared/protocol.ts';

interface P {
  name: string;
  kind: { id: number };
  cancelled?: boolean;
}
type I = Instruction<P>;

const V = new Uint8Array([0xc0]); // an encoded value (nil): what a lane sends for a task that returned

function make(options: Partial<ClusterStateOptions<P>> = {}): ClusterState<P> {
  return new ClusterState<P>({
    maxRetries: 1,
    prefetchMs: Infinity,
    maxTasksPerSlot: 4,
    abortGraceMs: 1000,
    laneDeathWaitMs: 3000,
    warnAfterMs: 5000,
    accept: (p) => !p.cancelled,
    settled: (p) => p.cancelled === true,
    ...options,
  });
}

/** The instructions so far, and none left. */
function take(s: ClusterState<P>): I[] {
  const out = s.out.slice();
  s.out.length = 0;
  return out;
}

function ops(list: I[]): string[] {
  return list.map((i) => i.op);
}

const urls = (id: number) => (id === 0 || id === 1 ? `file:///tasks${id}.ts` : undefined);

/** A node `n` with `lanes` lanes named `${n}/0`, `${n}/1`, ... attached (still joining). */
function joining(s: ClusterState<P>, n = 'n1', lanes = 1, failed: { id: number; error: string }[] = []): void {
  s.register({ id: n, label: `${n} (host, 127.0.0.1)`, slots: lanes, local: false, ticket: `t-${n}` });
  for (let i = 0; i < lanes; i++) assert.is(s.attach({ lane: `${n}/${i}`, node: n, laneNumber: i, ticket: `t-${n}`, failedModules: failed, moduleUrl: urls }), undefined);
}

function ready(s: ClusterState<P>, n = 'n1', lanes = 1): void {
  joining(s, n, lanes);
  s.ready(n);
}

let nextId = 0;
function submit(s: ClusterState<P>, count: number, kind = 0, module = 0): number[] {
  const ids: number[] = [];
  for (let i = 0; i < count; i++) {
    const id = ++nextId;
    s.submit(id, { name: `t${id}`, kind: { id: kind } }, { module, priority: 0, now: 0 });
    ids.push(id);
  }
  return ids;
}

function runs(list: I[]): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const i of list) if (i.op === 'run') (out[i.lane] ??= []).push(...i.tasks.map((t) => t.id));
  return out;
}

const ok = (id: number, d?: number): TaskOutcome => (d === undefined ? { id, v: V } : { id, v: V, d });

// ---- joining ------------------------------------------------------------------------------------

test('joining: lanes attach with the ticket; tasks go out at once; ready reports the failed modules', () => {
  const s = make();
  s.register({ id: 'n1', label: 'n1', slots: 2, local: false, ticket: 'T' });
  assert.is(s.nodePhase('n1'), 'joining');
  assert.match(s.attach({ lane: 'x', node: 'nope', laneNumber: 0, ticket: 'T', failedModules: [], moduleUrl: urls })!, /no worker node "nope" is connected/);
  assert.match(s.attach({ lane: 'x', node: 'n1', laneNumber: 0, ticket: 'wrong', failedModules: [], moduleUrl: urls })!, /wrong lane ticket/);
  assert.match(s.attach({ lane: 'x', node: 'n1', laneNumber: 0, ticket: 'T', failedModules: [{ id: 9, error: 'x' }], moduleUrl: urls })!, /no task module with id 9/);
  assert.is(s.attach({ lane: 'n1/0', node: 'n1', laneNumber: 0, ticket: 'T', failedModules: [], moduleUrl: urls }), undefined);
  assert.match(s.attach({ lane: 'y', node: 'n1', laneNumber: 0, ticket: 'T', failedModules: [], moduleUrl: urls })!, /lane 0 .* already attached/);
  assert.is(s.attach({ lane: 'n1/1', node: 'n1', laneNumber: 1, ticket: 'T', failedModules: [{ id: 1, error: 'SyntaxError' }], moduleUrl: urls }), undefined);
  assert.match(s.attach({ lane: 'z', node: 'n1', laneNumber: 2, ticket: 'T', failedModules: [], moduleUrl: urls })!, /has 2 slot\(s\) and as many lanes already/);
  const warn = take(s);
  assert.equal(ops(warn), ['log']);
  assert.match((warn[0] as { message: string }).message, /could not import task module file:\/\/\/tasks1\.ts: SyntaxError/);
  assert.is(s.slotCount, 2);
  const [a] = submit(s, 1);
  const [b] = submit(s, 1, 0, 1); // module 1: only lane 0 can run it
  s.assign();
  assert.equal(runs(take(s)), { 'n1/0': [a, b] });
  s.ready('n1');
  assert.is(s.nodePhase('n1'), 'ready');
  assert.equal(take(s), [{ op: 'node-ready', node: 'n1', failedModules: [1] }]);
});

test('joining: results, report, abort and tick before ready behave as for a ready node', () => {
  const s = make();
  joining(s);
  const [a, b] = submit(s, 2);
  s.assign();
  take(s);
  assert.is(s.reportable('n1/0', a!)!.name, `t${a}`);
  assert.is(s.results('n1/0', [ok(a!, 2)]), undefined);
  assert.equal(ops(take(s)), ['settle']);
  assert.is(s.estimateOf(0), 2);
  s.abort(b!, 0);
  assert.equal(take(s), [{ op: 'cancel', lane: 'n1/0', id: b! }]);
  s.tick(999);
  assert.equal(take(s), []);
  s.tick(1000);
  assert.equal(take(s), [{ op: 'kill', node: 'n1', lane: 0, task: b!, reason: `task ${b} did not stop within 1000 ms of being aborted` }]);
  // Asked again every grace period while the lane has not reported it.
  s.tick(2000);
  assert.equal(ops(take(s)), ['kill']);
  s.results('n1/0', [{ id: b! }]); // "did not run": the answer to a cancel
  assert.equal(take(s), []);
  s.tick(5000);
  assert.equal(take(s), [], 'reported: no more kills');
  assert.is(s.nextDeadline, Infinity);
});

test('joining: a node lost before it is ready requeues what its lanes held', () => {
  const s = make();
  joining(s, 'n1', 2);
  const ids = submit(s, 4);
  s.assign();
  take(s);
  s.connectionLost('n1', 'socket closed', 0);
  const out = take(s);
  assert.equal(ops(out).filter((o) => o === 'requeued').length, 4);
  assert.equal(out.filter((i) => i.op === 'close-lane').map((i) => (i as { lane: string }).lane).sort(), ['n1/0', 'n1/1']);
  assert.equal(out.at(-1), { op: 'node-lost', node: 'n1', reason: 'socket closed', requeued: 4, failed: 0, drained: false });
  assert.is(s.queuedCount, 4);
  assert.is(s.nodePhase('n1'), undefined);
  ready(s, 'n2');
  s.assign();
  // Each lane's tasks go back in front, in submission order (the last lane's first).
  assert.equal(runs(take(s))['n2/0']!.sort(), ids.sort());
});

// ---- ready --------------------------------------------------------------------------------------

test('ready: tasks spread over lanes; results settle each exactly once, a duplicate is dropped', () => {
  const s = make();
  ready(s, 'n1', 2);
  take(s);
  const ids = submit(s, 4);
  s.assign();
  const sent = runs(take(s));
  assert.equal(Object.keys(sent).sort(), ['n1/0', 'n1/1']);
  assert.is(s.sentCount, 4);
  const [first] = sent['n1/0']!;
  s.results('n1/0', [ok(first!)]);
  s.results('n1/0', [ok(first!)]); // the same outcome again
  const settled = take(s).filter((i) => i.op === 'settle');
  assert.is(settled.length, 1);
  assert.is((settled[0] as { payload: P }).payload.name, `t${first}`);
  assert.is(s.sentCount, 3);
  // From a lane that does not hold it: dropped.
  s.results('n1/1', [ok(sent['n1/0']![1]!)]);
  assert.equal(take(s), []);
  assert.is(s.sentCount, 3);
  void ids;
});

test('ready: an outcome with neither value nor error for a live task breaks the lane', () => {
  const s = make();
  ready(s);
  const [a] = submit(s, 1);
  s.assign();
  take(s);
  assert.match(s.results('n1/0', [{ id: a! }])!, /neither a value nor an error/);
  assert.equal(take(s), []);
  assert.is(s.sentCount, 1, 'still held: the lane is closed and its tasks handled as lost');
});

test('ready: results for a cancelled (aborted) task are dropped and free nothing twice', () => {
  const s = make();
  ready(s);
  const [a, b] = submit(s, 2);
  s.assign();
  take(s);
  s.abort(a!, 0);
  take(s);
  s.results('n1/0', [ok(a!, 500)]);
  assert.equal(take(s), []);
  assert.is(s.estimateOf(0), undefined, "a task that is not the lane's does not steer the estimates");
  s.results('n1/0', [ok(b!)]);
  assert.equal(ops(take(s)), ['settle']);
  assert.is(s.sentCount, 0);
});

test('ready: a task cancelled while queued is never sent', () => {
  const s = make();
  ready(s);
  take(s);
  nextId++;
  const id = nextId;
  s.submit(id, { name: 'x', kind: { id: 0 }, cancelled: true }, { module: 0, priority: 0, now: 0 });
  s.assign();
  assert.equal(take(s), []);
  assert.is(s.queuedCount, 0);
});

test('ready: a task that cannot be sent frees its place on the lane', () => {
  const s = make({ maxTasksPerSlot: 1 });
  ready(s);
  const [a, b] = submit(s, 2);
  s.assign();
  assert.equal(runs(take(s)), { 'n1/0': [a] });
  s.unsendable(a!);
  assert.is(s.sentCount, 0);
  s.assign();
  assert.equal(runs(take(s)), { 'n1/0': [b] });
});

test('ready: a lane whose connection closes is drained, its node asked; lane-died says which task ran', () => {
  const s = make();
  ready(s, 'n1', 2);
  take(s);
  const ids = submit(s, 2);
  s.assign();
  const sent = runs(take(s));
  const [t0] = sent['n1/0']!;
  const [t1] = sent['n1/1']!;
  s.connectionLost('n1/0', 'reset', 100);
  assert.equal(take(s), [{ op: 'kill', node: 'n1', lane: 0, reason: 'its lane closed: reset' }]);
  assert.is(s.slotCount, 1, 'nothing new goes to the closing lane');
  assert.is(s.openLanes('n1'), 1);
  s.connectionLost('n1/0', 'again', 200);
  assert.equal(take(s), [], 'a second close of the same lane changes nothing');
  s.laneDied({ node: 'n1', laneNumber: 0, crashed: true, how: 'exited with code 7', task: t0, now: 0 });
  const out = take(s);
  assert.equal(ops(out), ['log', 'settle', 'close-lane']);
  const settle = out[1] as Extract<I, { op: 'settle' }>;
  assert.equal(settle.outcome.e, { name: 'Error', message: "the task's thread exited with code 7", code: 'WSF_THREAD_DIED' });
  s.tick(10_000);
  assert.equal(take(s), [], 'the death wait was cancelled with the lane');
  // A new lane may take its place.
  assert.is(s.attach({ lane: 'n1/0b', node: 'n1', laneNumber: 0, ticket: 't-n1', failedModules: [], moduleUrl: urls }), undefined);
  s.results('n1/1', [ok(t1!)]);
  assert.equal(ops(take(s)), ['settle']);
  void ids;
});

test('ready: a closed lane the node never explains is lost at its deadline, its tasks requeued', () => {
  const s = make();
  ready(s, 'n1', 2);
  take(s);
  submit(s, 2);
  s.assign();
  const t0 = runs(take(s))['n1/0']![0]!;
  s.connectionLost('n1/0', 'reset', 100);
  take(s);
  assert.is(s.nextDeadline, 3100);
  s.tick(3099);
  assert.equal(take(s), []);
  s.tick(3100);
  const out = take(s);
  assert.equal(ops(out), ['requeued', 'lane-lost', 'close-lane']);
  assert.is((out[0] as { id: number }).id, t0);
  assert.is(s.queuedCount, 1);
});

test('ready: lane died with the node connected, then the node lost: each task handled once', () => {
  const s = make({ maxRetries: 0 });
  ready(s, 'n1', 2);
  take(s);
  submit(s, 4);
  s.assign();
  const sent = runs(take(s));
  s.laneDied({ node: 'n1', laneNumber: 0, crashed: false, how: 'was ended', task: undefined, now: 0 });
  const first = take(s);
  // The lane ran nothing: both its tasks go back without using a retry.
  assert.equal(first.filter((i) => i.op === 'requeued').map((i) => (i as { id: number }).id), sent['n1/0']);
  s.laneDied({ node: 'n1', laneNumber: 0, crashed: false, how: 'again', task: undefined, now: 0 });
  assert.equal(take(s), [], 'a second lane-died for the same lane changes nothing');
  s.connectionLost('n1', 'gone', 0);
  const second = take(s);
  // Lane 1's running task is lost with no retries left; the one behind it goes back.
  const lost = second.filter((i) => i.op === 'lost') as Extract<I, { op: 'lost' }>[];
  assert.equal(lost.map((i) => i.id), [sent['n1/1']![0]]);
  assert.is(lost[0]!.attempts, 1);
  assert.equal(second.filter((i) => i.op === 'requeued').map((i) => (i as { id: number }).id), [sent['n1/1']![1]]);
  assert.equal(second.at(-1), { op: 'node-lost', node: 'n1', reason: 'gone', requeued: 1, failed: 1, drained: false });
  s.results('n1/1', [ok(sent['n1/1']![0]!)]);
  assert.equal(take(s), [], 'results after loss are dropped');
});

test('ready: abort during a retry: the requeued task is dropped, never sent again', () => {
  const s = make();
  ready(s);
  const [a] = submit(s, 1);
  s.assign();
  take(s);
  s.connectionLost('n1', 'gone', 0);
  assert.ok(ops(take(s)).includes('requeued'));
  s.abort(a!, 0); // its future was aborted while it waited for its retry
  assert.equal(take(s), [], 'not on a lane: nothing to cancel or kill');
  assert.is(s.nextDeadline, Infinity);
  ready(s, 'n2');
  take(s);
  s.assign();
  assert.equal(take(s), []);
  assert.is(s.queuedCount, 0);
});

test('ready: retries are counted; a task lost more than maxRetries times fails', () => {
  const s = make({ maxRetries: 1 });
  const [a] = submit(s, 1);
  for (const [n, expect] of [['n1', 'requeued'], ['n2', 'lost']] as const) {
    ready(s, n);
    take(s);
    s.assign();
    const run = take(s)[0] as Extract<I, { op: 'run' }>;
    assert.is(run.tasks[0]!.id, a);
    s.connectionLost(n, 'gone', 0);
    const out = take(s);
    assert.ok(ops(out).includes(expect), `${n}: ${ops(out)}`);
  }
  assert.is(s.queuedCount, 0);
});

test('ready: a module no connected node can import fails its queued tasks', () => {
  const s = make();
  joining(s, 'n1', 1, [{ id: 1, error: 'SyntaxError: x' }]);
  take(s);
  assert.equal(s.unloadableReasons(1), ['worker node n1 (host, 127.0.0.1): SyntaxError: x']);
  assert.is(s.unloadableReasons(0), undefined);
  ready(s, 'n2');
  const [t] = submit(s, 1, 0, 1);
  assert.is(s.unloadableReasons(1), undefined, 'n2 can run it');
  s.connectionLost('n2', 'gone', 0);
  const out = take(s);
  const fail = out.find((i) => i.op === 'unloadable') as Extract<I, { op: 'unloadable' }>;
  assert.is(fail.payload.name, `t${t}`);
  assert.is(fail.module, 1);
});

test('ready: measured durations set the estimate and deep prefetch follows', () => {
  const s = make({ prefetchMs: 10, maxTasksPerSlot: 256 });
  ready(s);
  take(s);
  submit(s, 50);
  s.assign();
  assert.is(runs(take(s))['n1/0']!.length, 1, 'a kind not measured yet counts as long: one at a time');
  s.results('n1/0', [ok(nextId - 49, 0.1)]);
  take(s);
  s.assign();
  assert.is(runs(take(s))['n1/0']!.length, 49, 'a 0.1 ms kind prefetches deep');
});

// ---- draining -----------------------------------------------------------------------------------

test('draining: nothing new is sent; drained goes out once every lane has reported', () => {
  const s = make();
  ready(s, 'n1', 2);
  take(s);
  const ids = submit(s, 2);
  s.assign();
  take(s);
  s.drain('n1', 0);
  assert.equal(take(s), [{ op: 'node-draining', node: 'n1' }]);
  assert.is(s.nodePhase('n1'), 'draining');
  assert.is(s.slotCount, 0);
  s.drain('n1', 0);
  assert.equal(take(s), [], 'draining twice says nothing twice');
  submit(s, 1);
  s.assign();
  assert.equal(take(s), []);
  s.results('n1/0', [ok(ids[0]!)]);
  assert.equal(ops(take(s)), ['settle']);
  s.results('n1/1', [ok(ids[1]!)]);
  assert.equal(ops(take(s)), ['settle', 'drained']);
  // A lane that attaches while the node drains gets nothing either.
  s.laneDied({ node: 'n1', laneNumber: 0, crashed: false, how: 'replaced', task: undefined, now: 0 });
  take(s);
  assert.is(s.attach({ lane: 'n1/0b', node: 'n1', laneNumber: 0, ticket: 't-n1', failedModules: [], moduleUrl: urls }), undefined);
  s.assign();
  assert.equal(take(s), []);
  s.connectionLost('n1', 'exit', 0);
  assert.equal(take(s).at(-1), { op: 'node-lost', node: 'n1', reason: 'exit', requeued: 0, failed: 0, drained: true });
});

test('draining: an idle node is drained at once; ready after drain keeps it draining', () => {
  const s = make();
  joining(s);
  s.drain('n1', 0);
  assert.equal(ops(take(s)), ['node-draining', 'drained']);
  s.ready('n1');
  take(s);
  assert.is(s.nodePhase('n1'), 'draining');
});

test('draining: lost while draining requeues what was unreported, and says it was not drained', () => {
  const s = make();
  ready(s);
  take(s);
  const [a] = submit(s, 1);
  s.assign();
  take(s);
  s.drain('n1', 0);
  take(s);
  s.connectionLost('n1', 'killed', 0);
  const out = take(s);
  assert.equal(ops(out), ['requeued', 'close-lane', 'node-lost']);
  assert.is((out[0] as { id: number }).id, a);
  assert.is((out[2] as { drained: boolean }).drained, false);
});

test('draining: an abort while draining still cancels; its report lets drained go out', () => {
  const s = make();
  ready(s);
  take(s);
  const [a] = submit(s, 1);
  s.assign();
  take(s);
  s.drain('n1', 0);
  take(s);
  s.abort(a!, 0);
  assert.equal(ops(take(s)), ['cancel']);
  s.results('n1/0', [{ id: a! }]);
  assert.equal(ops(take(s)), ['drained']);
});

test('draining: unsendable and lane death both count towards drained', () => {
  const s = make();
  ready(s, 'n1', 2);
  take(s);
  const ids = submit(s, 2);
  s.assign();
  const sent = runs(take(s));
  s.drain('n1', 0);
  take(s);
  s.unsendable(sent['n1/0']![0]!);
  assert.equal(take(s), []);
  s.laneDied({ node: 'n1', laneNumber: 1, crashed: false, how: 'ended', task: undefined, now: 0 });
  const out = take(s);
  assert.ok(ops(out).includes('drained'), ops(out).join());
  void ids;
});

// ---- lost ---------------------------------------------------------------------------------------

test('lost: every event about a lost node or its lanes is dropped', () => {
  const s = make();
  ready(s, 'n1', 1);
  take(s);
  const [a] = submit(s, 1);
  s.assign();
  take(s);
  s.connectionLost('n1', 'gone', 0);
  take(s);
  assert.is(s.nodePhase('n1'), undefined);
  s.ready('n1');
  s.drain('n1', 0);
  s.results('n1/0', [ok(a!)]);
  s.laneDied({ node: 'n1', laneNumber: 0, crashed: true, how: 'crashed', task: a, now: 0 });
  s.connectionLost('n1/0', 'closed', 0);
  s.connectionLost('n1', 'again', 0);
  s.tick(1e9);
  assert.equal(take(s), []);
  assert.is(s.reportable('n1/0', a!), undefined);
  assert.match(s.attach({ lane: 'n1/0', node: 'n1', laneNumber: 0, ticket: 't-n1', failedModules: [], moduleUrl: urls })!, /no worker node "n1" is connected/);
  assert.is(s.queuedCount, 1, 'the task waits for another node');
});

// ---- work stealing ------------------------------------------------------------------------------

/** Two lanes that can give tasks back; `n1/0` holds a running task and `behind` tasks behind it, `n1/1` is idle. */
function stealSetup(behind: number, canSteal = true): { s: ClusterState<P> } {
  const s = make({ prefetchMs: Infinity, maxTasksPerSlot: 64 });
  s.register({ id: 'n1', label: 'n1', slots: 2, local: false, ticket: 'T' });
  s.attach({ lane: 'n1/0', node: 'n1', laneNumber: 0, ticket: 'T', failedModules: [], moduleUrl: urls, canSteal });
  s.ready('n1');
  s.scheduler.setEstimate(0, 5);
  submit(s, 1 + behind);
  s.assign();
  take(s);
  s.attach({ lane: 'n1/1', node: 'n1', laneNumber: 1, ticket: 'T', failedModules: [], moduleUrl: urls, canSteal });
  take(s);
  return { s };
}

test('stealing: an idle lane makes the busiest lane give back the end of its queue; only what it gave back moves', () => {
  const { s } = stealSetup(4);
  const first = nextId - 4;
  s.assign();
  const asked = take(s);
  assert.equal(asked, [{ op: 'steal', lane: 'n1/0', ids: [first + 3, first + 4] }]);
  s.assign();
  assert.equal(take(s), [], 'one request per lane at a time');
  // The lane had already started one of them: it gives back only the other.
  s.stolen('n1/0', [first + 4]);
  const back = take(s);
  assert.equal(back.map((i) => i.op), ['taken-back']);
  assert.is((back[0] as { payload: P }).payload.name, `t${first + 4}`);
  s.assign();
  assert.equal(runs(take(s)), { 'n1/1': [first + 4] }, 'to the idle lane');
  assert.is(s.unreportedOn('n1'), 5);
  // The one it kept settles from it as usual; the one given back only from its new lane.
  s.results('n1/0', [ok(first + 3), ok(first + 4)]);
  assert.equal(take(s).filter((i) => i.op === 'settle').map((i) => (i as Extract<I, { op: 'settle' }>).outcome.id), [first + 3]);
  s.results('n1/1', [ok(first + 4)]);
  assert.equal(ops(take(s)), ['settle']);
});

test('stealing: a task given back keeps its attempt number (it never ran)', () => {
  const { s } = stealSetup(2);
  const first = nextId - 2;
  s.assign();
  const steal = take(s)[0] as Extract<I, { op: 'steal' }>;
  s.stolen('n1/0', steal.ids);
  take(s);
  s.assign();
  const run = take(s).find((i) => i.op === 'run') as Extract<I, { op: 'run' }>;
  assert.equal(run.tasks.map((t) => [t.id, t.attempt]), [[first + 2, 1]]);
});

test('stealing: not asked of lanes that cannot answer (older nodes), nor for less than a round trip of work', () => {
  const old = stealSetup(4, false).s;
  old.assign();
  assert.equal(take(old), []);
  const tiny = make({ prefetchMs: Infinity, maxTasksPerSlot: 64 });
  tiny.register({ id: 'n', label: 'n', slots: 2, local: false, ticket: 'T' });
  tiny.attach({ lane: 'a', node: 'n', laneNumber: 0, ticket: 'T', failedModules: [], moduleUrl: urls, canSteal: true });
  tiny.scheduler.setEstimate(0, 0.01);
  submit(tiny, 5);
  tiny.assign();
  tiny.attach({ lane: 'b', node: 'n', laneNumber: 1, ticket: 'T', failedModules: [], moduleUrl: urls, canSteal: true });
  take(tiny);
  tiny.assign();
  assert.equal(take(tiny), [], '0.04 ms behind the running task: not worth a steal');
});

test('stealing: a task aborted while its steal is out is neither run elsewhere nor waited for', () => {
  const { s } = stealSetup(2);
  const first = nextId - 2;
  s.assign();
  take(s);
  s.abort(first + 2, 0);
  assert.equal(ops(take(s)), ['cancel']);
  s.stolen('n1/0', [first + 2]);
  assert.equal(take(s), []);
  s.tick(1000);
  assert.equal(take(s), [], 'given back: no kill for it');
  s.drain('n1', 0);
  s.results('n1/0', [ok(first), ok(first + 1)]);
  assert.ok(ops(take(s)).includes('drained'), 'nothing unreported is left');
});

test('stealing: the lane lost before it answers: its tasks are handled once, its late answer ignored', () => {
  const { s } = stealSetup(2);
  const first = nextId - 2;
  s.assign();
  take(s);
  s.laneDied({ node: 'n1', laneNumber: 0, crashed: false, how: 'ended', task: first, now: 0 });
  const out = take(s);
  assert.equal(out.filter((i) => i.op === 'requeued').map((i) => (i as { id: number }).id).sort(), [first, first + 1, first + 2].sort());
  s.stolen('n1/0', [first + 2]);
  assert.equal(take(s), []);
  assert.is(s.queuedCount, 3);
});

test('handle(): the events as objects, as dask handle_stimulus', () => {
  const s = make();
  s.handle({ type: 'register', node: { id: 'n', label: 'n', slots: 1, local: true, ticket: 'T' } });
  assert.is(s.handle({ type: 'attach', lane: 'l', node: 'n', laneNumber: 0, ticket: 'T', failedModules: [], moduleUrl: urls }), undefined);
  s.handle({ type: 'ready', node: 'n' });
  s.handle({ type: 'submit', id: 1, payload: { name: 'a', kind: { id: 0 } }, module: 0, priority: 0, now: 0 });
  s.handle({ type: 'assign' });
  s.handle({ type: 'results', lane: 'l', items: [ok(1)] });
  s.handle({ type: 'drain', node: 'n', now: 0 });
  s.handle({ type: 'connection-lost', peer: 'n', reason: 'bye', now: 0 });
  s.handle({ type: 'tick', now: 0 });
  assert.equal(ops(take(s)), ['node-ready', 'run', 'settle', 'node-draining', 'drained', 'close-lane', 'node-lost']);
});

test('no slot: tasks waiting warnAfterMs with no lane attached are said once; a lane that attaches ends it and re-arms it', () => {
  const s = make({ warnAfterMs: 5000 });
  submit(s, 2);
  assert.is(s.nextDeadline, 5000);
  s.tick(4999);
  assert.equal(take(s), []);
  s.tick(5000);
  assert.equal(take(s), [{ op: 'no-slot-warning', queued: 2 }]);
  submit(s, 1);
  assert.is(s.nextDeadline, Infinity, 'said once');
  ready(s);
  s.assign();
  take(s);
  s.connectionLost('n1', 'gone', 6000);
  take(s);
  s.submit(++nextId, { name: 'later', kind: { id: 0 } }, { module: 0, priority: 0, now: 7000 });
  assert.is(s.nextDeadline, 12_000, 'armed again once a lane had attached');
  // A lane that attaches before the deadline: nothing is said.
  ready(s, 'n2');
  s.tick(12_000);
  assert.equal(ops(take(s)).filter((op) => op === 'no-slot-warning'), []);
});

// ---- resources no node declares -------------------------------------------------------------------

const GPU = { gpu: 1 };

/** A node `n` declaring `declared`, with one lane `${n}/0`, ready. */
function readyWith(s: ClusterState<P>, n: string, declared: Record<string, number>): void {
  s.register({ id: n, label: `${n} (host)`, slots: 1, local: false, ticket: `t-${n}`, resources: new NodeResources(declared) });
  s.attach({ lane: `${n}/0`, node: n, laneNumber: 0, ticket: `t-${n}`, failedModules: [], moduleUrl: urls });
  s.ready(n);
}

function submitFor(s: ClusterState<P>, resources: Record<string, number>, timeout: number | undefined, now: number, cancelled = false): number {
  const id = ++nextId;
  s.submit(id, { name: `t${id}`, kind: { id: 0 }, cancelled }, { module: 0, priority: 0, resources, timeout, now });
  return id;
}

test('unmet: a request no node declares warns once after warnAfterMs and fails at its timeout, naming what nodes declare', () => {
  const s = make({ warnAfterMs: 5000 });
  readyWith(s, 'cpu', { mem: 8 });
  take(s);
  const a = submitFor(s, GPU, 7000, 100);
  const b = submitFor(s, GPU, undefined, 200);
  assert.is(s.unmetCount, 2);
  assert.is(s.nextDeadline, 5100, 'the warning first');
  s.tick(5099);
  assert.equal(take(s), []);
  s.tick(5100);
  const [warning] = take(s) as Extract<I, { op: 'unmet-warning' }>[];
  assert.is(warning!.op, 'unmet-warning');
  assert.equal(warning!.tasks.map((t) => t.payload.name), [`t${a}`, `t${b}`]);
  assert.match(warning!.declared, 'Connected worker nodes declare cpu (host): mem=8');
  assert.is(s.nextDeadline, 7100, 'said once; the timeout next');
  s.tick(7100);
  const [timeout] = take(s) as Extract<I, { op: 'unmet-timeout' }>[];
  assert.equal([timeout!.op, timeout!.id, timeout!.waitedMs, timeout!.resources], ['unmet-timeout', a, 7000, GPU]);
  assert.is(s.queuedCount, 1, 'the timed-out task is no longer queued');
  assert.is(s.nextDeadline, Infinity, 'the one without a timeout waits as long as it takes');
  s.tick(1e9);
  assert.equal(take(s), []);
});

test('unmet: a node that declares the resources joins before the deadlines: nothing warns or fails, the tasks run there', () => {
  const s = make({ warnAfterMs: 5000 });
  const a = submitFor(s, GPU, 3000, 0);
  assert.is(s.nextDeadline, 3000);
  readyWith(s, 'g', { gpu: 1 });
  assert.is(s.unmetCount, 0);
  assert.is(s.nextDeadline, 5000, 'only the check for slots (none when it was queued) is left');
  s.assign();
  assert.equal(runs(take(s)), { 'g/0': [a] });
  s.tick(10_000);
  assert.equal(take(s), []);
});

test('unmet: the last node declaring the resources leaves with requests queued: they wait, warn and time out from then on', () => {
  const s = make({ warnAfterMs: 5000 });
  readyWith(s, 'g', { gpu: 1 });
  readyWith(s, 'cpu', { mem: 8 });
  const running = submitFor(s, GPU, 2000, 0);
  const queued = submitFor(s, GPU, 2000, 0);
  const patient = submitFor(s, GPU, undefined, 0);
  submitFor(s, GPU, 2000, 0, true); // cancelled while it waits
  s.assign();
  assert.equal(runs(take(s)), { 'g/0': [running] }, 'one gpu: one task at a time');
  assert.is(s.nextDeadline, Infinity, 'a node declares them: they wait as any task does');
  s.connectionLost('g', 'gone', 10_000);
  take(s);
  assert.is(s.unmetCount, 3, 'the requeued task and the two queued ones (not the cancelled one)');
  assert.is(s.nextDeadline, 12_000, 'their timeouts count from the moment no node declares them');
  s.tick(12_000);
  const out = take(s) as Extract<I, { op: 'unmet-timeout' }>[];
  assert.equal(out.map((i) => [i.op, i.id]), [['unmet-timeout', running], ['unmet-timeout', queued]]);
  assert.match(out[0]!.declared, 'cpu (host): mem=8');
  s.tick(15_000);
  const warned = take(s) as Extract<I, { op: 'unmet-warning' }>[];
  assert.equal(warned.map((i) => i.tasks.map((t) => t.payload.name)), [[`t${patient}`]]);
});

test('unmet: the only node declaring them drains: queued requests wait for another; one that joins ends the wait', () => {
  const s = make({ warnAfterMs: 5000 });
  readyWith(s, 'g', { gpu: 1 });
  const first = submitFor(s, GPU, 1000, 0);
  const second = submitFor(s, GPU, 1000, 0);
  s.assign();
  assert.equal(runs(take(s)), { 'g/0': [first] });
  s.drain('g', 50);
  take(s);
  assert.is(s.unmetCount, 1);
  assert.is(s.nextDeadline, 1050);
  readyWith(s, 'g2', { gpu: 2 });
  assert.is(s.unmetCount, 0);
  s.assign();
  assert.equal(runs(take(s)), { 'g2/0': [second] });
  s.tick(2000);
  assert.equal(ops(take(s)), []);
});

test('unmet: the lane of the only node declaring them dies, its node stays: the requests queued wait as if it had left', () => {
  const s = make({ warnAfterMs: 5000 });
  readyWith(s, 'g', { gpu: 1 });
  const a = submitFor(s, GPU, 500, 0);
  const b = submitFor(s, GPU, 500, 0);
  s.assign();
  take(s);
  s.laneDied({ node: 'g', laneNumber: 0, crashed: false, how: 'ended', task: a, now: 100 });
  take(s);
  assert.is(s.unmetCount, 2);
  s.tick(600);
  assert.equal((take(s) as Extract<I, { op: 'unmet-timeout' }>[]).map((i) => i.id), [a, b]);
});

test.run();
