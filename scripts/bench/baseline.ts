/**
 * The speed-of-light baselines: what this transport can do with nothing of wsfutures in the
 * way. This process is the client; `echo-server.ts` runs as a separate process, as a worker
 * node would, and everything goes over 127.0.0.1.
 *
 * Messages are msgpack `{ id, args: [value] }`, answered with `{ id, value }`: the least a task
 * protocol can send. Figures:
 * - ws ping-pong: one message at a time, latency per round trip (p50, p99); and again with both
 *   ends busy-polling for BUSY_POLL_MICROS after each message, the technique wsfutures uses by
 *   default for sequential round trips (shared/busy-poll.ts), so its gain is not mistaken for
 *   less overhead;
 * - ws pipelined: tiny messages with a bounded number in flight, messages per second;
 * - ws batched: 100 tiny tasks per frame, tasks per second;
 * - ws echo of a 1 MiB and a 16 MiB Uint8Array, MiB/s (each payload counted once, although it
 *   crosses the wire twice, as for a task whose argument is returned);
 * - raw TCP: one-way bandwidth into a sink, and 1 MiB and 16 MiB echoes counted as the ws echo
 *   is. A round trip moves every byte twice and counts it once: even raw TCP's echo reaches
 *   only ~30% of its one-way figure here, which is what a payload round trip should be read
 *   against.
 */
import { connect, type Socket } from 'node:net';
import { DEFAULTS } from '../../shared/protocol.ts';
import { EchoClient, pipeline, startEchoServer } from './echo-client.ts';
import { burstWarmup, emitFigure, MiB, now, payloadWarmup, percentile, perSecond, progress, sequentialWarmup, suiteOptions, windowed } from './measure.ts';

const SUITE = 'baseline';
const { smoke } = suiteOptions();

/** Sizes of each workload. Every loop also stops at `maxMs`, so a slow machine cannot hang the run. */
const sizes = smoke
  ? { pingPong: 200, pipelined: 5_000, batchedTasks: 20_000, echo1: 4, echo16: 1, sinkBytes: 32 * MiB, tcpEcho1: 8, tcpEcho16: 2, maxMs: 2_000 }
  : { pingPong: 20_000, pipelined: 300_000, batchedTasks: 2_000_000, echo1: 300, echo16: 32, sinkBytes: 1_024 * MiB, tcpEcho1: 512, tcpEcho16: 32, maxMs: 10_000 };

/**
 * Messages in flight when pipelining: enough to keep both processes busy (the client encodes
 * the next while the server answers), few enough (about 20 KiB) not to measure buffering.
 */
const PIPELINE_WINDOW = 1_000;
/** Tasks per frame in the batched workload, and frames in flight. */
const BATCH = 100;
const BATCH_WINDOW = 16;
/** Payloads in flight: two per worker slot of the two-worker pools the peers run. */
const PAYLOAD_WINDOW = 4;

/** wsfutures' default budget. */
const BUSY_POLL_MICROS = DEFAULTS.busyPollMicros;

async function pingPong(client: EchoClient, busy = false): Promise<void> {
  for (let i = 0; i < sequentialWarmup(smoke); i++) await client.request({ id: i, args: [i] });
  const samples = new Float64Array(sizes.pingPong);
  const t0 = now();
  const deadline = t0 + sizes.maxMs;
  let n = 0;
  for (; n < sizes.pingPong && (n === 0 || now() < deadline); n++) {
    const started = now();
    await client.request({ id: n, args: [n] });
    samples[n] = (now() - started) * 1000;
  }
  const seconds = (now() - t0) / 1000;
  const measured = samples.subarray(0, n);
  const note = `${n} sequential round trips${busy ? `, both ends busy-polling ${BUSY_POLL_MICROS} µs` : ''}`;
  const [workload, label] = busy ? ['ws-ping-pong-busy', `bare ws ping-pong, busy-polling`] : ['ws-ping-pong', 'bare ws ping-pong'];
  emitFigure({ suite: SUITE, workload: `${workload}-p50`, label: `${label} p50`, value: percentile(measured, 50), unit: 'µs', count: n, seconds, note });
  emitFigure({ suite: SUITE, workload: `${workload}-p99`, label: `${label} p99`, value: percentile(measured, 99), unit: 'µs', count: n, seconds, note });
}

async function pipelined(client: EchoClient): Promise<void> {
  const tiny = (i: number) => ({ id: i, args: [i] });
  await pipeline(client, sizes.maxMs, burstWarmup(smoke), PIPELINE_WINDOW, tiny, () => 1);
  const { units, ms } = await pipeline(client, sizes.maxMs, sizes.pipelined, PIPELINE_WINDOW, tiny, () => 1);
  emitFigure({
    suite: SUITE,
    workload: 'ws-pipelined',
    label: 'bare ws pipelined echo',
    value: perSecond(units, ms),
    unit: 'msgs/s',
    count: units,
    seconds: ms / 1000,
    note: `tiny messages, ${PIPELINE_WINDOW} in flight`,
  });
}

