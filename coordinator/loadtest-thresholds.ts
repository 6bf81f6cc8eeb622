/**
 * Load-test thresholds, as k6 has them: `p99 < 200ms`, `errors < 1%`, `rate >= 900`,
 * `login.p95 < 300ms` (a step's own percentile). A broken threshold makes the test not ok (the
 * CLI exits 1). Durations in the load-test options use the same units.
 */
import type { LoadTestResult } from './loadtest.ts';

export interface ThresholdResult {
  threshold: string;
  ok: boolean;
  /** The measured value, in the threshold's unit (ms, %, /s or a count). */
  actual: number;
}

export interface Threshold {
  text: string;
  evaluate(result: LoadTestResult): ThresholdResult;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `30s`, `1.5m`, `500ms`, `2h`, or a number of ms. */
export function parseDuration(value: unknown, name: string): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  const m = typeof value === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(value) : null;
  if (!m) throw new TypeError(`${name} must be a duration such as 30s, 2m, 500ms or a number of ms: got ${JSON.stringify(value)}`);
  return Number(m[1]) * UNITS[m[2] ?? 'ms']!;
}

const OPS: Record<string, (a: number, b: number) => boolean> = {
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
};

/** Parses one threshold; the error names it and says what is allowed. */
export function parseThreshold(text: unknown, name: string): Threshold {
  const m = typeof text === 'string' ? /^\s*(?:([\w.-]+)\.)?(p\d+(?:\.\d+)?|mean|max|errors|rate|dropped)\s*(<=|>=|<|>)\s*(\d+(?:\.\d+)?)\s*(ms|s|%|\/s)?\s*$/.exec(text) : null;
  if (!m) {
    throw new TypeError(`${name} must look like 'p99 < 200ms', 'errors < 1%', 'rate >= 900', 'dropped < 10' or 'STEP.p95 < 300ms': got ${JSON.stringify(text)}`);
  }
  const [, step = 'iteration', metric, op, num, unit] = m as unknown as [string, string | undefined, string, string, string, string | undefined];
  const value = Number(num) * (unit === 's' ? 1000 : 1);
  const percentile = metric.startsWith('p') ? Number(metric.slice(1)) : undefined;
  if (percentile !== undefined && (percentile <= 0 || percentile > 100)) throw new RangeError(`${name}: ${metric} is not a percentile (p1 to p100): got ${JSON.stringify(text)}`);
  if ((metric === 'errors') !== (unit === '%') && metric === 'errors') throw new TypeError(`${name}: errors are a percentage, e.g. 'errors < 1%': got ${JSON.stringify(text)}`);
  return {
    text: String(text).trim(),
    evaluate(result) {
      const s = result.steps[step];
      let actual: number;
      if (metric === 'errors') actual = s && s.count > 0 ? (100 * s.errors) / s.count : 0;
      else if (metric === 'rate') actual = result.rate;
      else if (metric === 'dropped') actual = result.dropped;
      else if (!s || s.count === 0) actual = Number.NaN;
      else if (metric === 'mean') actual = s.mean;
      else if (metric === 'max') actual = s.max;
      else actual = percentileOf(s, percentile!);
      return { threshold: this.text, ok: !Number.isNaN(actual) && OPS[op]!(actual, value), actual };
    },
  };
}

function percentileOf(s: { p50: number; p90: number; p95: number; p99: number; max: number }, p: number): number {
  // The percentiles the result keeps; others take the next one up (a stricter check).
  if (p <= 50) return s.p50;
  if (p <= 90) return s.p90;
  if (p <= 95) return s.p95;
  if (p <= 99) return s.p99;
  return s.max;
}
