/**
 * The one msgpack configuration of wsfutures (msgpackr), for both sides.
 *
 * Two packers, because they carry different things:
 * - `envelope`: protocol messages. Plain msgpack; binary fields decode as views into the
 *   received frame (no copy): a task's arguments are decoded once, by the function's own
 *   `values` decoder, not copied out of the envelope first.
 * - `values`: task arguments and results — our pickle. Structured cloning keeps shared and
 *   circular references, Map, Set, Date, RegExp, Error and typed arrays; `bigint` of any size
 *   travels as an extension; `undefined` stays `undefined`. Functions and symbols cannot
 *   travel: they fail with `SerializationError` instead of silently turning into undefined.
 */
import { Buffer } from 'node:buffer';
import { Packr, addExtension } from 'msgpackr';
import { SerializationError } from './errors.ts';

/**
 * msgpackr's bigint extension (type 0x42: big-endian two's complement bytes), decoded faster.
 * msgpackr rebuilds a large bigint with shifts and ORs, 185 ms for the 2.3 MB of 1000000!
 * here; through a hex string, which V8 parses natively, it takes ~40 ms. Small ones keep a
 * plain loop. The encoding is msgpackr's own, unchanged.
 */
function decodeBigInt(data: Uint8Array): bigint {
  const n = data.byteLength;
  if (n === 0) return 0n;
  let value = 0n;
  if (n <= 64) {
    for (let i = 0; i < n; i++) value = (value << 8n) | BigInt(data[i]!);
  } else {
    value = BigInt(`0x${Buffer.from(data.buffer, data.byteOffset, n).toString('hex')}`);
  }
  return data[0]! & 0x80 ? value - (1n << BigInt(n * 8)) : value;
}
addExtension({ type: 0x42, unpack: decodeBigInt } as unknown as Parameters<typeof addExtension>[0]);

const valuePackr = new Packr({
  structuredClone: true,
  useBigIntExtension: true,
  moreTypes: true,
  // msgpackr calls this for a function it meets; the default is to write nil (undefined).
  writeFunction: () => {
    throw new SerializationError('a function cannot be sent to a worker node: pass data, and name the function to run with submit(fn, ...args)');
  },
} as ConstructorParameters<typeof Packr>[0]);

const envelopePackr = new Packr({ useRecords: false, mapsAsObjects: true });

/**
 * What is being encoded, for error messages: a string, or a function that makes it (on the
 * hot path a message is built only when something fails).
 */
export type What = string | (() => string);
const describe = (what: What): string => (typeof what === 'string' ? what : what());

/** Encodes a task argument list or result. Throws `SerializationError` naming what failed. */
export function encodeValue(value: unknown, what: What = 'value'): Uint8Array {
  try {
    return valuePackr.pack(value);
  } catch (err) {
    if (err instanceof SerializationError) throw new SerializationError(`${describe(what)}: ${err.message}`);
    throw new SerializationError(`${describe(what)} cannot be serialized with msgpack: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}

export function decodeValue(bytes: Uint8Array, what: What = 'value'): unknown {
  try {
    return valuePackr.unpack(bytes);
  } catch (err) {
    throw new SerializationError(`${describe(what)} could not be decoded: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}

/** Whether a value can be encoded (used to keep an error's serializable properties only). */
export function canEncode(value: unknown): boolean {
  try {
    valuePackr.pack(value);
    return true;
  } catch {
    return false;
  }
}

export function encodeMessage(msg: unknown): Uint8Array {
  return envelopePackr.pack(msg);
}

/** Decodes a protocol message; throws on malformed msgpack (the caller closes the connection). */
export function decodeMessage(bytes: Uint8Array): unknown {
  return envelopePackr.unpack(bytes);
}
