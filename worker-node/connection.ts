/**
 * One client connection to a coordinator, as both a worker node's control connection and each
 * of its task threads' lanes open it: the WebSocket, the raw handshake (shared/auth.ts), then
 * msgpack messages checked against the protocol before anyone sees them.
 */
import { randomFillSync } from 'node:crypto';
import WebSocket from 'ws';
import { answerHello, checkAuthOk, WRONG_TOKEN_ADVICE } from '../shared/auth.ts';
import { closeReason, decodeFrame, encodeFrame, joinFragments } from '../shared/frames.ts';
import { boundText, describePeerValue } from '../shared/describe.ts';
import { CLOSE, CLOSE_ERROR_CODES, invalidToWorker, type ToControlMsg, type ToLaneMsg, type W2C } from '../shared/protocol.ts';

/**
 * Frames from this size up are sent with an all-zero mask: `ws` then neither copies nor XORs
 * them to mask, and the coordinator skips unmasking (1 MiB round trips ~130 → ~270 MiB/s).
 * Masking protects proxies from a browser running hostile script that chooses the bytes a
 * client sends; a worker node is not a browser, and over wss:// masking adds nothing to TLS.
 * Smaller frames keep a random mask: `ws` then merges header and payload into one buffer and one
 * write, where an unmasked frame is corked and written as two (writev), which costs more for a
 * few dozen bytes than masking them does.
 */
const ZERO_MASK_MIN_BYTES = 16 * 1024;
/** Set by `send` just before each frame; read by `generateMask`, which `ws` calls as it frames. */
let zeroMaskNext = false;
const maskPool = new Uint8Array(4096);
let maskAt = maskPool.length;

function generateMask(mask: Buffer): void {
  if (zeroMaskNext) return void mask.fill(0);
  if (maskAt === maskPool.length) {
    randomFillSync(maskPool);
    maskAt = 0;
  }
  mask.set(maskPool.subarray(maskAt, maskAt += 4));
}

/** Why a worker node stopped for good. */
export class WorkerNodeFatalError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'WorkerNodeFatalError';
    this.code = code;
  }
}

/**
 * Why the coordinator refused this node, from its close frame. A close reason holds at most
 * 123 bytes, so the coordinator's explanation may arrive cut short: a wrong token, the common
 * case, is explained here in full instead. The code, which the reason repeats, is left out (it
 * is shown beside the message).
 */
function refusal(code: number, reason: string): string {
  const text = reason.replace(/^WSF_[A-Z_]+: /, '');
  if (code === CLOSE.AUTH_FAILED && /wrong token/.test(text)) return `the coordinator refused this worker node's token: ${WRONG_TOKEN_ADVICE}`;
  return `the coordinator refused this worker node: ${text || CLOSE_ERROR_CODES[code]}`;
}

export interface ConnectionOptions {
  url: string;
  key: Uint8Array;
  ca?: string | Uint8Array;
  maxMessageBytes: number;
  /** A task thread's lane (messages are checked as ToLaneMsg), or the node's control connection. */
  lane: boolean;
}

export interface ConnectionEvents<M> {
  /** The socket is open; the handshake starts. */
  open?(): void;
  /** Both sides proved they hold the token: send `register` or `attach`. */
  authenticated(): void;
  message(msg: M): void;
  /**
   * The connection ended. `fatal` is set when retrying cannot help (wrong token, no protocol
   * version in common).
   */
  closed(code: number, reason: string, fatal: WorkerNodeFatalError | undefined): void;
  log(message: string): void;
}

/** One connection: `M` is what the coordinator sends its kind (ToControlMsg or ToLaneMsg). */
export class Connection<M extends ToControlMsg | ToLaneMsg> {
  readonly #ws: WebSocket;
  readonly #events: ConnectionEvents<M>;
  #phase: 'connecting' | 'handshake' | 'open' | 'closed' = 'connecting';
  /** When the coordinator was last heard from (any frame). */
  lastSeen = Date.now();

