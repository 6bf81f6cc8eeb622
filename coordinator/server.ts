/**
 * The coordinator's network side: a WebSocket server that authenticates worker nodes, speaks
 * the protocol of shared/protocol.ts, batches outgoing tasks, and watches heartbeats. It holds
 * no scheduling state: it reports events to the pool and sends what the pool tells it to.
 */
import { type WebSocket, WebSocketServer } from 'ws';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import { nanoid } from 'nanoid';
import { HandshakeLimiter, type HandshakeLimits } from './handshake-limiter.ts';
import { advertisedHosts, formatHost, isWildcard } from './addresses.ts';
import { checkAuth, makeHello } from '../shared/auth.ts';
import { closeReason, decodeFrame, encodeFrame, FRAME_OVERHEAD_BYTES, itemOverheadBytes, joinFragments } from '../shared/frames.ts';
import { boundText, describePeerValue } from '../shared/describe.ts';
import { attachedBytes } from '../shared/codec.ts';
import {
  type AttachMsg,
  batchBySize,
  type C2W,
  CLOSE,
  CLOSE_ERROR_CODES,
  type ConnectionKind,
  type ControlMsg,
  DEFAULTS,
  HANDSHAKE,
  invalidFor,
  type LaneDiedMsg,
  type LaneMsg,
  type OpeningMsg,
  type RegisterMsg,
  type TaskOutcome,
  type TaskSpec,
  WS_PATH,
} from '../shared/protocol.ts';

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
  /** A lane's outcomes. Returns why they break the protocol (the lane is then closed), or undefined. */
  results(peer: WorkerPeer, items: TaskOutcome[]): string | undefined;
  /** A lane's running task reported a value. */
  report(peer: WorkerPeer, id: number, value: Uint8Array): void;
  /** A lane gave back these tasks, which it had not started (the answer to a steal). */
  stolen(peer: WorkerPeer, ids: number[]): void;
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
  /** Plain HTTP requests on the same port (the pool's pages). */
  onRequest: (req: IncomingMessage, res: import('node:http').ServerResponse) => void;
}

type Phase = 'handshake' | 'registering' | 'ready' | 'closed';

type PeerHandlers<M extends { op: string }> = { [K in M['op']]: (peer: WorkerPeer, msg: Extract<M, { op: K }>) => void };

/**
 * One connection from a worker node, as the coordinator sees it: a node's control connection
 * (`register`) or one of its task threads' lanes (`attach`).
 */
/** A worker node as it introduced itself; shared by its control connection and its lanes. */
export interface NodeIdentity {
  readonly name: string;
  readonly hostname: string;
  readonly pid: number;
  /** `node 20.20.2`, `deno 2.5.6`. */
  readonly runtime: string;
  /** Where its control connection comes from. */
  readonly remoteAddress: string;
  /** The largest frame it accepts. */
  readonly maxMessageBytes: number;
}

export class WorkerPeer {
  /**
   * Random rather than a counter: it appears in logs and errors of a coordinator that may be
   * restarted while worker nodes reconnect, and must not repeat across those restarts.
   */
  readonly id = `w-${nanoid(10)}`;
  /**
   * Who is at the other end: the node, as it said in `register`. A lane's peer shares its
   * node's object (set when it attaches), so a lane speaks for its node in messages and
   * remote stacks and has its frame limit, without copies to keep in step.
   */
  node: NodeIdentity;
  /** Slots behind this connection: the node's for a control connection, 1 for a lane. */
  slots = 0;
  /** The protocol version chosen at the handshake. */
  version = 0;
  /** The remote IP address alone, which the handshake limiter counts by. */
  ip = '';
  phase: Phase = 'handshake';
  /** What it is: new until it registers (a node's control connection) or attaches (a lane). */
  kind: ConnectionKind = 'opening';
  lastSeen = Date.now();
  /** Round trip of the last heartbeat, ms. */
  rttMs: number | undefined;
  readonly #ws: WebSocket;
  /** The TCP (or TLS) socket under the WebSocket: see CoordinatorServer.hold. */
  socket: import('node:net').Socket | undefined;
  #pendingCancel: number[] = [];
  #flushScheduled = false;

