/**
 * Lightweight worker nodes for scale tests and benchmarks: many nodes from one process, each a
 * real control connection and one lane speaking the real protocol (handshake, register, attach,
 * ready, pong, results), with no task threads behind them. A lane answers each `run` at once by
 * calling the named function from a small table here, so what is measured is the coordinator.
 *
 * Run as a script, it connects `--nodes N` nodes to `--connect URL` (token in WSFUTURES_TOKEN),
 * prints `ready` once all are attached, and exits when its stdin closes.
 */
import WebSocket from 'ws';
import { answerHello, checkAuthOk, deriveKey } from '../../shared/auth.ts';
import { decodeValue, encodeValue } from '../../shared/codec.ts';
import { decodeFrame, encodeFrame } from '../../shared/frames.ts';
import type { TaskOutcome, TaskSpec } from '../../shared/protocol.ts';

/** What the light lanes can run, by export name (test/fixtures/tasks.ts and the benchmark's tasks). */
const FUNCTIONS: Record<string, (...args: never[]) => unknown> = {
  add: (a: number, b: number) => a + b,
  echo: (v: unknown) => v,
  noop: (v: unknown) => v,
};

interface Conn {
  ws: WebSocket;
  send(msg: { op: string } & Record<string, unknown>): void;
  /** Every decoded message after the handshake. */
  onMessage: (msg: Record<string, unknown>) => void;
}

/** Opens an authenticated connection to `url`. */
function connect(url: string, key: Uint8Array): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { maxPayload: 256 * 1024 * 1024 });
    let state: 'hello' | 'auth-ok' | 'open' = 'hello';
    let helloNonce: Uint8Array | undefined;
    let nonce: Uint8Array | undefined;
    const conn: Conn = {
      ws,
      send(msg) {
        if (ws.readyState !== WebSocket.OPEN) return;
        const parts = encodeFrame(msg);
        for (let i = 0; i < parts.length; i++) ws.send(parts[i]!, { fin: i === parts.length - 1 });
      },
      onMessage: () => {},
    };
    ws.on('error', (err) => reject(err));
    ws.once('close', (code, reason) => reject(new Error(`closed during the handshake (${code} ${reason.toString()})`)));
    ws.on('message', (data: Buffer) => {
      if (state === 'hello') {
        const r = answerHello(data, key);
        if (!r.ok) return reject(new Error(r.message));
        helloNonce = r.helloNonce;
        nonce = r.nonce;
        state = 'auth-ok';
        return ws.send(r.auth);
      }
      if (state === 'auth-ok') {
        const ok = checkAuthOk(data, key, helloNonce!, nonce!);
        if (ok !== true) return reject(new Error(ok.message));
        state = 'open';
        return resolve(conn);
      }
      conn.onMessage(decodeFrame(data) as Record<string, unknown>);
    });
  });
}

function next(conn: Conn, op: string, timeoutMs = 20_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${op}" within ${timeoutMs} ms`)), timeoutMs);
    const before = conn.onMessage;
    conn.onMessage = (m) => {
      if (m.op !== op) return before(m);
      clearTimeout(timer);
      conn.onMessage = before;
      resolve(m);
    };
  });
}

export interface LightNode {
  name: string;
  control: Conn;
  lane: Conn;
  /** Tasks its lane has answered. */
  ran: number;
}

export interface LightNodes {
  nodes: LightNode[];
  /** Closes every connection (the coordinator sees the nodes leave). */
  close(): Promise<void>;
}

/** One node: control connection, register, welcome, one lane attached, ready. */
async function startNode(url: string, key: Uint8Array, name: string): Promise<LightNode> {
  const control = await connect(url, key);
  control.onMessage = (m) => {
    if (m.op === 'ping') control.send({ op: 'pong', t: m.t as number });
  };
  const welcomed = next(control, 'welcome');
  control.send({ op: 'register', name, slots: 1, runtime: 'node', runtimeVersion: process.versions.node, hostname: 'light-nodes', pid: process.pid });
  const welcome = await welcomed;
  const lane = await connect(url, key);
  const node: LightNode = { name, control, lane, ran: 0 };
  const attached = next(lane, 'attached');
  lane.send({ op: 'attach', node: welcome.workerId as string, lane: 0, ticket: welcome.laneTicket as string });
  await attached;
  lane.onMessage = (m) => {
    if (m.op !== 'run') return;
    const items: TaskOutcome[] = [];
    for (const t of m.tasks as TaskSpec[]) {
      const fn = FUNCTIONS[t.f];
      try {
        if (!fn || t.c) throw new Error(`light nodes run only single calls of ${Object.keys(FUNCTIONS).join(', ')}: got ${t.f}`);
        const value = fn(...(decodeValue(t.a) as never[]));
        items.push({ id: t.id, v: encodeValue(value), d: 0 });
      } catch (err) {
        items.push({ id: t.id, e: { name: 'Error', message: (err as Error).message } });
      }
      node.ran++;
    }
    lane.send({ op: 'results', items });
  };
  control.send({ op: 'ready' });
  return node;
}

/**
 * Connects `count` light nodes to the coordinator at `url`, `parallel` handshakes at a time (a
 * handshake costs the coordinator two HMACs; hundreds at once only queue behind each other).
 */
export async function startLightNodes(url: string, token: string, count: number, parallel = 20): Promise<LightNodes> {
  const key = deriveKey(token);
  const nodes: LightNode[] = [];
  let nextIndex = 0;
  const opened: Conn[] = [];
  const worker = async () => {
    while (nextIndex < count) {
      const i = nextIndex++;
      const node = await startNode(url, key, `light-${i + 1}`);
      opened.push(node.control, node.lane);
      nodes.push(node);
    }
  };
  const close = async () => {
    await Promise.all(
      opened.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.ws.readyState === WebSocket.CLOSED) return resolve();
            c.ws.once('close', () => resolve());
            c.ws.close(1000);
            setTimeout(() => {
              c.ws.terminate();
              resolve();
            }, 2000).unref();
          }),
      ),
    );
  };
  try {
    await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
  } catch (err) {
    await close();
    throw err;
  }
  return { nodes, close };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i < 0 ? undefined : process.argv[i + 1];
  };
  const url = arg('--connect');
  const count = Number(arg('--nodes') ?? 1);
  const token = process.env.WSFUTURES_TOKEN;
  if (!url || !token || !Number.isInteger(count) || count < 1) {
    console.error('usage: WSFUTURES_TOKEN=… light-nodes.ts --connect URL --nodes N');
    process.exit(2);
  }
  const light = await startLightNodes(url, token, count);
  console.log('ready');
  process.stdin.resume();
  process.stdin.on('end', () => void light.close().then(() => process.exit(0)));
}
