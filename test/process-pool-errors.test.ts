/**
 * Remote errors on a real cluster: a task's error arrives with its name (built-in classes as
 * their class), message, code, own properties, cause, and a stack that shows the worker's
 * frames and which worker node ran it.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ProcessPoolExecutor } from '../coordinator/index.ts';
import { add, failWith, HttpError, QuotaError, throwNamed } from './fixtures/tasks.ts';
import { rejects } from './helpers/assert.ts';
import { startPool, TASKS_URL } from './helpers/cluster.ts';

let pool: ProcessPoolExecutor;

test.before(async () => {
  pool = await startPool({ maxWorkers: 1 });
});

test.after(async () => {
  await pool?.shutdown({ cancelFutures: true });
});

test('a TypeError thrown by a task is a TypeError instance, with its message', async () => {
  const err = (await rejects(pool.submit(failWith, 'TypeError', 'wrong type here'), TypeError)) as TypeError;
  assert.is(err.name, 'TypeError');
  assert.is(err.message, 'wrong type here');
  assert.instance(err, Error);
  const range = await rejects(pool.submit(failWith, 'RangeError', 'out of range'), RangeError);
  assert.is((range as Error).message, 'out of range');
});

test('code and cause travel', async () => {
  const err = (await rejects(pool.submit(failWith, 'plain', 'with a cause'))) as Error & { code?: string };
  assert.is(err.name, 'Error');
  assert.is(err.message, 'with a cause');
  assert.is(err.code, 'E_CODE');
  assert.instance(err.cause, Error);
  assert.is((err.cause as Error).message, 'inner cause');
});

test('a custom error class keeps its name, code and own properties', async () => {
  const err = (await rejects(pool.submit(failWith, 'custom', 'over quota'), QuotaError)) as QuotaError;
  assert.is(err.name, 'Error', 'the same name it has locally: QuotaError does not set one');
  assert.is(err.message, 'over quota');
  assert.is(err.code, 'E_QUOTA');
  assert.is(err.limit, 3);
});

test('an error class exported by a task module comes back as that class, by reference: instanceof, methods, fields, cause', async () => {
  const err = (await rejects(pool.submit(failWith, 'http', 'upstream down'), HttpError)) as HttpError;
  assert.is(Object.getPrototypeOf(err), HttpError.prototype);
  assert.instance(err, Error);
  assert.is(err.name, 'HttpError');
  assert.is(err.message, 'upstream down');
  assert.is(err.status, 503, 'a field set by its constructor');
  assert.is(err.retryable, true, "the class's own getter works on it");
  assert.instance(err.cause, QuotaError, 'its cause is revived too');
  assert.is((err.cause as QuotaError).limit, 3);
  assert.match(err.stack ?? '', /HttpError: upstream down/);
  assert.match(err.stack ?? '', /wsfutures worker node "local-\d+"/);
});

test('the stack shows the worker frame and the worker node name', async () => {
  const err = (await rejects(pool.submit(failWith, 'TypeError', 'stacked'))) as Error;
  const stack = err.stack ?? '';
  assert.match(stack, /TypeError: stacked/);
  assert.match(stack, /failWith/, 'the task function frame from the worker');
  assert.match(stack, /tasks\.ts|\.mjs/, 'a worker-side file');
  assert.match(stack, /wsfutures worker node "local-\d+"/, 'which node ran it');
});

test("the remote stack names the task module's own file and line on this machine, not the node's cached bundle", async () => {
  const err = (await rejects(pool.submit(failWith, 'TypeError', 'where'))) as Error;
  const source = readFileSync(fileURLToPath(TASKS_URL), 'utf8').split('\n');
  const line = source.findIndex((l) => l.includes("if (kind === 'TypeError') throw new TypeError(message);")) + 1;
  assert.ok(line > 0);
  const frame = (err.stack ?? '').split('\n').find((l) => /failWith/.test(l) && !/wsfutures worker node/.test(l)) ?? '';
  assert.ok(frame.includes(`${fileURLToPath(TASKS_URL)}:${line}:`), `the failWith frame: ${frame}`);
  assert.not.match(err.stack ?? '', /\.cache\/wsfutures|[0-9a-f]{64}\.mjs/);
});

test('errors named like Object.prototype members arrive as plain Errors with that name; the coordinator stays up', async () => {
  for (const name of ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf']) {
    const err = (await rejects(pool.submit(throwNamed, name, `named ${name}`))) as Error;
    assert.instance(err, Error, name);
    assert.is(err.message, `named ${name}`);
    assert.is(Object.getPrototypeOf(err), Error.prototype, `${name}: a plain Error`);
  }
  assert.is(await pool.submit(add, 1, 2), 3);
});

test('a thrown non-Error value arrives as an Error that shows the value', async () => {
  const err = (await rejects(pool.submit(failWith, 'string', 'just text'))) as Error & { value?: unknown };
  assert.instance(err, Error);
  assert.match(err.message, /just text/);
  assert.is(err.value, 'just text');
});

test.run();
