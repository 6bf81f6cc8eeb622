/**
 * `ctx.http`: the load-test scenario's HTTP/1.1 client, written for generating load. Keep-alive
 * connections over `node:net` (`node:tls` for https), one pool per origin per thread with as
 * many connections as requests in flight (no pipelining); each URL parsed once and each request
 * head without headers or body built once and kept as bytes; responses read by a small parser
 * (shared/loadtest-http-parser.ts) that turns headers into an object only when asked. A generic
 * client (undici, fetch) does a good deal more per request, and against a fast target that is
 * where a load-generating thread spends its time.
 *
 * It travels inlined in the scenario's bundle (coordinator/loadtest.ts), so a bare worker node
 * needs nothing installed. A response of any status resolves (as with fetch): the scenario
 * decides what is an error. Failures reject with an error whose `code` is the kind the load
 * test counts: ECONNREFUSED and the like from the socket, ECONNRESET when the connection closes
 * before the response is complete, ETIMEDOUT past the request's timeout, HPE_INVALID_RESPONSE
 * for a malformed response.
 */
import { Buffer } from 'node:buffer';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { clearInterval, setInterval } from 'node:timers';
import { parseHeaderLines, ResponseParser } from './loadtest-http-parser.ts';

export interface HttpRequestOptions {
  /** Default GET (POST for `post`). */
  method?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** How long the whole response may take, ms, from when the request is sent (default 60,000). */
  timeout?: number;
}

export interface HttpResponse {
  status: number;
  /** Whether the status is 2xx. */
  ok: boolean;
  /** Header names in lower case; a header sent more than once is an array. */
  readonly headers: Record<string, string | string[] | undefined>;
  /** The whole body, read before the response resolves. */
  body: Uint8Array;
  text(): string;
  json(): unknown;
}

export interface HttpClient {
  request(url: string | URL, options?: HttpRequestOptions): Promise<HttpResponse>;
  get(url: string | URL, options?: Omit<HttpRequestOptions, 'method' | 'body'>): Promise<HttpResponse>;
  post(url: string | URL, body: string | Uint8Array, options?: Omit<HttpRequestOptions, 'method' | 'body'>): Promise<HttpResponse>;
}

const DEFAULT_TIMEOUT_MS = 60_000;
/** How often requests are checked against their timeout. */
const SWEEP_MS = 100;
/** Parsed URLs kept; past this the cache starts over (a scenario with endlessly varied URLs). */
const MAX_TARGETS = 10_000;
/** A connection idle this close to the server's keep-alive timeout is not reused: the server may be closing it. */
const KEEP_ALIVE_MARGIN_MS = 1000;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\r\n\0]/;
/** Methods that may be sent again when a reused connection turns out closed before any answer. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
const decoder = new TextDecoder();

/** An error of the connection or the exchange, with the code the load test counts it by. */
export class HttpClientError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(`ctx.http: ${message}`);
    this.name = 'HttpClientError';
    this.code = code;
  }
}

class Response implements HttpResponse {
  readonly status: number;
  readonly ok: boolean;
  readonly body: Uint8Array;
  #head: string;
  #headers: Record<string, string | string[]> | undefined;

  constructor(status: number, head: string, body: Uint8Array) {
    this.status = status;
    this.ok = status >= 200 && status < 300;
    this.body = body;
    this.#head = head;
  }

  get headers(): Record<string, string | string[]> {
    return this.#headers ??= parseHeaderLines(this.#head);
  }

  text(): string {
    return decoder.decode(this.body);
  }

  json(): unknown {
    return JSON.parse(decoder.decode(this.body));
  }

  /** For JSON.stringify and logs: the headers too (they are parsed only when read), the body as text. */
  toJSON(): { status: number; ok: boolean; headers: Record<string, string | string[]>; body: string } {
    return { status: this.status, ok: this.ok, headers: this.headers, body: this.text() };
  }
}

/** A request on its way: what to send, and where its answer goes. */
interface Exchange {
  readonly head: Buffer;
  readonly body: Buffer | undefined;
  readonly method: string;
  readonly url: string;
  readonly timeoutMs: number;
  sentAt: number;
  /** Sent again once already (after a reused connection closed without answering). */
  retried: boolean;
  resolve(response: Response): void;
  reject(error: Error): void;
}

/** A parsed URL: its origin's pool, and its request heads by method (no headers, no body). */
interface Target {
  readonly origin: Origin;
  readonly path: string;
  readonly host: string;
  readonly heads: Map<string, Buffer>;
}

/** One keep-alive connection: one exchange at a time. */
class Connection {
  readonly #origin: Origin;
  readonly socket: Socket;
  readonly #parser = new ResponseParser();
  exchange: Exchange | undefined;
  /** Whether it carried an exchange before the current one. */
  #reused = false;
  #error: Error | undefined;
  closed = false;
  idleSince = 0;
  keepAliveMs = 0;

