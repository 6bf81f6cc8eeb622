/**
 * The HTTP/1.1 response parser of `ctx.http` (shared/loadtest-http.ts): pure, no sockets. A
 * visible state machine, one method per state; the connection feeds it the bytes it reads, in
 * whatever pieces they come, and learns when one whole response is in.
 *
 * Framing follows RFC 9112 §6.3: no body after HEAD or for 204/304; `Transfer-Encoding`
 * (chunked last) wins over `Content-Length`; a response with neither, or a transfer coding other
 * than chunked, ends when the server closes the connection. Interim 1xx responses are skipped.
 * The header block is kept as one latin1 string: the framing headers are looked at at once,
 * the rest turned into an object only if the scenario reads `headers` (most never do, and
 * this is where a generic client spends its time).
 */
import { Buffer } from 'node:buffer';

/** A malformed response: the connection it came on cannot be trusted any more. */
export class HttpParseError extends Error {
  /** For the load test's count of errors by kind. */
  readonly code = 'HPE_INVALID_RESPONSE';
  constructor(message: string) {
    super(`ctx.http: ${message}`);
    this.name = 'HttpParseError';
  }
}

/** The largest status line plus headers accepted (Node's own limit is 16 KiB). */
export const MAX_HEAD_BYTES = 64 * 1024;

/** The parser's states (numbers, for a cheap switch). */
const State = {
  Head: 0,
  BodyLength: 1,
  ChunkSize: 2,
  ChunkData: 3,
  ChunkDataEnd: 4,
  Trailers: 5,
  BodyUntilClose: 6,
  Done: 7,
} as const;
type State = (typeof State)[keyof typeof State];

const HEAD_END = Buffer.from('\r\n\r\n');
const EMPTY = new Uint8Array(0);

export class ResponseParser {
  #state: State = State.Done;
  #noBody = false;
  /** Head bytes waiting for the rest of the head; a partial chunk-size or trailer line. */
  #pending: Buffer | undefined;
  /** Body bytes still expected: of the body (Content-Length) or of the current chunk. */
  #remaining = 0;
  #pieces: Buffer[] = [];
  #received = 0;

  status = 0;
  /** The header lines (without the status line and the blank line), latin1. */
  head = '';
  /** The whole body, once `done`. */
  body: Uint8Array = EMPTY;
  /** Whether the connection may carry another request after this response. */
  keepAlive = true;
  /** How long the server keeps an idle connection open, from its `Keep-Alive: timeout=N`, in ms (0: not said). */
  keepAliveMs = 0;

  /** Starts on a new response; `noBody` for the answer to a HEAD request. */
  start(noBody: boolean): void {
    this.#state = State.Head;
    this.#noBody = noBody;
    this.#pending = undefined;
    this.#pieces = [];
    this.#received = 0;
    this.status = 0;
    this.head = '';
    this.body = EMPTY;
    this.keepAlive = true;
    this.keepAliveMs = 0;
  }

  /** Whether the response is complete. */
  get done(): boolean {
    return this.#state === State.Done;
  }

  /** Whether the response so far has had any byte at all. */
  get started(): boolean {
    return this.#state !== State.Head || this.#pending !== undefined;
  }

  /**
   * Takes the next bytes read; returns how many belong to this response (the rest, if any,
   * came after it). Throws HttpParseError on a malformed response.
   */
  execute(buf: Buffer): number {
    let offset = 0;
    while (this.#state !== State.Done && (offset < buf.length || this.#state === State.BodyLength && this.#remaining === 0)) {
      switch (this.#state) {
        case State.Head:
          offset = this.#onHead(buf, offset);
          break;
        case State.BodyLength:
          offset = this.#onBodyLength(buf, offset);
          break;
        case State.ChunkSize:
          offset = this.#onChunkSize(buf, offset);
          break;
        case State.ChunkData:
          offset = this.#onChunkData(buf, offset);
          break;
        case State.ChunkDataEnd:
          offset = this.#onChunkDataEnd(buf, offset);
          break;
        case State.Trailers:
          offset = this.#onTrailers(buf, offset);
          break;
        case State.BodyUntilClose:
          offset = this.#onBodyUntilClose(buf, offset);
          break;
      }
    }
    return offset;
  }

  /**
   * The connection ended. Returns true if that completes the response (a body that lasts until
   * the close); false if the response was cut short.
   */
  finish(): boolean {
    if (this.#state === State.BodyUntilClose) {
      this.#complete();
      return true;
    }
    return this.#state === State.Done;
  }

