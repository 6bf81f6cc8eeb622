/**
 * The protocol fuzzer's two targets, each a real process side doing real work while an
 * authenticated peer sends it fuzz (test/helpers/fuzz-frames.ts):
 *
 * - a coordinator: a ProcessPoolExecutor with a real local worker node running tasks, fuzzed
 *   by raw peers that authenticate with its token — fresh connections, registered nodes, and
 *   lanes of a (draining) node, so every handler in every phase and connection kind is reached;
 * - a worker node: a real WorkerNode with its task threads, connected to a fake coordinator
 *   that authenticates it, runs real tasks on its lanes, and sends fuzz on the control
 *   connection, on a lane, or in place of the welcome.
 *
 * The property, checked after every case: nothing was thrown past a handler (uncaughtException,
 * unhandledRejection), no handler failed on a message it had accepted (WSF_INTERNAL) and no task
 * thread died outside a task, the fuzzed connection either answers a ping or was closed with a
 * documented code, and the real work settles with the right values. Shared by
 * test/protocol-fuzz.test.ts (a bounded number of cases) and scripts/fuzz.ts (long runs).
 */
import fc from 'fast-check';
import { type WebSocket, WebSocketServer } from 'ws';
import { ProcessPoolExecutor } from '../../coordinator/index.ts';
import { checkAuth, deriveKey, makeHello } from '../../shared/auth.ts';
import { bundleModule } from '../../shared/bundle.ts';
import { decodeValue, encodeValue } from '../../shared/codec.ts';
import { decodeFrame, encodeFrame, joinFragments } from '../../shared/frames.ts';
import { CLOSE } from '../../shared/protocol.ts';
import { WorkerNode } from '../../worker-node/node.ts';
import { add } from '../fixtures/tasks.ts';
import { TASKS_URL } from './cluster.ts';
import { type Frame, frameArbitrary } from './fuzz-frames.ts';
import { connectRawPeer, type RawPeer, registerAsNode } from './raw-peer.ts';

export interface FuzzOptions {
  seed: number;
  /** Cases (each a connection and 1–4 frames on it). */
  runs: number;
  /** Stop early (not a failure) after this long; figures say how many cases ran. */
  timeLimitMs?: number;
  log?: (line: string) => void;
}

export interface FuzzFigures {
  target: string;
  cases: number;
  messages: number;
  /** How the fuzzed connections ended: close code → count ("open": it answered a ping). */
  outcomes: Record<string, number>;
  /** Real tasks that settled with the right value while the fuzz ran. */
  realTasks: number;
  crashes: number;
  ms: number;
}

/** The frame limit of both targets: small, so oversized frames are cheap to send. */
const MAX_MESSAGE_BYTES = 256 * 1024;
/** What a fuzzed connection may be closed with (see docs/protocol-robustness.md). */
const DOCUMENTED = new Set<number>([CLOSE.PROTOCOL, CLOSE.TOO_LARGE]);
/** Log lines that mean a defect of ours, not of the peer. */
const DEFECT = /WSF_INTERNAL|threw outside any task/;
const PING_MARK = 424242.5;

/** Records what escapes every handler, for the duration of a fuzz run. */
function watchCrashes(): { crashes: string[]; stop(): void } {
  const crashes: string[] = [];
  const onError = (err: unknown) => crashes.push(`uncaught: ${(err as Error)?.stack ?? String(err)}`);
  const onRejection = (err: unknown) => crashes.push(`unhandled rejection: ${(err as Error)?.stack ?? String(err)}`);
  process.on('uncaughtException', onError);
  process.on('unhandledRejection', onRejection);
  return {
    crashes,
    stop() {
      process.off('uncaughtException', onError);
      process.off('unhandledRejection', onRejection);
    },
  };
}

function sendFrame(ws: WebSocket, frame: Frame): void {
  if (ws.readyState !== 1) return;
  if (frame.text) return void ws.send(new TextDecoder().decode(frame.parts[0]));
  for (let i = 0; i < frame.parts.length; i++) ws.send(frame.parts[i]!, { fin: i === frame.parts.length - 1 });
}

