/**
 * The coordinator's network side: a WebSocket server that authenticates worker nodes, speaks
 * the protocol of shared/protocol.ts, batches outgoing tasks, and watches heartbeats. It holds
 * no scheduling state: it reports events to the pool and sends what the pool tells it to.
 */
import { WebSocketServer, type WebSocket } from 'ws';
import type { IncomingMessage } from 'node:http';
import { nanoid } from 'nanoid';
import { HandshakeLimiter, type HandshakeLimits } from './handshake-limiter.ts';
import { HttpRoutes } from './http-routes.ts';
import { advertisedHosts, formatHost, isWildcard } from './addresses.ts';
import { checkAuth, makeHello } from '../shared/auth.ts';
import { decodeFrame, encodeFrame, joinFragments } from '../shared/frames.ts';
import { attachedBytes } from '../shared/codec.ts';
import { CLOSE, CLOSE_ERROR_CODES, DEFAULTS, HANDSHAKE, WS_PATH, batchBySize, invalidW2C, type AttachMsg, type C2W, type LaneDiedMsg, type RegisterMsg, type TaskOutcome, type TaskSpec, type W2C } from '../shared/protocol.ts';

export interface ServerEvents {
  /** A worker node registered (the pool answers with `welcome`). */
  register(peer: WorkerPeer, msg: RegisterMsg): void;
  /**
   * A task thread's lane asks to join its node. Returns why it may not (the lane is then
   * refused), or undefined when it is attached.
   */
  attach(peer: WorkerPeer, msg: AttachMsg): string | undefined;
  /** A node says the thread of one of its lanes is gone (see LaneDiedMsg). */
  laneDied(peer: WorkerPeer, msg: LaneDiedMsg): void;
  fetchModule(peer: WorkerPeer, id: number): void;
  ready(peer: WorkerPeer): void;
  results(peer: WorkerPeer, items: TaskOutcome[]): void;
  drain(peer: WorkerPeer): void;
  /** A registered peer's connection ended (closed, broken, or timed out). */
  lost(peer: WorkerPeer, reason: string): void;
  /** Something worth telling the user (refused connections, protocol errors). */
  log(level: 'info' | 'warn', message: string): void;
}

export interface ServerOptions {
  host: string;
  port: number;
  key: Uint8Array;
  maxMessageBytes: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  /** TLS: when set, the server speaks wss://. */
  tls?: { cert: string | Uint8Array; key: string | Uint8Array };
  /** How many failed handshakes an address may have before it is refused for a while. */
  handshakeLimits?: HandshakeLimits;
}

type Phase = 'handshake' | 'registering' | 'ready' | 'closed';

type PeerHandlers<M extends { op: string }> = { [K in M['op']]: (peer: WorkerPeer, msg: Extract<M, { op: K }>) => void };


/**
 * One connection from a worker node, as the coordinator sees it: a node's control connection
 * (`register`) or one of its task threads' lanes (`attach`).
 */
export class WorkerPeer {
  /**
   * Random rather than a counter: it appears in logs and errors of a coordinator that may be
   * restarted while worker nodes reconnect, and must not repeat across those restarts.
   */
  readonly id = `w-${nanoid(10)}`;
  name = '?';
  slots = 0;
  runtime = '?';
  hostname = '?';
  pid = 0;
  /** The protocol version chosen at the handshake. */
  version = 0;
  /** The largest frame the node accepts (it says so when it registers). */
  maxMessageBytes = Number.MAX_SAFE_INTEGER;
  remoteAddress: string;
  /** The remote IP address alone, which the handshake limiter counts by. */
  ip = '';
  phase: Phase = 'handshake';
  /** Known once it registers or attaches. */
  kind: 'control' | 'lane' | undefined;
  lastSeen = Date.now();
  readonly #ws: WebSocket;
  #pendingCancel: number[] = [];
  #flushScheduled = false;

  constructor(ws: WebSocket, remoteAddress: string) {
    this.#ws = ws;
    this.remoteAddress = remoteAddress;
  }

