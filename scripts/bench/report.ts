/**
 * Turns the figures of one run into ratios and the printed table.
 *
 * Every figure that is not a baseline is divided by the baselines of its workload
 * (`REFERENCES`), and every wsfutures figure also by the peers' figure of the same workload. A
 * ratio is always "this figure / that figure", so for a rate higher is better and for a latency
 * lower is better. A target is what wsfutures aims for on that ratio.
 */
import type { Figure, WorkloadError } from './measure.ts';

export interface Target {
  op: '>=' | '<=' | '<';
  value: number;
}

interface Reference {
  /** `suite/workload` of the figure to divide by. */
  id: string;
  /** What wsfutures should reach against it. */
  target?: Target;
}

const REFERENCES: Record<string, Reference[]> = {
  'tiny-all-at-once': [{ id: 'baseline/ws-pipelined', target: { op: '>=', value: 0.8 } }],
  // wsfutures busy-polls by default; the bare echo that busy-polls too shows what is left of
  // wsfutures' own overhead once both use the technique.
  'sequential-p50': [{ id: 'baseline/ws-ping-pong-p50', target: { op: '<=', value: 1.3 } }, { id: 'baseline/ws-ping-pong-busy-p50' }],
  'sequential-p99': [{ id: 'baseline/ws-ping-pong-p99' }],
  // The same two targets on figures taken in the same seconds (the wsfutures suite runs the
  // bare echo again, taking turns with it).
  'tiny-all-at-once-interleaved': [{ id: 'baseline/ws-pipelined-interleaved', target: { op: '>=', value: 0.8 } }],
  'sequential-p50-interleaved': [{ id: 'baseline/ws-ping-pong-p50-interleaved', target: { op: '<=', value: 1.3 } }, { id: 'baseline/ws-ping-pong-busy-p50-interleaved' }],
  'sequential-p50-no-busy-poll-interleaved': [{ id: 'baseline/ws-ping-pong-p50-interleaved', target: { op: '<=', value: 1.3 } }],
  // Fresh processes (the latency suite): polling must pay off in each, and not cost beside a
  // CPU hog (the same processes with busyPollMicros 0, taking turns).
  'fresh-sequential-p50': [{ id: 'wsfutures/fresh-sequential-p50-no-busy-poll' }],
  'hog-sequential-p50': [{ id: 'wsfutures/hog-sequential-p50-no-busy-poll', target: { op: '<=', value: 1 } }],
  'hog-sequential-p99': [{ id: 'wsfutures/hog-sequential-p99-no-busy-poll' }],
  // map's own per-item cost: against the same items cut into arrays by hand, one submit each.
  'map-chunked': [{ id: 'baseline/ws-batched', target: { op: '>=', value: 0.8 } }, { id: 'wsfutures/map-manual-chunks', target: { op: '>=', value: 0.5 } }],
  'map-chunked-chunks': [{ id: 'wsfutures/map-manual-chunks' }],
  'map-manual-chunks': [{ id: 'baseline/ws-batched' }],
  'payload-1mib': [{ id: 'baseline/ws-echo-1mib' }, { id: 'baseline/tcp-echo-1mib' }, { id: 'baseline/tcp-bandwidth', target: { op: '>=', value: 0.5 } }],
  'payload-16mib': [{ id: 'baseline/ws-echo-16mib' }, { id: 'baseline/tcp-echo-16mib' }, { id: 'baseline/tcp-bandwidth', target: { op: '>=', value: 0.5 } }],
  // Scheduling: makespans against the ideal computed from the task durations.
  'sched-after-burst': [{ id: 'wsfutures/sched-after-burst-ideal', target: { op: '<=', value: 1.1 } }],
  'sched-mixed': [{ id: 'wsfutures/sched-mixed-ideal', target: { op: '<=', value: 1.1 } }],
  'sched-mixed-one-kind': [{ id: 'wsfutures/sched-mixed-one-kind-ideal' }],
  'sched-steal': [{ id: 'wsfutures/sched-steal-ideal', target: { op: '<=', value: 1.1 } }],
  'sched-uneven': [{ id: 'wsfutures/sched-uneven-ideal', target: { op: '<=', value: 1.15 } }],
  // What watching costs: the dashboard open and /metrics scraped, against nobody watching.
  'tiny-monitored': [{ id: 'wsfutures/tiny-unmonitored', target: { op: '>=', value: 0.95 } }],
  // A load-test slot against the same HTTP client in a plain loop: ctx.http's own, and fetch;
  // undici's Pool in a plain loop for reference.
  'http-load-1core': [{ id: 'baseline/http-bare-client', target: { op: '>=', value: 0.8 } }, { id: 'baseline/http-bare-undici' }],
  'http-load-1core-fetch': [{ id: 'baseline/http-bare-fetch', target: { op: '>=', value: 0.8 } }],
  // The load a cluster generates grows with its slots.
  'http-load-2-slots': [{ id: 'wsfutures/http-load-1-slots', target: { op: '>=', value: 1.6 } }],
  // "No slowdown per task as the queue grows": the drain rate of the huge queue against bursts
  // of 100,000 read the same way, run just before and after it (so only the queue's size
  // differs, on the same machine). 0.9 leaves room for the noise of this machine.
  'queue-drain': [{ id: 'baseline/ws-pipelined' }, { id: 'wsfutures/tiny-all-at-once' }, { id: 'wsfutures/queue-burst-around', target: { op: '>=', value: 0.9 } }],
};

