/**
 * The package as its users get it: `npm pack`, then `npm install` of the tarball in a fresh
 * project outside the repository (no tsx, no TypeScript sources of wsfutures), and there:
 * a plain JavaScript program with a process pool, a TypeScript consumer type-checked with
 * `tsc --init` defaults and the current @types/node (submit's result type inferred), the same
 * consumer under Deno from node_modules, and the `wsfutures-worker` command as one process.
 *
 * It drives Node and Deno itself, so it runs once, under Node (skipped under WSF_TEST_RUNTIME=deno).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { echo } from './fixtures/tasks.ts';
import { ROOT, startPool, waitFor, within } from './helpers/cluster.ts';
import { VERSION } from '../shared/version.ts';

const run = promisify(execFile);
const IS_DENO = 'Deno' in globalThis;
const DENO = join(dirname(fileURLToPath(import.meta.resolve('deno/bin.cjs'))), 'deno');
const npmEnv = { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', NO_COLOR: '1' };

let project = '';
let tarball = '';

function npm(args: string[], cwd: string, timeout = 180_000) {
  return run('npm', args, { cwd, env: npmEnv, timeout, maxBuffer: 16 * 1024 * 1024 });
}

/** Disk use of each path, as `du` counts it (hard links once, symlinks not followed). */
async function du(paths: string[]): Promise<number[]> {
  const { stdout } = await run('du', ['-sk', ...paths]);
  return stdout.trim().split('\n').map((l) => Number(l.split('\t')[0]) * 1024);
}

function write(name: string, text: string): void {
  writeFileSync(join(project, name), text);
}

const TASKS_JS = `import { currentTask } from 'wsfutures/task';
export function square(x) { return x * x; }
export function attempt() { return currentTask()?.attempt; }
`;

const MAIN_JS = `import { ProcessPoolExecutor } from 'wsfutures';
import { square, attempt } from './tasks.mjs';
const pool = new ProcessPoolExecutor({ tasks: new URL('./tasks.mjs', import.meta.url), maxWorkers: 2 });
try {
  await pool.ready();
  const squares = [];
  for await (const v of pool.map(square, [1, 2, 3, 4, 5], { chunksize: 2 })) squares.push(v);
  console.log(JSON.stringify({ squares, attempt: await pool.submit(attempt), slots: pool.slots }));
} finally {
  await pool.shutdown();
}
`;

const TASKS_TS = `import { currentTask } from 'wsfutures/task';
export function square(x: number): number { return x * x; }
export async function greet(name: string): Promise<string> { return \`hello \${name}, attempt \${currentTask()?.attempt}\`; }
`;

const MAIN_TS = `import { ProcessPoolExecutor, asCompleted, type Future } from 'wsfutures';
import { greet, square } from './tasks.ts';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

const pool = new ProcessPoolExecutor({ tasks: new URL('./tasks.ts', import.meta.url), maxWorkers: 2 });
try {
  await pool.ready();
  const f = pool.submit(square, 7);
  const g = pool.submit(greet, 'ts');
  // Fails to compile if submit's result type is not inferred exactly (any would not do).
  const inferred: [Equal<typeof f, Future<number>>, Equal<typeof g, Future<string>>] = [true, true];
  const values: number[] = [];
  for await (const done of asCompleted([f])) values.push(await done.result());
  console.log(JSON.stringify({ values, greeting: await g, inferred }));
} finally {
  await pool.shutdown();
}
`;

test.before(async () => {
  if (IS_DENO) return;
  try {
    await prepare();
  } catch (err) {
    // uvu reports a failing hook only as failed tests: say what failed.
    console.error('setting up the consumer project failed:', err);
    throw err;
  }
});

async function prepare(): Promise<void> {
  const packDir = mkdtempSync(join(tmpdir(), 'wsf-pack-'));
  // `npm pack` runs the build (prepare) first, as publishing does.
  const { stdout } = await npm(['pack', '--pack-destination', packDir, '--json'], ROOT, 240_000);
  // The build's own lines come first; npm's JSON report is the rest.
  tarball = join(packDir, JSON.parse(stdout.slice(stdout.search(/^\[/m)))[0].filename);
  project = mkdtempSync(join(tmpdir(), 'wsf-consumer-'));
  write('package.json', JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }, null, 2));
  await npm(['install', '--prefer-offline', tarball], project);
}

test.after(() => {
  if (project) rmSync(project, { recursive: true, force: true });
  if (tarball) rmSync(dirname(tarball), { recursive: true, force: true });
});

const t = IS_DENO ? test.skip : test;

