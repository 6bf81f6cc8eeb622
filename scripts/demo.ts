/**
 * `npm run demo`: every example of the seed guide, one after another, on one
 * ProcessPoolExecutor whose worker nodes run on this machine over loopback.
 *
 *   npm run demo                                  two local worker slots (or --workers N)
 *   WSF_DEMO_SCALE=0.2 npm run demo               shorter sleeps, smaller sizes
 *   npm run demo -- --only 2,4                    just some examples
 *   npm run demo -- --listen 0.0.0.0:8765 --token T --workers 0
 *                                                 LAN mode: waits for remote worker nodes
 *   npx deno run -A scripts/demo.ts               the same under Deno
 */
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { IS_DENO } from '../shared/runtime.ts';
import { ProcessPoolExecutor } from '../coordinator/index.ts';
import { demoScale, type ExampleContext, perfCounter, TASK_MODULES, warmUp } from './examples/kit.ts';
import * as doSomething from './examples/01-do-something.ts';
import * as asCompleted from './examples/02-as-completed.ts';
import * as factorials from './examples/03-factorials.ts';
import * as errors from './examples/04-errors.ts';
import * as webScraping from './examples/05-web-scraping.ts';
import * as images from './examples/06-image-processing.ts';
import * as pitfalls from './examples/07-pitfalls.ts';

const EXAMPLES: { title: string; file: string; run: (ctx: ExampleContext) => Promise<void> }[] = [
  { title: 'do_something: sequential, then submit, then map', file: '01-do-something.ts', run: doSomething.run },
  { title: 'asCompleted: results in the order they finish', file: '02-as-completed.ts', run: asCompleted.run },
  { title: 'CPU-bound: bigint factorials on the process pool', file: '03-factorials.ts', run: factorials.run },
  { title: 'Error handling: risky_function over [5, 2, 0, 1]', file: '04-errors.ts', run: errors.run },
  { title: 'Web scraping with AsyncPoolExecutor (local server)', file: '05-web-scraping.ts', run: webScraping.run },
  { title: 'Image processing with jimp on the process pool', file: '06-image-processing.ts', run: images.run },
  { title: 'Pitfalls: serialization overhead and choosing maxWorkers', file: '07-pitfalls.ts', run: pitfalls.run },
];

const USAGE = `Usage: npm run demo -- [options]    (or: npx deno run -A scripts/demo.ts [options])

Options:
  --workers N        task slots of worker nodes started on this machine (default: 2; 0 for none)
  --listen HOST:PORT where worker nodes connect (default 127.0.0.1 on a free port);
                     a LAN address such as 0.0.0.0:8765 needs --token
  --token T          the shared secret remote worker nodes present (or WSFUTURES_TOKEN)
  --tls-cert FILE    serve wss:// with this certificate (PEM), with --tls-key FILE;
                     workers then add --ca FILE if the certificate is self-signed
  --slots N          wait for this many slots before starting (default: --workers, or 2 with --workers 0)
  --only LIST        run only these examples, e.g. 2,4
  -h, --help         show this help

WSF_DEMO_SCALE=0.2 shortens every sleep and size (default 1).`;

function usage(message: string): never {
  console.error(`demo: ${message}\n\n${USAGE}`);
  process.exit(2);
}

function positiveInt(name: string, raw: string | undefined, fallback: number, allowZero = false): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) usage(`--${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer: got ${JSON.stringify(raw)}`);
  return n;
}

/** `host:port`, `:port` or `host` (then on a free port). */
function parseListen(raw: string | undefined): { host?: string; port?: number } {
  if (raw === undefined) return {};
  const match = /^(\[[^\]]+\]|[^:]*)(?::(\d+))?$/.exec(raw);
  if (!match) usage(`--listen must look like 0.0.0.0:8765: got ${JSON.stringify(raw)}`);
  const port = match[2] === undefined ? undefined : Number(match[2]);
  if (port !== undefined && (port < 1 || port > 65535)) usage(`--listen port must be 1..65535: got ${port}`);
  return { host: match[1] || '0.0.0.0', port };
}

