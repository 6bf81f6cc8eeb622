/**
 * Option checks shared by the pool, the worker-node API and the worker CLI, so that an option
 * is judged the same way wherever it is given, and every message names the option, the value
 * and what is allowed. A value of the wrong type is a TypeError (`"4"`); a number out of range
 * is a RangeError (`0`, `1.5`, `NaN`), as Node's own APIs do.
 */

/** A value as a message shows it: strings quoted, functions by name. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || typeof value !== 'object') return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

export interface IntegerRange {
  /** Smallest allowed value (default 1). */
  min?: number;
  /** Largest allowed value (default: any safe integer). */
  max?: number;
  /** What the allowed values are, for the message; by default said from min and max. */
  expected?: string;
}

function expectedText({ min = 1, max, expected }: IntegerRange): string {
  if (expected) return expected;
  if (max !== undefined) return `an integer from ${min} to ${max}`;
  if (min === 1) return 'a positive integer';
  if (min === 0) return 'a non-negative integer';
  return `an integer of at least ${min}`;
}

/** Checks an optional integer option; `name` is how the caller spells it (`maxWorkers`, `--concurrency`). */
export function checkInteger(name: string, value: unknown, range: IntegerRange = {}): void {
  if (value === undefined) return;
  const { min = 1, max = Number.MAX_SAFE_INTEGER } = range;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    const ErrorClass = typeof value === 'number' ? RangeError : TypeError;
    throw new ErrorClass(`${name} must be ${expectedText(range)}: got ${describeValue(value)}`);
  }
}

/** Reads a command-line flag's text as an integer in range; the message quotes the text given. */
export function parseIntegerFlag(name: string, text: string, range: IntegerRange = {}): number {
  const value = /^\s*-?\d+\s*$/.test(text) ? Number(text) : Number.NaN;
  try {
    checkInteger(name, value, range);
  } catch {
    throw new RangeError(`${name} must be ${expectedText(range)}: got ${JSON.stringify(text)}`);
  }
  return value;
}
