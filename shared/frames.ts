/**
 * How a protocol message becomes the bytes of one WebSocket message, and back.
 *
 * Most messages are one msgpack map. A `run` or `results` message whose task arguments (`a`) or
 * results (`v`) include a large payload travels with those payloads as *attachments*: the raw
 * bytes follow the envelope, each sent as a WebSocket fragment of its own, so a 16 MiB argument
 * is never copied into the envelope (msgpack would copy it) — one fresh copy less on each side:
 *
 *     0x00 | u32 BE envelope length | envelope (msgpack) | attachment 1 | attachment 2 | …
 *
 * In the envelope, an attached payload's field holds its length (an integer) instead of the
 * bytes; attachments follow in the order of the tasks (or outcomes) that have them. A task's or
 * outcome's value attachments (`x`: large typed arrays kept out of its msgpack bytes, see
 * codec.ts) always travel this way, each as a length in the envelope, after the item's own
 * payload if that is attached too. A plain
 * message never starts with 0x00 (a msgpack map starts with 0x80–0x8f, 0xde or 0xdf). The
 * receiver puts views of the attachments back in place before the message is validated, and a
 * frame whose lengths do not add up exactly is malformed.
 */
import { decodeMessage, encodeMessage } from './codec.ts';

/** Payloads of at least this many bytes are attached rather than copied into the envelope. */
export const ATTACH_MIN_BYTES = 64 * 1024;

const ATTACHED = 0x00;
const HEAD_BYTES = 5;

/** The list and the payload field of the messages that may carry attachments. */
const CARRIERS: Record<string, [list: string, field: string]> = { run: ['tasks', 'a'], results: ['items', 'v'] };

/**
 * Encodes a message as the parts of one WebSocket message: send them in order, all but the last
 * as non-final fragments. One part unless the message has attachments.
 */
export function encodeFrame(msg: { op: string }): Uint8Array[] {
  const carrier = CARRIERS[msg.op];
  if (!carrier) return [encodeMessage(msg)];
  const [listKey, field] = carrier;
  const list = (msg as unknown as Record<string, Record<string, unknown>[]>)[listKey]!;
  let attachments: Uint8Array[] | undefined;
  let envelopeList: Record<string, unknown>[] | undefined;
  for (let i = 0; i < list.length; i++) {
    const item = list[i]!;
    const bytes = item[field];
    const big = bytes instanceof Uint8Array && bytes.byteLength >= ATTACH_MIN_BYTES;
    const extra = item.x as Uint8Array[] | undefined;
    if (!big && extra === undefined) continue;
    attachments ??= [];
    envelopeList ??= list.slice();
    const copy = { ...item };
    if (big) {
      attachments.push(bytes);
      copy[field] = bytes.byteLength;
    }
    if (extra !== undefined) {
      for (const part of extra) attachments.push(part);
      copy.x = extra.map((part) => part.byteLength);
    }
    envelopeList[i] = copy;
  }
  if (!attachments) return [encodeMessage(msg)];
  const envelope = encodeMessage({ ...msg, [listKey]: envelopeList });
  const head = new Uint8Array(HEAD_BYTES + envelope.byteLength);
  head[0] = ATTACHED;
  new DataView(head.buffer, head.byteOffset).setUint32(1, envelope.byteLength);
  head.set(envelope, HEAD_BYTES);
  return [head, ...attachments];
}

/**
 * Decodes one WebSocket message, given as the payloads of its frames (ws's `fragments` binary
 * type) or as one buffer. An attachment that arrived as a fragment of its own — as
 * `encodeFrame` sends it — comes back as a view of that fragment: ws never joins the fragments
 * into a fresh buffer (for a 16 MiB payload, a fresh 16 MiB allocation and copy less). Bytes split
 * across fragments any other way are still decoded, with a copy. Throws on malformed msgpack or
 * attachments that do not add up; the caller closes the connection. The result still has to be
 * validated.
 */
