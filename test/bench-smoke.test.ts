import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The baseline figures every smoke run must print, as label and unit. */
const BASELINES: [string, string][] = [
  ['bare ws ping-pong p50', 'µs'],
  ['bare ws ping-pong p99', 'µs'],
  ['bare ws ping-pong, busy-polling p50', 'µs'],
  ['bare ws ping-pong, busy-polling p99', 'µs'],
  ['bare ws pipelined echo', 'msgs/s'],
  ['bare ws batched echo (100/frame)', 'tasks/s'],
  ['bare ws echo 1 MiB', 'MiB/s'],
  ['bare ws echo 16 MiB', 'MiB/s'],
  ['raw TCP one-way', 'MiB/s'],
  ['raw TCP echo 1 MiB', 'MiB/s'],
  ['raw TCP echo 16 MiB', 'MiB/s'],
];

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** One smoke run, shared by the tests below. */
let run: { code: number | null; stdout: string; stderr: string; ms: number };

test.before(async () => {
  const started = Date.now();
  run = await new Promise((resolve, reject) => {
    // In a process group of its own, so that a hung run is killed whole (npm, the harness and
    // the suites it started), not just npm.
    const child = spawn('npm', ['run', '--silent', 'bench', '--', '--smoke'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    // Far above the 45 s the smoke run takes alone, so a slow or busy CI machine is not a
    // failure; below the test runner's 240 s per file, so a hang is reported here.
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, 220_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
});

/** The table's lines that say what failed ("suite: failed: reason"), for a message that leads with why. */
const failures = (): string => run.stdout.split('\n').filter((l) => /: failed: /.test(l)).join('\n') || '(none in the table)';

test('npm run bench -- --smoke exits 0', () => {
  assert.is(run.code, 0, `exit status ${run.code} after ${(run.ms / 1000).toFixed(0)} s; failed:\n${failures()}\nstderr:\n${run.stderr.slice(-3_000)}`);
});

test('the table has machine info and a positive number for every baseline figure', () => {
  assert.match(run.stdout, /^machine: cpu .+, cores \d+, .*node v\d+/m);
  for (const [label, unit] of BASELINES) {
    const line = new RegExp(`^${escape(label)}\\s+([\\d,]+(?:\\.\\d+)?)\\s+${escape(unit)}(\\s|$)`, 'm').exec(run.stdout);
    assert.ok(line, `no figure for "${label}" in:\n${run.stdout}`);
    assert.ok(Number(line[1]!.replaceAll(',', '')) > 0, `"${label}" is ${line[1]}`);
  }
});

test('every suite either has figures or says why it did not run', () => {
  const suites = [
    ['piscina', 'piscina tiny tasks all at once'],
    ['python', 'python tiny tasks all at once'],
    ['dask', 'dask tiny tasks all at once'],
    ['bullmq', 'bullmq tiny tasks all at once'],
    ['wsfutures', 'wsfutures tiny tasks all at once'],
  ];
  for (const [suite, label] of suites) {
    const hasFigure = new RegExp(`^${escape(label!)}\\s+[\\d,.]+\\s`, 'm').test(run.stdout);
    const notAvailable = new RegExp(`^${suite}: not available: \\S`, 'm').test(run.stdout);
    assert.ok(hasFigure || notAvailable, `${suite}: neither a figure nor "not available: <reason>"`);
  }
  assert.ok(!/: failed: /.test(run.stdout), `failed:\n${failures()}`);
});

test('the same figures are written as JSON to bench-results/smoke.json', () => {
  const saved = JSON.parse(readFileSync(new URL('../bench-results/smoke.json', import.meta.url), 'utf8')) as {
    machine: { cores: number };
    figures: { suite: string; workload: string; value: number }[];
  };
  assert.ok(saved.machine.cores >= 1);
  // The baseline suite's own figures; the wsfutures suite adds three more, measured taking turns.
  // (The features suite adds yardsticks of its own: HTTP clients in a plain loop.)
  const baselines = saved.figures.filter((f) => f.suite === 'baseline' && !f.workload.endsWith('-interleaved') && !f.workload.startsWith('http-bare-'));
  // The features suite: makespans beside their ideals, the cost of watching, HTTP load.
  const features = new Set(saved.figures.map((f) => f.workload));
  // The latency suite: fresh processes, quiet and beside a CPU hog, each against busyPollMicros 0.
  for (
    const w of [
      'fresh-sequential-p50',
      'fresh-sequential-p50-no-busy-poll',
      'fresh-sequential-p50-spread',
      'fresh-sequential-p50-worst-vs-off',
      'hog-sequential-p50',
      'hog-sequential-p50-no-busy-poll',
    ]
  ) assert.ok(features.has(w), `the latency suite measured ${w}`);
  for (
    const w of [
      'sched-after-burst',
      'sched-after-burst-ideal',
      'sched-mixed',
      'sched-mixed-one-kind',
      'sched-uneven',
      'tiny-monitored',
      'tiny-unmonitored',
      'http-load-1core',
      'http-bare-client',
      'http-bare-undici',
      'http-bare-fetch',
      'http-load-2-slots',
    ]
  ) assert.ok(features.has(w), `the features suite measured ${w}`);
  assert.is(baselines.length, BASELINES.length);
  assert.ok(baselines.every((f) => f.value > 0));
  const interleaved = saved.figures.filter((f) => f.workload.endsWith('-interleaved')).map((f) => `${f.suite}/${f.workload}`).sort();
  assert.equal(interleaved, [
    'baseline/ws-ping-pong-busy-p50-interleaved',
    'baseline/ws-ping-pong-p50-interleaved',
    'baseline/ws-pipelined-interleaved',
    'wsfutures/sequential-p50-interleaved',
    'wsfutures/sequential-p50-no-busy-poll-interleaved',
    'wsfutures/tiny-all-at-once-interleaved',
  ]);
});

test.run();
