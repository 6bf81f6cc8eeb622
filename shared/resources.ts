/**
 * Resources: what a worker node declares it has (`--resources gpu=1,mem=16GB`) and what a task
 * asks for (`submitWith({ resources: { gpu: 1 } })`). Names are the user's own; amounts are
 * plain numbers, or for memory-like amounts a number with a unit suffix, turned into bytes here
 * so that both sides compare the same numbers. Used by the worker CLI, the worker-node API and
 * the coordinator (one set of checks, one set of units).
 */

/** Amounts by resource name, as they travel in `register` and as the scheduler compares them. */
export type Resources = Readonly<Record<string, number>>;

/**
 * Unit suffixes (case-insensitive): decimal K/M/G/T (with or without B), and binary KiB/MiB/
 * GiB/TiB. `16GB` is 16e9; `16GiB` is 16·2^30. Any other suffix is an error, never guessed.
 */
const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/**
 * A resource name: a letter or `_`, then letters, digits, `_`, `-` or `.` (as Dask's are used),
 * at most 64 characters; not starting with `__`, so that no name is `__proto__`.
 */
export const RESOURCE_NAME = /^(?!__)[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
/** Names one node or task may use: a bound on what a peer makes the scheduler compare. */
export const MAX_RESOURCE_NAMES = 64;

const AMOUNT = /^\s*(\d+(?:\.\d*)?|\.\d+)(?:e([+-]?\d+))?\s*([A-Za-z]*)\s*$/;

/** Parses `16GB`, `1`, `0.5`, `2e9`; undefined if it is not an amount. */
export function parseAmount(text: string): number | undefined {
  const m = AMOUNT.exec(text);
  if (!m) return undefined;
  const unit = UNITS[m[3]!.toLowerCase()];
  if (unit === undefined) return undefined;
  const n = Number(`${m[1]}${m[2] === undefined ? '' : `e${m[2]}`}`) * unit;
  return Number.isFinite(n) ? n : undefined;
}

const HELP =
  'names are letters, digits, _ . - (starting with a letter or _); amounts are numbers, optionally with a unit: K, M, G, T (×1000) or KiB, MiB, GiB, TiB (×1024), e.g. gpu=1,mem=16GB';

/**
 * Parses the worker CLI's `--resources gpu=1,mem=16GB` into amounts; throws a RangeError that
 * names `option`, the value and the form expected.
 */
export function parseResourceList(text: string, option = '--resources'): Resources {
  const out: Record<string, number> = {};
  const parts = text.split(',').map((p) => p.trim()).filter((p) => p.length > 0);
  if (parts.length === 0) throw new RangeError(`${option} must list resources as NAME=AMOUNT[,NAME=AMOUNT…] (${HELP}): got ${JSON.stringify(text)}`);
  for (const part of parts) {
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq).trim();
    const amount = eq < 0 ? undefined : parseAmount(part.slice(eq + 1));
    if (eq < 0 || !RESOURCE_NAME.test(name) || amount === undefined) {
      throw new RangeError(`${option}: ${JSON.stringify(part)} is not NAME=AMOUNT (${HELP}): got ${JSON.stringify(text)}`);
    }
    if (Object.hasOwn(out, name)) throw new RangeError(`${option}: ${name} is given twice: got ${JSON.stringify(text)}`);
    out[name] = amount;
  }
  if (Object.keys(out).length > MAX_RESOURCE_NAMES) throw new RangeError(`${option} may name at most ${MAX_RESOURCE_NAMES} resources: got ${Object.keys(out).length}`);
  return out;
}

/**
 * Checks resources given in code (`{ gpu: 1, mem: '4GB' }`: numbers, or strings with a unit)
 * and returns them as numbers. `positive`: a task's request, where an amount of 0 asks for
 * nothing and is an error rather than silently meaningless; a node may declare 0.
 */
export function checkResources(option: string, value: unknown, positive: boolean): Resources | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`${option} must be an object of amounts by name, e.g. { gpu: 1, mem: '16GB' }: got ${describe(value)}`);
  }
  const out: Record<string, number> = {};
  const names = Object.keys(value);
  if (names.length > MAX_RESOURCE_NAMES) throw new RangeError(`${option} may name at most ${MAX_RESOURCE_NAMES} resources: got ${names.length}`);
  for (const name of names) {
    if (!RESOURCE_NAME.test(name)) throw new RangeError(`${option}: ${JSON.stringify(name)} is not a resource name (${HELP})`);
    const v = (value as Record<string, unknown>)[name];
    const amount = typeof v === 'number' ? v : typeof v === 'string' ? parseAmount(v) : undefined;
    if (amount === undefined || !Number.isFinite(amount) || amount < 0 || (positive && amount === 0)) {
      const ErrorClass = typeof v === 'number' || typeof v === 'string' ? RangeError : TypeError;
      throw new ErrorClass(`${option}.${name} must be a ${positive ? 'positive' : 'non-negative'} number or an amount with a unit like '16GB': got ${describe(v)}`);
    }
    out[name] = amount;
  }
  return out;
}

/** Whether `have` holds at least `want` of everything (a resource not listed is 0). */
export function fitsIn(want: Resources, have: Resources): boolean {
  // Own properties only: a name like `constructor` that `have` lacks is missing, not Object's.
  for (const name in want) if (!Object.hasOwn(have, name) || !(have[name]! + EPSILON >= want[name]!)) return false;
  return true;
}

/**
 * Slack in comparisons: amounts like 0.1 are added and taken away many times, and 0.1 + 0.2
 * taken from 0.3 must leave "nothing", not -5e-17 that refuses the next 0.1.
 */
export const EPSILON = 1e-9;

/** `{ gpu: 1, mem: 16000000000 }` → `gpu=1,mem=16GB`, for messages. */
export function formatResources(r: Resources): string {
  const parts = Object.entries(r).map(([k, v]) => `${k}=${formatAmount(v)}`);
  return parts.length === 0 ? '(none)' : parts.join(',');
}

function formatAmount(n: number): string {
  // Only amounts that big are byte counts in practice (gpu=2000 stays 2000, not 2KB).
  if (n >= 1e6 && Number.isInteger(n)) {
    for (const [suffix, unit] of [['TB', 1e12], ['GB', 1e9], ['MB', 1e6], ['TiB', 2 ** 40], ['GiB', 2 ** 30], ['MiB', 2 ** 20]] as const) {
      if (n % unit === 0) return `${n / unit}${suffix}`;
    }
  }
  return String(n);
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || typeof v !== 'object') return String(v);
  try {
    return JSON.stringify(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}