  constructor(ws: WebSocket, remoteAddress: string) {
    this.#ws = ws;
    this.node = { name: '?', hostname: '?', pid: 0, runtime: '?', remoteAddress, maxMessageBytes: Number.MAX_SAFE_INTEGER };
  }

  get name(): string {
    return this.node.name;
  }
  get hostname(): string {
    return this.node.hostname;
  }
  get pid(): number {
    return this.node.pid;
  }
  get runtime(): string {
    return this.node.runtime;
  }
  get remoteAddress(): string {
    return this.node.remoteAddress;
  }
  /** The largest frame the node accepts (it says so when it registers). */
  get maxMessageBytes(): number {
    return this.node.maxMessageBytes;
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
  run(tasks: TaskSpec[], poll = 0): void {
    // Within the node's frame limit too, when that is below batchBytes.
    const limit = Math.min(DEFAULTS.batchBytes, this.maxMessageBytes - FRAME_OVERHEAD_BYTES);
    const size = (t: TaskSpec) => t.a.byteLength + attachedBytes(t.x) + itemOverheadBytes(t.x?.length ?? 0, t.f);
    for (const batch of batchBySize(tasks, size, limit)) this.send(poll > 0 && batch.length === tasks.length ? { op: 'run', tasks: batch, poll } : { op: 'run', tasks: batch });
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
    this.#ws.close(code, closeReason(reason));
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
  #httpServer: HttpServer | undefined;
  /** The port it listens on, and the hosts other machines reach it at (set by start()). */
  port = 0;
  hosts: string[] = [];
  /** The URL worker nodes on this machine connect to. */
  localUrl = '';
  get tls(): boolean {
    return this.#options.tls !== undefined;
  }
  /** Whether the listening socket and the connections keep the process alive (see hold). */
  #held = true;
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
    // One HTTP(S) server of our own on the pool's port: WebSocket upgrades on WS_PATH go to `ws`,
    // plain requests to the pool's routes (coordinator/http-routes.ts). Its timeouts make a peer
    // that never completes the upgrade let go of its socket.
    const server: HttpServer = tls
      ? (await import('node:https')).createServer({ cert: Buffer.from(tls.cert), key: Buffer.from(tls.key), handshakeTimeout: HANDSHAKE.TIMEOUT_MS })
      : (await import('node:http')).createServer();
    server.headersTimeout = HANDSHAKE.TIMEOUT_MS;
    server.requestTimeout = HANDSHAKE.TIMEOUT_MS;
    // Node checks those two only every 30 s (connectionsCheckingInterval), and not at all for a
    // socket that sent no byte: each connection also gets a timer of its own until it upgrades.
    server.on(tls ? 'secureConnection' : 'connection', (socket: Socket) => this.#awaitUpgrade(socket));
    server.on('request', (req: IncomingMessage, res: import('node:http').ServerResponse) => this.#options.onRequest(req, res));
    this.#httpServer = server;
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
    if (!this.#held) server.unref();
    this.#wss = wss;
    wss.on('error', (err) => this.#events.log('warn', `server error: ${err.message}`));
    wss.on('connection', (ws, req) => this.#accept(ws, req));
    const { heartbeatIntervalMs } = this.#options;
    this.#heartbeat = setInterval(() => {
      const now = Date.now();
      for (const peer of this.peers) if (isWatched(peer)) peer.send({ op: 'ping', t: now });
    }, heartbeatIntervalMs);
    this.#heartbeat.unref?.();
    return this.url;
  }

  /** Sockets that have not completed the WebSocket upgrade yet, with the timer that ends them. */
  readonly #upgrading = new Map<Socket, ReturnType<typeof setTimeout>>();

  #awaitUpgrade(socket: Socket): void {
    const timer = setTimeout(() => {
      this.#upgrading.delete(socket);
      const ip = socket.remoteAddress ?? '?';
      this.#events.log('warn', `closing connection from ${ip}:${socket.remotePort ?? '?'}: no WebSocket upgrade within ${HANDSHAKE.TIMEOUT_MS} ms`);
      this.#countFailure(ip);
      socket.destroy();
    }, HANDSHAKE.TIMEOUT_MS);
    timer.unref?.();
    this.#upgrading.set(socket, timer);
    socket.once('close', () => {
      clearTimeout(timer);
      this.#upgrading.delete(socket);
    });
  }

  /**
   * Ends peers that have been silent for heartbeatTimeoutMs. Armed for the earliest deadline
   * (last message + timeout) rather than checked with the pings: a check every ping interval
   * found a silent node up to an interval late (10–12.5 s with the defaults).
   */
  #armWatchdog(): void {
    if (this.#watchdog !== undefined || this.#closing) return;
    let next = Infinity;
    for (const peer of this.peers) if (isWatched(peer)) next = Math.min(next, peer.lastSeen + this.heartbeatTimeoutMs);
    if (next === Infinity) return; // armed again when a peer authenticates
    this.#watchdog = setTimeout(() => {
      this.#watchdog = undefined;
      const now = Date.now();
      for (const peer of this.peers) {
        if (!isWatched(peer) || now - peer.lastSeen < this.heartbeatTimeoutMs) continue;
        // No close frame will come from a peer that vanished (power loss, cable, SIGSTOP):
        // terminate the socket ourselves and treat its tasks as lost.
        this.#lose(peer, `no message for ${now - peer.lastSeen} ms (heartbeat timeout ${this.heartbeatTimeoutMs} ms)`);
        peer.terminate();
      }
      this.#armWatchdog();
    }, Math.max(0, next - Date.now()));
    this.#watchdog.unref?.();
  }

  #watchdog: ReturnType<typeof setTimeout> | undefined;
  #closing = false;

  readonly #limiter: HandshakeLimiter;

  /** Failed handshakes per address; the pool's login page counts its failures here too. */
  get limiter(): HandshakeLimiter {
    return this.#limiter;
  }

  /** Refuses the HTTP upgrade, before any WebSocket exists, from an address that is blocked. */
  readonly #verifyClient = (info: { req: IncomingMessage }, done: (ok: boolean, code?: number, message?: string) => void): void => {
    const ip = info.req.socket.remoteAddress ?? '?';
    if (!this.#limiter.isBlocked(ip)) return done(true);
    done(false, 429, 'too many failed handshakes from this address: try again later');
  };

  #accept(ws: WebSocket, req: IncomingMessage): void {
    const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
    const peer = new WorkerPeer(ws, remote);
    peer.socket = req.socket;
    if (!this.#held) req.socket.unref();
    const upgradeTimer = this.#upgrading.get(req.socket);
    clearTimeout(upgradeTimer);
    this.#upgrading.delete(req.socket);
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
      if (peer.phase !== 'handshake') return;
      this.#refuse(peer, CLOSE.AUTH_FAILED, `no authentication within ${HANDSHAKE.TIMEOUT_MS} ms`);
      // A peer silent this long will not answer the close frame either: cut it soon, rather
      // than when ws gives up waiting for that answer (30 s).
      setTimeout(() => ws.terminate(), 500).unref?.();
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
      try {
        this.#onMessage(peer, fragments, isBinary, authTimer);
      } catch (err) {
        // A defect of ours, met while handling a message: it must not escape into the socket's
        // event (that would end the user's program). Only this connection closes.
        this.#refuse(peer, CLOSE.INTERNAL, `WSF_INTERNAL: the coordinator failed to handle a message: ${describeError(err)}`);
      }
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

  #onMessage(peer: WorkerPeer, fragments: Buffer[], isBinary: boolean, authTimer: ReturnType<typeof setTimeout>): void {
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
      return this.#refuse(peer, CLOSE.PROTOCOL, `malformed msgpack frame: ${describeError(err)}`);
    }
    // Checked against the messages of its kind of connection: one of another kind closes it.
    const invalid = invalidFor(peer.kind, msg);
    if (invalid) return this.#refuse(peer, CLOSE.PROTOCOL, invalid);
    this.#dispatch(peer, msg);
  }

