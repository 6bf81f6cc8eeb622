import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CancelledError, Future, TimeoutError } from '../coordinator/index.ts';
import { rejects } from './helpers/assert.ts';

test('a pending future can be cancelled, a cancelled one rejects with CancelledError', async () => {
  const f = new Future<number>();
  assert.is(f.cancel(), true);
  assert.is(f.cancelled(), true);
  await rejects(() => f.result(), (e: unknown) => e instanceof CancelledError && (e as CancelledError).code === 'WSF_CANCELLED');
});

test('result(timeoutMs) rejects with TimeoutError while the future stays pending', async () => {
  const f = new Future<number>();
  await rejects(() => f.result(10), (e: unknown) => e instanceof TimeoutError);
  assert.is(f.done(), false);
  f.setResult(3);
  assert.is(await f, 3);
});

test.run();
