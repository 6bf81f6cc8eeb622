/**
 * ctx.http's response parser on its own (no sockets): each response of the table parsed whole,
 * then split into pieces at every byte and at random places (fast-check) — the result must
 * not depend on how the bytes arrive — and malformed responses rejected.
 */
import { Buffer } from 'node:buffer';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { HttpParseError, MAX_HEAD_BYTES, parseHeaderLines, ResponseParser } from '../shared/loadtest-http-parser.ts';

interface Outcome {
  status: number;
  headers: Record<string, string | string[]>;
  body: string;
  keepAlive: boolean;
  /** Bytes after the response. */
  rest: number;
  /** Whether the response needed the connection's end to complete. */
  untilClose: boolean;
}

/** Feeds `pieces` in order; `end` tells the parser the connection closed after them. */
function parse(pieces: Buffer[], noBody = false, end = false): Outcome {
  const parser = new ResponseParser();
  parser.start(noBody);
  let rest = 0;
  for (const piece of pieces) {
    if (parser.done) {
      rest += piece.length;
      continue;
    }
    const used = parser.execute(piece);
    assert.ok(used >= 0 && used <= piece.length, `used ${used} of ${piece.length}`);
    rest += piece.length - used;
  }
  let untilClose = false;
  if (!parser.done && end) {
    assert.ok(parser.finish(), 'the response was cut short');
    untilClose = true;
  }
  assert.ok(parser.done, 'the response is not complete');
  return { status: parser.status, headers: parseHeaderLines(parser.head), body: Buffer.from(parser.body).toString('latin1'), keepAlive: parser.keepAlive, rest, untilClose };
}

const splitAt = (buf: Buffer, cuts: number[]) => {
  const at = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of at) {
    out.push(buf.subarray(from, c));
    from = c;
  }
  out.push(buf.subarray(from));
  return out;
};

const cases: { name: string; raw: string; noBody?: boolean; end?: boolean; expect: Partial<Outcome> }[] = [
  {
    name: 'Content-Length',
    raw: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello',
    expect: { status: 200, body: 'hello', keepAlive: true, headers: { 'content-type': 'text/plain', 'content-length': '5' } },
  },
  { name: 'Content-Length: 0', raw: 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', expect: { status: 200, body: '', keepAlive: true } },
  {
    name: 'chunked, with extensions and trailers',
    raw: 'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: 1\r\n\r\n',
    expect: { status: 201, body: 'helloabcdefghijklmnopqrstuvwxyz', keepAlive: true },
  },
  { name: 'chunked, empty', raw: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n', expect: { status: 200, body: '' } },
  {
    name: 'chunked wins over Content-Length, and the connection is not reused',
    raw: 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    expect: { body: 'abc', keepAlive: false },
  },
  {
    name: 'no length: the body lasts until the close',
    raw: 'HTTP/1.1 200 OK\r\nX-A: b\r\n\r\nall of this',
    end: true,
    expect: { body: 'all of this', keepAlive: false, untilClose: true },
  },
  { name: 'HEAD: no body whatever Content-Length says', raw: 'HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n', noBody: true, expect: { body: '', keepAlive: true } },
  { name: '204: no body', raw: 'HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n', expect: { status: 204, body: '', keepAlive: true } },
  { name: '304: no body', raw: 'HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n', expect: { status: 304, body: '' } },
  {
    name: 'interim 100 and 103 skipped',
    raw: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
    expect: { status: 200, body: 'ok', headers: { 'content-length': '2' } },
  },
  { name: 'Connection: close', raw: 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok', expect: { keepAlive: false, body: 'ok' } },
  { name: 'Connection: Keep-Alive, Close', raw: 'HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 0\r\n\r\n', expect: { keepAlive: false } },
  { name: 'HTTP/1.0 without keep-alive', raw: 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok', expect: { keepAlive: false, body: 'ok' } },
  { name: 'HTTP/1.0 with keep-alive', raw: 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok', expect: { keepAlive: true } },
  { name: 'a status line without a reason', raw: 'HTTP/1.1 503\r\nContent-Length: 0\r\n\r\n', expect: { status: 503 } },
  {
    name: 'a header sent twice is an array; names in lower case, values trimmed',
    raw: 'HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSET-COOKIE:b=2 \r\nX-Empty:\r\nContent-Length: 0\r\n\r\n',
    expect: { headers: { 'set-cookie': ['a=1', 'b=2'], 'x-empty': '', 'content-length': '0' } },
  },
  { name: 'bytes after the response are left over', raw: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA', expect: { body: 'ok', rest: 5 } },
  { name: 'a binary body', raw: 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n\r\n\0\xff', expect: { body: '\r\n\0\xff' } },
];

for (const c of cases) {
  test(`${c.name}: whole, and split at every byte`, () => {
    const raw = Buffer.from(c.raw, 'latin1');
    const whole = parse([raw], c.noBody, c.end);
    for (const [key, value] of Object.entries(c.expect)) assert.equal(whole[key as keyof Outcome], value, key);
    for (let i = 0; i <= raw.length; i++) assert.equal(parse([raw.subarray(0, i), raw.subarray(i)], c.noBody, c.end), whole, `split at ${i}`);
    const bytes = Array.from({ length: raw.length }, (_, i) => raw.subarray(i, i + 1));
    assert.equal(parse(bytes, c.noBody, c.end), whole, 'one byte at a time');
  });
}

test('every response of the table, cut at random places: the same result', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: cases.length - 1 }), fc.array(fc.nat(), { maxLength: 12 }), (i, cuts) => {
      const c = cases[i]!;
      const raw = Buffer.from(c.raw, 'latin1');
      assert.equal(parse(splitAt(raw, cuts), c.noBody, c.end), parse([raw], c.noBody, c.end));
    }),
    { numRuns: 2000 },
  );
});

test('a random chunked body, cut at random places: the bytes come out whole', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 20 }), (chunks, cuts) => {
      const parts = [Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')];
      for (const chunk of chunks) parts.push(Buffer.from(`${chunk.length.toString(16)}\r\n`), Buffer.from(chunk), Buffer.from('\r\n'));
      parts.push(Buffer.from('0\r\n\r\n'));
      const out = parse(splitAt(Buffer.concat(parts), cuts));
      assert.equal(out.body, Buffer.concat(chunks.map((c) => Buffer.from(c))).toString('latin1'));
      assert.is(out.rest, 0);
    }),
    { numRuns: 500 },
  );
});

