/**
 * shared/frames.ts: large payloads travel as attachments after the envelope, small ones inside
 * it; a frame whose attachments do not add up is malformed, whatever its lengths claim.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ATTACH_MIN_BYTES, decodeFrame, encodeFrame, utf8Length } from '../shared/frames.ts';
import { encodeMessage } from '../shared/codec.ts';
import { invalidC2W } from '../shared/protocol.ts';

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i + seed) & 255);
const join = (parts: Uint8Array[]) => Buffer.concat(parts);
/** The message with byte fields as plain arrays (a decoded field is a Buffer under Node). */
const plain = (msg: unknown) => JSON.parse(JSON.stringify(msg, (_, v) => (v instanceof Uint8Array ? [...v] : v?.type === 'Buffer' ? v.data : v)));

test('a message without large payloads is one part, plain msgpack', () => {
  const msg = { op: 'run', tasks: [{ id: 1, m: 0, f: 'add', a: bytes(10, 1), n: 1 }] };
  const parts = encodeFrame(msg);
  assert.is(parts.length, 1);
  assert.equal(plain(decodeFrame(parts[0]!)), plain(msg));
});

test('large payloads become attachments, in order, and come back as views of the frame', () => {
  const a1 = bytes(ATTACH_MIN_BYTES, 1);
  const small = bytes(100, 2);
  const a2 = bytes(ATTACH_MIN_BYTES + 7, 3);
  const msg = { op: 'run', tasks: [{ id: 1, m: 0, f: 'echo', a: a1, n: 1 }, { id: 2, m: 0, f: 'echo', a: small, n: 1 }, { id: 3, m: 0, f: 'echo', a: a2, n: 2 }] };
  const parts = encodeFrame(msg);
  assert.is(parts.length, 3, 'envelope and two attachments');
  assert.ok(parts[1] === a1 && parts[2] === a2, 'the payloads themselves are sent, not copies');
  assert.equal(msg.tasks[0]!.a, a1, 'the message passed in is not changed');
  const frame = join(parts);
  const back = decodeFrame(frame) as typeof msg;
  assert.is(invalidC2W(back), undefined, 'valid once the attachments are back in place');
  assert.equal([...back.tasks.map((t) => Buffer.from(t.a).equals(Buffer.from(msg.tasks[t.id - 1]!.a)))], [true, true, true]);
  assert.is(back.tasks[0]!.a.buffer, frame.buffer, 'a view, not a copy');
  const results = { op: 'results', items: [{ id: 1, v: a2, d: 1 }, { id: 2, d: 0 }] };
  assert.equal(plain(decodeFrame(join(encodeFrame(results)))), plain(results));
});

test('attachments that do not add up, or where they cannot be, are malformed', () => {
  const big = bytes(ATTACH_MIN_BYTES, 0);
  const run: { op: string; tasks: unknown[] } = { op: 'run', tasks: [{ id: 1, m: 0, f: 'echo', a: big, n: 1 }] };
  const good = join(encodeFrame(run));
  const cases: [string, Uint8Array][] = [
    ['truncated header', good.subarray(0, 3)],
    ['one byte short', good.subarray(0, good.length - 1)],
    ['a byte too many', Buffer.concat([good, Buffer.of(0)])],
    ['envelope past the end', Buffer.concat([Buffer.of(0, 0x7f, 0xff, 0xff, 0xff), encodeMessage({ op: 'run', tasks: [] })])],
  ];
  const envelope = (msg: unknown) => {
    const env = encodeMessage(msg);
    const head = Buffer.alloc(5);
    head.writeUInt32BE(env.length, 1);
    return Buffer.concat([head, env]);
  };
  cases.push(['attachments on a ping', envelope({ op: 'ping', t: 1 })]);
  cases.push(['a negative length', Buffer.concat([envelope({ op: 'run', tasks: [{ id: 1, m: 0, f: 'x', a: -5, n: 1 }] }), Buffer.alloc(5)])]);
  cases.push(['a length past the end', envelope({ op: 'results', items: [{ id: 1, v: 1 << 30 }] })]);
  for (const [name, frame] of cases) assert.throws(() => decodeFrame(frame), undefined, name);
});

test('as the fragments ws delivers: attachments are the fragments themselves, however the bytes were split', () => {
  const a1 = bytes(ATTACH_MIN_BYTES, 1);
  const a2 = bytes(ATTACH_MIN_BYTES + 3, 5);
  const msg = { op: 'results', items: [{ id: 1, v: a1, d: 1 }, { id: 2, v: bytes(9, 4), d: 2 }, { id: 3, v: a2, d: 3 }] };
  // Each part copied, as ws would deliver it from the socket.
  const parts = encodeFrame(msg).map((p) => Buffer.from(p));
  const back = decodeFrame(parts) as typeof msg;
  assert.is((back.items[0]!.v as Uint8Array).buffer, parts[1]!.buffer, 'the first attachment is a view of its fragment');
  assert.is((back.items[2]!.v as Uint8Array).buffer, parts[2]!.buffer, 'the second attachment is a view of its fragment');
  assert.equal(plain(back), plain(msg));
  // A peer may split the same bytes into fragments anywhere: same message.
  const whole = join(encodeFrame(msg));
  for (const cuts of [[1], [3, 7], [5 + 10], [whole.length - ATTACH_MIN_BYTES - 1, whole.length - 2], [ATTACH_MIN_BYTES, ATTACH_MIN_BYTES + 1, ATTACH_MIN_BYTES + 2]]) {
    const split: Uint8Array[] = [];
    let at = 0;
    for (const cut of [...cuts, whole.length]) {
      split.push(whole.subarray(at, cut), new Uint8Array(0));
      at = cut;
    }
    assert.equal(plain(decodeFrame(split)), plain(msg), `cut at ${cuts.join(', ')}`);
  }
  // A plain message in fragments, and malformed attachments in fragments.
  const ping = encodeMessage({ op: 'ping', t: 5 });
  assert.equal(decodeFrame([ping.subarray(0, 2), ping.subarray(2)]), { op: 'ping', t: 5 });
  assert.throws(() => decodeFrame([whole.subarray(0, 2), whole.subarray(2, whole.length - 1)]), /runs past the end/);
  assert.throws(() => decodeFrame([whole, Buffer.of(1)]), /1 bytes after the last attachment/);
  assert.throws(() => decodeFrame([Buffer.of(0, 0), Buffer.of(0)]), /truncated attachment header/);
  assert.throws(() => decodeFrame([]), undefined, 'an empty message');
});

test('utf8Length counts the bytes TextEncoder writes, surrogate pairs and lone surrogates included', () => {
  const encoder = new TextEncoder();
  const cases = ['', 'noop', 'été', '€', '😀', 'a😀b', '\ud800', '\udc00', 'x\ud800y', '\ud800\ud800\udc00', '\udc00\ud800'];
  // Strings of random code units: every range, and pairs or lone halves as they fall.
  let seed = 7;
  for (let k = 0; k < 500; k++) {
    let s = '';
    for (let j = 0; j < 6; j++) s += String.fromCharCode((seed = (seed * 48271) % 2147483647) % 0x10000);
    cases.push(s);
  }
  for (const s of cases) assert.is(utf8Length(s), encoder.encode(s).byteLength, JSON.stringify(s));
});

test.run();
