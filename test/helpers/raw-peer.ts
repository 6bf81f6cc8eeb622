/**
 * A raw protocol peer for tests that must send what a real worker node never would: it does the
 * real handshake (shared/auth.ts) with the pool's token over a plain `ws` socket, then sends any
 * bytes or messages the test chooses and records what comes back.
 */
import WebSocket from 'ws';
import { answerHello, checkAuthOk, deriveKey } from '../../shared/auth.ts';
import { decodeFrame, encodeFrame } from '../../shared/frames.ts';

export interface RawPeer {
  ws: WebSocket;
  /** Decoded messages received after the handshake, in order. */
  received: Record<string, unknown>[];
  /** Sends a message encoded as the protocol does (attachments and all). */
  send(msg: { op: string } & Record<string, unknown>): void;
  /** Sends bytes as one binary WebSocket message. */
  sendRaw(bytes: Uint8Array): void;
  /** Resolves with the first message with this op received at index `from` or later (default: any so far). */
  next(op: string, timeoutMs?: number, from?: number): Promise<Record<string, unknown>>;
  /** Resolves with the first message received (at any time) that `match` accepts. */
  waitMessage(match: (m: Record<string, unknown>) => boolean, timeoutMs?: number, from?: number, what?: string): Promise<Record<string, unknown>>;
  /** Resolves when the connection has closed, with the code and reason the peer got. */
  closed: Promise<{ code: number; reason: string }>;
  isClosed(): boolean;
  close(): void;
}

/** Connects to `url` and authenticates with `token`; rejects if the coordinator refuses. */
export async function connectRawPeer(url: string, token: string, { timeoutMs = 10_000, autoPong = false }: { timeoutMs?: number; autoPong?: boolean } = {}): Promise<RawPeer> {
  const ws = new WebSocket(url, { maxPayload: 256 * 1024 * 1024 });
  const key = deriveKey(token);
  const received: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  let closed = false;
  let state: 'hello' | 'auth-ok' | 'open' = 'hello';
  let helloNonce: Uint8Array | undefined;
  let nonce: Uint8Array | undefined;
  let authenticated!: () => void;
  let failed!: (err: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    authenticated = resolve;
    failed = reject;
  });
  ws.on('error', () => {});
  ws.on('message', (data: Buffer) => {
    if (state === 'hello') {
      const r = answerHello(data, key);
      if (!r.ok) return failed(new Error(r.message));
      helloNonce = r.helloNonce;
      nonce = r.nonce;
      state = 'auth-ok';
      return ws.send(r.auth);
    }
    if (state === 'auth-ok') {
      const ok = checkAuthOk(data, key, helloNonce!, nonce!);
      if (ok !== true) return failed(new Error(ok.message));
      state = 'open';
      return authenticated();
    }
    let msg: Record<string, unknown>;
    try {
      msg = decodeFrame(data) as Record<string, unknown>;
    } catch {
      msg = { op: '(undecodable)' };
    }
    received.push(msg);
    if (autoPong && msg.op === 'ping' && ws.readyState === WebSocket.OPEN) ws.send(encodeFrame({ op: 'pong', t: msg.t } as { op: string })[0]!);
    for (const w of waiters) w();
  });
  const closedP = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => {
      closed = true;
      failed(new Error(`closed during the handshake (${code} ${reason.toString()})`));
      for (const w of waiters) w();
      resolve({ code, reason: reason.toString() });
    })
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([ready, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('handshake timed out')), timeoutMs)))]);
  } catch (err) {
    ws.terminate();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  const sendRaw = (bytes: Uint8Array) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(bytes);
  };
  const peer: RawPeer = {
    ws,
    received,
    send(msg) {
      const parts = encodeFrame(msg);
      if (ws.readyState !== WebSocket.OPEN) return;
      for (let i = 0; i < parts.length; i++) ws.send(parts[i]!, { fin: i === parts.length - 1 });
    },
    sendRaw,
    next(op, ms = 10_000, from = 0) {
      return peer.waitMessage((m) => m.op === op, ms, from, `a "${op}" message`);
    },
    waitMessage(match, ms = 10_000, from = 0, what = 'the message') {
      let seen = from;
      return new Promise((resolve, reject) => {
        const check = () => {
          for (; seen < received.length; seen++) {
            if (match(received[seen]!)) {
              cleanup();
              return resolve(received[seen]!);
            }
          }
          if (closed) {
            cleanup();
            reject(new Error(`closed before ${what} came`));
          }
        };
        const t = setTimeout(() => {
          cleanup();
          reject(new Error(`no ${what} within ${ms} ms`));
        }, ms);
        const cleanup = () => {
          clearTimeout(t);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    closed: closedP,
    isClosed: () => closed,
    close: () => ws.close(1000),
  };
  return peer;
}

/** Registers `peer` as a worker node with `slots` slots; resolves with its welcome. */
export async function registerAsNode(peer: RawPeer, slots = 1, extra: Record<string, unknown> = {}): Promise<{ workerId: string; laneTicket: string } & Record<string, unknown>> {
  peer.send({ op: 'register', name: 'raw-peer', slots, runtime: 'node', runtimeVersion: process.versions.node, hostname: 'raw-peer-host', pid: 1, ...extra });
  return (await peer.next('welcome')) as { workerId: string; laneTicket: string } & Record<string, unknown>;
}