export function decodeFrame(data: Uint8Array | readonly Uint8Array[]): unknown {
  const parts = data instanceof Uint8Array ? [data] : data;
  const first = parts[0];
  if (first === undefined || first.byteLength === 0 || first[0] !== ATTACHED) return decodeMessage(joinFragments(parts));
  const reader = new PartsReader(parts);
  if (reader.remaining < HEAD_BYTES) throw new Error('truncated attachment header');
  const head = reader.take(HEAD_BYTES);
  const envelopeLength = new DataView(head.buffer, head.byteOffset, HEAD_BYTES).getUint32(1);
  if (envelopeLength > reader.remaining) throw new Error('attachment envelope longer than the frame');
  const msg = decodeMessage(reader.take(envelopeLength)) as Record<string, unknown>;
  const carrier = msg !== null && typeof msg === 'object' ? CARRIERS[msg.op as string] : undefined;
  if (!carrier) throw new Error('attachments on a message that cannot carry them');
  const [listKey, field] = carrier;
  const list = msg[listKey];
  if (!Array.isArray(list)) throw new Error(`attachments without a "${listKey}" list`);
  const take = (length: unknown): Uint8Array => {
    if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0 || length > reader.remaining) throw new Error('an attachment runs past the end of the frame');
    return reader.take(length);
  };
  for (const item of list as Record<string, unknown>[]) {
    if (item === null || typeof item !== 'object') continue; // validation reports it
    if (typeof item[field] === 'number') item[field] = take(item[field]);
    if (Array.isArray(item.x)) item.x = item.x.map(take);
  }
  if (reader.remaining !== 0) throw new Error(`${reader.remaining} bytes after the last attachment`);
  return msg;
}

/** A message's fragments as one buffer: the fragment itself when there is one (handshake frames, plain messages). */
export function joinFragments(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let total = 0;
  for (const p of parts) total += p.byteLength;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** Reads a message's bytes in order across its fragments: views where a range lies in one fragment. */
class PartsReader {
  readonly #parts: readonly Uint8Array[];
  #index = 0;
  #offset = 0;
  remaining = 0;

  constructor(parts: readonly Uint8Array[]) {
    this.#parts = parts;
    for (const p of parts) this.remaining += p.byteLength;
  }

  /** The next `n` bytes (the caller checked that there are that many). */
  take(n: number): Uint8Array {
    this.remaining -= n;
    this.#skipEmpty();
    const part = this.#parts[this.#index];
    if (n === 0 || part === undefined) return new Uint8Array(0);
    if (this.#offset + n <= part.byteLength) {
      const view = part.subarray(this.#offset, this.#offset + n);
      this.#offset += n;
      return view;
    }
    const out = new Uint8Array(n);
    for (let at = 0; at < n;) {
      this.#skipEmpty();
      const p = this.#parts[this.#index]!;
      const count = Math.min(n - at, p.byteLength - this.#offset);
      out.set(p.subarray(this.#offset, this.#offset + count), at);
      at += count;
      this.#offset += count;
    }
    return out;
  }

  #skipEmpty(): void {
    while (this.#index < this.#parts.length && this.#offset === this.#parts[this.#index]!.byteLength) {
      this.#index++;
      this.#offset = 0;
    }
  }
}

/** RFC 6455 allows a close reason of at most 123 bytes of UTF-8. */
const CLOSE_REASON_MAX_BYTES = 123;
const utf8 = new TextEncoder();

/**
 * A close reason that fits its 123 bytes, cut on a character boundary (a reason cut by
 * characters can still be too long, and `ws` throws on one that is).
 */
export function closeReason(reason: string): string {
  if (reason.length <= CLOSE_REASON_MAX_BYTES / 3 || utf8.encode(reason).byteLength <= CLOSE_REASON_MAX_BYTES) return reason;
  const out = new Uint8Array(CLOSE_REASON_MAX_BYTES);
  const { read } = utf8.encodeInto(reason, out.subarray(0, CLOSE_REASON_MAX_BYTES - 3));
  return `${reason.slice(0, read)}...`;
}

/**
 * Bytes a `run` or `results` frame spends beyond its items: the attachment head, the op and
 * the list's header (msgpack: at most 5 + 3 + 4 + 6 + 5).
 */
export const FRAME_OVERHEAD_BYTES = 32;

/**
 * Bytes one task (or outcome) spends in its frame beyond its payload and its export name:
 * msgpack's map header, keys and integer fields (id, module, attempt, flags: at most 9 bytes
 * each), the payload's own header, and 9 per attachment for its length. An upper bound, so a
 * task that passes the size check always fits the frame.
 */
export function itemOverheadBytes(attachments: number, name = ''): number {
  return 80 + 9 * attachments + utf8Length(name);
}

/**
 * The bytes of `s` in UTF-8, as TextEncoder would write them (a lone surrogate as the 3 bytes of
 * U+FFFD), counted without encoding: asked for every task sent, where encoding the name cost an
 * allocation per task.
 */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 2; // the pair's 2 code units make 4 bytes
      i++;
    } else n += 2;
  }
  return n;
}
