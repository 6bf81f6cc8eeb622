/**
 * How a remote error is rebuilt on the coordinator, without a cluster (shared/errors.ts,
 * coordinator/remote-stack.ts): error classes of task modules revived by reference, and frames
 * in a shipped bundle read back to the original file and line through its source map.
 */
import { readFileSync } from 'node:fs';
import { types } from 'node:util';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BundleSourceMap, mapStack, mapWireStacks } from '../coordinator/remote-stack.ts';
import { bundleModule } from '../shared/bundle.ts';
import { type ErrorClass, errorFromWire, type WireError } from '../shared/errors.ts';
import { ROOT, TASKS_URL } from './helpers/cluster.ts';

let constructed = 0;
class Guarded extends Error {
  constructor(message: string) {
    super(message);
    constructed++;
  }
  set status(_v: number) {
    throw new Error('the setter must not run');
  }
  get doubled(): number {
    return (this as unknown as { level: number }).level * 2;
  }
}

const classes = (ref: { m: number; e: string }): ErrorClass | undefined => (ref.m === 0 && ref.e === 'Guarded' ? Guarded : undefined);

test('an error naming an exported class by reference is rebuilt as that class, a native error, with no constructor or setter run', () => {
  const wire: WireError = {
    name: 'Error',
    message: 'nope',
    stack: 'Error: nope\n    at x (y.ts:1:1)',
    cls: { m: 0, e: 'Guarded' },
    props: { level: 21, status: 500 },
    code: 'E_X',
  };
  const err = errorFromWire(wire, '', classes) as Guarded & { level: number; code: string };
  assert.instance(err, Guarded);
  assert.is(constructed, 0, 'the constructor did not run');
  assert.ok(types.isNativeError(err), 'the runtime still sees an error');
  assert.is(err.message, 'nope');
  assert.is(err.name, 'Error');
  assert.is(err.level, 21);
  assert.is(err.doubled, 42);
  assert.is(Object.getOwnPropertyDescriptor(err, 'status')?.value, 500, 'set as an own property, past the setter');
  assert.is(err.code, 'E_X');
  assert.match(err.stack!, /at x \(y\.ts:1:1\)/);
});

test('a class reference the coordinator cannot resolve falls back to an Error with the remote name', () => {
  const err = errorFromWire({ name: 'Mystery', message: 'm', cls: { m: 3, e: 'Gone' } }, '', classes);
  assert.is(Object.getPrototypeOf(err), Error.prototype);
  assert.is(err.name, 'Mystery');
  const none = errorFromWire({ name: 'Guarded', message: 'm', cls: { m: 0, e: 'Guarded' } });
  assert.is(Object.getPrototypeOf(none), Error.prototype, 'no resolver: no class');
});

test("frames in a shipped bundle map back to the module's own file and line, as Node and Deno print them", async () => {
  const { code, hash } = await bundleModule(TASKS_URL);
  const map = BundleSourceMap.fromCode(code, ROOT);
  assert.ok(map, 'the bundle carries an inline source map');
  const target = "if (kind === 'TypeError') throw new TypeError(message);";
  const bundled = code.split('\n');
  // esbuild prints it with double quotes.
  const genLine = bundled.findIndex((l) => l.includes(target.replaceAll("'", '"'))) + 1;
  assert.ok(genLine > 0, 'the line is in the bundle');
  const genCol = bundled[genLine - 1]!.indexOf('throw') + 1;
  const srcLine = readFileSync(fileURLToPath(TASKS_URL), 'utf8').split('\n').findIndex((l) => l.includes(target)) + 1;
  const file = fileURLToPath(TASKS_URL);
  const mapFor = (h: string) => (h === hash ? map : undefined);
  const nodeFrame = `    at failWith (/srv/w/node_modules/.cache/wsfutures/${hash}.mjs:${genLine}:${genCol})`;
  const denoFrame = `    at failWith (file:///srv/w/node_modules/.cache/wsfutures/${hash}.mjs:${genLine}:${genCol})`;
  assert.match(mapStack(nodeFrame, mapFor), `(${file}:${srcLine}:`);
  assert.match(mapStack(denoFrame, mapFor), `(${file}:${srcLine}:`);
  const spaced = `    at /home/my files/node_modules/.cache/wsfutures/${hash}.mjs:${genLine}:${genCol}`;
  assert.is(mapStack(spaced, mapFor), `    at ${file}:${srcLine}:${mapStack(spaced, mapFor).split(':').pop()}`, 'a frame without a name, in a path with a space');
  const other = `    at f (/srv/w/node_modules/.cache/wsfutures/${'0'.repeat(64)}.mjs:3:4)`;
  assert.is(mapStack(other, mapFor), other, 'a bundle that is not ours is left alone');
  const wire: WireError = { name: 'Error', message: 'm', stack: `Error: m\n${nodeFrame}`, cause: { name: 'Error', message: 'c', stack: `Error: c\n${denoFrame}` } };
  mapWireStacks(wire, mapFor);
  assert.match(wire.stack!, `${file}:${srcLine}:`);
  assert.match((wire.cause as WireError).stack!, `${file}:${srcLine}:`, 'the cause too');
});

test.run();