  #handshake(peer: WorkerPeer, frame: Uint8Array): void {
    if (frame.length > HANDSHAKE.MAX_FRAME_BYTES) {
      return this.#refuse(peer, CLOSE.TOO_LARGE, `a ${frame.length}-byte frame during the handshake (at most ${HANDSHAKE.MAX_FRAME_BYTES})`);
    }
    const check = checkAuth(frame, this.#options.key, peer.helloNonce!);
    if (!check.ok) {
      const code = check.code === 'WSF_AUTH_FAILED' ? CLOSE.AUTH_FAILED : check.code === 'WSF_VERSION_MISMATCH' ? CLOSE.VERSION_MISMATCH : CLOSE.PROTOCOL;
      return this.#refuse(peer, code, `${check.code}: ${check.message}`);
    }
    peer.phase = 'registering';
    peer.lastSeen = Date.now();
    this.#armWatchdog();
    peer.version = check.version;
    // AUTH_OK is a raw frame too; msgpack starts after it.
    peer.sendRaw(check.reply);
  }

  /** `msg` was validated for the peer's kind of connection: its table has its op. */
  #dispatch(peer: WorkerPeer, msg: unknown): void {
    const m = msg as { op: string };
    if (peer.kind === 'lane') (this.#lane[m.op as LaneMsg['op']] as (peer: WorkerPeer, m: unknown) => void)(peer, m);
    else if (peer.kind === 'control') (this.#control[m.op as ControlMsg['op']] as (peer: WorkerPeer, m: unknown) => void)(peer, m);
    else (this.#opening[m.op as OpeningMsg['op']] as (peer: WorkerPeer, m: unknown) => void)(peer, m);
  }

  /**
   * One table per kind of connection, each complete for its union (shared/protocol.ts), made
   * once (not per message: every task's outcome comes through here).
   */
  readonly #opening: PeerHandlers<OpeningMsg> = {
    register: (peer, m) => {
      peer.kind = 'control';
      peer.slots = m.slots;
      peer.node = {
        name: m.name,
        hostname: m.hostname,
        pid: m.pid,
        runtime: `${m.runtime} ${m.runtimeVersion}`,
        remoteAddress: peer.remoteAddress,
        maxMessageBytes: m.maxMessageBytes ?? Number.MAX_SAFE_INTEGER,
      };
      this.#events.register(peer, m);
    },
    attach: (peer, m) => {
      const refused = this.#events.attach(peer, m);
      if (refused) return this.#refuse(peer, CLOSE.PROTOCOL, refused);
      peer.kind = 'lane';
      peer.phase = 'ready';
      peer.send({ op: 'attached' });
    },
    ping: (peer, m) => peer.send({ op: 'pong', t: m.t }),
    pong: (peer, m) => this.#pong(peer, m.t),
    error: (peer, m) => this.#peerError(peer, m.code, m.message),
  };

  readonly #control: PeerHandlers<ControlMsg> = {
    'lane-died': (peer, m) => this.#events.laneDied(peer, m),
    'fetch-module': (peer, m) => this.#events.fetchModule(peer, m.id),
    ready: (peer) => {
      if (peer.phase !== 'registering') return this.#refuse(peer, CLOSE.PROTOCOL, 'ready sent twice');
      peer.phase = 'ready';
      this.#events.ready(peer);
    },
    drain: (peer) => this.#events.drain(peer),
    ping: (peer, m) => peer.send({ op: 'pong', t: m.t }),
    pong: (peer, m) => this.#pong(peer, m.t),
    error: (peer, m) => this.#peerError(peer, m.code, m.message),
  };