const malformed: { name: string; raw: string; says: RegExp }[] = [
  { name: 'not HTTP', raw: 'SSH-2.0-OpenSSH\r\n\r\n', says: /not an HTTP\/1.x status line/ },
  { name: 'a status of two digits', raw: 'HTTP/1.1 20 OK\r\n\r\n', says: /status line/ },
  { name: 'a bad Content-Length', raw: 'HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n', says: /bad Content-Length/ },
  { name: 'two different Content-Lengths', raw: 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', says: /bad Content-Length/ },
  { name: 'a header line without a colon', raw: 'HTTP/1.1 200 OK\r\nno colon here\r\n\r\n', says: /without a colon/ },
  { name: 'a bad chunk size', raw: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', says: /bad chunk size/ },
  { name: 'a chunk longer than its size', raw: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n', says: /longer than its size/ },
  { name: 'a 101 never asked for', raw: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n', says: /switched protocols/ },
];

for (const m of malformed) {
  test(`malformed: ${m.name} throws HttpParseError (code HPE_INVALID_RESPONSE), whole or split`, () => {
    const raw = Buffer.from(m.raw, 'latin1');
    for (let i = 0; i <= raw.length; i++) {
      const parser = new ResponseParser();
      parser.start(false);
      try {
        parser.execute(raw.subarray(0, i));
        parser.execute(raw.subarray(i));
        assert.unreachable(`split at ${i}: no error`);
      } catch (err) {
        assert.instance(err, HttpParseError);
        assert.is((err as HttpParseError).code, 'HPE_INVALID_RESPONSE');
        assert.match((err as Error).message, m.says);
      }
    }
  });
}

test('a head that never ends is refused past the limit', () => {
  const parser = new ResponseParser();
  parser.start(false);
  parser.execute(Buffer.from('HTTP/1.1 200 OK\r\n'));
  assert.throws(() => {
    for (let i = 0; i < 100; i++) parser.execute(Buffer.from(`X-Filler-${i}: ${'a'.repeat(1000)}\r\n`));
  }, (err: Error) => err instanceof HttpParseError && err.message.includes(String(MAX_HEAD_BYTES)));
});

test('cut short: finish() says the response is not complete', () => {
  for (const raw of ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab', 'HTTP/1.1 200 OK\r\nContent-Le']) {
    const parser = new ResponseParser();
    parser.start(false);
    parser.execute(Buffer.from(raw));
    assert.not.ok(parser.done);
    assert.ok(parser.started);
    assert.not.ok(parser.finish(), raw);
  }
  const fresh = new ResponseParser();
  fresh.start(false);
  assert.not.ok(fresh.started, 'no byte yet: not started');
});

test('Keep-Alive: timeout=N is read (ms)', () => {
  const parser = new ResponseParser();
  parser.start(false);
  parser.execute(Buffer.from('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n'));
  assert.is(parser.keepAliveMs, 5000);
});

test.run();
