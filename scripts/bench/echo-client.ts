/**
 * The bare echo: a server process (echo-server.ts) and a client that talks to it with the least
 * a task protocol can send, msgpack `{ id, args: [value] }` answered with `{ id, value }`. Used
 * by the baseline suite, and by the wsfutures suite to measure both side by side, interleaved.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { Packr } from 'msgpackr';
import { WebSocket } from 'ws';
import { BusyPoll } from '../../shared/busy-poll.ts';
import { now } from './measure.ts';

const packr = new Packr({ useRecords: false });

export interface Ports {
  wsPort: number;
  sinkPort: number;
  echoPort: number;
}

export function startEchoServer(): Promise<{ child: ChildProcess; ports: Ports }> {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./echo-server.ts', import.meta.url).pathname], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (chunk: Buffer): void => {
      out += chunk;
      const newline = out.indexOf('\n');
      if (newline < 0) return;
      child.stdout!.off('data', onData);
      resolve({ child, ports: JSON.parse(out.slice(0, newline)) as Ports });
    };
    child.stdout!.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`echo server exited with status ${code} before listening`)));
  });
}

/** A ws client whose answers come back in order (the server answers each message as it comes). */
export class EchoClient {
  readonly #ws: WebSocket;
  readonly #waiting: ((answer: unknown) => void)[] = [];
  readonly #poll: BusyPoll;
  /** Called with every decoded answer. `request` and the pipelined workloads set it. */
  onAnswer: (answer: unknown) => void = () => {};

  constructor(ws: WebSocket, busyPollMicros = 0) {
    this.#ws = ws;
    this.#poll = new BusyPoll(busyPollMicros);
    ws.on('message', (data: Buffer) => {
      this.#poll.answered();
      this.onAnswer(packr.unpack(data));
    });
  }

  /**
   * `busyPollMicros`: both ends busy-poll this long after each message they send, as wsfutures
   * does by default (shared/busy-poll.ts): the same technique with nothing else in the way.
   */
  static async open(port: number, busyPollMicros = 0): Promise<EchoClient> {
    const query = busyPollMicros > 0 ? `/?busyPoll=${busyPollMicros}` : '';
    const ws = new WebSocket(`ws://127.0.0.1:${port}${query}`, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return new EchoClient(ws, busyPollMicros);
  }

  send(message: unknown): void {
    this.#ws.send(packr.pack(message));
  }

  /** Sends one message and resolves with its answer; answers are matched in order. */
  request(message: unknown): Promise<unknown> {
    this.onAnswer = this.#answerNext;
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      this.send(message);
      this.#poll.expectAnswer();
    });
  }

  readonly #answerNext = (answer: unknown): void => this.#waiting.shift()!(answer);

  close(): void {
    this.#ws.terminate();
  }
}

/**
 * Sends `total` messages made by `make(i)`, at most `window` unanswered at once, and counts
 * `weight(answer)` units per answer. Plain callbacks rather than a promise per message: this is
 * the speed of light, so the client should cost as little as it can.
 */
export function pipeline(
  client: EchoClient,
  maxMs: number,
  total: number,
  window: number,
  make: (i: number) => unknown,
  weight: (answer: unknown) => number,
): Promise<{ units: number; ms: number }> {
  return new Promise((resolve) => {
    const t0 = now();
    const deadline = t0 + maxMs;
    let sent = 0;
    let answered = 0;
    let units = 0;
    let stopped = false;
    client.onAnswer = (answer) => {
      answered++;
      units += weight(answer);
      // The clock is read once per 64 answers: cheap enough, and precise enough for a deadline.
      if ((answered & 63) === 0 && now() >= deadline) stopped = true;
      if (!stopped && sent < total) client.send(make(sent++));
      else if (answered === sent) resolve({ units, ms: now() - t0 });
    };
    while (sent < Math.min(window, total)) client.send(make(sent++));
  });
}
