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
 *
 * Large typed arrays are not copied into a value's msgpack bytes: `encodeValue(v, what, out)`
 * leaves a reference (extension 0x61) in their place and collects their bytes in `out`, to be
 * sent as they are (WebSocket fragments of their own, see frames.ts), and `decodeValue` turns
 * each reference back into a typed array over the received bytes. A 16 MiB Uint8Array argument
 * used to be copied four times on its way to a task (into the msgpack bytes, out of them, and
 * once more each way by the transport), each copy into fresh memory that page-faults.
 */
import { Buffer } from 'node:buffer';
import { addExtension, Packr } from 'msgpackr';
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

/** Typed arrays of at least this many bytes travel beside a value's msgpack bytes. */
export const VALUE_ATTACH_MIN_BYTES = 64 * 1024;
const ATTACHMENT_EXT = 0x61; // 'a'
/** msgpackr's typed-array codes (extension 0x74), which attachment references reuse. */
const TYPED_ARRAYS = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array];
const TYPED_ARRAY_NAMES = TYPED_ARRAYS.map((c) => c.name);
/** The code of a Node Buffer (msgpackr sends those as plain bin, and they come back as Buffers). */
const BUFFER_CODE = 0xff;
type TypedArray = InstanceType<(typeof TYPED_ARRAYS)[number]>;

/** Set while encodeValue collects attachments, and while decodeValue has some to hand out. */
let collecting: Uint8Array[] | undefined;
let receiving: readonly Uint8Array[] | undefined;

type AllocateForWrite = (size: number) => { target: Uint8Array; position: number };

/**
 * Writes a typed array into the msgpack bytes the way msgpackr itself does (its own typed-array
 * extension, which this one takes precedence over): plain bin for a Buffer or without
 * `moreTypes`, else extension 0x74 with the array's type.
 */
function writeInline(moreTypes: boolean, array: ArrayBufferView, allocateForWrite: AllocateForWrite): void {
  const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
  const n = bytes.byteLength;
  const asExt = moreTypes && array.constructor !== Buffer;
  const size = asExt ? n + 1 : n; // an extension's length counts its type byte
  const lengthBytes = size < 0x100 ? 1 : size < 0x10000 ? 2 : 4;
  const head = 1 + lengthBytes + (asExt ? 2 : 0);
  const { target, position } = allocateForWrite(head + n);
  let at = position;
  const tag = asExt ? [0xc7, 0xc8, 0xc9] : [0xc4, 0xc5, 0xc6];
  target[at++] = tag[lengthBytes === 1 ? 0 : lengthBytes === 2 ? 1 : 2]!;
  for (let shift = (lengthBytes - 1) * 8; shift >= 0; shift -= 8) target[at++] = (size >>> shift) & 0xff;
  if (asExt) {
    target[at++] = 0x74;
    target[at++] = TYPED_ARRAY_NAMES.indexOf(array.constructor.name) & 0xff;
  }
  target.set(bytes, at);
}

/** A typed array of type `code` over an attachment's bytes: a view when they have a buffer of their own. */
function fromAttachment(code: number, part: Uint8Array): TypedArray | Buffer {
  // ws gives each large fragment a buffer of its own, so this is a view, without a copy; bytes
  // that share their buffer are copied, so the array owns its whole (aligned) ArrayBuffer, as
  // it would after a structured clone.
  let bytes = part;
  if (part.byteOffset !== 0 || part.buffer.byteLength !== part.byteLength) {
    bytes = new Uint8Array(part.byteLength);
    bytes.set(part);
  }
  if (code === BUFFER_CODE) return Buffer.from(bytes.buffer as ArrayBuffer, 0, bytes.byteLength);
  const Class = TYPED_ARRAYS[code];
  if (!Class) throw new Error(`attachment of unknown typed array type ${code}`);
  if (bytes.byteLength % Class.BYTES_PER_ELEMENT !== 0) throw new Error(`a ${Class.name} attachment of ${bytes.byteLength} bytes`);
  return new Class(bytes.buffer as ArrayBuffer, 0, bytes.byteLength / Class.BYTES_PER_ELEMENT);
}