function describeCase(setup: string, frames: Frame[]): string {
  return `${setup}: ${frames.map((f) => f.label).join(' | ')}`;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(timer)
  );
}

/**
 * Runs the cases; returns how many ran. Past the time limit the remaining cases are skipped
 * (fast-check's own interruption would leave the running case going on in the background).
 */
async function runProperty<T extends unknown[]>(property: fc.IAsyncPropertyWithHooks<T>, options: FuzzOptions, ran: () => number): Promise<number> {
  await fc.assert(property, { seed: options.seed, numRuns: options.runs, endOnFailure: true });
  return ran();
}

/** A deadline for the cases, if there is a time limit. */
function deadlineOf(options: FuzzOptions, started: number): number {
  return options.timeLimitMs === undefined ? Infinity : started + options.timeLimitMs;
}

// ---- coordinator --------------------------------------------------------------------------------

export async function fuzzCoordinator(options: FuzzOptions): Promise<FuzzFigures> {
  const started = Date.now();
  const logs: string[] = [];
  const pool = new ProcessPoolExecutor({ tasks: TASKS_URL, maxWorkers: 1, maxMessageBytes: MAX_MESSAGE_BYTES, busyPollMicros: 0, log: (_level, m) => logs.push(m) });
  const watch = watchCrashes();
  const outcomes: Record<string, number> = {};
  let messages = 0;
  let ran = 0;
  let realTasks = 0;
  const wrong: string[] = [];
  let stopWork = false;
  let work: Promise<void> | undefined;
  const deadline = deadlineOf(options, started);
  try {
    await pool.ready(1, { timeout: 60_000 });
    const realNode = pool.workers()[0]!.id;
    // A node that is draining: its lanes attach but are given no task, so fuzz can reach the
    // lane handlers without taking real work hostage.
    const drainingNode = await connectRawPeer(pool.url!, pool.token, { autoPong: true });
    const welcome = await registerAsNode(drainingNode, 4096);
    drainingNode.send({ op: 'drain' });
    await drainingNode.next('drained');
    let nextLane = 0;

    work = (async () => {
      for (let i = 0; !stopWork; i += 8) {
        const batch = Array.from({ length: 8 }, (_, k) => pool.submit(add, i, k).then((v) => (v === i + k ? realTasks++ : wrong.push(`add(${i}, ${k}) gave ${String(v)}`))));
        await withTimeout(Promise.all(batch), 30_000, 'real work on the pool').catch((err: Error) => wrong.push(err.message));
      }
    })();

    const property = fc.asyncProperty(
      fc.constantFrom('fresh', 'registered', 'lane'),
      fc.array(frameArbitrary('to-coordinator', MAX_MESSAGE_BYTES), { minLength: 1, maxLength: 4 }),
      async (setup, frames) => {
        if (Date.now() > deadline) return;
        ran++;
        const logsBefore = logs.length;
        const peer: RawPeer = await connectRawPeer(pool.url!, pool.token);
        try {
          if (setup === 'registered') await registerAsNode(peer);
          if (setup === 'lane') {
            peer.send({ op: 'attach', node: welcome.workerId, lane: nextLane++, ticket: welcome.laneTicket });
            await peer.next('attached');
          }
          for (const f of frames) sendFrame(peer.ws, f);
          messages += frames.length;
          const result = await checkAnswersOrClosed(peer, outcomes, describeCase(setup, frames));
          if (process.env.WSF_FUZZ_DEBUG) console.log(`${Date.now() - started} ms: ${result === 'open' ? 'still open' : `closed ${result}`} after ${describeCase(setup, frames)}`);
          const defect = logs.slice(logsBefore).find((m) => DEFECT.test(m));
          if (defect) throw new Error(`a handler failed (${describeCase(setup, frames)}): ${defect}`);
          if (watch.crashes.length > 0) throw new Error(`the coordinator threw past its handlers (${describeCase(setup, frames)}): ${watch.crashes[0]}`);
          if (wrong.length > 0) throw new Error(`real work went wrong: ${wrong[0]}`);
          if (!pool.workers().some((w) => w.id === realNode)) throw new Error(`the real worker node lost its connection (${describeCase(setup, frames)})`);
        } finally {
          peer.ws.terminate();
        }
      },
    );
    const cases = await runProperty(property, options, () => ran);
    stopWork = true;
    await work;
    const last = await withTimeout(pool.submit(add, 40, 2), 30_000, 'a task after the fuzz');
    if (last !== 42 || wrong.length > 0) throw new Error(`real work went wrong: ${wrong[0] ?? `add(40, 2) gave ${last}`}`);
    drainingNode.close();
    return { target: 'coordinator', cases, messages, outcomes, realTasks, crashes: watch.crashes.length, ms: Date.now() - started };
  } finally {
    stopWork = true;
    await work?.catch(() => {});
    watch.stop();
    await pool.shutdown({ cancelFutures: true });
  }
}

