/**
 * Plain HTTP requests on the coordinator's port (WebSocket upgrades go to the server's `ws`):
 *
 * - `GET /wsfutures/worker.mjs` — the single-file worker node. It holds no secret (the token
 *   never appears in it) and is served to anyone who can reach the port; the node it starts
 *   proves it knows the token before the coordinator decodes anything it sends.
 * - `GET /metrics` — Prometheus exposition (coordinator/metrics.ts).
 * - `GET /wsfutures/` — the dashboard page, `GET /wsfutures/feed` its live feed (server-sent
 *   events), `/wsfutures/assets/…` the charting library it uses.
 *
 * Metrics and the dashboard are open to requests from loopback; from anywhere else they need the
 * pool's token (unless the pool was told otherwise): `Authorization: Bearer TOKEN` (scrapers),
 * or a login form whose answer is a session cookie (HttpOnly, SameSite=Strict; the token itself
 * never goes in a URL or a cookie). Failed logins count towards the same per-address limit as
 * failed WebSocket handshakes.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HandshakeLimiter } from './handshake-limiter.ts';
import { DASHBOARD_HTML, LOGIN_HTML } from './dashboard-page.ts';
import { WORKER_DOWNLOAD_PATH, workerScript } from './worker-download.ts';

export interface HttpRoutesOptions {
  /** SHA-256 of the pool's token: what a bearer header or a login must match. */
  tokenDigest: Uint8Array;
  /** Whether requests from beyond loopback need the token. */
  requireToken: boolean;
  /** Whether the server speaks TLS (cookies are then Secure). */
  tls: boolean;
  limiter: HandshakeLimiter;
  metrics: () => Promise<{ text: string; contentType: string }>;
  /** Opens a live feed for one dashboard; returns a function that closes it. */
  feed: (send: (data: string) => void) => () => void;
  log: (level: 'info' | 'warn', message: string) => void;
}

const SESSION_COOKIE = 'wsf_session';
/** A login form is tiny; anything larger is not one. */
const MAX_LOGIN_BYTES = 4096;
const SESSION_MS = 12 * 60 * 60 * 1000;
const MAX_SESSIONS = 1000;

export function digestToken(token: string): Uint8Array {
  return createHash('sha256').update(`wsfutures/http|${token}`).digest();
}

export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

const uplotDir = (): string => fileURLToPath(new URL('.', import.meta.resolve('uplot/dist/uPlot.iife.min.js')));
const ASSETS: Record<string, { file: string; type: string }> = {
  'uplot.min.js': { file: 'uPlot.iife.min.js', type: 'text/javascript; charset=utf-8' },
  'uplot.min.css': { file: 'uPlot.min.css', type: 'text/css; charset=utf-8' },
};

export class HttpRoutes {
  readonly #options: HttpRoutesOptions;
  /** Session ids (random, not the token) and when they expire. */
  readonly #sessions = new Map<string, number>();
  readonly #assets = new Map<string, Uint8Array>();

  constructor(options: HttpRoutesOptions) {
    this.#options = options;
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    try {
      this.#route(req, res);
    } catch (err) {
      // Nothing a request does may reach the server's own handlers.
      this.#options.log('warn', `HTTP ${req.method} ${String(req.url).slice(0, 100)} failed: ${(err as Error).message}`);
      if (!res.headersSent) text(res, 500, 'internal error\n');
      else res.destroy();
    }
  }

