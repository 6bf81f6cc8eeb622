/**
 * Generators (fast-check arbitraries) of what a hostile or broken peer may send after it has
 * authenticated: arbitrary msgpack values of every type, valid messages of every op in either
 * direction, valid messages mutated, and hand-made byte sequences (huge declared lengths,
 * truncated frames, deep nesting, unknown extensions, attachment heads that do not add up).
 * Used by test/protocol-fuzz.test.ts and scripts/fuzz.ts.
 */
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { encodeValue } from '../../shared/codec.ts';
import { encodeFrame } from '../../shared/frames.ts';

/** One WebSocket message: binary (its fragments, usually one) or text. */
export interface Frame {
  parts: Uint8Array[];
  text?: boolean;
  /** What it is, for the report of a failing case. */
  label: string;
}

export type Direction = 'to-coordinator' | 'to-node';

// Two encoders for arbitrary values: plain msgpack (as the protocol's envelopes are) with
// bigints as extensions, and msgpackr's structured clone (Map, Set, Date, RegExp, Error, typed
// arrays and shared references as extensions the envelope decoder also understands).
const plainPackr = new Packr({ useRecords: false, mapsAsObjects: true, useBigIntExtension: true, moreTypes: true } as ConstructorParameters<typeof Packr>[0]);
const clonePackr = new Packr({ structuredClone: true, useBigIntExtension: true, moreTypes: true } as ConstructorParameters<typeof Packr>[0]);

function pack(value: unknown, structured: boolean): Uint8Array {
  try {
    return (structured ? clonePackr : plainPackr).pack(value);
  } catch {
    return plainPackr.pack(String(typeof value));
  }
}

/** Keys that have broken code before, and the protocol's own field names. */
const KEYS = [
  'op',
  '__proto__',
  'constructor',
  'prototype',
  'then',
  'toString',
  'valueOf',
  'hasOwnProperty',
  'id',
  'items',
  'tasks',
  'ids',
  'a',
  'v',
  'x',
  'e',
  'c',
  'd',
  'f',
  'm',
  'n',
  't',
  'name',
  'message',
  'stack',
  'props',
  'cause',
  'errors',
  'code',
  'slots',
  'lane',
  'node',
  'ticket',
  'modules',
  'hash',
  'exit',
  'how',
  'task',
  'crashed',
];
const OPS = [
  'register',
  'fetch-module',
  'ready',
  'attach',
  'lane-died',
  'results',
  'stolen',
  'ping',
  'pong',
  'drain',
  'error',
  'welcome',
  'module',
  'attached',
  'run',
  'cancel',
  'steal',
  'kill',
  'drained',
  'shutdown',
];

const key = fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 6 }));
const smallInt = fc.oneof(fc.integer({ min: -3, max: 40 }), fc.constantFrom(0, -1, 2 ** 31, 2 ** 32, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER));

const leaf: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, undefined, true, false, NaN, Infinity, -Infinity, -0, 2 ** 53, 2 ** 64, -(2 ** 63), 1e308),
  fc.integer(),
  fc.double(),
  fc.bigInt({ min: -(1n << 70n), max: 1n << 70n }),
  fc.bigInt({ min: -(1n << 600n), max: 1n << 600n }),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.constantFrom(...OPS),
  fc.uint8Array({ maxLength: 24 }),
  fc.constantFrom(new Float64Array([1.5, NaN]), new BigInt64Array([-1n]), new Int8Array(3), new Date(0), /a+/g, new Error('boom'), new Set([1, 'a']), new Map([[1, 2]])),
);

/** Any msgpack value, nested a few levels. */
export const anyValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown; array: unknown[]; object: Record<string, unknown> }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', maxDepth: 4 }, leaf, tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 4 }),
  object: fc.dictionary(key, tie('value'), { maxKeys: 4 }),
})).value;

const str = fc.oneof(fc.string({ maxLength: 16 }), fc.constantFrom('', 'w-x', 'add', 'echo', 'node', 'deno'));
const bytes = fc.oneof(fc.uint8Array({ maxLength: 32 }), anyValue.map((v) => safeEncodeValue(v)));
const hash = fc.oneof(fc.stringMatching(/^[0-9a-f]{64}$/), str);
const nonNeg = fc.oneof(fc.double({ min: 0, max: 1e6, noNaN: true }), fc.constant(0));