t('the installed package ships compiled JavaScript and declarations, not sources, and no demo or dev packages', async () => {
  const pkg = join(project, 'node_modules', 'wsfutures');
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else files.push(p.slice(pkg.length + 1));
    }
  };
  walk(pkg);
  const sources = files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
  assert.equal(sources, [], 'TypeScript sources in the package');
  assert.ok(files.includes('dist/coordinator/index.js') && files.includes('dist/coordinator/index.d.ts'));
  assert.ok(files.includes('dist/worker.mjs'), 'the single-file worker is in the package');
  assert.not.ok(files.some((f) => f.startsWith('test/') || f.startsWith('scripts/')), 'tests or scripts shipped');
  for (const dev of ['tsx', 'jimp', 'typescript', 'deno', 'piscina']) assert.not.ok(existsSync(join(project, 'node_modules', dev)), `${dev} was installed`);
  const modules = join(project, 'node_modules');
  const names = readdirSync(modules).flatMap((n) => (n.startsWith('@') ? readdirSync(join(modules, n)).map((m) => `${n}/${m}`) : n.startsWith('.') ? [] : [n]));
  const [total] = await du([modules]);
  const each = await du(names.map((n) => join(modules, n)));
  const sizes = names.map((n, i) => [n, each[i]!] as const).sort((a, b) => b[1] - a[1]);
  console.log(`installed: ${(total! / 1e6).toFixed(1)} MB in node_modules; ${sizes.slice(0, 6).map(([n, b]) => `${n} ${(b / 1e6).toFixed(2)} MB`).join(', ')}`);
  // esbuild's native binary (it bundles task modules on the coordinator) is half of it; the
  // monitoring and load-test libraries (prom-client and its dependencies, hdr-histogram-js,
  // uPlot) most of the rest. A worker machine needs none of it: worker.mjs is ~320 KiB.
  const esbuild = sizes.filter(([n]) => n === 'esbuild' || n.startsWith('@esbuild/')).reduce((s, [, b]) => s + b, 0);
  assert.ok(total! - esbuild < 15e6, `${total! - esbuild} bytes besides esbuild`);
  assert.ok(total! < 30e6, `${total} bytes in all`);
});

t('a plain JavaScript program runs a ProcessPoolExecutor from the installed package', async () => {
  write('tasks.mjs', TASKS_JS);
  write('main.mjs', MAIN_JS);
  const { stdout } = await run(process.execPath, ['main.mjs'], { cwd: project, timeout: 60_000 });
  assert.equal(JSON.parse(stdout.trim()), { squares: [1, 4, 9, 16, 25], attempt: 1, slots: 2 });
});

t('a TypeScript consumer made with `tsc --init` type-checks with 0 errors against the declarations (skipLibCheck off)', async () => {
  await npm(['install', '--prefer-offline', '-D', 'typescript@latest', '@types/node@latest'], project, 240_000);
  await run(process.execPath, [join(project, 'node_modules', 'typescript', 'bin', 'tsc'), '--init'], { cwd: project });
  // tsc --init's defaults (strict, exactOptionalPropertyTypes, nodenext, ...), with the library
  // checked too, and `.ts` imports allowed so Deno runs the same files.
  const config = readFileSync(join(project, 'tsconfig.json'), 'utf8').replace(
    /"skipLibCheck":\s*true/,
    '"skipLibCheck": false, "allowImportingTsExtensions": true, "noEmit": true',
  );
  assert.match(config, /"skipLibCheck": false/);
  assert.match(config, /"exactOptionalPropertyTypes": true/);
  write('tsconfig.json', config);
  write('tasks.ts', TASKS_TS);
  write('main.ts', MAIN_TS);
  const tsc = join(project, 'node_modules', 'typescript', 'bin', 'tsc');
  const { version } = JSON.parse(readFileSync(join(project, 'node_modules', '@types', 'node', 'package.json'), 'utf8'));
  const tsVersion = (await run(process.execPath, [tsc, '--version'], { cwd: project })).stdout.trim();
  try {
    await run(process.execPath, [tsc, '-p', '.'], { cwd: project, timeout: 120_000 });
  } catch (err) {
    assert.unreachable(`tsc failed (${tsVersion}, @types/node ${version}):\n${(err as { stdout?: string }).stdout}`);
  }
  console.log(`tsc: 0 errors (${tsVersion}, @types/node ${version}, skipLibCheck false)`);
  // The check is live: a wrong result type is an error.
  write(
    'wrong.ts',
    `import { ProcessPoolExecutor, type Future } from 'wsfutures';\nimport { square } from './tasks.ts';\ndeclare const pool: ProcessPoolExecutor;\nexport const f: Future<string> = pool.submit(square, 1);\n`,
  );
  const failed = await run(process.execPath, [tsc, '-p', '.'], { cwd: project }).then(() => '', (e: { stdout?: string }) => e.stdout ?? '');
  rmSync(join(project, 'wrong.ts'));
  assert.match(failed, /wrong\.ts/);
});