  readonly #lane: PeerHandlers<LaneMsg> = {
    results: (peer, m) => {
      const broken = this.#events.results(peer, m.items);
      if (broken) this.#refuse(peer, CLOSE.PROTOCOL, broken);
    },
    report: (peer, m) => this.#events.report(peer, m.id, m.v),
    stolen: (peer, m) => this.#events.stolen(peer, m.ids),
    ping: (peer, m) => peer.send({ op: 'pong', t: m.t }),
    pong: () => {}, // to a ping sent while it was new: lanes are not watched
    error: (peer, m) => this.#peerError(peer, m.code, m.message),
  };

  #pong(peer: WorkerPeer, t: number): void {
    peer.rttMs = Date.now() - t;
  }

  #peerError(peer: WorkerPeer, code: string, message: string): void {
    this.#events.log('warn', `worker node ${peer.label} reported ${boundText(code, 64)}: ${boundText(message)}`);
  }

  /** Closes one connection with a code and a reason the peer can show; others are untouched. */
  #refuse(peer: WorkerPeer, code: number, reason: string): void {
    this.#events.log('warn', `closing connection from ${peer.phase === 'handshake' ? peer.remoteAddress : peer.label}: ${reason}`);
    if (peer.phase === 'handshake') this.#countFailure(peer.ip);
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

  /** Counts a failed handshake from `ip` (see HandshakeLimiter), saying so when it blocks it. */
  #countFailure(ip: string): void {
    if (!this.#limiter.fail(ip)) return;
    const { failures, windowMs, blockMs } = this.#limiter.limits;
    this.#events.log('warn', `${ip}: ${failures} failed handshakes within ${windowMs / 1000} s: refusing its connections for ${blockMs / 1000} s`);
  }

  #lose(peer: WorkerPeer, reason: string): void {
    const was = peer.phase;
    if (was === 'closed') return;
    peer.phase = 'closed';
    if (was === 'registering' || was === 'ready') this.#events.lost(peer, reason);
  }

  /**
   * Whether the server keeps the process alive: the pool lets go (false) while it has no work
   * outstanding, so a program that never calls shutdown() still exits once its work is done;
   * its worker nodes see their connections close and go too.
   */
  hold(held: boolean): void {
    if (this.#held === held) return;
    this.#held = held;
    const server = this.#httpServer;
    if (server) held ? server.ref() : server.unref();
    for (const peer of this.peers) if (peer.socket) held ? peer.socket.ref() : peer.socket.unref();
  }

  async close(): Promise<void> {
    // The close handshakes below must finish, work outstanding or not.
    this.hold(true);
    this.#closing = true;
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    if (this.#watchdog) clearTimeout(this.#watchdog);
    for (const [socket, timer] of this.#upgrading) {
      clearTimeout(timer);
      socket.destroy();
    }
    this.#upgrading.clear();
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
    if (this.#httpServer) {
      const closed = new Promise<void>((r) => this.#httpServer!.close(() => r()));
      // Open dashboard feeds and idle keep-alive requests would hold close() forever.
      (this.#httpServer as { closeAllConnections?: () => void }).closeAllConnections?.();
      await closed;
    }
  }
}

/** Peers whose silence is watched (and who are pinged): authenticated control connections, and
 * connections not yet registered or attached. Lanes are not: their thread may run a long
 * synchronous task and cannot answer; the node's control connection answers for the whole node. */
function isWatched(peer: WorkerPeer): boolean {
  return peer.phase === 'registering' || (peer.phase === 'ready' && peer.kind === 'control');
}

/** An error's message for a close reason or a log line, whatever was thrown. */
function describeError(err: unknown): string {
  return err instanceof Error ? boundText(err.message, 200) : describePeerValue(err);
}