  #onHead(buf: Buffer, offset: number): number {
    let data = offset === 0 ? buf : buf.subarray(offset);
    let searchFrom = 0;
    const pending = this.#pending;
    if (pending) {
      searchFrom = Math.max(0, pending.length - 3);
      data = Buffer.concat([pending, data]);
    }
    const end = data.indexOf(HEAD_END, searchFrom);
    if (end < 0) {
      if (data.length > MAX_HEAD_BYTES) throw new HttpParseError(`the response head is over ${MAX_HEAD_BYTES} bytes`);
      this.#pending = data;
      return buf.length;
    }
    if (end > MAX_HEAD_BYTES) throw new HttpParseError(`the response head is over ${MAX_HEAD_BYTES} bytes`);
    this.#pending = undefined;
    // Bytes of `buf` that this head used up: those of `data` minus what was pending before.
    const used = offset + end + 4 - (pending ? pending.length : 0);
    this.#parseHead(data.toString('latin1', 0, end));
    return used;
  }

  #parseHead(text: string): void {
    // "HTTP/1.1 200 OK": version, then a three-digit status.
    const lineEnd = text.indexOf('\r\n');
    const statusLine = lineEnd < 0 ? text : text.slice(0, lineEnd);
    if (!statusLine.startsWith('HTTP/1.') || statusLine.charCodeAt(8) !== 32) throw new HttpParseError(`not an HTTP/1.x status line: ${JSON.stringify(statusLine.slice(0, 80))}`);
    const status = Number(statusLine.slice(9, 12));
    if (!(status >= 100 && status <= 999) || (statusLine.length > 12 && statusLine.charCodeAt(12) !== 32)) {
      throw new HttpParseError(`not an HTTP/1.x status line: ${JSON.stringify(statusLine.slice(0, 80))}`);
    }
    const http10 = statusLine.charCodeAt(7) === 48; // "HTTP/1.0"
    const head = lineEnd < 0 ? '' : text.slice(lineEnd + 2);
    let contentLength = -1;
    let chunked = false;
    let otherCoding = false;
    let connection = '';
    let keepAliveMs = 0;
    // Only the headers that frame the response are read here; see the module comment.
    for (let at = 0; at < head.length;) {
      let next = head.indexOf('\r\n', at);
      if (next < 0) next = head.length;
      const colon = head.indexOf(':', at);
      if (colon < 0 || colon > next) throw new HttpParseError(`a header line without a colon: ${JSON.stringify(head.slice(at, Math.min(next, at + 80)))}`);
      const nameLength = colon - at;
      if (nameLength === 14 || nameLength === 17 || nameLength === 10) {
        const name = head.slice(at, colon).toLowerCase();
        if (name === 'content-length') {
          const value = head.slice(colon + 1, next).trim();
          const n = /^\d{1,15}$/.test(value) ? Number(value) : NaN;
          if (Number.isNaN(n) || (contentLength >= 0 && contentLength !== n)) throw new HttpParseError(`a bad Content-Length: ${JSON.stringify(value.slice(0, 80))}`);
          contentLength = n;
        } else if (name === 'transfer-encoding') {
          const codings = head.slice(colon + 1, next).toLowerCase().split(',');
          // Only the last coding frames the body; a later header line adds to the list.
          chunked = codings[codings.length - 1]!.trim() === 'chunked';
          otherCoding = !chunked;
        } else if (name === 'connection') {
          connection += ',' + head.slice(colon + 1, next).toLowerCase();
        } else if (name === 'keep-alive') {
          const m = /timeout\s*=\s*(\d+)/i.exec(head.slice(colon + 1, next));
          if (m) keepAliveMs = Number(m[1]) * 1000;
        }
      }
      at = next + 2;
    }
    // A 1xx answer is interim: the real response follows on the same connection.
    if (status < 200) {
      if (status === 101) throw new HttpParseError('the server switched protocols (101), which ctx.http never asks for');
      return;
    }
    this.status = status;
    this.head = head;
    this.keepAliveMs = keepAliveMs;
    this.keepAlive = http10 ? /(^|,)\s*keep-alive\s*(,|$)/.test(connection) : !/(^|,)\s*close\s*(,|$)/.test(connection);
    if (this.#noBody || status === 204 || status === 304) return this.#complete();
    if (chunked || otherCoding) {
      // Both framings given: the message is suspect (request smuggling), never reuse its connection.
      if (contentLength >= 0) this.keepAlive = false;
      if (chunked) {
        this.#state = State.ChunkSize;
        return;
      }
    } else if (contentLength >= 0) {
      this.#remaining = contentLength;
      this.#state = State.BodyLength;
      return;
    }
    this.keepAlive = false;
    this.#state = State.BodyUntilClose;
  }

  #onBodyLength(buf: Buffer, offset: number): number {
    const take = Math.min(this.#remaining, buf.length - offset);
    if (take > 0) {
      this.#pieces.push(offset === 0 && take === buf.length ? buf : buf.subarray(offset, offset + take));
      this.#received += take;
      this.#remaining -= take;
    }
    if (this.#remaining === 0) this.#complete();
    return offset + take;
  }

  #onChunkSize(buf: Buffer, offset: number): number {
    const line = this.#line(buf, offset);
    if (line === undefined) return buf.length;
    // "1a3f" or "1a3f;name=value" (extensions ignored).
    const semicolon = line.text.indexOf(';');
    const hex = (semicolon < 0 ? line.text : line.text.slice(0, semicolon)).trim();
    if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) throw new HttpParseError(`a bad chunk size: ${JSON.stringify(line.text.slice(0, 80))}`);
    const size = parseInt(hex, 16);
    if (size === 0) {
      this.#state = State.Trailers;
    } else {
      this.#remaining = size;
      this.#state = State.ChunkData;
    }
    return line.next;
  }

  #onChunkData(buf: Buffer, offset: number): number {
    const take = Math.min(this.#remaining, buf.length - offset);
    this.#pieces.push(buf.subarray(offset, offset + take));
    this.#received += take;
    this.#remaining -= take;
    if (this.#remaining === 0) {
      this.#remaining = 2;
      this.#state = State.ChunkDataEnd;
    }
    return offset + take;
  }

  /** The CRLF after a chunk's data (it may come in two reads). */
  #onChunkDataEnd(buf: Buffer, offset: number): number {
    while (this.#remaining > 0 && offset < buf.length) {
      const expected = this.#remaining === 2 ? 13 : 10;
      if (buf[offset] !== expected) throw new HttpParseError('a chunk is longer than its size says');
      this.#remaining--;
      offset++;
    }
    if (this.#remaining === 0) this.#state = State.ChunkSize;
    return offset;
  }

  /** Trailer lines after the last chunk, up to an empty line: read and not kept. */
  #onTrailers(buf: Buffer, offset: number): number {
    const line = this.#line(buf, offset);
    if (line === undefined) return buf.length;
    if (line.text === '') this.#complete();
    return line.next;
  }

  #onBodyUntilClose(buf: Buffer, offset: number): number {
    this.#pieces.push(offset === 0 ? buf : buf.subarray(offset));
    this.#received += buf.length - offset;
    return buf.length;
  }

  /** A CRLF-ended line from `offset` (joined to a partial one kept from before), or undefined if not complete yet. */
  #line(buf: Buffer, offset: number): { text: string; next: number } | undefined {
    const pending = this.#pending;
    // A CR at the end of what was kept may pair with an LF at the start of this read.
    if (pending && pending[pending.length - 1] === 13 && buf[offset] === 10) {
      this.#pending = undefined;
      return { text: pending.toString('latin1', 0, pending.length - 1), next: offset + 1 };
    }
    const end = buf.indexOf(13, offset);
    if (end >= 0 && end + 1 < buf.length) {
      if (buf[end + 1] !== 10) throw new HttpParseError('a line of the chunked body ends without CRLF');
      const text = buf.toString('latin1', offset, end);
      this.#pending = undefined;
      return { text: pending ? pending.toString('latin1') + text : text, next: end + 2 };
    }
    const rest = buf.subarray(offset);
    const kept = pending ? Buffer.concat([pending, rest]) : Buffer.from(rest);
    if (kept.length > MAX_HEAD_BYTES) throw new HttpParseError(`a line of the chunked body is over ${MAX_HEAD_BYTES} bytes`);
    this.#pending = kept;
    return undefined;
  }

  #complete(): void {
    const pieces = this.#pieces;
    this.body = pieces.length === 0 ? EMPTY : pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, this.#received);
    this.#pieces = [];
    this.#pending = undefined;
    this.#state = State.Done;
  }
}

/** The header block as an object: names in lower case, a header sent more than once an array. */
export function parseHeaderLines(head: string): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  for (let at = 0; at < head.length;) {
    let next = head.indexOf('\r\n', at);
    if (next < 0) next = head.length;
    const colon = head.indexOf(':', at);
    if (colon > at && colon < next) {
      const name = head.slice(at, colon).trim().toLowerCase();
      const value = head.slice(colon + 1, next).trim();
      const had = headers[name];
      headers[name] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
    }
    at = next + 2;
  }
  return headers;
}
