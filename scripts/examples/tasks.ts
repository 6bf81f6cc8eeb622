/**
 * The task module of the examples: module-level exported functions, which is what a process
 * pool can run (as Python's ProcessPoolExecutor runs module-level functions it can pickle by
 * name). Worker nodes receive this file bundled; their `console.log` output is theirs.
 */

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The seed's `do_something`: sleeps, then says so. */
export async function doSomething(seconds: number): Promise<string> {
  console.log(`Sleeping for ${seconds} second(s)...`);
  await sleep(seconds * 1000);
  return `Done Sleeping...${seconds}`;
}

/** The product lo·(lo+1)···hi, split in halves so the big multiplications are balanced. */
function product(lo: number, hi: number): bigint {
  if (hi < lo) return 1n;
  if (hi - lo < 32) {
    let r = 1n;
    for (let i = lo; i <= hi; i++) r *= BigInt(i);
    return r;
  }
  const mid = Math.floor((lo + hi) / 2);
  return product(lo, mid) * product(mid + 1, hi);
}

/**
 * `math.factorial(n)` as a bigint. Like CPython's, it multiplies in a balanced tree (a plain
 * loop over a million-digit accumulator would take minutes, not seconds).
 */
export function factorial(n: number): bigint {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`factorial() needs a non-negative integer: got ${n}`);
  return product(2, n);
}

/**
 * Decimal digits of `x`, without `x.toString()` (which takes many seconds on a million-digit
 * number): log10 from the top 52 bits, checked exactly with a power of ten when it lands
 * within 1e-6 of an integer.
 */
export function digitCount(x: bigint): number {
  if (x < 0n) x = -x;
  if (x < 10n) return 1;
  const hex = x.toString(16);
  const top = hex.slice(0, 13);
  const log10 = Math.log10(parseInt(top, 16)) + (hex.length - top.length) * 4 * Math.log10(2);
  const floor = Math.floor(log10);
  if (log10 - floor > 1e-6 && Math.ceil(log10) - log10 > 1e-6) return floor + 1;
  let digits = Math.max(1, floor - 1);
  let power = 10n ** BigInt(digits);
  while (power <= x) {
    power *= 10n;
    digits++;
  }
  return digits;
}

/** The seed's `calculate_factorial`, printing the digit count where the seed prints the number. */
export function calculateFactorial(n: number): bigint {
  console.log(`Calculating factorial of ${n}...`);
  const result = factorial(n);
  console.log(`Factorial of ${n} has ${digitCount(result)} digits`);
  return result;
}

/** The seed's `risky_function`: 10 / x, refusing x = 0 as Python's division would. */
export function riskyFunction(x: number): number {
  if (x === 0) throw new RangeError('Cannot divide by zero!');
  return 10 / x;
}

/** A checksum of a byte array: cheap work on a large argument (the serialization pitfall). */
export function checksum(data: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < data.length; i++) sum = (sum + data[i]! * (i % 251 + 1)) % 1_000_000_007;
  return sum;
}

/** The bytes `checksum` is given, made where they are needed from a recipe of two numbers. */
export function makeBytes(size: number, seed: number): Uint8Array {
  const data = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = x & 255;
  }
  return data;
}

/** The same checksum, with the data made on the worker: only two numbers travel. */
export function checksumOfRecipe(size: number, seed: number): number {
  return checksum(makeBytes(size, seed));
}

/** A fixed amount of CPU-bound work (`rounds` × 100,000 steps); returns a value that depends on all of it. */
export function burnCpu(rounds: number): number {
  let x = 0;
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < 100_000; i++) x = (x * 31 + i) % 1_000_003;
  }
  return x;
}

/** Waits `ms` and returns: a first task per worker thread loads this module before timing starts. */
export async function pause(ms: number): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  return ms;
}