  /** "name (address)", for messages and remote stacks. */
  get label(): string {
    return `${this.name} (${this.hostname}, ${this.remoteAddress})`;
  }

  send(msg: C2W): void {
    const parts = encodeFrame(msg);
    if (parts.length === 1) return this.sendRaw(parts[0]!);
    if (this.phase === 'closed' || this.#ws.readyState !== 1 /* OPEN */) return;
    // One message in fragments: the envelope, then each attachment (see shared/frames.ts).
    for (let i = 0; i < parts.length; i++) this.#ws.send(parts[i]!, { fin: i === parts.length - 1 });
  }

  /** Sends bytes as they are (handshake frames, or an already encoded message). */
  sendRaw(bytes: Uint8Array): void {
    if (this.phase === 'closed' || this.#ws.readyState !== 1 /* OPEN */) return;
    this.#ws.send(bytes);
  }

  /**
   * Sends tasks now. The pool calls this once per assignment pass with everything the pass
   * gave this node, so batching already happened; waiting a tick here would only add latency.
   */
  run(tasks: TaskSpec[]): void {
    // Within the node's frame limit too, when that is below batchBytes.
    const limit = Math.min(DEFAULTS.batchBytes, this.maxMessageBytes - 4096);
    for (const batch of batchBySize(tasks, (t) => t.a.byteLength + attachedBytes(t.x) + 32, limit)) this.send({ op: 'run', tasks: batch });
  }

  cancel(id: number): void {
    this.#pendingCancel.push(id);
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      if (this.#pendingCancel.length > 0) {
        const ids = this.#pendingCancel;
        this.#pendingCancel = [];
        this.send({ op: 'cancel', ids });
      }
    });
  }

  close(code: number, reason: string): void {
    if (this.phase === 'closed') return;
    // Close reasons are limited to 123 bytes by RFC 6455.
    this.#ws.close(code, truncate(reason, 120));
  }

  terminate(): void {
    this.#ws.terminate();
  }

  /** The nonce of the HELLO sent to this peer (for checking its AUTH). */
  helloNonce: Uint8Array | undefined;
}

export class CoordinatorServer {
  readonly #options: ServerOptions;
  readonly #events: ServerEvents;
  #wss: WebSocketServer | undefined;
  #httpServer: import('node:http').Server | undefined;
  readonly #routes = new HttpRoutes();
  /** The port it listens on, and the hosts other machines reach it at (set by start()). */
  port = 0;
  hosts: string[] = [];
  /** The URL worker nodes on this machine connect to. */
  localUrl = '';
  get tls(): boolean {
    return this.#options.tls !== undefined;
  }
  readonly peers = new Set<WorkerPeer>();
  readonly maxMessageBytes: number;
  readonly heartbeatIntervalMs: number;
  readonly heartbeatTimeoutMs: number;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  url = '';

  constructor(options: ServerOptions, events: ServerEvents) {
    this.#options = options;
    this.#events = events;
    this.maxMessageBytes = options.maxMessageBytes;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs;
    this.heartbeatTimeoutMs = options.heartbeatTimeoutMs;
    this.#limiter = new HandshakeLimiter(options.handshakeLimits);
  }