t('the same TypeScript consumer runs under Deno from node_modules', async () => {
  const { stdout } = await run(DENO, ['run', '-A', 'main.ts'], { cwd: project, timeout: 90_000, env: { ...process.env, NO_COLOR: '1' } });
  assert.equal(JSON.parse(stdout.trim()), { values: [49], greeting: 'hello ts, attempt 1', inferred: [true, true] });
});

t('the installed wsfutures command runs a load test of the cluster, and the pool serves its dashboard and metrics', async () => {
  const bin = join(project, 'node_modules', '.bin', 'wsfutures');
  assert.equal((await run(bin, ['--version'])).stdout.trim(), `wsfutures ${VERSION}`);
  const { stdout } = await run(bin, ['loadtest', '--self', '--tasks', '3000', '--nodes', '1', '--slots', '2'], { cwd: project, timeout: 90_000 });
  assert.match(stdout, /completed 3000, failed: none; lost 0, wrong 0/);
  write(
    'dash.mjs',
    `import { ProcessPoolExecutor } from 'wsfutures';
const pool = new ProcessPoolExecutor({ tasks: new URL('./tasks.mjs', import.meta.url), maxWorkers: 1 });
try {
  await pool.ready();
  const base = 'http://127.0.0.1:' + new URL(pool.url).port;
  const page = await fetch(base + '/wsfutures/');
  const asset = await fetch(base + '/wsfutures/assets/uplot.min.js');
  const metrics = await fetch(base + '/metrics');
  console.log(JSON.stringify([page.status, asset.status, metrics.status, (await metrics.text()).includes('wsfutures_slots 1')]));
  await page.text(); await asset.text();
} finally {
  await pool.shutdown();
}
`,
  );
  const dash = await run(process.execPath, ['dash.mjs'], { cwd: project, timeout: 60_000 });
  assert.equal(JSON.parse(dash.stdout.trim()), [200, 200, 200, true]);
});

t('wsfutures-worker is the worker itself: --version, host:port, SIGTERM drains and exits 0, kill -9 leaves nothing running', async () => {
  const bin = join(project, 'node_modules', '.bin', 'wsfutures-worker');
  assert.equal((await run(bin, ['--version'])).stdout.trim(), `wsfutures-worker ${VERSION}`);
  const pool = await startPool({ maxWorkers: 0 });
  try {
    const port = new URL(pool.url!).port;
    const startNode = () => {
      const child = spawn(bin, ['--connect', `127.0.0.1:${port}`, '--concurrency', '2', '--name', 'installed'], {
        cwd: project,
        env: { ...process.env, WSFUTURES_TOKEN: pool.token },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout!.on('data', (d) => (output += d));
      child.stderr!.on('data', (d) => (output += d));
      const exited = new Promise<number | string>((r) => child.once('exit', (code, sig) => r(code ?? sig ?? -1)));
      return { child, exited, output: () => output };
    };
    const first = startNode();
    await pool.ready(2, { timeout: 30_000 });
    assert.equal(pool.workers()[0]!.name, 'installed');
    assert.equal(await pool.submit(echo, 'from the installed worker'), 'from the installed worker');
    process.kill(first.child.pid!, 'SIGTERM');
    assert.equal(await within(first.exited, 15_000, 'the drained worker exiting'), 0, first.output());
    await waitFor(() => pool.workers().length === 0, 10_000, 'the pool seeing the node leave');

    const second = startNode();
    await pool.ready(2, { timeout: 30_000 });
    const pid = second.child.pid!;
    process.kill(pid, 'SIGKILL');
    assert.equal(await within(second.exited, 10_000, 'the killed worker exiting'), 'SIGKILL');
    await waitFor(() => pool.workers().length === 0, 10_000, 'the pool seeing the killed node gone');
    // Nothing of that node survives it: no process whose parent was the killed pid.
    const { stdout } = await run('ps', ['-eo', 'pid=,ppid=,args=']);
    const left = stdout.split('\n').filter((l) => l.includes(project) || l.trim().split(/\s+/)[1] === String(pid));
    assert.equal(left, []);
  } finally {
    await pool.shutdown({ cancelFutures: true });
  }
});

test.run();