async function batched(client: EchoClient): Promise<void> {
  const frame = (f: number) => Array.from({ length: BATCH }, (_, k) => ({ id: f * BATCH + k, args: [f * BATCH + k] }));
  const frames = Math.ceil(sizes.batchedTasks / BATCH);
  await pipeline(client, sizes.maxMs, Math.ceil(frames / 20), BATCH_WINDOW, frame, (a) => (a as unknown[]).length);
  const { units, ms } = await pipeline(client, sizes.maxMs, frames, BATCH_WINDOW, frame, (a) => (a as unknown[]).length);
  emitFigure({
    suite: SUITE,
    workload: 'ws-batched',
    label: `bare ws batched echo (${BATCH}/frame)`,
    value: perSecond(units, ms),
    unit: 'tasks/s',
    count: units,
    seconds: ms / 1000,
    note: `${BATCH_WINDOW} frames in flight`,
  });
}

async function payloadEcho(client: EchoClient, mib: number, count: number): Promise<void> {
  const payload = new Uint8Array(mib * MiB).fill(7);
  await windowed(payloadWarmup(mib, smoke), PAYLOAD_WINDOW, sizes.maxMs, (i) => client.request({ id: -1 - i, args: [payload] }));
  const { completed, ms } = await windowed(count, PAYLOAD_WINDOW, sizes.maxMs, (i) => client.request({ id: i, args: [payload] }));
  emitFigure({
    suite: SUITE,
    workload: `ws-echo-${mib}mib`,
    label: `bare ws echo ${mib} MiB`,
    value: perSecond(completed * mib, ms),
    unit: 'MiB/s',
    count: completed,
    seconds: ms / 1000,
    note: `Uint8Array round trips, ${PAYLOAD_WINDOW} in flight, counted once`,
  });
}

function tcpConnect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, noDelay: true }, () => resolve(socket));
    socket.once('error', reject);
  });
}

async function tcpBandwidth(port: number): Promise<void> {
  const socket = await tcpConnect(port);
  const chunk = Buffer.alloc(MiB, 7);
  const total = sizes.sinkBytes;
  const header = Buffer.alloc(8);
  header.writeBigUInt64BE(BigInt(total));
  const t0 = now();
  const acked = new Promise<void>((resolve, reject) => {
    socket.once('data', () => resolve());
    socket.once('error', reject);
  });
  socket.write(header);
  for (let sent = 0; sent < total; sent += chunk.length) {
    // Waits for the socket to drain whenever its buffer is full, so memory stays bounded.
    if (!socket.write(chunk)) await new Promise((resolve) => socket.once('drain', resolve));
  }
  await acked;
  const ms = now() - t0;
  socket.destroy();
  emitFigure({
    suite: SUITE,
    workload: 'tcp-bandwidth',
    label: 'raw TCP one-way',
    value: perSecond(total / MiB, ms),
    unit: 'MiB/s',
    count: total / MiB,
    seconds: ms / 1000,
    note: 'node:net, 1 MiB writes into a sink',
  });
}

async function tcpEcho(port: number, mib: number, count: number): Promise<void> {
  const socket = await tcpConnect(port);
  const block = Buffer.alloc(mib * MiB, 7);
  let received = 0;
  let onReceived = (): void => {};
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    onReceived();
  });
  const t0 = now();
  const deadline = t0 + sizes.maxMs;
  let sent = 0;
  await new Promise<void>((resolve) => {
    const fill = (): void => {
      const done = Math.floor(received / block.length);
      while (sent - done < PAYLOAD_WINDOW && sent < count && (sent === 0 || now() < deadline)) {
        socket.write(block);
        sent++;
      }
      if (done === sent) resolve();
    };
    onReceived = fill;
    fill();
  });
  const ms = now() - t0;
  socket.destroy();
  emitFigure({
    suite: SUITE,
    workload: `tcp-echo-${mib}mib`,
    label: `raw TCP echo ${mib} MiB`,
    value: perSecond(sent * mib, ms),
    unit: 'MiB/s',
    count: sent,
    seconds: ms / 1000,
    note: `${PAYLOAD_WINDOW} blocks in flight, counted once`,
  });
}

const { child, ports } = await startEchoServer();
try {
  const client = await EchoClient.open(ports.wsPort);
  progress(SUITE, 'ws ping-pong');
  await pingPong(client);
  progress(SUITE, 'ws ping-pong, busy-polling');
  const busyClient = await EchoClient.open(ports.wsPort, BUSY_POLL_MICROS);
  await pingPong(busyClient, true);
  busyClient.close();
  progress(SUITE, 'ws pipelined');
  await pipelined(client);
  progress(SUITE, 'ws batched');
  await batched(client);
  progress(SUITE, 'ws echo 1 MiB');
  await payloadEcho(client, 1, sizes.echo1);
  progress(SUITE, 'ws echo 16 MiB');
  await payloadEcho(client, 16, sizes.echo16);
  client.close();
  progress(SUITE, 'raw TCP bandwidth');
  await tcpBandwidth(ports.sinkPort);
  progress(SUITE, 'raw TCP echo 1 MiB');
  await tcpEcho(ports.echoPort, 1, sizes.tcpEcho1);
  progress(SUITE, 'raw TCP echo 16 MiB');
  await tcpEcho(ports.echoPort, 16, sizes.tcpEcho16);
} finally {
  child.kill('SIGKILL');
}