  #route(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0]!;
    const method = req.method ?? 'GET';
    const read = method === 'GET' || method === 'HEAD';
    if (path === WORKER_DOWNLOAD_PATH && read) return void this.#worker(req, res);
    if (path === '/wsfutures/login' && method === 'POST') return this.#login(req, res);
    if (path === '/wsfutures/login' && read) return html(res, 200, LOGIN_HTML(''));
    if (path === '/metrics' && read) {
      if (!this.#allowed(req)) {
        return text(res, 401, 'the pool\'s token is required beyond loopback: send "Authorization: Bearer TOKEN"\n', { 'www-authenticate': 'Bearer realm="wsfutures"' });
      }
      return void this.#metrics(res);
    }
    if ((path === '/wsfutures' || path === '/wsfutures/') && read) {
      if (!this.#allowed(req)) return redirect(res, '/wsfutures/login');
      return html(res, 200, DASHBOARD_HTML);
    }
    if (path === '/wsfutures/feed' && read) {
      if (!this.#allowed(req)) return text(res, 401, 'log in at /wsfutures/login first\n');
      return this.#feed(req, res);
    }
    const asset = path.startsWith('/wsfutures/assets/') ? ASSETS[path.slice('/wsfutures/assets/'.length)] : undefined;
    if (asset && read) {
      if (!this.#allowed(req)) return text(res, 401, 'log in at /wsfutures/login first\n');
      let body = this.#assets.get(asset.file);
      if (!body) this.#assets.set(asset.file, body = readFileSync(`${uplotDir()}/${asset.file}`));
      res.writeHead(200, { 'content-type': asset.type, 'content-length': body.byteLength, 'cache-control': 'max-age=3600' });
      return void res.end(body);
    }
    text(res, 404, `not found: this is a wsfutures coordinator; see /wsfutures/ (dashboard), /metrics, ${WORKER_DOWNLOAD_PATH}\n`);
  }

  /** Loopback, or the token (bearer header or session cookie), or tokens not required. */
  #allowed(req: IncomingMessage): boolean {
    if (!this.#options.requireToken || isLoopbackAddress(req.socket.remoteAddress)) return true;
    const auth = req.headers.authorization;
    if (typeof auth === 'string' && auth.startsWith('Bearer ')) return this.#tokenMatches(auth.slice(7).trim());
    const session = cookie(req.headers.cookie, SESSION_COOKIE);
    if (!session) return false;
    const expires = this.#sessions.get(session);
    if (expires === undefined) return false;
    if (Date.now() > expires) {
      this.#sessions.delete(session);
      return false;
    }
    return true;
  }

  #tokenMatches(token: string): boolean {
    return timingSafeEqual(digestToken(token), this.#options.tokenDigest);
  }

  #login(req: IncomingMessage, res: ServerResponse): void {
    const ip = req.socket.remoteAddress ?? '?';
    const { limiter } = this.#options;
    if (limiter.isBlocked(ip)) return text(res, 429, 'too many failed logins from this address: try again later\n');
    let body = '';
    let tooLarge = false;
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      if (tooLarge) return;
      body += chunk;
      if (body.length > MAX_LOGIN_BYTES) {
        tooLarge = true;
        text(res, 413, 'a login form is smaller than that\n');
        req.destroy();
      }
    });
    req.on('error', () => {});
    req.on('end', () => {
      if (tooLarge) return;
      const token = new URLSearchParams(body).get('token') ?? '';
      if (!this.#tokenMatches(token)) {
        limiter.fail(ip);
        this.#options.log('warn', `dashboard login from ${ip} failed: wrong token`);
        return html(res, 401, LOGIN_HTML("That is not the pool's token."));
      }
      const id = randomBytes(32).toString('base64url');
      if (this.#sessions.size >= MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value!);
      this.#sessions.set(id, Date.now() + SESSION_MS);
      const secure = this.#options.tls ? '; Secure' : '';
      res.writeHead(303, { location: '/wsfutures/', 'set-cookie': `${SESSION_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_MS / 1000}${secure}` });
      res.end();
    });
  }

  async #metrics(res: ServerResponse): Promise<void> {
    try {
      const { text: body, contentType } = await this.#options.metrics();
      res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
      res.end(body);
    } catch (err) {
      text(res, 500, `metrics failed: ${(err as Error).message}\n`);
    }
  }

  #feed(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write(': wsfutures live feed\n\n');
    // A slow reader is not buffered without end: an update that finds the last one still
    // unsent is skipped.
    const close = this.#options.feed((data) => {
      if (res.writableNeedDrain) return;
      res.write(`data: ${data}\n\n`);
    });
    const end = () => close();
    req.on('close', end);
    res.on('error', end);
  }

  async #worker(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const { code, sha256 } = await workerScript();
      res.writeHead(200, {
        // Deno runs a remote module only if it is served as JavaScript.
        'content-type': 'text/javascript; charset=utf-8',
        'content-length': code.byteLength,
        'x-wsfutures-sha256': sha256,
        'cache-control': 'no-cache',
      });
      res.end(req.method === 'HEAD' ? undefined : code);
    } catch (err) {
      if (res.headersSent) return void res.destroy();
      text(res, 500, `the single-file worker could not be built here: ${(err as Error).message}\n`);
    }
  }
}

function text(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
  res.end(body);
}

function html(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    // The page loads only its own script and styles.
    'content-security-policy': "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
    'x-frame-options': 'DENY',
  });
  res.end(body);
}

function redirect(res: ServerResponse, location: string): void {
  res.writeHead(303, { location });
  res.end();
}

function cookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}
