/**
 * A task thread's runner (worker-node/task-runner.ts) without a lane or a socket: tasks in,
 * outcomes out. Plain calls (sync and async), chunks of calls and their first error, errors
 * whose class a task module exports, modules that cannot be imported, aborts, reports, and
 * outcomes cut to the coordinator's frame limit.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pathToFileURL } from 'node:url';
import { fileURLToPath } from 'node:url';
import { decodeValue, encodeValue } from '../shared/codec.ts';
import type { TaskOutcome, TaskSpec } from '../shared/protocol.ts';
import { currentTask } from '../shared/task-context.ts';
import { fitOutcomes, type ReportSink, TaskRunner } from '../worker-node/task-runner.ts';

const tasksUrl = new URL('./fixtures/tasks.ts', import.meta.url).href;
const missingUrl = pathToFileURL(fileURLToPath(new URL('./fixtures/no-such-module.ts', import.meta.url))).href;

function runner(reports?: ReportSink): TaskRunner {
  return new TaskRunner({
    modules: [{ id: 1, url: tasksUrl, name: 'tasks.ts' }, { id: 2, url: missingUrl, name: 'no-such-module.ts' }],
    installDir: '/srv/app',
    reports,
  });
}

let nextId = 1;
function task(f: string, args: unknown, fields: Partial<TaskSpec> = {}): TaskSpec {
  return { id: nextId++, m: 1, f, a: encodeValue(args), n: 1, ...fields };
}

const value = (o: TaskOutcome): unknown => decodeValue(o.v!, 'value', o.x);

test('a plain call returns its outcome at once once its module is imported; an async one settles later', async () => {
  const r = runner();
  const first = r.run(task('add', [2, 3]));
  assert.ok(first instanceof Promise, 'the module is imported on first use');
  assert.is(value(await first), 5);
  const job = task('add', [40, 2]);
  const outcome = r.run(job);
  assert.not.ok(outcome instanceof Promise, 'no await on the common path');
  assert.is((outcome as TaskOutcome).id, job.id);
  assert.is(value(outcome as TaskOutcome), 42);
  assert.ok((outcome as TaskOutcome).d! >= 0);
  const later = r.run(task('sleepThenEcho', [5, 'hi']));
  assert.ok(later instanceof Promise);
  assert.is(value(await later), 'hi');
  assert.not.ok(r.isRunning(job.id), 'a finished task is no longer running');
});

test('loadAll names the modules that cannot be imported, with what to do', async () => {
  const failed = await runner().loadAll();
  assert.is(failed.length, 1);
  assert.is(failed[0]!.id, 2);
  assert.match(failed[0]!.error, 'no-such-module.ts');
});

test('errors: the thrown error with its class reference, unknown functions and modules', async () => {
  const r = runner();
  await r.loadAll();
  const custom = (await r.run(task('failWith', ['custom', 'over quota']))) as TaskOutcome;
  assert.is(custom.v, undefined);
  assert.is(custom.e!.message, 'over quota');
  assert.equal(custom.e!.cls, { m: 1, e: 'QuotaError' }, 'a class the task module exports travels by reference');
  const plain = (await r.run(task('failWith', ['TypeError', 'bad']))) as TaskOutcome;
  assert.is(plain.e!.name, 'TypeError');
  assert.is(plain.e!.cls, undefined);
  const unknownFn = await r.run(task('noSuchExport', []));
  assert.is(unknownFn.e!.code, 'WSF_UNKNOWN_TASK');
  assert.match(unknownFn.e!.message, 'no exported function "noSuchExport"');
  const unknownModule = await r.run(task('add', [1, 2], { m: 99 }));
  assert.match(unknownModule.e!.message, 'unknown task module id 99');
  const notLoadable = await r.run(task('add', [1, 2], { m: 2 }));
  assert.is(notLoadable.e!.name, 'ModuleLoadError');
  assert.match(notLoadable.e!.message, 'no-such-module.ts');
  const badArgs = await r.run(task('add', { not: 'an array' }));
  assert.match(badArgs.e!.message, 'task arguments must be an array');
});

test('a chunk runs its calls in order and stops at the first error, keeping the values before it', async () => {
  const r = runner();
  const spread = await r.run(task('add', [[1, 2], [3, 4], [5, 6]], { c: 1 }));
  assert.equal(value(spread), [3, 7, 11]);
  assert.is(spread.e, undefined);
  const single = await r.run(task('failIfNegative', [1, 2, -3, 4], { c: 2 }));
  assert.equal(value(single), [1, 2], 'the values before the error');
  assert.ok(single.e, 'and the error of the third call');
  const async = await r.run(task('sleepThenEcho', [[1, 'a'], [1, 'b']], { c: 1 }));
  assert.equal(value(async), ['a', 'b']);
});

test('abort: a chunk of async calls stops after the call that was running, and runs none of the rest', async () => {
  const r = runner();
  await r.loadAll();
  const job = task('sleepThenEcho', [[20, 'a'], [20, 'b'], [20, 'c']], { c: 1 });
  const pending = r.run(job);
  assert.ok(r.abort(job.id, new Error('cancelled')), 'aborted while its first call sleeps');
  const outcome = await pending;
  assert.equal(value(outcome), ['a']);
  assert.not.ok(r.isRunning(job.id));
});

test('abort: a running task sees its signal; a task not running is not aborted', async () => {
  const r = runner();
  await r.loadAll();
  const job = task('waitForAbort', [5000]);
  const pending = r.run(job);
  assert.ok(r.isRunning(job.id));
  assert.not.ok(r.abort(job.id + 1000, new Error('x')), 'nothing to abort');
  assert.ok(r.abort(job.id, new Error('cancelled')));
  const outcome = await pending;
  assert.is(value(outcome), 'aborted');
  assert.not.ok(r.isRunning(job.id));
  const other = task('waitForAbort', [5000]);
  const second = r.run(other);
  r.abortAll(new Error('the lane closed'));
  assert.is(value(await second), 'aborted');
});

test('currentTask() is the running task during a call and undefined after it', async () => {
  const r = runner();
  await r.loadAll();
  const job = task('attempt', [], { n: 3 });
  assert.is(value((await r.run(job)) as TaskOutcome), 3);
  assert.is(currentTask(), undefined);
});

test('reports go to the sink while the task runs, and are dropped once the sink is closed', async () => {
  const sent: { id: number; v: unknown }[] = [];
  const sink = { isOpen: true, send: (id: number, v: Uint8Array) => (sent.push({ id, v: decodeValue(v) }), Promise.resolve()) };
  const r = runner(sink);
  const job = task('reportCount', [2]);
  assert.is(value(await r.run(job)), 2);
  assert.equal(sent, [{ id: job.id, v: { i: 1 } }, { id: job.id, v: { i: 2 } }]);
  sink.isOpen = false;
  sent.length = 0;
  assert.is(value(await r.run(task('reportCount', [1]))), 1);
  assert.is(sent.length, 0, 'no report leaves once the lane closed');
  // Without a sink (no lane) a report is dropped too, and the task still runs.
  assert.is(value(await runner().run(task('reportCount', [1]))), 1);
});

test('fitOutcomes: an outcome too large for a frame becomes an error that says so; a huge error is cut short', () => {
  const small: TaskOutcome = { id: 1, v: encodeValue(1), d: 1 };
  const big: TaskOutcome = { id: 2, v: new Uint8Array(5000), d: 2 };
  const longError: TaskOutcome = { id: 3, e: { name: 'Error', message: 'x'.repeat(5000), code: 'E_X' }, d: 3 };
  const outcomes = [small, big, longError];
  const total = fitOutcomes(outcomes, 2000);
  assert.is(outcomes[0], small, 'one that fits is left as it is');
  assert.is(outcomes[1]!.v, undefined);
  assert.is(outcomes[1]!.e!.code, 'WSF_SERIALIZATION');
  assert.match(outcomes[1]!.e!.message, 'maxMessageBytes (2000)');
  assert.is(outcomes[1]!.d, 2);
  assert.ok(outcomes[2]!.e!.message.length < 1200);
  assert.match(outcomes[2]!.e!.message, 'the error was cut short');
  assert.is(outcomes[2]!.e!.code, 'E_X');
  assert.ok(total > 10_000, 'the total counts what was measured');
});

test.run();
