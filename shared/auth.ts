/**
 * Mutual challenge–response authentication from a shared token (see the handshake in
 * protocol.ts). Pure functions over bytes: the coordinator and the worker node each call
 * their half; neither ever sends the token.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { HANDSHAKE, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION } from './protocol.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Derives the HMAC key from the token (so the raw token is not used as a key directly). */
export function deriveKey(token: string): Uint8Array {
  return createHash('sha256').update('wsfutures/key').update(token).digest();
}

/** A random token for pools that listen only on loopback and spawn their own workers. */
export function generateToken(): string {
  return randomBytes(24).toString('base64url');
}

function proof(key: Uint8Array, label: string, a: Uint8Array, b: Uint8Array): Uint8Array {
  return createHmac('sha256', key).update(label).update(a).update(b).digest();
}

function magicOf(frame: Uint8Array): string {
  return dec.decode(frame.subarray(0, 4));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** What to do about a wrong token; the worker node shows it in full (a close reason may be cut). */
export const WRONG_TOKEN_ADVICE = "start it with the coordinator's token (--token or WSFUTURES_TOKEN)";

export type HandshakeFailure = { code: 'WSF_AUTH_FAILED' | 'WSF_VERSION_MISMATCH' | 'WSF_PROTOCOL'; message: string };

// ---- coordinator side -------------------------------------------------------------------------

export function makeHello(): { frame: Uint8Array; nonce: Uint8Array } {
  const nonce = randomBytes(HANDSHAKE.NONCE_BYTES);
  return { frame: concat(enc.encode(HANDSHAKE.HELLO), Uint8Array.of(MIN_PROTOCOL_VERSION, PROTOCOL_VERSION), nonce), nonce };
}

/**
 * Checks a worker's AUTH frame. On success returns the chosen version and the AUTH_OK frame
 * that proves the coordinator's own knowledge of the token.
 */
export function checkAuth(frame: Uint8Array, key: Uint8Array, helloNonce: Uint8Array): { ok: true; version: number; reply: Uint8Array } | ({ ok: false } & HandshakeFailure) {
  const N = HANDSHAKE.NONCE_BYTES;
  const P = HANDSHAKE.PROOF_BYTES;
  if (frame.length !== 4 + 1 + N + P || magicOf(frame) !== HANDSHAKE.AUTH) {
    return { ok: false, code: 'WSF_PROTOCOL', message: 'expected an AUTH handshake frame: is the peer a wsfutures worker node?' };
  }
  const version = frame[4]!;
  const workerNonce = frame.subarray(5, 5 + N);
  const theirProof = frame.subarray(5 + N);
  const expected = proof(key, 'wsfutures/worker', helloNonce, workerNonce);
  if (!timingSafeEqual(theirProof, expected)) {
    return { ok: false, code: 'WSF_AUTH_FAILED', message: `the worker node presented a wrong token: ${WRONG_TOKEN_ADVICE}` };
  }
  if (version < MIN_PROTOCOL_VERSION || version > PROTOCOL_VERSION) {
    return {
      ok: false,
      code: 'WSF_VERSION_MISMATCH',
      message: `the worker node speaks protocol version ${version}; this coordinator speaks ${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION}: upgrade the older side`,
    };
  }
  const reply = concat(enc.encode(HANDSHAKE.AUTH_OK), proof(key, 'wsfutures/coordinator', workerNonce, helloNonce));
  return { ok: true, version, reply };
}

// ---- worker side ------------------------------------------------------------------------------

/** Answers a HELLO frame; returns the AUTH frame and what is needed to check AUTH_OK. */
export function answerHello(
  frame: Uint8Array,
  key: Uint8Array,
): { ok: true; version: number; auth: Uint8Array; helloNonce: Uint8Array; nonce: Uint8Array } | ({ ok: false } & HandshakeFailure) {
  if (frame.length !== 4 + 2 + HANDSHAKE.NONCE_BYTES || magicOf(frame) !== HANDSHAKE.HELLO) {
    return { ok: false, code: 'WSF_PROTOCOL', message: 'expected a HELLO handshake frame: is the address a wsfutures coordinator?' };
  }
  const min = frame[4]!;
  const max = frame[5]!;
  const version = Math.min(max, PROTOCOL_VERSION);
  if (version < Math.max(min, MIN_PROTOCOL_VERSION)) {
    return {
      ok: false,
      code: 'WSF_VERSION_MISMATCH',
      message: `the coordinator speaks protocol versions ${min}..${max}; this worker node speaks ${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION}: upgrade the older side`,
    };
  }
  const helloNonce = frame.slice(6);
  const nonce = randomBytes(HANDSHAKE.NONCE_BYTES);
  const auth = concat(enc.encode(HANDSHAKE.AUTH), Uint8Array.of(version), nonce, proof(key, 'wsfutures/worker', helloNonce, nonce));
  return { ok: true, version, auth, helloNonce, nonce };
}

/** Checks the coordinator's AUTH_OK: proves the coordinator knows the token too. */
export function checkAuthOk(frame: Uint8Array, key: Uint8Array, helloNonce: Uint8Array, nonce: Uint8Array): true | HandshakeFailure {
  if (frame.length !== 4 + HANDSHAKE.PROOF_BYTES || magicOf(frame) !== HANDSHAKE.AUTH_OK) {
    return { code: 'WSF_PROTOCOL', message: 'expected an AUTH_OK handshake frame from the coordinator' };
  }
  const expected = proof(key, 'wsfutures/coordinator', nonce, helloNonce);
  if (!timingSafeEqual(frame.subarray(4), expected)) {
    return { code: 'WSF_AUTH_FAILED', message: 'the coordinator could not prove it knows the token: wrong token, or not the coordinator you meant' };
  }
  return true;
}
