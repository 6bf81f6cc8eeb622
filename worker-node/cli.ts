#!/usr/bin/env node
/**
 * `wsfutures-worker`: start a worker node on any machine that can reach the coordinator.
 *
 *   npx wsfutures-worker --connect ws://HOST:8765 --token T [--concurrency N] [--name NAME] [--resources gpu=1]
 *   deno run -A worker-node/cli.ts --connect ws://HOST:8765 --token T
 */
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { BUSY_POLL_RANGE, MESSAGE_BYTES_RANGE, WorkerNode, WorkerNodeFatalError } from './node.ts';
import { VERSION } from '../shared/version.ts';
import { parseIntegerFlag } from '../shared/validate.ts';
import { parseResourceList, type Resources } from '../shared/resources.ts';

const USAGE = `Usage: wsfutures-worker --connect ws://HOST:PORT [options]

Connects to a wsfutures coordinator and runs its tasks on this machine's cores.

Options:
  --connect URL        the coordinator's URL (ws://HOST:PORT, wss://…, or HOST:PORT);
                       or WSFUTURES_CONNECT
  --token TOKEN        the coordinator's token; or WSFUTURES_TOKEN (preferred: not in ps output)
  --concurrency N      task slots (threads); default: available cores
  --name NAME          how the coordinator names this node; default: hostname-pid
  --resources LIST     what this node offers to tasks that ask for resources, as
                       NAME=AMOUNT[,NAME=AMOUNT…], e.g. gpu=1,mem=16GB; amounts are numbers,
                       optionally with a unit: K, M, G, T (×1000) or KiB, MiB, GiB, TiB (×1024);
                       or WSFUTURES_RESOURCES. Default: none
  --tasks FILE         a local copy of a task module, checked against the coordinator's (repeatable)
  --cache-dir DIR      where shipped task modules are kept; default: node_modules/.cache/wsfutures
  --ca FILE            trust this CA certificate (PEM) for a wss:// coordinator
  --no-reconnect       exit when the connection ends instead of reconnecting
  --exit-on-shutdown   exit when the coordinator shuts down (used for nodes a pool spawns)
  --quiet              leave out informational lines (warnings are always shown)
  --max-message-bytes N  largest frame accepted; default 64 MiB (match the pool's maxMessageBytes)
  --busy-poll MICROS   the most a task thread keeps polling for its next task after sending
                       results, when tasks come one at a time; default: as the coordinator
                       says (100); 0 turns it off (saves CPU, costs latency)
  -v, --version        print the version and exit
  -h, --help           show this help

Exit codes: 0 stopped or drained; 1 could not connect (with --no-reconnect);
2 bad usage, wrong token or incompatible coordinator.`;

function fail(message: string): never {
  console.error(`wsfutures-worker: ${message}\n\n${USAGE}`);
  process.exit(2);
}

/** A flag's value, or the usage with the check's message. */
function flag<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    fail((err as Error).message);
  }
}

let parsed;
try {
  parsed = parseArgs({
    options: {
      connect: { type: 'string' },
      token: { type: 'string' },
      concurrency: { type: 'string' },
      name: { type: 'string' },
      resources: { type: 'string' },
      tasks: { type: 'string', multiple: true },
      'cache-dir': { type: 'string' },
      ca: { type: 'string' },
      'no-reconnect': { type: 'boolean' },
      'exit-on-shutdown': { type: 'boolean' },
      quiet: { type: 'boolean' },
      'max-message-bytes': { type: 'string' },
      'busy-poll': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
    strict: true,
  });
} catch (err) {
  fail((err as Error).message);
}
const { values } = parsed;
if (values.version) {
  console.log(`wsfutures-worker ${VERSION}`);
  process.exit(0);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const connect = values.connect ?? process.env.WSFUTURES_CONNECT;
const token = values.token ?? process.env.WSFUTURES_TOKEN;
if (!connect) fail('--connect is required (or set WSFUTURES_CONNECT)');
if (!token) fail("a token is required: pass --token or set WSFUTURES_TOKEN to the coordinator's token");
let concurrency: number | undefined;
if (values.concurrency !== undefined) {
  concurrency = flag(() => parseIntegerFlag('--concurrency', values.concurrency as string));
}
let maxMessageBytes: number | undefined;
if (values['max-message-bytes'] !== undefined) {
  maxMessageBytes = flag(() => parseIntegerFlag('--max-message-bytes', values['max-message-bytes'] as string, MESSAGE_BYTES_RANGE));
}
let busyPollMicros: number | undefined;
if (values['busy-poll'] !== undefined) {
  busyPollMicros = flag(() => parseIntegerFlag('--busy-poll', values['busy-poll'] as string, BUSY_POLL_RANGE));
}
let resources: Resources | undefined;
const resourceList = values.resources ?? process.env.WSFUTURES_RESOURCES;
if (resourceList !== undefined) {
  try {
    resources = parseResourceList(resourceList, values.resources === undefined ? 'WSFUTURES_RESOURCES' : '--resources');
  } catch (err) {
    fail((err as Error).message);
  }
}
let ca: Buffer | undefined;
if (values.ca) {
  try {
    ca = readFileSync(values.ca);
  } catch (err) {
    fail(`--ca: cannot read ${values.ca}: ${(err as Error).message}`);
  }
}

let node: WorkerNode;
try {
  node = new WorkerNode({
    connect,
    token,
    concurrency,
    name: values.name,
    resources,
    tasks: values.tasks,
    cacheDir: values['cache-dir'],
    ca,
    reconnect: !values['no-reconnect'],
    exitOnShutdown: values['exit-on-shutdown'] ?? false,
    quiet: values.quiet ?? false,
    maxMessageBytes,
    busyPollMicros,
  });
} catch (err) {
  fail((err as Error).message);
}

// A second signal exits at once, but not one that comes right after the first: started through
// npx, Ctrl-C reaches the node twice (from the terminal's process group, and forwarded by npm),
// and that must drain, not abort.
let firstSignalAt = 0;
const onSignal = (sig: string) => {
  const now = Date.now();
  if (firstSignalAt !== 0 && now - firstSignalAt < 500) return;
  if (firstSignalAt !== 0) {
    console.error(`[wsfutures-worker] second ${sig}: exiting now`);
    process.exit(130);
  }
  firstSignalAt = now;
  console.error(`[wsfutures-worker] ${sig}: draining (send it again to exit at once)`);
  void node.stop({ drain: true });
};
process.on('SIGINT', () => onSignal('SIGINT'));
process.on('SIGTERM', () => onSignal('SIGTERM'));

try {
  await node.start();
  process.exit(0);
} catch (err) {
  if (err instanceof WorkerNodeFatalError) {
    console.error(`wsfutures-worker: ${err.code}: ${err.message}`);
    process.exit(err.code === 'WSF_CONNECT_FAILED' ? 1 : 2);
  }
  console.error('wsfutures-worker: fatal:', err);
  process.exit(1);
}
