/**
 * shared/codec.ts: values round-trip, bigints of every size and sign included (wsfutures decodes
 * msgpackr's bigint extension itself, faster for large values).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Packr } from 'msgpackr';
import { decodeMessage, decodeValue, encodeMessage, encodeValue, VALUE_ATTACH_MIN_BYTES } from '../shared/codec.ts';
import { SerializationError } from '../shared/errors.ts';

test('bigints round-trip at every size and sign, around the byte and 64-bit boundaries', () => {
  const values: bigint[] = [0n, 1n, -1n, 127n, 128n, -128n, -129n, 255n, 256n];
  for (const bits of [31, 32, 63, 64, 65, 127, 128, 255, 256, 511, 512, 513, 1024, 65535, 65536, 65537, 200_000]) {
    const p = 1n << BigInt(bits);
    values.push(p, p - 1n, p + 1n, -p, -p + 1n, -p - 1n);
  }
  // An irregular large one: every byte value shows up.
  let r = 0n;
  for (let i = 0; i < 5000; i++) r = (r << 8n) | BigInt((i * 131 + 7) & 255);
  values.push(r, -r);
  for (const v of values) assert.is(decodeValue(encodeValue(v)), v, `${v.toString(16).slice(0, 20)} (${v.toString(2).length} bits)`);
  assert.equal(decodeValue(encodeValue({ list: [1n, -(2n ** 300n)], m: new Map([[2n ** 70n, 'k']]) })), { list: [1n, -(2n ** 300n)], m: new Map([[2n ** 70n, 'k']]) });
});

test("a bigint encoded by msgpackr's own packer decodes to the same value (the format is msgpackr's)", () => {
  const theirs = new Packr({ useBigIntExtension: true });
  for (const v of [5n, -(2n ** 64n), 2n ** 65536n + 12345n, -(3n ** 50000n)]) assert.is(decodeValue(theirs.pack(v)), v);
});

test('large typed arrays become attachments: views of their own memory, decoded back with their types', () => {
  const n = VALUE_ATTACH_MIN_BYTES;
  const arrays = {
    u8: Uint8Array.from({ length: n }, (_, i) => i & 255),
    f64: Float64Array.from({ length: n / 8 }, (_, i) => i * 0.5),
    i16: Int16Array.from({ length: n / 2 }, (_, i) => -i),
    u64: BigUint64Array.from({ length: n / 8 }, (_, i) => BigInt(i) << 40n),
    buf: Buffer.alloc(n + 3, 7),
  };
  const small = new Float32Array([1.5, 2.5]);
  const value = [arrays, small, arrays.u8, new Uint8Array(n - 1)];
  const attachments: Uint8Array[] = [];
  const bytes = encodeValue(value, 'v', attachments);
  assert.is(attachments.length, 5, 'one per large array, the repeated one once');
  assert.ok(bytes.byteLength < n + 200, `the msgpack bytes (${bytes.byteLength}) hold the arrays below ${n} bytes only`);
  assert.ok(attachments.every((a, k) => a.buffer === Object.values(arrays)[k]!.buffer), 'views of the arrays, not copies');
  // As received: each attachment in a buffer of its own, as ws hands over a large fragment.
  const received = attachments.map((a) => Uint8Array.from(a));
  const back = decodeValue(bytes, 'v', received) as typeof value;
  const got = back[0] as typeof arrays;
  for (const [key, original] of Object.entries(arrays)) {
    const copy = got[key as keyof typeof arrays];
    assert.is(copy.constructor, original.constructor, `${key} keeps its type`);
    assert.equal([...copy], [...original], `${key} keeps its values`);
  }
  assert.is(got.u8.buffer, received[0]!.buffer, 'decoded as a view of the received bytes, without a copy');
  assert.is(back[2], got.u8, 'a repeated array is still one array');
  assert.equal([...(back[1] as Float32Array)], [1.5, 2.5]);
  assert.is((back[3] as Uint8Array).byteLength, n - 1);
  // Bytes that share their buffer (or sit at an odd offset) are copied into an aligned array.
  const shifted = received.map((a) => {
    const host = new Uint8Array(a.byteLength + 3);
    host.set(a, 3);
    return host.subarray(3);
  });
  const fromShifted = (decodeValue(bytes, 'v', shifted) as typeof value)[0] as typeof arrays;
  assert.equal([...fromShifted.f64], [...arrays.f64]);
  assert.is(fromShifted.f64.byteOffset, 0);
  // Without an attachment list, or with one too short, decoding fails clearly.
  assert.throws(
    () => decodeValue(bytes, 'the result of f()', []),
    (e: Error) => e instanceof SerializationError && /the result of f\(\) could not be decoded: a reference to attachment 0, of 0/.test(e.message),
  );
  // Without a list to collect into, everything is copied inline, as before.
  assert.equal(decodeValue(encodeValue(value)), value);
});

test('protocol envelopes and other msgpackr users are not affected by the attachment extension', () => {
  const a = new Uint8Array(VALUE_ATTACH_MIN_BYTES * 2).fill(9);
  const env = decodeMessage(encodeMessage({ op: 'run', tasks: [{ a }] })) as { tasks: { a: Uint8Array }[] };
  assert.ok(env.tasks[0]!.a instanceof Uint8Array && env.tasks[0]!.a.byteLength === a.byteLength, 'a bin field stays bin');
  const theirs = new Packr({ moreTypes: true, structuredClone: true });
  const big = new Float64Array(VALUE_ATTACH_MIN_BYTES).fill(0.25);
  const back = theirs.unpack(theirs.pack({ big, buf: Buffer.alloc(VALUE_ATTACH_MIN_BYTES, 1), i8: new Int8Array([-1]) }));
  assert.ok(back.big instanceof Float64Array && back.big.length === big.length && back.big[7] === 0.25);
  assert.ok(Buffer.isBuffer(back.buf) && back.buf.length === VALUE_ATTACH_MIN_BYTES);
  assert.equal([...back.i8], [-1]);
});

test.run();
