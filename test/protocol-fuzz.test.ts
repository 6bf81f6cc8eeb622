/**
 * Protocol fuzzing (fast-check): an authenticated peer sends arbitrary msgpack values, valid
 * and mutated messages of every op, messages in the wrong phase or on the wrong kind of
 * connection, and hand-made byte sequences — to a real coordinator whose local worker node is
 * running real tasks, and to a real worker node whose lanes are running real tasks. Neither may
 * throw past its handlers; only the fuzzed connection may close, with a documented code; the
 * real work settles with the right values. See test/helpers/fuzz-targets.ts.
 *
 * Reproduce a run with WSF_FUZZ_SEED=<seed> (printed below); WSF_FUZZ_RUNS sets the number of
 * cases per target. A long run: npm run fuzz -- --runs 100000.
 */
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boundText, describePeerValue } from '../shared/describe.ts';
import { errorFromWire, type WireError } from '../shared/errors.ts';
import { decodeFrame } from '../shared/frames.ts';
import { invalidC2W, invalidW2C } from '../shared/protocol.ts';
import { anyValue, frameArbitrary } from './helpers/fuzz-frames.ts';
import { describeFigures, fuzzCoordinator, fuzzWorkerNode } from './helpers/fuzz-targets.ts';

const seed = process.env.WSF_FUZZ_SEED ? Number(process.env.WSF_FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
const runs = process.env.WSF_FUZZ_RUNS ? Number(process.env.WSF_FUZZ_RUNS) : undefined;
console.log(`protocol fuzz: seed ${seed} (reproduce with WSF_FUZZ_SEED=${seed})`);

test('decoding and validating any frame, in either direction, never throws past decodeFrame; describing any value, or rebuilding any reported error, never throws', () => {
  let frames = 0;
  fc.assert(
    fc.property(fc.oneof(frameArbitrary('to-coordinator', 4096), frameArbitrary('to-node', 4096)), (frame) => {
      frames++;
      let msg: unknown;
      try {
        msg = decodeFrame(frame.parts);
      } catch {
        return; // the caller closes the connection (CLOSE.PROTOCOL)
      }
      const w2c = invalidW2C(msg);
      const c2w = invalidC2W(msg);
      for (const reason of [w2c, c2w]) if (reason !== undefined) assert.ok(reason.length < 300, reason);
    }),
    { seed, numRuns: runs ?? 3000 },
  );
  fc.assert(
    fc.property(anyValue, (v) => {
      assert.ok(describePeerValue(v).length <= 80);
      assert.type(boundText(v), 'string');
    }),
    { seed, numRuns: runs ?? 2000 },
  );
  // Any error a lane may report (validation checks only that name and message are strings)
  // becomes a local error that can be printed, thrown and awaited.
  const wireError = fc.record({ name: fc.string(), message: fc.string() }).chain((base) =>
    fc.dictionary(fc.constantFrom('stack', 'code', 'props', 'cause', 'errors', 'name', '__proto__'), anyValue, { maxKeys: 4 }).map((rest) => ({ ...rest, ...base }))
  );
  fc.assert(
    fc.property(wireError, (wire) => {
      const err = errorFromWire(wire as WireError, '\n    at remote');
      assert.ok(err instanceof Error);
      assert.type(String(err), 'string');
      assert.type(err.stack, 'string');
      assert.is((err as { then?: unknown }).then, undefined);
    }),
    { seed, numRuns: runs ?? 1000 },
  );
  console.log(`protocol fuzz (decode and validate, seed ${seed}): ${frames} frames decoded and validated, 0 threw`);
});

test('a coordinator doing real work survives an authenticated peer sending fuzz', async () => {
  const figures = await fuzzCoordinator({ seed, runs: runs ?? 1000, timeLimitMs: runs ? undefined : 9_000 });
  console.log(describeFigures(figures, seed));
  assert.is(figures.crashes, 0);
  assert.ok(figures.cases >= 20, `only ${figures.cases} cases ran`);
  assert.ok(figures.realTasks > 0, 'real work went on');
});

test('a worker node doing real work survives a coordinator sending fuzz', async () => {
  // Fewer cases than against the coordinator: a case that closes the control connection makes
  // the node restart its task threads, which takes a second or more.
  const figures = await fuzzWorkerNode({ seed, runs: runs ?? 120, timeLimitMs: runs ? undefined : 13_000 });
  console.log(describeFigures(figures, seed));
  assert.is(figures.crashes, 0);
  assert.ok(figures.cases >= 3, `only ${figures.cases} cases ran`);
  assert.ok(figures.realTasks > 0, 'real work went on');
});

test.run();