/** wsfutures against each peer, by workload and peer suite. */
const PEER_TARGETS: Record<string, Record<string, Target>> = {
  'tiny-all-at-once': { python: { op: '>=', value: 5 }, piscina: { op: '>=', value: 2 } },
  'map-chunked': { python: { op: '>=', value: 1.5 } },
  'http-load-1core': { autocannon: { op: '>=', value: 0.8 } },
};

/** Targets on the figure itself rather than a ratio. */
const VALUE_TARGETS: Record<string, Target> = {
  'queue-heap': { op: '<', value: 1024 },
  // Every fresh process lands in the same mode: the slowest p50 within 1.5x of the fastest…
  'fresh-sequential-p50-spread': { op: '<=', value: 1.5 },
  // …and in each, polling made the p50 lower than with busyPollMicros 0.
  'fresh-sequential-p50-worst-vs-off': { op: '<', value: 1 },
};

export const SUBJECT = 'wsfutures';
const SECTION_ORDER = ['baseline', 'piscina', 'python', 'dask', 'bullmq', 'autocannon', SUBJECT];
const SECTION_TITLES: Record<string, string> = {
  baseline: 'speed of light (bare ws + msgpackr echo, raw TCP; loopback, separate processes)',
  piscina: 'peer: piscina (worker threads)',
  python: "peer: Python's concurrent.futures.ProcessPoolExecutor",
  dask: 'peer: Dask distributed (LocalCluster, 2 worker processes, 1 thread each)',
  bullmq: 'peer: BullMQ (Redis job queue, 2 worker processes)',
  autocannon: 'peer: autocannon (HTTP load, one process)',
  [SUBJECT]: 'wsfutures ProcessPoolExecutor',
};

export interface Ratio {
  /** `suite/workload` of the figure divided. */
  of: string;
  /** `suite/workload` of the figure divided by. */
  to: string;
  /** "wsfutures / bare ws pipelined echo" */
  label: string;
  value: number;
  target?: Target;
  met?: boolean;
}

export const figureId = (f: Figure): string => `${f.suite}/${f.workload}`;

const meets = (value: number, t: Target): boolean => (t.op === '>=' ? value >= t.value : t.op === '<=' ? value <= t.value : value < t.value);

