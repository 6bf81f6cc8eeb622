/**
 * `npm run bench`: the speed-of-light baselines, the peers and wsfutures, side by side on this
 * machine, then one table of figures and ratios against the targets, also written as JSON.
 *
 * Usage: npm run bench [-- --smoke] [-- --only NAME[,NAME]]
 *   --smoke      tiny sizes, for CI: checks that every suite still runs, in well under 60 s
 *                (under 30 s without Dask and BullMQ, which CI does not install). The figures
 *                mean little. Writes bench-results/smoke.json.
 *   --only NAME  run only these suites (repeatable, or comma-separated): baseline, piscina,
 *                python, dask, bullmq, wsfutures, latency, features. Ratios need the baseline
 *                in the same run.
 * A full run writes bench-results/latest.json; a run with --only, latest-only-NAME.json.
 *
 * Each suite runs in its own process group, one after the other so that they do not compete
 * for the two cores; every load stays on 127.0.0.1. A suite that outlives its time limit is
 * killed, and so is whatever it left running when it ends: the whole group gets SIGKILL.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_PREFIX, type Figure, FIGURE_PREFIX, INFO_PREFIX, SKIP_PREFIX, type WorkloadError } from './measure.ts';
import { computeRatios, formatTable, type TableInput } from './report.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));

interface Suite {
  name: string;
  /** The command to run, or why the suite cannot run on this machine. */
  command(): { cmd: string; args: string[] } | { unavailable: string };
}

const node = (file: string, ...flags: string[]) => (): { cmd: string; args: string[] } => ({ cmd: process.execPath, args: [...flags, '--import', 'tsx', here(file)] });

const SUITES: Suite[] = [
  { name: 'baseline', command: node('./baseline.ts') },
  { name: 'piscina', command: node('./piscina.ts') },
  {
    name: 'python',
    command: () => {
      const probe = spawnSync('python3', ['--version'], { stdio: 'ignore', timeout: 10_000 });
      if (probe.error || probe.status !== 0) return { unavailable: 'python3 is not on the PATH' };
      return { cmd: 'python3', args: [here('./python-pool.py')] };
    },
  },
  {
    name: 'dask',
    command: () => {
      // Debian's python3-distributed goes with /usr/bin/python3, which a pyenv or venv python3
      // on the PATH may hide: the first of the two that can import it runs the suite.
      for (const python of ['python3', '/usr/bin/python3']) {
        const probe = spawnSync(python, ['-c', 'import distributed'], { stdio: 'ignore', timeout: 30_000 });
        if (!probe.error && probe.status === 0) return { cmd: python, args: [here('./dask-pool.py')] };
      }
      return { unavailable: 'no python3 can import dask.distributed (Debian: apt-get install python3-distributed)' };
    },
  },
  // Skips itself when bullmq, ioredis or redis-server is missing.
  { name: 'bullmq', command: node('./bullmq.ts') },
  // --expose-gc: the queue figure weighs the heap after a full collection.
  { name: 'wsfutures', command: node('./wsfutures.ts', '--expose-gc') },
  // Sequential round trips in 10 fresh processes, quiet and beside a CPU hog.
  { name: 'latency', command: node('./latency.ts') },
  // Scheduling against the ideal, the cost of monitoring, HTTP load against autocannon.
  { name: 'features', command: node('./features.ts') },
];

interface Options {
  smoke: boolean;
  only: string[];
}

function parseOptions(argv: string[]): Options {
  const options: Options = { smoke: false, only: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--smoke') options.smoke = true;
    else if (arg === '--only' || arg.startsWith('--only=')) {
      const value = arg === '--only' ? argv[++i] : arg.slice('--only='.length);
      if (!value) usage('--only needs a suite name');
      options.only.push(...value.split(',').filter(Boolean));
    } else if (arg === '--help' || arg === '-h') usage();
    else usage(`unknown option ${JSON.stringify(arg)}`);
  }
  const unknown = options.only.filter((name) => !SUITES.some((s) => s.name === name));
  if (unknown.length > 0) usage(`unknown suite ${unknown.map((u) => JSON.stringify(u)).join(', ')}: expected one of ${SUITES.map((s) => s.name).join(', ')}`);
  return options;
}

function usage(error?: string): never {
  if (error) console.error(`bench: ${error}`);
  console.error(`usage: npm run bench [-- --smoke] [-- --only ${SUITES.map((s) => s.name).join('|')}[,...]]`);
  process.exit(error ? 2 : 0);
}

const options = parseOptions(process.argv.slice(2));
/**
 * How long one suite may run. A full baseline or peer suite takes 10-40 s here, wsfutures up to
 * several minutes while it is slow (its 1,000,000-task queue); smoke suites take 5-25 s each,
 * and the whole smoke run takes about 45 s on an idle 2-core machine, twice that beside other
 * tests. The smoke limit catches a hang, not slowness.
 */
const suiteTimeoutMs = options.smoke ? 150_000 : 600_000;