let parsed;
try {
  parsed = parseArgs({
    options: {
      workers: { type: 'string' },
      listen: { type: 'string' },
      token: { type: 'string' },
      slots: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      only: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
} catch (err) {
  usage((err as Error).message);
}
const { values } = parsed;
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const workers = positiveInt('workers', values.workers, Math.min(2, availableParallelism()) || 2, true);
const slots = positiveInt('slots', values.slots, workers || 2);
const listen = parseListen(values.listen);
const token = values.token ?? process.env.WSFUTURES_TOKEN;
if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) usage('--tls-cert and --tls-key go together');
let tls: { cert: Buffer; key: Buffer } | undefined;
if (values['tls-cert'] !== undefined) {
  try {
    tls = { cert: readFileSync(values['tls-cert']), key: readFileSync(values['tls-key']!) };
  } catch (err) {
    usage(`cannot read the TLS files: ${(err as Error).message}`);
  }
}
let chosen = EXAMPLES.map((_, i) => i + 1);
if (values.only !== undefined) {
  chosen = values.only.split(',').map((s) => Number(s.trim()));
  if (chosen.some((n) => !Number.isInteger(n) || n < 1 || n > EXAMPLES.length)) usage(`--only takes example numbers 1..${EXAMPLES.length}: got ${JSON.stringify(values.only)}`);
}
let scale: number;
try {
  scale = demoScale();
} catch (err) {
  usage((err as Error).message);
}

const runtime = IS_DENO ? 'Deno' : `Node ${process.version}`;
console.log(`wsfutures demo on ${runtime}: ${chosen.length} example(s) of the concurrent.futures guide, scale ${scale}`);
const demoStart = perfCounter();
let pool: ProcessPoolExecutor;
try {
  pool = new ProcessPoolExecutor({ tasks: TASK_MODULES, maxWorkers: workers, listen, token, tls });
} catch (err) {
  usage((err as Error).message);
}
try {
  const startedAt = perfCounter();
  // The URL is known once the server listens, a moment after construction.
  for (let i = 0; i < 500 && pool.url === undefined; i++) await new Promise((r) => setTimeout(r, 10));
  if (workers === 0 || (listen.host !== undefined && !['127.0.0.1', 'localhost', '::1'].includes(listen.host))) {
    const url = new URL(pool.url!);
    // The token as the user gave it: typed on the command line, or by reference to the environment.
    const tokenValue = values.token ?? (token !== undefined ? '"$WSFUTURES_TOKEN"' : pool.token);
    console.log(`\nThe coordinator listens at ${pool.url}. On each worker machine, with nothing but Node or Deno, run`);
    console.log(`  export WSFUTURES_TOKEN=${tokenValue}`);
    // Beyond loopback the pool prints the join commands itself.
    const loopback = ['127.0.0.1', 'localhost', '::1'].includes(listen.host ?? '127.0.0.1');
    console.log(loopback ? 'then one of:' : 'then one of the commands the pool printed above, e.g.');
    for (const command of loopback ? pool.joinCommands() : pool.joinCommands().slice(0, 1)) console.log(`  ${command}`);
    console.log(`(open TCP port ${url.port} in this machine's firewall; the worker machines need the npm packages the task modules import: jimp for the image example)`);
    console.log(`Waiting for ${slots} slot(s)${workers > 0 ? ` (${workers} local)` : ''}...`);
  }
  await pool.ready(slots);
  await warmUp(pool);
  const nodes = pool.workers();
  console.log(
    `Pool ready in ${(perfCounter() - startedAt).toFixed(1)} s: ${pool.slots} slot(s) on ${nodes.length} worker node(s) (${
      nodes.map((n) => `${n.name}@${n.hostname}, ${n.runtime}`).join('; ')
    })`,
  );

  const failed: string[] = [];
  for (const n of chosen) {
    const example = EXAMPLES[n - 1]!;
    const bar = '='.repeat(78);
    console.log(`\n${bar}\n ${n}. ${example.title}   (scripts/examples/${example.file})\n${bar}`);
    try {
      await example.run({ pool, scale });
    } catch (err) {
      failed.push(example.file);
      console.error(`\nExample ${n} failed:`, err);
    }
  }
  console.log(`\nDemo finished in ${(perfCounter() - demoStart).toFixed(1)} s${failed.length ? `; FAILED: ${failed.join(', ')}` : ''}.`);
  process.exitCode = failed.length ? 1 : 0;
} finally {
  await pool.shutdown();
}
