/**
 * Services for load tests to aim at, on loopback: a small node:http server whose answers the
 * tests shape (delay, errors, a stall), and a free port for a pool to listen on.
 */
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';

/** A port nothing listens on now (a pool started later listens there; nodes retry until it does). */
export async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

export interface Target {
  url: string;
  server: Server;
  /** Requests seen so far. */
  requests: number;
  /** With `echoPid`: when each request arrived, and the pid its JSON body named. */
  arrivals: { at: number; pid: number }[];
  /** Holds every answer until this time (ms since the epoch). */
  stallUntil: number;
}

/**
 * A server that answers each request after `delayMs`. `failEvery`: every n-th request (by
 * arrival) gets a 503. `echoPid`: the body is JSON `{ pid }`, answered with the same JSON and an
 * `x-echo: yes` header, and noted in `arrivals`; otherwise the answer is `ok`.
 */
export async function startTarget(options: { delayMs: number; failEvery?: number; echoPid?: boolean }): Promise<Target> {
  const { delayMs, failEvery = 0, echoPid = false } = options;
  const target = { url: '', requests: 0, arrivals: [], stallUntil: 0 } as unknown as Target;
  target.server = createServer((req, res) => {
    const n = ++target.requests;
    const answer = (body: string, headers: Record<string, string>) =>
      setTimeout(() => {
        res.writeHead(failEvery > 0 && n % failEvery === 0 ? 503 : 200, headers);
        res.end(body);
      }, Math.max(delayMs, target.stallUntil - Date.now()));
    if (!echoPid) return answer('ok', { 'content-type': 'text/plain' });
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const pid = Number((JSON.parse(body) as { pid: number }).pid);
      target.arrivals.push({ at: Date.now(), pid });
      answer(JSON.stringify({ pid }), { 'content-type': 'application/json', 'x-echo': 'yes' });
    });
  });
  await new Promise<void>((r) => target.server.listen(0, '127.0.0.1', r));
  target.url = `http://127.0.0.1:${(target.server.address() as { port: number }).port}/`;
  return target;
}