addExtension(
  {
    Class: Object.getPrototypeOf(Uint8Array) as typeof Uint8Array,
    type: ATTACHMENT_EXT,
    pack(this: { moreTypes?: boolean }, array: ArrayBufferView, allocateForWrite: AllocateForWrite): Uint8Array | undefined {
      const code = array.constructor === Buffer ? BUFFER_CODE : TYPED_ARRAYS.indexOf(array.constructor as (typeof TYPED_ARRAYS)[number]);
      if (collecting === undefined || this !== valuePackr || array.byteLength < VALUE_ATTACH_MIN_BYTES || code < 0) {
        writeInline(this.moreTypes === true, array, allocateForWrite);
        return undefined;
      }
      const index = collecting.push(new Uint8Array(array.buffer, array.byteOffset, array.byteLength)) - 1;
      // The extension's data: the type code, then the attachment's index (u32, big-endian).
      return Uint8Array.of(code, index >>> 24, (index >>> 16) & 0xff, (index >>> 8) & 0xff, index & 0xff);
    },
    unpack(data: Uint8Array): unknown {
      if (data.byteLength !== 5) throw new Error('malformed attachment reference');
      const index = ((data[1]! << 24) | (data[2]! << 16) | (data[3]! << 8) | data[4]!) >>> 0;
      const part = receiving?.[index];
      if (part === undefined) throw new Error(`a reference to attachment ${index}, of ${receiving?.length ?? 0}`);
      return fromAttachment(data[0]!, part);
    },
  } as unknown as Parameters<typeof addExtension>[0],
);

const valuePackr = new Packr(
  {
    structuredClone: true,
    useBigIntExtension: true,
    moreTypes: true,
    // msgpackr calls this for a function it meets; the default is to write nil (undefined).
    writeFunction: () => {
      throw new SerializationError('a function cannot be sent to a worker node: pass data, and name the function to run with submit(fn, ...args)');
    },
  } as ConstructorParameters<typeof Packr>[0],
);

const envelopePackr = new Packr({ useRecords: false, mapsAsObjects: true });

/**
 * What is being encoded, for error messages: a string, or a function that makes it (on the
 * hot path a message is built only when something fails).
 */
export type What = string | (() => string);
const describe = (what: What): string => (typeof what === 'string' ? what : what());

/**
 * Encodes a task argument list or result. Throws `SerializationError` naming what failed. With
 * `attachments`, typed arrays of VALUE_ATTACH_MIN_BYTES or more are not copied but pushed there,
 * as views of their own memory: send them with the bytes, and do not change them until sent.
 */
export function encodeValue(value: unknown, what: What = 'value', attachments?: Uint8Array[]): Uint8Array {
  collecting = attachments;
  try {
    return valuePackr.pack(value);
  } catch (err) {
    if (attachments) attachments.length = 0;
    if (err instanceof SerializationError) throw new SerializationError(`${describe(what)}: ${err.message}`);
    throw new SerializationError(`${describe(what)} cannot be serialized with msgpack: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  } finally {
    collecting = undefined;
  }
}

/** The bytes of a value's attachments, for frame limits. */
export function attachedBytes(attachments: readonly Uint8Array[] | undefined): number {
  let n = 0;
  if (attachments) { for (const part of attachments) n += part.byteLength; }
  return n;
}

/** Decodes what encodeValue made; `attachments` are the ones it collected, as received. */
export function decodeValue(bytes: Uint8Array, what: What = 'value', attachments?: readonly Uint8Array[]): unknown {
  receiving = attachments;
  try {
    return valuePackr.unpack(bytes);
  } catch (err) {
    throw new SerializationError(`${describe(what)} could not be decoded: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  } finally {
    receiving = undefined;
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
