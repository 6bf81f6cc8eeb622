/**
 * ctx.http against real servers on loopback: a node:http server for what it answers (bodies of
 * every framing, HEAD, 204, 304, headers, POST), connections kept alive and reused, a server
 * that closes idle connections, and every failure as the error kind a load test counts
 * (ECONNREFUSED, ECONNRESET mid-response, ETIMEDOUT, a malformed response); then https through
 * a self-signed certificate, in a Node child process that trusts it.
 */
import { Buffer } from 'node:buffer';
import { spawnSync } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ScenarioHttp } from '../shared/loadtest-http.ts';
import { errorKind } from '../shared/loadtest-driver.ts';
import { IS_DENO } from '../shared/runtime.ts';

/** Resolves once `p` rejects with a message matching `message`; fails if it resolves. */
async function rejects(p: Promise<unknown>, message: RegExp): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  assert.instance(err, Error, 'it rejected');
  assert.match((err as Error).message, message);
}

let server: Server;
let base = '';
const serverSockets = new Set<Socket>();
let connectionsOpened = 0;

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url!, 'http://x');
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    switch (url.pathname) {
      case '/length':
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5', 'x-twice': ['a', 'b'] });
        return void res.end('hello');
      case '/chunked': {
        // 1 MiB in pieces, chunked (no length given).
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const piece = Buffer.alloc(64 * 1024, 7);
        for (let i = 0; i < 16; i++) res.write(piece);
        return void res.end();
      }
      case '/echo':
        res.writeHead(201, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify({ method: req.method, headers: req.headers, body: body.toString() }));
      case '/no-content':
        res.writeHead(204);
        return void res.end();
      case '/not-modified':
        res.writeHead(304, { etag: '"x"' });
        return void res.end();
      case '/close':
        res.writeHead(200, { connection: 'close', 'content-length': '6' });
        return void res.end('closed');
      case '/reset':
        // A head promising 100 bytes, 3 of them, then the connection is cut.
        res.writeHead(200, { 'content-length': '100' });
        res.write('abc');
        return void setTimeout(() => req.socket.destroy(), 20);
      case '/hang':
        return; // never answers
      default:
        res.writeHead(404, { 'content-length': '9' });
        return void res.end('not found');
    }
  });
}

