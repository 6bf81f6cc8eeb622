/**
 * `ctx.http`: the load-test scenario's fast HTTP/1.1 client. It is undici's `Pool` (one per
 * origin per thread, keep-alive, no pipelining, as many connections as requests in flight):
 * several times the rate of `fetch` from the same thread, so that one slot can load a fast
 * target about as hard as a dedicated load generator. It travels inlined in the scenario's
 * bundle (coordinator/loadtest.ts), loaded on a thread's first request, so a bare worker node
 * needs nothing installed and a scenario that only uses `fetch` never evaluates it.
 *
 * A response of any status resolves (as with fetch): the scenario decides what is an error.
 */
import type { Dispatcher, Pool } from 'undici';

export interface HttpRequestOptions {
  /** Default GET (POST for `post`). */
  method?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
}

export interface HttpResponse {
  status: number;
  /** Whether the status is 2xx. */
  ok: boolean;
  /** Header names in lower case; a header sent more than once is an array. */
  headers: Record<string, string | string[] | undefined>;
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

let undici: Promise<{ Pool: typeof Pool }> | undefined;
const decoder = new TextDecoder();

/** The thread's client: its connection pools live until `close()` (the end of a test). */
export class ScenarioHttp implements HttpClient {
  readonly #pools = new Map<string, Pool>();

  async request(url: string | URL, options: HttpRequestOptions = {}): Promise<HttpResponse> {
    const target = typeof url === 'string' ? new URL(url) : url;
    if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new TypeError(`ctx.http: the URL must be http: or https:, got ${target.href}`);
    let pool = this.#pools.get(target.origin);
    if (!pool) {
      const { Pool } = await (undici ??= import('undici'));
      // A request that awaited the import may find another's pool made meanwhile.
      pool = this.#pools.get(target.origin);
      if (!pool) this.#pools.set(target.origin, pool = new Pool(target.origin));
    }
    const res: Dispatcher.ResponseData = await pool.request({
      path: target.pathname + target.search,
      method: (options.method ?? 'GET') as Dispatcher.HttpMethod,
      headers: options.headers,
      body: options.body,
    });
    const body = new Uint8Array(await res.body.arrayBuffer());
    return {
      status: res.statusCode,
      ok: res.statusCode >= 200 && res.statusCode < 300,
      headers: res.headers,
      body,
      text: () => decoder.decode(body),
      json: () => JSON.parse(decoder.decode(body)),
    };
  }

  get(url: string | URL, options: Omit<HttpRequestOptions, 'method' | 'body'> = {}): Promise<HttpResponse> {
    return this.request(url, options);
  }

  post(url: string | URL, body: string | Uint8Array, options: Omit<HttpRequestOptions, 'method' | 'body'> = {}): Promise<HttpResponse> {
    return this.request(url, { ...options, method: 'POST', body });
  }

  /** Ends the test's connections; requests still in flight reject. */
  close(): void {
    for (const pool of this.#pools.values()) void pool.destroy(new Error('the load test ended')).catch(() => {});
    this.#pools.clear();
  }
}