  async start(): Promise<string> {
    const { host, port, maxMessageBytes, tls } = this.#options;
    // One HTTP(S) server on the pool's port: WebSocket upgrades on WS_PATH go to `ws`, plain
    // requests to the routes (the single-file worker download).
    const server = tls ? (await import('node:https')).createServer({ cert: Buffer.from(tls.cert), key: Buffer.from(tls.key) }) : (await import('node:http')).createServer();
    this.#httpServer = server;
    server.on('request', (req, res) => this.#routes.handle(req, res));
    const wss = new WebSocketServer({ server, path: WS_PATH, maxPayload: maxMessageBytes, verifyClient: this.#verifyClient });
    // `ws` re-emits the HTTP server's errors (EADDRINUSE while listening) on itself: without a
    // listener that would be an uncaught exception instead of a rejected start().
    wss.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.#events.log('warn', `server error: ${err.message}`));
    const addr = server.address() as import('node:net').AddressInfo;
    this.port = addr.port;
    this.hosts = advertisedHosts(host);
    this.url = `${tls ? 'wss' : 'ws'}://${formatHost(this.hosts[0]!)}:${addr.port}${WS_PATH}`;
    // Nodes on this machine dial loopback, whatever the LAN addresses are (a certificate names
    // the host it was made for, so over TLS they dial that).
    this.localUrl = isWildcard(host) && !tls ? `ws://127.0.0.1:${addr.port}${WS_PATH}` : this.url;
    this.#wss = wss;
    wss.on('connection', (ws, req) => this.#accept(ws, req));
    const { heartbeatIntervalMs, heartbeatTimeoutMs } = this.#options;
    this.#heartbeat = setInterval(() => {
      const now = Date.now();
      for (const peer of this.peers) {
        // Lanes are not pinged: their thread may run a long synchronous task and cannot
        // answer. The node's control connection answers for the whole node.
        if (peer.phase === 'handshake' || (peer.kind === 'lane' && peer.phase === 'ready')) continue;
        if (now - peer.lastSeen > heartbeatTimeoutMs) {
          // No close frame will come from a peer that vanished (power loss, cable, SIGSTOP):
          // terminate the socket ourselves and treat its tasks as lost.
          this.#lose(peer, `no message for ${now - peer.lastSeen} ms (heartbeat timeout ${heartbeatTimeoutMs} ms)`);
          peer.terminate();
        } else {
          peer.send({ op: 'ping', t: now });
        }
      }
    }, heartbeatIntervalMs);
    this.#heartbeat.unref?.();
    return this.url;
  }

  readonly #limiter: HandshakeLimiter;

  /** Refuses the HTTP upgrade, before any WebSocket exists, from an address that is blocked. */
  readonly #verifyClient = (info: { req: IncomingMessage }, done: (ok: boolean, code?: number, message?: string) => void): void => {
    const ip = info.req.socket.remoteAddress ?? '?';
    if (!this.#limiter.isBlocked(ip)) return done(true);
    done(false, 429, 'too many failed handshakes from this address: try again later');
  };

  #accept(ws: WebSocket, req: IncomingMessage): void {
    const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
    const peer = new WorkerPeer(ws, remote);
    // Each message as the payloads of its frames: an attachment sent as a fragment of its own is
    // handed over as that fragment, not joined with the envelope into a fresh buffer.
    ws.binaryType = 'fragments';
    peer.ip = req.socket.remoteAddress ?? '?';
    // Lanes are never pinged (a thread busy with a long task cannot answer): TCP keepalive keeps
    // an idle lane's path through NATs and firewalls open, and finds a peer that vanished.
    req.socket.setKeepAlive(true, 30_000);
    this.peers.add(peer);
    const hello = makeHello();
    peer.helloNonce = hello.nonce;
    ws.send(hello.frame);
    const authTimer = setTimeout(() => {
      if (peer.phase === 'handshake') this.#refuse(peer, CLOSE.AUTH_FAILED, `no authentication within ${HANDSHAKE.TIMEOUT_MS} ms`);
    }, HANDSHAKE.TIMEOUT_MS);
    authTimer.unref?.();

    // Counted on the raw socket, next to ws's own reader: ws would buffer a whole frame (up to
    // maxMessageBytes) before we saw any of it.
    const socket = req.socket;
    let preAuthBytes = 0;
    const countPreAuth = (chunk: Buffer) => {
      // Counted until the peer is authenticated; a peer refused during the handshake is still
      // a stranger while its connection closes, and stays under the same budget.
      if (peer.phase === 'registering' || peer.phase === 'ready') return socket.off('data', countPreAuth);
      preAuthBytes += chunk.length;
      if (preAuthBytes <= HANDSHAKE.MAX_PREAUTH_BYTES) return;
      socket.off('data', countPreAuth);
      socket.pause(); // read no more of it
      this.#refuse(peer, CLOSE.TOO_LARGE, `more than ${HANDSHAKE.MAX_PREAUTH_BYTES} bytes before authentication`);
      // The close frame is on its way; the peer's answer cannot be read from a paused socket.
      setTimeout(() => ws.terminate(), 500).unref?.();
    };
    socket.on('data', countPreAuth);

    // binaryType 'fragments' (set above): a message is the list of its frames' payloads.
    ws.on('message', (fragments: Buffer[], isBinary: boolean) => {
      // A refused connection stays open until the close handshake ends; nothing it sends in
      // that time is read (before authentication, nothing may ever be decoded).
      if (peer.phase === 'closed') return;
      peer.lastSeen = Date.now();
      if (!isBinary) return this.#refuse(peer, CLOSE.PROTOCOL, 'text frames are not part of the protocol');
      if (peer.phase === 'handshake') {
        clearTimeout(authTimer);
        return this.#handshake(peer, joinFragments(fragments));
      }
      let msg: unknown;
      try {
        msg = decodeFrame(fragments);
      } catch (err) {
        return this.#refuse(peer, CLOSE.PROTOCOL, `malformed msgpack frame: ${(err as Error).message}`);
      }
      const invalid = invalidW2C(msg);
      if (invalid) return this.#refuse(peer, CLOSE.PROTOCOL, invalid);
      this.#dispatch(peer, msg as W2C);
    });
    ws.on('error', (err: Error & { code?: string }) => {
      // ws emits this for oversized frames (WS_ERR_UNSUPPORTED_MESSAGE_LENGTH) and bad framing,
      // then closes the socket itself; the close handler does the rest.
      this.#events.log('warn', `connection from ${peer.phase === 'handshake' ? remote : peer.label} failed: ${err.code ?? ''} ${err.message}`);
    });
    ws.on('close', (code: number, reason: Buffer) => {
      clearTimeout(authTimer);
      this.peers.delete(peer);
      this.#lose(peer, `connection closed (${code}${reason.length ? `: ${reason.toString()}` : ''})`);
    });
  }

  #handshake(peer: WorkerPeer, frame: Uint8Array): void {
    if (frame.length > HANDSHAKE.MAX_FRAME_BYTES) return this.#refuse(peer, CLOSE.TOO_LARGE, `a ${frame.length}-byte frame during the handshake (at most ${HANDSHAKE.MAX_FRAME_BYTES})`);
    const check = checkAuth(frame, this.#options.key, peer.helloNonce!);
    if (!check.ok) {
      const code = check.code === 'WSF_AUTH_FAILED' ? CLOSE.AUTH_FAILED : check.code === 'WSF_VERSION_MISMATCH' ? CLOSE.VERSION_MISMATCH : CLOSE.PROTOCOL;
      return this.#refuse(peer, code, `${check.code}: ${check.message}`);
    }
    peer.phase = 'registering';
    peer.version = check.version;
    // AUTH_OK is a raw frame too; msgpack starts after it.
    peer.sendRaw(check.reply);
  }

  #dispatch(peer: WorkerPeer, msg: W2C): void {
    (this.#handlers[msg.op] as (peer: WorkerPeer, m: W2C) => void)(peer, msg);
  }

  /** One handler per op, made once (not per message: every task's outcome comes through here). */
  readonly #handlers: PeerHandlers<W2C> = {
    register: (peer, m) => {
      if (peer.phase !== 'registering' || peer.kind !== undefined) return this.#refuse(peer, CLOSE.PROTOCOL, 'register sent twice');
      peer.kind = 'control';
      peer.name = m.name;
      peer.slots = m.slots;
      peer.runtime = `${m.runtime} ${m.runtimeVersion}`;
      peer.hostname = m.hostname;
      peer.pid = m.pid;
      if (m.maxMessageBytes !== undefined) peer.maxMessageBytes = m.maxMessageBytes;
      this.#events.register(peer, m);
    },
    attach: (peer, m) => {
      if (peer.phase !== 'registering' || peer.kind !== undefined) return this.#refuse(peer, CLOSE.PROTOCOL, 'attach on a connection that already registered or attached');
      const refused = this.#events.attach(peer, m);
      if (refused) return this.#refuse(peer, CLOSE.PROTOCOL, refused);
      peer.kind = 'lane';
      peer.phase = 'ready';
      peer.send({ op: 'attached' });
    },
    'lane-died': (peer, m) => this.#onControl(peer, m, () => this.#events.laneDied(peer, m)),
    'fetch-module': (peer, m) => this.#onControl(peer, m, () => this.#events.fetchModule(peer, m.id)),
    ready: (peer, m) =>
      this.#onControl(peer, m, () => {
        if (peer.phase !== 'registering') return this.#refuse(peer, CLOSE.PROTOCOL, 'ready sent twice');
        peer.phase = 'ready';
        this.#events.ready(peer);
      }),
    results: (peer, m) => {
      if (peer.kind !== 'lane') return this.#refuse(peer, CLOSE.PROTOCOL, 'results on a connection that is not an attached lane');
      this.#events.results(peer, m.items);
    },
    ping: (peer, m) => peer.send({ op: 'pong', t: m.t }),
    pong: () => {},
    drain: (peer, m) => this.#onControl(peer, m, () => this.#events.drain(peer)),
    error: (peer, m) => this.#events.log('warn', `worker node ${peer.label} reported ${m.code}: ${m.message}`),
  };

  /** Runs `then` if the message came on a node's control connection; refuses it otherwise. */
  #onControl(peer: WorkerPeer, msg: W2C, then: () => void): void {
    if (peer.kind === 'control') then();
    else this.#refuse(peer, CLOSE.PROTOCOL, `"${msg.op}" is for a control connection`);
  }

  /** Closes one connection with a code and a reason the peer can show; others are untouched. */
  #refuse(peer: WorkerPeer, code: number, reason: string): void {
    this.#events.log('warn', `closing connection from ${peer.phase === 'handshake' ? peer.remoteAddress : peer.label}: ${reason}`);
    if (peer.phase === 'handshake' && this.#limiter.fail(peer.ip)) {
      const { failures, windowMs, blockMs } = this.#limiter.limits;
      this.#events.log('warn', `${peer.ip}: ${failures} failed handshakes within ${windowMs / 1000} s: refusing its connections for ${blockMs / 1000} s`);
    }
    if (peer.phase === 'registering' || peer.phase === 'ready') {
      try {
        peer.send({ op: 'error', code: CLOSE_ERROR_CODES[code] ?? 'WSF_PROTOCOL', message: reason });
      } catch {
        // the socket may already be gone
      }
    }
    peer.close(code, reason);
    this.#lose(peer, reason);
  }

  #lose(peer: WorkerPeer, reason: string): void {
    const was = peer.phase;
    if (was === 'closed') return;
    peer.phase = 'closed';
    if (was === 'registering' || was === 'ready') this.#events.lost(peer, reason);
  }

  async close(): Promise<void> {
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    for (const peer of this.peers) {
      // Said before the close, so nodes started with --exit-on-shutdown exit instead of
      // reconnecting; others keep retrying until a coordinator listens here again.
      if (peer.kind === 'control') peer.send({ op: 'shutdown', exit: false });
      peer.close(CLOSE.NORMAL, 'coordinator shut down');
    }
    const wss = this.#wss;
    if (!wss) return;
    // Give peers a moment to see the close frame, then cut whatever is left.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        for (const c of wss.clients) c.terminate();
      }, 1000);
      timer.unref?.();
      wss.close(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    if (this.#httpServer) await new Promise<void>((r) => this.#httpServer!.close(() => r()));
  }
}


function truncate(s: string, max: number): string {
  const b = Buffer.from(s);
  return b.length <= max ? s : `${b.subarray(0, max - 3).toString()}...`;
}