function safeEncodeValue(v: unknown): Uint8Array {
  try {
    return encodeValue(v);
  } catch {
    return encodeValue(null);
  }
}

/**
 * Task ids of fuzz messages stay below this: the real work of a fuzz run uses ids far above it,
 * so a fuzzed `run` or `results` cannot be mistaken for real work by a fake coordinator.
 */
export const FUZZ_ID_MAX = 1000;
const taskId = fc.integer({ min: -5, max: FUZZ_ID_MAX });

const wireError: fc.Arbitrary<Record<string, unknown>> = fc.record(
  {
    name: fc.oneof(str, fc.constantFrom('Error', 'TypeError', 'AggregateError', 'CancelledError', 'constructor', 'toString', '__proto__')),
    message: str,
    stack: str,
    code: anyValue,
    props: fc.dictionary(key, anyValue, { maxKeys: 3 }),
    cause: fc.oneof(fc.record({ value: anyValue }), fc.record({ name: str, message: str })),
    errors: fc.array(fc.record({ name: str, message: str }), { maxLength: 2 }),
  },
  { requiredKeys: ['name', 'message'] },
);

/** A valid message of each op a worker node sends, with arbitrary field values of the right types. */
const toCoordinator: Record<string, fc.Arbitrary<Record<string, unknown>>> = {
  register: fc.record(
    {
      name: str,
      slots: fc.integer({ min: 1, max: 4 }),
      runtime: fc.constantFrom('node', 'deno'),
      runtimeVersion: str,
      hostname: str,
      pid: fc.integer({ min: 0, max: 99999 }),
      localModules: fc.dictionary(str, str, { maxKeys: 2 }),
      maxMessageBytes: fc.integer({ min: 1024, max: 2 ** 30 }),
    },
    { requiredKeys: ['name', 'slots', 'runtime', 'runtimeVersion', 'hostname', 'pid'] },
  ),
  'fetch-module': fc.record({ id: smallInt }),
  ready: fc.constant({}),
  attach: fc.record({ node: str, lane: smallInt, ticket: str }),
  'lane-died': fc.record({ lane: smallInt, how: str, task: taskId, crashed: fc.boolean() }, { requiredKeys: ['lane', 'how', 'crashed'] }),
  results: fc.record({
    items: fc.array(fc.record({ id: taskId, v: bytes, x: fc.array(fc.uint8Array({ maxLength: 16 }), { maxLength: 2 }), e: wireError, d: nonNeg }, { requiredKeys: ['id'] }), {
      maxLength: 4,
    }),
  }),
  stolen: fc.record({ ids: fc.array(taskId, { maxLength: 4 }) }),
  ping: fc.record({ t: fc.double({ noNaN: true, noDefaultInfinity: true }) }),
  pong: fc.record({ t: fc.double({ noNaN: true, noDefaultInfinity: true }) }),
  drain: fc.constant({}),
  error: fc.record({ code: str, message: str }),
};

/**
 * Export names a fuzzed `run` may call in the fixture module: quick ones (a task that sleeps
 * for a fuzzed number of hours would hold its lane, which no coordinator would wait for
 * either), one that ends its thread, and names that do not exist.
 */
const FUZZ_TASKS = ['add', 'echo', 'failWith', 'throwNamed', 'returnsFunction', 'exitThread', 'fillReused', 'nope', '', 'constructor', '__proto__', 'toString'];