  constructor(options: ConnectionOptions, events: ConnectionEvents<M>) {
    this.#events = events;
    const { key } = options;
    const ws = new WebSocket(options.url, {
      maxPayload: options.maxMessageBytes,
      handshakeTimeout: 10_000,
      ca: options.ca as string | Buffer | undefined,
      generateMask,
    });
    this.#ws = ws;
    // Each message as the payloads of its frames: an attachment sent as a fragment of its own is
    // handed over as that fragment, not joined with the envelope into a fresh buffer.
    ws.binaryType = 'fragments';
    let helloNonce: Uint8Array | undefined;
    let nonce: Uint8Array | undefined;
    let fatal: WorkerNodeFatalError | undefined;
    let lastError = '';
    ws.on('open', () => {
      this.#phase = 'handshake';
      this.lastSeen = Date.now();
      events.open?.();
    });
    ws.on('message', (fragments: Buffer[], isBinary: boolean) => {
      try {
        onMessage(fragments, isBinary);
      } catch (err) {
        // A defect of ours, met while handling a message: it must not escape into the socket's
        // event, which would end the whole node (or, on a lane, its thread). Only this
        // connection closes.
        this.abort(CLOSE.INTERNAL, `WSF_INTERNAL: failed to handle a message from the coordinator: ${err instanceof Error ? boundText(err.message, 200) : describePeerValue(err)}`);
      }
    });
    const onMessage = (fragments: Buffer[], isBinary: boolean): void => {
      if (this.#phase === 'closed') return;
      this.lastSeen = Date.now();
      if (!isBinary) return this.abort(CLOSE.PROTOCOL, 'text frames are not part of the protocol');
      if (this.#phase === 'handshake') {
        const data = joinFragments(fragments);
        if (!helloNonce) {
          const r = answerHello(data, key);
          if (!r.ok) {
            if (r.code === 'WSF_VERSION_MISMATCH') fatal = new WorkerNodeFatalError(r.code, r.message);
            return this.abort(r.code === 'WSF_VERSION_MISMATCH' ? CLOSE.VERSION_MISMATCH : CLOSE.PROTOCOL, r.message);
          }
          helloNonce = r.helloNonce;
          nonce = r.nonce;
          ws.send(r.auth);
          return;
        }
        const ok = checkAuthOk(data, key, helloNonce, nonce!);
        if (ok !== true) {
          fatal = new WorkerNodeFatalError(ok.code, ok.message);
          return this.abort(ok.code === 'WSF_AUTH_FAILED' ? CLOSE.AUTH_FAILED : CLOSE.PROTOCOL, ok.message);
        }
        this.#phase = 'open';
        events.authenticated();
        return;
      }
      let msg: unknown;
      try {
        msg = decodeFrame(fragments);
      } catch (err) {
        return this.abort(CLOSE.PROTOCOL, `malformed msgpack frame from the coordinator: ${err instanceof Error ? boundText(err.message, 200) : describePeerValue(err)}`);
      }
      // A message of the protocol that is not for this kind of connection is refused here.
      const invalid = invalidToWorker(options.lane, msg);
      if (invalid) return this.abort(CLOSE.PROTOCOL, invalid);
      events.message(msg as M);
    };
    ws.on('error', (err: Error & { code?: string }) => {
      // Followed by 'close', which reports it.
      lastError = err.code ? `${err.code}: ${err.message}` : err.message;
    });
    ws.on('close', (code: number, reasonBuf: Buffer) => {
      this.#phase = 'closed';
      const reason = reasonBuf?.toString() || lastError;
      if (code === CLOSE.AUTH_FAILED || code === CLOSE.VERSION_MISMATCH) {
        fatal ??= new WorkerNodeFatalError(CLOSE_ERROR_CODES[code]!, refusal(code, reason));
      }
      events.closed(code, reason, fatal);
    });
  }

  /** True once authenticated and until closed. */
  get isOpen(): boolean {
    return this.#phase === 'open';
  }

  /**
   * Sends a message. `written`, if given, is called once its bytes have all been handed to the
   * operating system, or the connection failed (attachments are sent from their own memory,
   * which must not change until then).
   */
  send(msg: W2C, written?: () => void): void {
    if (this.#phase !== 'open' || this.#ws.readyState !== WebSocket.OPEN) return written?.();
    const parts = encodeFrame(msg);
    if (parts.length === 1) {
      zeroMaskNext = parts[0]!.byteLength >= ZERO_MASK_MIN_BYTES;
      return this.#ws.send(parts[0]!, written && (() => written()));
    }
    // One message in fragments: the envelope, then each attachment (see shared/frames.ts).
    for (let i = 0; i < parts.length; i++) {
      const last = i === parts.length - 1;
      zeroMaskNext = parts[i]!.byteLength >= ZERO_MASK_MIN_BYTES;
      this.#ws.send(parts[i]!, { fin: last }, last && written ? () => written() : undefined);
    }
  }

  /** Closes with a code and reason; after authentication the coordinator is also told why. */
  abort(code: number, reason: string): void {
    this.#events.log(`closing the connection: ${reason}`);
    if (this.#phase === 'open') this.send({ op: 'error', code: CLOSE_ERROR_CODES[code] ?? 'WSF_PROTOCOL', message: reason });
    // Nothing more from this connection is read while it closes.
    this.#phase = 'closed';
    this.close(code, reason);
  }

  close(code: number, reason: string): void {
    if (this.#ws.readyState === WebSocket.CLOSED || this.#ws.readyState === WebSocket.CLOSING) return;
    this.#ws.close(code, closeReason(reason));
  }

  /** Cuts the socket without a close handshake (the coordinator went silent). */
  terminate(): void {
    this.#ws.terminate();
  }
}