/** Pings the fuzzed connection: it must answer, or be closed with a documented code. */
async function checkAnswersOrClosed(peer: RawPeer, outcomes: Record<string, number>, what: string): Promise<string | number> {
  peer.send({ op: 'ping', t: PING_MARK });
  const answered = peer.waitMessage((m) => m.op === 'pong' && m.t === PING_MARK, 10_000).then(
    () => 'open',
    () => undefined,
  );
  const closed = peer.closed.then(({ code }) => code);
  const result: string | number = await withTimeout(Promise.race<string | number>([answered.then((r): string | number | Promise<number> => r ?? closed), closed]), 10_000, what);
  outcomes[String(result)] = (outcomes[String(result)] ?? 0) + 1;
  if (result !== 'open' && !DOCUMENTED.has(result as number)) throw new Error(`closed with ${result}, not a documented code (${what})`);
  return result;
}

// ---- worker node --------------------------------------------------------------------------------

interface FakeConn {
  ws: WebSocket;
  phase: 'hello' | 'open' | 'closed';
  nonce: Uint8Array;
  kind?: 'control' | 'lane';
  lane?: number;
  received: Record<string, unknown>[];
  closed: Promise<number>;
  onMessage?: (m: Record<string, unknown>) => void;
}

/**
 * A coordinator that speaks just enough of the protocol to keep a real worker node busy: it
 * authenticates it, welcomes it with the fixture task module, attaches its lanes and runs
 * `add` on them, retrying a task whose lane goes away.
 */