/** A valid message of each op a coordinator sends. */
const toNode: Record<string, fc.Arbitrary<Record<string, unknown>>> = {
  welcome: fc.record(
    {
      workerId: str,
      modules: fc.array(fc.record({ id: smallInt, url: fc.oneof(str, fc.constant('file:///nowhere/tasks.ts')), hash }), { maxLength: 2 }),
      heartbeatIntervalMs: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      heartbeatTimeoutMs: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      maxMessageBytes: fc.integer({ min: 1024, max: 2 ** 31 }),
      laneTicket: str,
      busyPollMicros: fc.integer({ min: 0, max: 10_000 }),
    },
    { requiredKeys: ['workerId', 'modules', 'heartbeatIntervalMs', 'heartbeatTimeoutMs', 'maxMessageBytes', 'laneTicket'] },
  ),
  module: fc.record({ id: smallInt, hash, code: str }),
  attached: fc.constant({}),
  run: fc.record({
    tasks: fc.array(
      fc.record({
        id: taskId,
        m: fc.integer({ min: -1, max: 2 }),
        f: fc.constantFrom(...FUZZ_TASKS),
        a: bytes,
        x: fc.array(fc.uint8Array({ maxLength: 16 }), { maxLength: 2 }),
        c: fc.constant(1),
        n: smallInt,
      }, { requiredKeys: ['id', 'm', 'f', 'a', 'n'] }),
      { maxLength: 3 },
    ),
  }),
  cancel: fc.record({ ids: fc.array(taskId, { maxLength: 4 }) }),
  steal: fc.record({ ids: fc.array(taskId, { maxLength: 4 }) }),
  kill: fc.record({ lane: smallInt, reason: str, task: taskId }, { requiredKeys: ['lane', 'reason'] }),
  drained: fc.constant({}),
  ping: fc.record({ t: fc.double({ noNaN: true, noDefaultInfinity: true }) }),
  pong: fc.record({ t: fc.double({ noNaN: true, noDefaultInfinity: true }) }),
  // Only `exit: false`: `exit: true` legitimately tells a node to stop for good.
  shutdown: fc.constant({ exit: false }),
  error: fc.record({ code: str, message: str }),
};

function validMessage(direction: Direction): fc.Arbitrary<Record<string, unknown>> {
  const table = direction === 'to-coordinator' ? toCoordinator : toNode;
  return fc.oneof(...Object.entries(table).map(([op, fields]) => fields.map((f) => ({ op, ...f }))));
}

type Mutation = { kind: 'delete'; key: string } | { kind: 'set'; key: string; value: unknown } | { kind: 'op'; op: unknown };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('delete' as const), key }),
  fc.record({ kind: fc.constant('set' as const), key, value: anyValue }),
  fc.record({ kind: fc.constant('op' as const), op: fc.oneof(fc.constantFrom(...OPS), anyValue) }),
);

function mutate(msg: Record<string, unknown>, mutations: Mutation[]): Record<string, unknown> {
  const out: Record<string, unknown> = { ...msg };
  for (const m of mutations) {
    if (m.kind === 'delete') delete out[m.key];
    else if (m.kind === 'op') out.op = m.op;
    else Object.defineProperty(out, m.key, { value: m.value, enumerable: true, writable: true, configurable: true });
  }
  // A fuzzed shutdown stays `exit: false` (see toNode).
  if (out.op === 'shutdown' && out.exit === true) out.exit = false;
  return out;
}

