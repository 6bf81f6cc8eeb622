/**
 * shared/codec.ts: values round-trip, bigints of every size and sign included (wsfutures decodes
 * msgpackr's bigint extension itself, faster for large values).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Packr } from 'msgpackr';
import { decodeValue, encodeValue } from '../shared/codec.ts';

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

test.run();