test.before(async () => {
  server = createServer(handle);
  server.on('connection', (s: Socket) => {
    connectionsOpened++;
    serverSockets.add(s);
    s.on('close', () => serverSockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

test.after(async () => {
  for (const s of serverSockets) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
});

test('GET: status, body, text(), headers in lower case (a repeated header an array), JSON.stringify', async () => {
  const http = new ScenarioHttp();
  try {
    const res = await http.get(`${base}/length`);
    assert.is(res.status, 200);
    assert.ok(res.ok);
    assert.is(res.text(), 'hello');
    assert.instance(res.body, Uint8Array);
    assert.is(res.headers['content-type'], 'text/plain');
    assert.equal(res.headers['x-twice'], ['a', 'b']);
    // Logged as JSON, it shows what was read: headers too, the body as text.
    const logged = JSON.parse(JSON.stringify(res)) as { status: number; headers: Record<string, unknown>; body: string };
    assert.is(logged.status, 200);
    assert.is(logged.headers['content-type'], 'text/plain');
    assert.is(logged.body, 'hello');
    const missing = await http.get(new URL(`${base}/nowhere?q=1`));
    assert.is(missing.status, 404);
    assert.not.ok(missing.ok);
    assert.is(missing.text(), 'not found');
  } finally {
    http.close();
  }
});

test('a chunked 1 MiB body comes whole', async () => {
  const http = new ScenarioHttp();
  try {
    const res = await http.get(`${base}/chunked`);
    assert.is(res.body.length, 1024 * 1024);
    assert.ok(res.body.every((b) => b === 7));
  } finally {
    http.close();
  }
});

test('POST and PUT with a body and headers; json(); the server sees method, headers and body', async () => {
  const http = new ScenarioHttp();
  try {
    const res = await http.post(`${base}/echo`, JSON.stringify({ user: 'ü1' }), { headers: { 'content-type': 'application/json', 'X-Custom': 'v' } });
    assert.is(res.status, 201);
    const seen = res.json() as { method: string; headers: Record<string, string>; body: string };
    assert.is(seen.method, 'POST');
    assert.is(seen.body, JSON.stringify({ user: 'ü1' }));
    assert.is(seen.headers['content-type'], 'application/json');
    assert.is(seen.headers['x-custom'], 'v');
    assert.is(seen.headers['content-length'], String(Buffer.byteLength(JSON.stringify({ user: 'ü1' }))));
    assert.ok(seen.headers.host?.startsWith('127.0.0.1:'));
    const put = await http.request(`${base}/echo`, { method: 'PUT', body: new Uint8Array([104, 105]) });
    assert.equal(put.json() as { method: string; body: string }, { ...(put.json() as object), method: 'PUT', body: 'hi' });
  } finally {
    http.close();
  }
});

test('HEAD, 204 and 304 have no body, and the connection goes on', async () => {
  const http = new ScenarioHttp();
  try {
    const before = connectionsOpened;
    const head = await http.request(`${base}/length`, { method: 'HEAD' });
    assert.is(head.status, 200);
    assert.is(head.body.length, 0);
    assert.is(head.headers['content-length'], '5');
    assert.is((await http.get(`${base}/no-content`)).status, 204);
    assert.is((await http.get(`${base}/not-modified`)).status, 304);
    assert.is((await http.get(`${base}/length`)).text(), 'hello');
    assert.is(connectionsOpened - before, 1, 'all four on one connection');
  } finally {
    http.close();
  }
});

test('keep-alive: requests one after another share one connection; 20 at once open 20', async () => {
  const http = new ScenarioHttp();
  try {
    let before = connectionsOpened;
    for (let i = 0; i < 30; i++) assert.is((await http.get(`${base}/length`)).status, 200);
    assert.is(connectionsOpened - before, 1);
    before = connectionsOpened;
    const all = await Promise.all(Array.from({ length: 20 }, () => http.get(`${base}/length`)));
    assert.ok(all.every((r) => r.text() === 'hello'));
    assert.is(connectionsOpened - before, 19, 'one idle connection reused, 19 new');
  } finally {
    http.close();
  }
});

test('Connection: close from the server: the answer is read, the next request opens a new connection', async () => {
  const http = new ScenarioHttp();
  try {
    const before = connectionsOpened;
    assert.is((await http.get(`${base}/close`)).text(), 'closed');
    assert.is((await http.get(`${base}/close`)).text(), 'closed');
    assert.is(connectionsOpened - before, 2);
  } finally {
    http.close();
  }
});

test('a server that closes idle connections: the next request still succeeds', async () => {
  const quick = createServer((_q, r) => r.end('ok'));
  quick.keepAliveTimeout = 50;
  await new Promise<void>((r) => quick.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(quick.address() as { port: number }).port}/`;
  const http = new ScenarioHttp();
  try {
    for (let i = 0; i < 5; i++) {
      assert.is((await http.get(url)).text(), 'ok');
      await new Promise((r) => setTimeout(r, 120));
    }
  } finally {
    http.close();
    quick.closeAllConnections?.();
    await new Promise<void>((r) => quick.close(() => r()));
  }
});

test('a kept-alive connection closed as the request goes out: a GET is sent again on a new connection, a POST fails', async () => {
  // Each connection answers its first request and closes, without a word, on its second (the
  // server's idle timeout firing just as the request arrived).
  const raw: NetServer = createNetServer((s) => {
    let requests = 0;
    s.on('data', () => {
      if (++requests === 1) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      else s.destroy();
    });
  });
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(raw.address() as { port: number }).port}/`;
  const http = new ScenarioHttp();
  try {
    assert.is((await http.get(url)).text(), 'ok');
    assert.is((await http.get(url)).text(), 'ok', 'sent again on a new connection');
    const err = await http.post(url, 'x').then(() => undefined, (e: unknown) => e);
    assert.is(errorKind(err), 'ECONNRESET', 'a POST is not sent twice');
  } finally {
    http.close();
    await new Promise<void>((r) => raw.close(() => r()));
  }
});

test('a port nobody listens on: ECONNREFUSED', async () => {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const http = new ScenarioHttp();
  try {
    const err = await http.get(`http://127.0.0.1:${port}/`).then(() => undefined, (e: unknown) => e);
    assert.is(errorKind(err), 'ECONNREFUSED');
  } finally {
    http.close();
  }
});

test('the connection cut mid-response: ECONNRESET; the client goes on with new connections', async () => {
  const http = new ScenarioHttp();
  try {
    const err = await http.get(`${base}/reset`).then(() => undefined, (e: unknown) => e);
    assert.is(errorKind(err), 'ECONNRESET');
    assert.match((err as Error).message, /before the response to GET .*\/reset was complete/);
    assert.is((await http.get(`${base}/length`)).text(), 'hello');
  } finally {
    http.close();
  }
});

test('no answer within the timeout option: ETIMEDOUT naming the option', async () => {
  const http = new ScenarioHttp();
  try {
    const t0 = Date.now();
    const err = await http.get(`${base}/hang`, { timeout: 300 }).then(() => undefined, (e: unknown) => e);
    const took = Date.now() - t0;
    assert.is(errorKind(err), 'ETIMEDOUT');
    assert.match((err as Error).message, /within 300 ms \(the timeout option\)/);
    assert.ok(took >= 290, `timed out after ${took} ms`);
    await rejects(http.get(`${base}/`, { timeout: -1 }), /timeout must be a positive number of ms, got -1/);
  } finally {
    http.close();
  }
});

test('close() rejects requests in flight, and the client works again afterwards', async () => {
  const http = new ScenarioHttp();
  const pending = http.get(`${base}/hang`).then(() => undefined, (e: unknown) => e);
  await new Promise((r) => setTimeout(r, 50));
  http.close();
  assert.is(errorKind(await pending), 'the load test ended');
  assert.is((await http.get(`${base}/length`)).text(), 'hello');
  http.close();
});

test('a server that answers garbage: HPE_INVALID_RESPONSE', async () => {
  const raw: NetServer = createNetServer((s) => s.once('data', () => s.end('SSH-2.0-nope\r\n\r\n')));
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
  const http = new ScenarioHttp();
  try {
    const err = await http.get(`http://127.0.0.1:${(raw.address() as { port: number }).port}/`).then(() => undefined, (e: unknown) => e);
    assert.is(errorKind(err), 'HPE_INVALID_RESPONSE');
  } finally {
    http.close();
    await new Promise<void>((r) => raw.close(() => r()));
  }
});

test('bad input rejects: a URL, a method, a header, each named', async () => {
  const http = new ScenarioHttp();
  await rejects(http.get('not a url'), /not a URL: "not a url"/);
  await rejects(http.get('ftp://x/'), /must be http: or https:, got ftp:\/\/x\//);
  await rejects(http.request(`${base}/`, { method: 'GE T' }), /not an HTTP method: "GE T"/);
  await rejects(http.get(`${base}/`, { headers: { 'x-a': 'b\r\nx-injected: 1' } }), /header x-a holds a line break/);
  http.close();
});

test('https with a certificate the process trusts (Node)', () => {
  if (IS_DENO) return; // NODE_EXTRA_CA_CERTS is Node's; the TLS path is the same socket code.
  const dir = mkdtempSync(join(tmpdir(), 'wsf-https-'));
  try {
    const made = spawnSync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ], { encoding: 'utf8' });
    assert.is(made.status, 0, `openssl: ${made.stderr}`);
    readFileSync(join(dir, 'cert.pem'));
    const client = fileURLToPath(new URL('../shared/loadtest-http.ts', import.meta.url));
    const code = `
      import { createServer } from 'node:https';
      import { readFileSync } from 'node:fs';
      import { ScenarioHttp } from ${JSON.stringify(client)};
      const s = createServer({ key: readFileSync(${JSON.stringify(join(dir, 'key.pem'))}), cert: readFileSync(${
      JSON.stringify(join(dir, 'cert.pem'))
    }) }, (q, r) => r.end('secure ' + q.url));
      await new Promise((r) => s.listen(0, '127.0.0.1', r));
      const http = new ScenarioHttp();
      const url = 'https://localhost:' + s.address().port + '/a';
      const a = await http.get(url);
      const b = await http.get(url.replace('localhost', '127.0.0.1'));
      console.log(JSON.stringify([a.status, a.text(), b.text()]));
      http.close();
      s.close();
    `;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      encoding: 'utf8',
      env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') },
      timeout: 30_000,
    });
    assert.is(run.status, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout.trim().split('\n').pop()!), [200, 'secure /a', 'secure /a']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