const binary = (label: string, b: Uint8Array): Frame => ({ parts: [b], label });
const concat = (...parts: ArrayLike<number>[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const enc = new TextEncoder();
const fixstr = (s: string) => concat([0xa0 | s.length], enc.encode(s));

/** A map {op: <op>, <field>: <raw bytes>}: a value msgpack can hold that no encoder of ours writes. */
function mapWithRaw(op: string, field: string, raw: Uint8Array): Uint8Array {
  return concat([0x82], fixstr('op'), fixstr(op), fixstr(field), raw);
}

/** Hand-made byte sequences: huge declared lengths, deep nesting, extensions of every type, bad attachment heads. */
const crafted: fc.Arbitrary<Frame> = fc.oneof(
  fc.constantFrom(
    binary('str32 declaring 4 GiB', Uint8Array.of(0xdb, 0xff, 0xff, 0xff, 0xff, 0x61)),
    binary('bin32 declaring 2 GiB', Uint8Array.of(0xc6, 0x7f, 0xff, 0xff, 0xff, 0)),
    binary('array32 declaring 4 G items', Uint8Array.of(0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0)),
    binary('map32 declaring 4 G entries', Uint8Array.of(0xdf, 0xff, 0xff, 0xff, 0xff, 0xa2, 0x6f, 0x70)),
    binary('ext32 declaring 4 GiB', Uint8Array.of(0xc9, 0xff, 0xff, 0xff, 0xff, 0x42, 1)),
    binary('map declaring 4 G entries, op first', concat([0xdf, 0xff, 0xff, 0xff, 0xff], fixstr('op'), fixstr('ping'))),
    binary('results whose items declare 4 G entries', concat([0x82], fixstr('op'), fixstr('results'), fixstr('items'), [0xdd, 0xff, 0xff, 0xff, 0xff])),
    binary('the never-used byte 0xc1', Uint8Array.of(0xc1)),
    binary('empty', new Uint8Array(0)),
    binary('attachment head only', Uint8Array.of(0, 0, 0)),
    binary('attachment head declaring 4 GiB of envelope', Uint8Array.of(0, 0xff, 0xff, 0xff, 0xff, 0x80)),
    binary('deeply nested arrays (20000)', concat(new Uint8Array(20000).fill(0x91), [0xc0])),
    binary('op holding deeply nested arrays', mapWithRaw('ping', 't', concat(new Uint8Array(5000).fill(0x91), [0x01]))),
    binary('deeply nested maps', concat(...Array.from({ length: 3000 }, () => concat([0x81], fixstr('op'))), [0xc0])),
  ),
  // Every extension type, with random data, as the op or as a field.
  fc.tuple(
    fc.integer({ min: -128, max: 127 }),
    fc.uint8Array({ maxLength: 12 }),
    fc.constantFrom(...OPS),
    fc.constantFrom('op', 't', 'items', 'tasks', 'name', 'ids', 'id', 'code'),
  ).map(([type, data, op, field]) => {
    const ext = concat([0xc7, data.length, type & 0xff], data);
    return binary(`extension ${type} (${data.length} bytes) as "${field}"`, field === 'op' ? concat([0x81], fixstr('op'), ext) : mapWithRaw(op, field, ext));
  }),
  // Attachment form with lengths that may or may not add up.
  fc.tuple(fc.constantFrom('run', 'results', 'ping', 'error'), fc.array(fc.integer({ min: -1, max: 70_000 }), { minLength: 1, maxLength: 3 }), fc.integer({ min: 0, max: 70_000 }))
    .map(([op, lengths, extra]) => {
      const listKey = op === 'run' ? 'tasks' : 'items';
      const envelope = plainPackr.pack({ op, [listKey]: lengths.map((n, i) => (op === 'run' ? { id: i, m: 0, f: 'add', a: n, n: 1 } : { id: i, v: n, x: [n] })) });
      const head = new Uint8Array(5);
      new DataView(head.buffer).setUint32(1, envelope.byteLength);
      return { parts: [concat(head, envelope), new Uint8Array(extra)], label: `attachment form of "${op}" declaring ${lengths.join(', ')} with ${extra} bytes after` };
    }),
);

/** Frames for a peer in `direction`: see the file comment. `maxMessageBytes`: the receiver's limit. */
export function frameArbitrary(direction: Direction, maxMessageBytes: number): fc.Arbitrary<Frame> {
  const valid = validMessage(direction);
  return fc.oneof(
    { weight: 3, arbitrary: valid.map((m) => encodedMessage('valid', m)) },
    { weight: 4, arbitrary: fc.tuple(valid, fc.array(mutation, { minLength: 1, maxLength: 3 })).map(([m, ms]) => encodedMessage('mutated', mutate(m, ms))) },
    { weight: 2, arbitrary: fc.tuple(anyValue, fc.boolean()).map(([v, structured]) => binary(`any value (${structured ? 'structured clone' : 'plain'})`, pack(v, structured))) },
    {
      weight: 2,
      arbitrary: fc.tuple(valid, fc.nat()).map(([m, cut]) => {
        const b = encodeMessage(m);
        return binary(`"${String(m.op)}" truncated`, b.subarray(0, b.byteLength === 0 ? 0 : cut % b.byteLength));
      }),
    },
    { weight: 2, arbitrary: crafted },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => binary('random bytes', b)) },
    { weight: 1, arbitrary: fc.string({ maxLength: 20 }).map((s) => ({ parts: [enc.encode(s)], text: true, label: 'a text frame' })) },
    { weight: 1, arbitrary: fc.constant(null).map(() => binary(`${maxMessageBytes + 1} bytes (over maxMessageBytes)`, new Uint8Array(maxMessageBytes + 1))) },
  );
}

function encodeMessage(m: Record<string, unknown>): Uint8Array {
  return pack(m, false);
}

function encodedMessage(kind: string, m: Record<string, unknown>): Frame {
  let parts: Uint8Array[];
  try {
    // The protocol's own framing (attachments for large payloads) when it can encode it.
    parts = typeof m.op === 'string' ? encodeFrame(m as { op: string }) : [encodeMessage(m)];
  } catch {
    parts = [encodeMessage(m)];
  }
  return { parts, label: `${kind} "${typeof m.op === 'string' ? m.op : typeof m.op}"` };
}
