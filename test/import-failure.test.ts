/**
 * What a worker node says when a task module cannot be imported there (worker-node/import-failure.ts):
 * the missing package as Node and Deno report it, and the command that installs it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describeImportFailure, missingPackage } from '../worker-node/import-failure.ts';

test('the missing package is read from Node and Deno messages, scoped and deep imports included', () => {
  assert.is(missingPackage(new Error("Cannot find package 'left-pad' imported from /w/node_modules/.cache/wsfutures/a.mjs")), 'left-pad');
  assert.is(missingPackage(new TypeError("Could not find package 'left-pad' from referrer 'file:///w/a.mjs'.")), 'left-pad');
  assert.is(missingPackage(new Error("Cannot find package '@img/sharp' imported from /w/a.mjs")), '@img/sharp');
  assert.is(missingPackage(new TypeError('Import "nanoid" not a dependency\n  hint: …')), 'nanoid');
  assert.is(missingPackage(new TypeError('Relative import path "zod" not prefixed with / or ./ or ../')), 'zod');
  assert.is(missingPackage(new Error("Cannot find module 'lodash/fp/map' imported from /w/a.mjs")), 'lodash');
  assert.is(missingPackage(new Error("Cannot find module '/w/other.mjs' imported from /w/a.mjs")), undefined, 'a path is no package');
  assert.is(missingPackage(new SyntaxError('Unexpected token')), undefined);
});

test('the sentence names the module, the package, the command and where to run it; other failures keep their error', () => {
  assert.is(
    describeImportFailure('tasks.ts', new Error("Cannot find package 'left-pad' imported from /w/x.mjs"), '/home/me/worker'),
    "task module tasks.ts imports package 'left-pad', which is not installed on this machine: run `npm install left-pad` in /home/me/worker (where the worker runs)",
  );
  const other = describeImportFailure('tasks.ts', new SyntaxError("Unexpected token '?'"), '/w');
  assert.is(other, "task module tasks.ts could not be imported on this machine: SyntaxError: Unexpected token '?'");
  assert.ok(describeImportFailure('t.ts', new Error('x'.repeat(5000)), '/w').length < 800, 'a long error is cut');
});

test.run();
