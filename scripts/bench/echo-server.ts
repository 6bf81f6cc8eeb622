/**
 * The far end of the speed-of-light baselines, run as its own process by `baseline.ts`:
 *
 * - a bare `ws` server that answers every msgpack message `{ id, args }` with `{ id, value }`,
 *   `value` being `args[0]`, and an array of such messages (a batch) with an array of answers.
 *   It decodes and encodes every message, as any task protocol must, and does nothing else. A
 *   client that connects with `?busyPoll=MICROS` gets busy polling on its connection: after
 *   each answer the server keeps polling that long (shared/busy-poll.ts, as wsfutures does);
 * - a raw TCP sink: reads an 8-byte length, then that many bytes, then writes one byte back;
 * - a raw TCP echo: writes back whatever it reads.
 *
 * All three listen on 127.0.0.1 only, on ports the system picks. The server prints one line of
 * JSON with the ports, and exits when its stdin closes (its parent is gone) or it is killed.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { Packr } from 'msgpackr';
import { WebSocketServer } from 'ws';
import { BusyPoll } from '../../shared/busy-poll.ts';

/** Plain maps, no record extension: the cheapest msgpack a protocol of small objects can use. */
const packr = new Packr({ useRecords: false });

interface Task {
  id: number;
  args: unknown[];
}

const answer = (task: Task): { id: number; value: unknown } => ({ id: task.id, value: task.args[0] });

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
wss.on('connection', (ws, req) => {
  const poll = new BusyPoll(Number(new URL(req.url ?? '/', 'ws://x').searchParams.get('busyPoll') ?? 0));
  ws.on('message', (data: Buffer) => {
    poll.answered();
    const message = packr.unpack(data) as Task | Task[];
    ws.send(packr.pack(Array.isArray(message) ? message.map(answer) : answer(message)));
    poll.expectAnswer();
  });
});

const sink = createServer((socket: Socket) => {
  let expected = -1;
  let received = 0;
  let header = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    if (expected < 0) {
      header = Buffer.concat([header, chunk]);
      if (header.length < 8) return;
      expected = Number(header.readBigUInt64BE(0));
      received = header.length - 8;
    } else {
      received += chunk.length;
    }
    if (received >= expected) socket.end(Buffer.from([1]));
  });
});

const echo = createServer((socket: Socket) => {
  socket.setNoDelay(true);
  socket.pipe(socket);
});

const listening = (server: Server): Promise<number> =>
  new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : -1);
    });
  });

const wsPort = await new Promise<number>((resolve, reject) => {
  wss.once('error', reject);
  wss.once('listening', () => resolve((wss.address() as { port: number }).port));
});
const sinkPort = await listening(sink);
const echoPort = await listening(echo);
process.stdout.write(`${JSON.stringify({ wsPort, sinkPort, echoPort })}\n`);

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