export function computeRatios(figures: Figure[]): Ratio[] {
  const byId = new Map(figures.map((f) => [figureId(f), f]));
  const ratios: Ratio[] = [];
  const add = (of: Figure, to: Figure, label: string, target: Target | undefined): void => {
    if (!(to.value > 0) || !Number.isFinite(of.value)) return;
    const value = of.value / to.value;
    const ratio: Ratio = { of: figureId(of), to: figureId(to), label: `${of.suite} / ${label}`, value };
    if (target && of.suite === SUBJECT) Object.assign(ratio, { target, met: meets(value, target) });
    ratios.push(ratio);
  };
  for (const figure of figures) {
    if (figure.suite === 'baseline') continue;
    for (const ref of REFERENCES[figure.workload] ?? []) {
      const to = byId.get(ref.id);
      // A reference to another wsfutures figure is wsfutures' own yardstick, not the peers'.
      if (to && to !== figure && (to.suite !== SUBJECT || figure.suite === SUBJECT)) {
        add(figure, to, to.suite === SUBJECT ? `${to.label.replace(/^wsfutures /, '')}` : to.label, ref.target);
      }
    }
    if (figure.suite !== SUBJECT) continue;
    for (const peer of figures) {
      if (peer.workload === figure.workload && peer.suite !== SUBJECT && peer.suite !== 'baseline') {
        add(figure, peer, peer.suite, PEER_TARGETS[figure.workload]?.[peer.suite]);
      }
    }
  }
  return ratios;
}

/** The target a figure's own value has, if any, and whether it is met. */
export function valueTarget(figure: Figure): { target: Target; met: boolean } | undefined {
  const target = figure.suite === SUBJECT ? VALUE_TARGETS[figure.workload] : undefined;
  return target && { target, met: meets(figure.value, target) };
}

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : 2;
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

const formatTarget = (t: Target, met: boolean): string => `(target ${t.op} ${t.value}: ${met ? 'met' : 'MISSED'})`;

export interface TableInput {
  machine: Record<string, string | number>;
  figures: Figure[];
  ratios: Ratio[];
  /** Suites that did not run, with the reason, as "not available: reason" or "failed: reason". */
  notRun: { suite: string; status: 'not available' | 'failed'; reason: string }[];
  /** Workloads that failed in suites that otherwise ran. */
  errors: WorkloadError[];
}

/** The table printed at the end of a run. */
export function formatTable({ machine, figures, ratios, notRun, errors }: TableInput): string {
  const lines: string[] = [];
  lines.push(`machine: ${Object.entries(machine).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  const labelWidth = Math.max(30, ...figures.map((f) => f.label.length));
  const valueWidth = Math.max(8, ...figures.map((f) => formatNumber(f.value).length));
  const unitWidth = 7;
  const pad = ' '.repeat(labelWidth + valueWidth + unitWidth + 6);
  lines.push('', `${'figure'.padEnd(labelWidth)}  ${'value'.padStart(valueWidth)}  ${'unit'.padEnd(unitWidth)}  ratios`);
  for (const suite of [...SECTION_ORDER, ...new Set(figures.map((f) => f.suite))].filter((s, i, all) => all.indexOf(s) === i)) {
    const section = figures.filter((f) => f.suite === suite);
    const missing = notRun.find((n) => n.suite === suite);
    const failures = errors.filter((e) => e.suite === suite);
    if (section.length === 0 && !missing && failures.length === 0) continue;
    lines.push('', `-- ${SECTION_TITLES[suite] ?? suite}`);
    for (const figure of section) {
      const notes: string[] = [];
      const own = valueTarget(figure);
      if (own) notes.push(formatTarget(own.target, own.met));
      for (const r of ratios.filter((x) => x.of === figureId(figure))) {
        notes.push(`${r.label} = ${formatNumber(r.value)}${r.target ? ` ${formatTarget(r.target, r.met!)}` : ''}`);
      }
      const head = `${figure.label.padEnd(labelWidth)}  ${formatNumber(figure.value).padStart(valueWidth)}  ${figure.unit.padEnd(unitWidth)}`;
      lines.push(`${head}  ${notes[0] ?? ''}`.trimEnd(), ...notes.slice(1).map((n) => `${pad}${n}`));
    }
    for (const e of failures) lines.push(`${suite}: ${e.workload}: failed: ${e.error}`);
    if (missing) lines.push(`${suite}: ${missing.status}: ${missing.reason}`);
  }
  return lines.join('\n');
}
