/**
 * A long protocol fuzz run: the same targets and properties as test/protocol-fuzz.test.ts (an
 * authenticated peer sending fuzz to a real coordinator and to a real worker node, both doing
 * real work), with as many cases as asked for.
 *
 *   npm run fuzz -- --runs 100000 [--seed N] [--target coordinator|node|both] [--minutes M]
 *
 * Prints the seed first: a failure is reproduced with the same --seed (and fast-check prints
 * the shrunk case and its path). Exit code 1 on a failure. WSF_FUZZ_DEBUG=1 prints every case.
 */
import { parseArgs } from 'node:util';
import { describeFigures, fuzzCoordinator, type FuzzOptions, fuzzWorkerNode } from '../test/helpers/fuzz-targets.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10000' },
    seed: { type: 'string' },
    target: { type: 'string', default: 'both' },
    minutes: { type: 'string' },
  },
});
const runs = Number(values.runs);
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
const target = values.target!;
if (!Number.isSafeInteger(runs) || runs < 1) throw new RangeError(`--runs must be a positive integer: got ${values.runs}`);
if (!Number.isSafeInteger(seed)) throw new RangeError(`--seed must be an integer: got ${values.seed}`);
if (!['coordinator', 'node', 'both'].includes(target)) throw new RangeError(`--target must be coordinator, node or both: got ${target}`);
const timeLimitMs = values.minutes === undefined ? undefined : Number(values.minutes) * 60_000;

console.log(`protocol fuzz: seed ${seed}, ${runs} cases per target (reproduce with --seed ${seed})`);
const options: FuzzOptions = { seed, runs, timeLimitMs };
try {
  if (target !== 'node') console.log(describeFigures(await fuzzCoordinator(options), seed));
  if (target !== 'coordinator') console.log(describeFigures(await fuzzWorkerNode(options), seed));
  process.exit(0);
} catch (err) {
  console.error(`protocol fuzz failed (seed ${seed}):`, err);
  process.exit(1);
}