  constructor(origin: Origin) {
    this.#origin = origin;
    this.socket = origin.tls
      ? tlsConnect({ host: origin.hostname, port: origin.port, servername: isIP(origin.hostname) ? undefined : origin.hostname, ALPNProtocols: ['http/1.1'] })
      : netConnect({ host: origin.hostname, port: origin.port });
    this.socket.setNoDelay(true);
    this.socket.on('data', this.#onData);
    this.socket.on('error', this.#onError);
    this.socket.on('close', this.#onClose);
    // The server's half-close: no request goes out on it any more (its 'close' follows).
    this.socket.on('end', () => void (this.closed = true));
  }

  send(exchange: Exchange): void {
    this.exchange = exchange;
    exchange.sentAt = performance.now();
    this.#parser.start(exchange.method === 'HEAD');
    if (exchange.body === undefined) {
      this.socket.write(exchange.head);
    } else {
      this.socket.cork();
      this.socket.write(exchange.head);
      this.socket.write(exchange.body);
      this.socket.uncork();
    }
  }

  /** Ends the connection; an exchange on it rejects with `error`. */
  destroy(error: Error): void {
    this.#error ??= error;
    this.socket.destroy();
  }

  #onData = (buf: Buffer): void => {
    const exchange = this.exchange;
    if (!exchange) return this.destroy(new HttpClientError('HPE_INVALID_RESPONSE', `${this.#origin.name} sent bytes while no request was waiting`));
    let used: number;
    try {
      used = this.#parser.execute(buf);
    } catch (err) {
      return this.destroy(err as Error);
    }
    if (this.#parser.done) this.#settle(exchange, used === buf.length && this.#parser.keepAlive);
  };

  #onError = (err: Error): void => {
    this.#error ??= err;
  };

  #onClose = (): void => {
    this.closed = true;
    this.#origin.forget(this);
    const exchange = this.exchange;
    if (!exchange) return;
    if (this.#error === undefined && this.#parser.finish()) return this.#settle(exchange, false);
    this.exchange = undefined;
    // A kept-alive connection the server closed just as this request went out: the request
    // never reached it, so an idempotent one is sent once more on a new connection.
    const code = (this.#error as { code?: unknown } | undefined)?.code;
    const stale = this.#error === undefined || code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_STREAM_WRITE_AFTER_END' || code === 'ERR_STREAM_DESTROYED';
    if (stale && this.#reused && !this.#parser.started && !exchange.retried && IDEMPOTENT.has(exchange.method)) {
      exchange.retried = true;
      return this.#origin.dispatch(exchange, true);
    }
    exchange.reject(
      this.#error ??
        new HttpClientError('ECONNRESET', `${this.#origin.name} closed the connection before the response to ${exchange.method} ${exchange.url} was complete`),
    );
  };

  #settle(exchange: Exchange, keepAlive: boolean): void {
    const parser = this.#parser;
    this.exchange = undefined;
    this.#reused = true;
    this.keepAliveMs = parser.keepAliveMs;
    const response = new Response(parser.status, parser.head, parser.body);
    if (keepAlive && !this.closed) this.#origin.release(this);
    else if (!this.closed) this.socket.destroy();
    exchange.resolve(response);
  }
}

/** The connections to one origin: idle ones reused last-in first-out, a new one when none is idle. */
class Origin {
  readonly name: string;
  readonly tls: boolean;
  readonly hostname: string;
  readonly port: number;
  readonly #idle: Connection[] = [];
  readonly connections = new Set<Connection>();

  constructor(url: URL) {
    this.name = url.origin;
    this.tls = url.protocol === 'https:';
    // "[::1]" in a URL is "::1" to connect to.
    this.hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    this.port = url.port ? Number(url.port) : this.tls ? 443 : 80;
  }

  dispatch(exchange: Exchange, fresh = false): void {
    let conn: Connection | undefined;
    while (!fresh && (conn = this.#idle.pop()) !== undefined) {
      if (conn.closed) continue;
      if (conn.keepAliveMs > 0 && performance.now() - conn.idleSince > conn.keepAliveMs - KEEP_ALIVE_MARGIN_MS) {
        conn.socket.destroy();
        continue;
      }
      return conn.send(exchange);
    }
    conn = new Connection(this);
    this.connections.add(conn);
    conn.send(exchange);
  }

  release(conn: Connection): void {
    if (conn.keepAliveMs > 0) conn.idleSince = performance.now();
    this.#idle.push(conn);
  }

  forget(conn: Connection): void {
    this.connections.delete(conn);
  }
}

/** The thread's client: its connections live until `close()` (the end of a test). */
export class ScenarioHttp implements HttpClient {
  readonly #origins = new Map<string, Origin>();
  readonly #targets = new Map<string, Target>();
  #sweep: ReturnType<typeof setInterval> | undefined;

  request(url: string | URL, options?: HttpRequestOptions): Promise<HttpResponse> {
    // Bad input rejects, as from an async function (a caller's .catch() sees it).
    try {
      return this.#request(url, options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #request(url: string | URL, options: HttpRequestOptions | undefined): Promise<HttpResponse> {
    const href = typeof url === 'string' ? url : url instanceof URL ? url.href : String(url);
    const target = this.#targets.get(href) ?? this.#parse(href);
    const method = options?.method ?? 'GET';
    let head: Buffer | undefined;
    let body: Buffer | undefined;
    let timeoutMs = DEFAULT_TIMEOUT_MS;
    if (options === undefined || (options.headers === undefined && options.body === undefined)) {
      head = target.heads.get(method);
    }
    if (options !== undefined) {
      if (options.body !== undefined) body = toBuffer(options.body);
      if (options.timeout !== undefined) timeoutMs = checkTimeout(options.timeout);
    }
    if (head === undefined) {
      head = buildHead(method, target, options?.headers, body);
      if (options?.headers === undefined && body === undefined) target.heads.set(method, head);
    }
    this.#sweep ??= this.#startSweep();
    return new Promise<HttpResponse>((resolve, reject) => {
      target.origin.dispatch({ head, body, method, url: href, timeoutMs, sentAt: 0, retried: false, resolve, reject });
    });
  }

  get(url: string | URL, options?: Omit<HttpRequestOptions, 'method' | 'body'>): Promise<HttpResponse> {
    return this.request(url, options);
  }

  post(url: string | URL, body: string | Uint8Array, options: Omit<HttpRequestOptions, 'method' | 'body'> = {}): Promise<HttpResponse> {
    return this.request(url, { ...options, method: 'POST', body });
  }

  /** Ends the test's connections; requests still in flight reject. */
  close(): void {
    const ended = new Error('the load test ended');
    for (const origin of this.#origins.values()) {
      for (const conn of origin.connections) conn.destroy(ended);
    }
    this.#origins.clear();
    this.#targets.clear();
    if (this.#sweep !== undefined) clearInterval(this.#sweep);
    this.#sweep = undefined;
  }

  #parse(href: string): Target {
    let url: URL;
    try {
      url = new URL(href);
    } catch {
      throw new TypeError(`ctx.http: not a URL: ${JSON.stringify(href)} (give an absolute http:// or https:// URL)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`ctx.http: the URL must be http: or https:, got ${url.href}`);
    let origin = this.#origins.get(url.origin);
    if (!origin) this.#origins.set(url.origin, origin = new Origin(url));
    if (this.#targets.size >= MAX_TARGETS) this.#targets.clear();
    const target: Target = { origin, path: url.pathname + url.search, host: url.host, heads: new Map() };
    this.#targets.set(href, target);
    return target;
  }

  /** Requests past their timeout fail, and their connection with them (its answer may still come). */
  #startSweep(): ReturnType<typeof setInterval> {
    const timer = setInterval(() => {
      const now = performance.now();
      for (const origin of this.#origins.values()) {
        for (const conn of origin.connections) {
          const exchange = conn.exchange;
          if (exchange !== undefined && now - exchange.sentAt > exchange.timeoutMs) {
            conn.destroy(new HttpClientError('ETIMEDOUT', `no complete response to ${exchange.method} ${exchange.url} within ${exchange.timeoutMs} ms (the timeout option)`));
          }
        }
      }
    }, SWEEP_MS);
    timer.unref?.();
    return timer;
  }
}

function toBuffer(body: string | Uint8Array): Buffer {
  if (typeof body === 'string') return Buffer.from(body);
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  throw new TypeError(`ctx.http: body must be a string or a Uint8Array, got ${typeof body}`);
}

function checkTimeout(value: unknown): number {
  if (typeof value !== 'number' || !(value > 0)) throw new RangeError(`ctx.http: timeout must be a positive number of ms, got ${String(value)}`);
  return value;
}

/** "GET /path HTTP/1.1" and its header lines, as bytes. */
function buildHead(method: string, target: Target, headers: Record<string, string> | undefined, body: Buffer | undefined): Buffer {
  if (!TOKEN.test(method)) throw new TypeError(`ctx.http: not an HTTP method: ${JSON.stringify(method)}`);
  let lines = '';
  let host = target.host;
  if (headers !== undefined) {
    if (headers === null || typeof headers !== 'object') throw new TypeError(`ctx.http: headers must be an object of name: value, got ${String(headers)}`);
    for (const name in headers) {
      const value = String(headers[name]);
      if (!TOKEN.test(name)) throw new TypeError(`ctx.http: not a header name: ${JSON.stringify(name)}`);
      if (BAD_VALUE.test(value)) throw new TypeError(`ctx.http: the value of header ${name} holds a line break or NUL: ${JSON.stringify(value)}`);
      const lower = name.toLowerCase();
      // The body's length is the client's to say: it is what the connection's framing relies on.
      if (lower === 'content-length' || lower === 'transfer-encoding') continue;
      if (lower === 'host') host = value;
      else lines += `${name}: ${value}\r\n`;
    }
  }
  const length = body !== undefined ? `content-length: ${body.length}\r\n` : method === 'POST' || method === 'PUT' || method === 'PATCH' ? 'content-length: 0\r\n' : '';
  return Buffer.from(`${method} ${target.path} HTTP/1.1\r\nhost: ${host}\r\n${lines}${length}\r\n`, 'latin1');
}