const figures: Figure[] = [];
const info: Record<string, string | number> = {};
const notRun: TableInput['notRun'] = [];
const errors: WorkloadError[] = [];
/** The process group running now, so that an interrupted bench still kills it. */
let runningGroup: number | undefined;

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: the group has already ended, which is the usual case.
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killGroup(runningGroup);
    process.exit(130);
  });
}

function runSuite(suite: Suite): Promise<void> {
  const command = suite.command();
  if ('unavailable' in command) {
    notRun.push({ suite: suite.name, status: 'not available', reason: command.unavailable });
    console.error(`${suite.name}: not available: ${command.unavailable}`);
    return Promise.resolve();
  }
  console.error(`${suite.name}: running`);
  const args = [...command.args, ...(options.smoke ? ['--smoke'] : [])];
  const child = spawn(command.cmd, args, { cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
  runningGroup = child.pid;
  let skipped: string | undefined;
  let stderrTail = '';
  let pending = '';
  const onLine = (line: string): void => {
    if (line.startsWith(FIGURE_PREFIX)) figures.push(JSON.parse(line.slice(FIGURE_PREFIX.length)) as Figure);
    else if (line.startsWith(INFO_PREFIX)) Object.assign(info, JSON.parse(line.slice(INFO_PREFIX.length)));
    else if (line.startsWith(ERROR_PREFIX)) errors.push(JSON.parse(line.slice(ERROR_PREFIX.length)) as WorkloadError);
    else if (line.startsWith(SKIP_PREFIX)) skipped = line.slice(SKIP_PREFIX.length);
    else if (line.trim()) process.stderr.write(`  [${suite.name}] ${line}\n`);
  };
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    lines.forEach(onLine);
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    process.stderr.write(chunk);
    stderrTail = (stderrTail + chunk).slice(-2_000);
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(child.pid);
  }, suiteTimeoutMs);
  return new Promise((resolve) => {
    child.on('error', (err) => {
      notRun.push({ suite: suite.name, status: 'failed', reason: err.message });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (pending) onLine(pending);
      // Whatever the suite started and left behind (a server, workers) goes with it.
      killGroup(child.pid);
      runningGroup = undefined;
      if (skipped !== undefined) {
        notRun.push({ suite: suite.name, status: 'not available', reason: skipped });
        console.error(`${suite.name}: not available: ${skipped}`);
      } else if (timedOut) {
        notRun.push({ suite: suite.name, status: 'failed', reason: `killed after ${suiteTimeoutMs / 1000} s (its figures so far are kept)` });
      } else if (code !== 0) {
        // The last line that names an error ("TypeError: ..."), else the last line of stderr.
        const lines = stderrTail.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('['));
        const lastError = lines.findLast((l) => /^[\w.]*(Error|Exception)\b/.test(l)) ?? lines.at(-1);
        notRun.push({ suite: suite.name, status: 'failed', reason: `exit ${code ?? signal}${lastError ? `: ${lastError}` : ''}` });
      }
      resolve();
    });
  });
}

function machineInfo(): Record<string, string | number> {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    // Not a git checkout: the commit stays unknown.
  }
  return {
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    memory: `${Math.round(totalmem() / 2 ** 30)} GiB`,
    os: `${process.platform}-${process.arch} ${release()}`,
    node: process.version,
    // Other work on the machine skews every figure: the 1-minute load when the run began and ended.
    load: `${loadAtStart.toFixed(1)} -> ${loadavg()[0]!.toFixed(1)}`,
    commit,
    mode: options.smoke ? 'smoke' : 'full',
    // glibc's allocator settings change large-payload figures several-fold (see the README):
    // every suite inherits them, so a run with them set says so.
    ...Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith('MALLOC_') && e[1] !== undefined)),
  };
}

const started = new Date();
const loadAtStart = loadavg()[0]!;
for (const suite of SUITES.filter((s) => options.only.length === 0 || options.only.includes(s.name))) await runSuite(suite);

const machine = { ...machineInfo(), ...info };
const ratios = computeRatios(figures);
const table = formatTable({ machine, figures, ratios, notRun, errors });
console.log(`\n${table}\n`);

const outDir = join(root, 'bench-results');
const outName = options.smoke ? 'smoke' : options.only.length > 0 ? `latest-only-${options.only.join('+')}` : 'latest';
const outFile = join(outDir, `${outName}.json`);
mkdirSync(outDir, { recursive: true });
writeFileSync(
  outFile,
  `${JSON.stringify({ started: started.toISOString(), seconds: (Date.now() - started.getTime()) / 1000, options, machine, figures, ratios, notRun, errors, table }, null, 2)}\n`,
);
console.log(`written to ${relative(root, outFile)}`);

const failed = [...notRun.filter((n) => n.status === 'failed').map((n) => n.suite), ...errors.map((e) => `${e.suite} ${e.workload}`)];
if (failed.length > 0) {
  console.error(`bench: failed: ${failed.join(', ')}`);
  process.exit(1);
}