class FakeCoordinator {
  readonly wss: WebSocketServer;
  readonly key: Uint8Array;
  url = '';
  control: FakeConn | undefined;
  lanes = new Set<FakeConn>();
  ready = false;
  /** Set by a case: frames to send instead of the next welcome. */
  onRegister: ((conn: FakeConn) => void) | undefined;
  readonly laneDeaths: number[] = [];
  #module!: { code: string; hash: string };
  #waiters = new Set<() => void>();
  #nextId = 2 ** 40;
  #pending = new Map<number, { conn: FakeConn; resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor(token: string) {
    this.key = deriveKey(token);
    this.wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 64 * 1024 * 1024 });
    this.wss.on('connection', (ws) => this.#accept(ws));
  }

  async start(): Promise<void> {
    this.#module = await bundleModule(TASKS_URL);
    await new Promise<void>((resolve) => (this.wss.address() ? resolve() : this.wss.once('listening', () => resolve())));
    const { port } = this.wss.address() as { port: number };
    this.url = `ws://127.0.0.1:${port}/wsfutures`;
  }

  /** The control connection that was sent a welcome. */
  welcomed: FakeConn | undefined;

  welcome(conn: FakeConn): void {
    this.welcomed = conn;
    this.send(conn, {
      op: 'welcome',
      workerId: 'w-fake',
      modules: [{ id: 0, url: TASKS_URL.href, hash: this.#module.hash }],
      heartbeatIntervalMs: 2500,
      heartbeatTimeoutMs: 10_000,
      maxMessageBytes: 64 * 1024 * 1024,
      laneTicket: 'ticket',
      busyPollMicros: 0,
    });
  }

  send(conn: FakeConn, msg: Record<string, unknown>): void {
    if (conn.ws.readyState !== 1) return;
    const parts = encodeFrame(msg as { op: string });
    for (let i = 0; i < parts.length; i++) conn.ws.send(parts[i]!, { fin: i === parts.length - 1 });
  }

  /** Resolves once `predicate` holds, re-checked on every event; rejects after `ms`. */
  until(predicate: () => boolean, ms: number, what: string): Promise<void> {
    if (predicate()) return Promise.resolve();
    return withTimeout(
      new Promise<void>((resolve) => {
        const check = () => {
          if (!predicate()) return;
          this.#waiters.delete(check);
          resolve();
        };
        this.#waiters.add(check);
      }),
      ms,
      what,
    );
  }

  #changed(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** Runs add(a, b) on a lane other than `avoid`, again on another if its lane goes away. */
  async runAdd(a: number, b: number, avoid: () => FakeConn | undefined): Promise<unknown> {
    for (let attempt = 0;; attempt++) {
      if (attempt > 50) throw new Error(`add(${a}, ${b}) lost its lane 50 times`);
      await this.until(() => [...this.lanes].some((l) => l !== avoid() && l.phase === 'open'), 30_000, 'a lane for real work');
      const lane = [...this.lanes].find((l) => l !== avoid() && l.phase === 'open')!;
      const id = this.#nextId++;
      try {
        return await new Promise((resolve, reject) => {
          this.#pending.set(id, { conn: lane, resolve, reject });
          this.send(lane, { op: 'run', tasks: [{ id, m: 0, f: 'add', a: encodeValue([a, b]), n: attempt + 1 }] });
        });
      } catch {
        // its lane closed: run it elsewhere, as a coordinator would
      } finally {
        this.#pending.delete(id);
      }
    }
  }

  #accept(ws: WebSocket): void {
    ws.binaryType = 'fragments';
    const hello = makeHello();
    let closedResolve!: (code: number) => void;
    const conn: FakeConn = { ws, phase: 'hello', nonce: hello.nonce, received: [], closed: new Promise((r) => (closedResolve = r)) };
    ws.on('error', () => {});
    ws.send(hello.frame);
    ws.on('message', (fragments: Buffer[]) => {
      if (conn.phase === 'hello') {
        const check = checkAuth(joinFragments(fragments), this.key, conn.nonce);
        if (!check.ok) return ws.close(CLOSE.AUTH_FAILED);
        conn.phase = 'open';
        return ws.send(check.reply);
      }
      let m: Record<string, unknown>;
      try {
        m = decodeFrame(fragments) as Record<string, unknown>;
      } catch {
        return;
      }
      conn.received.push(m);
      conn.onMessage?.(m);
      this.#handle(conn, m);
      this.#changed();
    });
    ws.on('close', (code) => {
      conn.phase = 'closed';
      this.lanes.delete(conn);
      if (this.control === conn) {
        this.control = undefined;
        this.ready = false;
      }
      for (const [, p] of this.#pending) if (p.conn === conn) p.reject(new Error('lane closed'));
      closedResolve(code);
      this.#changed();
    });
  }

  #handle(conn: FakeConn, m: Record<string, unknown>): void {
    switch (m.op) {
      case 'register':
        conn.kind = 'control';
        this.control = conn;
        if (this.onRegister) {
          const f = this.onRegister;
          this.onRegister = undefined;
          return f(conn);
        }
        return this.welcome(conn);
      case 'fetch-module':
        return this.send(conn, { op: 'module', id: m.id, hash: this.#module.hash, code: this.#module.code });
      case 'attach':
        conn.kind = 'lane';
        conn.lane = m.lane as number;
        this.lanes.add(conn);
        return this.send(conn, { op: 'attached' });
      case 'ready':
        this.ready = true;
        return;
      case 'ping':
        return this.send(conn, { op: 'pong', t: m.t });
      case 'lane-died':
        this.laneDeaths.push(m.lane as number);
        return;
      case 'results':
        for (const item of (m.items as { id: number; v?: Uint8Array; e?: { message: string } }[]) ?? []) {
          const p = this.#pending.get(item.id);
          if (!p || p.conn !== conn) continue;
          if (item.v) p.resolve(decodeValue(item.v));
          else p.reject(new Error(`task error: ${item.e?.message}`));
        }
    }
  }

  async close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
  }
}

export async function fuzzWorkerNode(options: FuzzOptions): Promise<FuzzFigures> {
  const started = Date.now();
  const token = 'fuzz-token-0123456789';
  const coordinator = new FakeCoordinator(token);
  await coordinator.start();
  const logs: string[] = [];
  const watch = watchCrashes();
  const node = new WorkerNode({ connect: coordinator.url, token, concurrency: 4, maxMessageBytes: MAX_MESSAGE_BYTES, busyPollMicros: 0, log: (m) => logs.push(m) });
  const stopped = node.start().then(
    () => 'stopped',
    (err: Error) => `failed: ${err.message}`,
  );
  const outcomes: Record<string, number> = {};
  let messages = 0;
  let ran = 0;
  let realTasks = 0;
  const wrong: string[] = [];
  let stopWork = false;
  let fuzzedLane: FakeConn | undefined;
  let work: Promise<void> | undefined;
  const isUp = () => coordinator.ready && coordinator.control !== undefined && coordinator.lanes.size >= 2;
  const isWelcomed = () => coordinator.control !== undefined && coordinator.welcomed === coordinator.control;
  const hasLane = () => coordinator.ready && coordinator.control !== undefined && [...coordinator.lanes].some((l) => l.phase === 'open');
  let deadline = Infinity;
  try {
    await coordinator.until(isUp, 60_000, 'the worker node ready');
    // The time limit is for the cases: starting the node's threads takes seconds on a busy machine.
    deadline = deadlineOf(options, Date.now());
    work = (async () => {
      for (let i = 0; !stopWork; i++) {
        await coordinator.runAdd(i, 1, () => fuzzedLane).then(
          (v) => (v === i + 1 ? realTasks++ : wrong.push(`add(${i}, 1) gave ${String(v)}`)),
          (err: Error) => wrong.push(err.message),
        );
      }
    })();

    const property = fc.asyncProperty(
      fc.constantFrom('control', 'lane', 'lane', 'lane', 'lane', 'lane', 'lane', 'lane', 'lane', 'register'),
      fc.array(frameArbitrary('to-node', MAX_MESSAGE_BYTES), { minLength: 1, maxLength: 4 }),
      async (setup, frames) => {
        if (Date.now() > deadline) return;
        ran++;
        const logsBefore = logs.length;
        const what = describeCase(setup, frames);
        // A lane case needs one open lane (real work waits for another); the others a node that
        // has been welcomed — not necessarily ready: its threads may still be starting, which
        // is a phase to fuzz too.
        await coordinator.until(setup === 'lane' ? hasLane : isWelcomed, 30_000, `the worker node ready again before: ${what}`);
        let conn: FakeConn;
        if (setup === 'register') {
          // The node's next registration gets fuzz instead of a welcome.
          const registered = new Promise<FakeConn>((resolve) => (coordinator.onRegister = resolve));
          coordinator.control!.ws.close(CLOSE.NORMAL);
          conn = await withTimeout(registered, 30_000, 'the node registering again');
        } else if (setup === 'control') {
          conn = coordinator.control!;
        } else {
          conn = [...coordinator.lanes].find((l) => l.phase === 'open')!;
          fuzzedLane = conn;
        }
        const deathsBefore = coordinator.laneDeaths.length;
        const receivedBefore = conn.received.length;
        const otherLanes = setup === 'lane' ? [...coordinator.lanes].filter((l) => l !== conn && l.phase === 'open') : [];
        for (const f of frames) sendFrame(conn.ws, f);
        messages += frames.length;
        // A ping: the connection must answer, or have been closed with a documented code.
        coordinator.send(conn, { op: 'ping', t: PING_MARK });
        const answered = new Promise<string>((resolve) => {
          if (conn.received.slice(receivedBefore).some((m) => m.op === 'pong' && m.t === PING_MARK)) resolve('open');
          conn.onMessage = (m) => m.op === 'pong' && m.t === PING_MARK && resolve('open');
        });
        const result = await withTimeout(Promise.race([answered, conn.closed.then(String)]), 15_000, what);
        conn.onMessage = undefined;
        outcomes[result] = (outcomes[result] ?? 0) + 1;
        // A lane whose thread was ended on purpose (a fuzzed `kill`, a task that exits its
        // thread) closes without a close frame: the node says so with `lane-died`.
        const threadEnded = conn.kind === 'lane' && coordinator.laneDeaths.slice(deathsBefore).includes(conn.lane!);
        if (result !== 'open' && !DOCUMENTED.has(Number(result)) && !threadEnded) throw new Error(`closed with ${result}, not a documented code (${what})`);
        if (process.env.WSF_FUZZ_DEBUG) console.log(`${Date.now() - started} ms: ${result === 'open' ? 'still open' : `closed ${result}`} after ${what}`);
        // Fuzz on one lane leaves the node's other lanes alone (fuzz on the control connection
        // ends them all, by design: a node without its control connection stops its threads).
        const hit = otherLanes.find((l) => l.phase === 'closed');
        if (hit) throw new Error(`lane ${hit.lane} closed too (${what})`);
        if (setup === 'register' && result === 'open') coordinator.welcome(conn);
        if (setup === 'lane' && result === 'open') fuzzedLane = undefined;
        const defect = logs.slice(logsBefore).find((m) => DEFECT.test(m));
        if (defect) throw new Error(`a handler failed (${what}): ${defect}`);
        if (watch.crashes.length > 0) throw new Error(`the worker node threw past its handlers (${what}): ${watch.crashes[0]}`);
        if (node.state === 'stopped') throw new Error(`the worker node stopped (${what}): ${await stopped}`);
        if (wrong.length > 0) throw new Error(`real work went wrong: ${wrong[0]}`);
      },
    );
    const cases = await runProperty(property, options, () => ran);
    fuzzedLane = undefined;
    stopWork = true;
    await withTimeout(work, 60_000, 'the real work finishing');
    const last = await withTimeout(coordinator.runAdd(40, 2, () => undefined), 60_000, 'a task after the fuzz');
    if (last !== 42 || wrong.length > 0) throw new Error(`real work went wrong: ${wrong[0] ?? `add(40, 2) gave ${String(last)}`}`);
    return { target: 'worker node', cases, messages, outcomes, realTasks, crashes: watch.crashes.length, ms: Date.now() - started };
  } finally {
    stopWork = true;
    fuzzedLane = undefined;
    await node.stop({ drain: false });
    await work?.catch(() => {});
    watch.stop();
    await coordinator.close();
  }
}

/** "N messages tried, 0 processes crashed" and the rest, for the log. */
export function describeFigures(f: FuzzFigures, seed: number): string {
  const closes = Object.entries(f.outcomes)
    .map(([k, n]) => `${n} ${k === 'open' ? 'still open' : `closed ${k}`}`)
    .join(', ');
  return `protocol fuzz (${f.target}, seed ${seed}): ${f.messages} messages tried in ${f.cases} connections (${closes}), ${f.crashes} processes crashed, ${f.realTasks} real tasks right, ${
    (f.ms / 1000).toFixed(1)
  } s`;
}
