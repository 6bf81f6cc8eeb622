/**
 * Slows down token guessing: an address whose connections fail the handshake too often (wrong
 * token, garbage, silence) is refused for a while before anything is read from it. Only failures
 * count — a worker node with the right token opens `slots + 1` connections at once and never
 * trips it. Pure state (the server asks and reports), so it is unit-tested without sockets.
 */
export interface HandshakeLimits {
  /** Failed handshakes from one address allowed within `windowMs`... */
  failures: number;
  windowMs: number;
  /** ...after which its connections are refused for this long. */
  blockMs: number;
}

export const DEFAULT_HANDSHAKE_LIMITS: HandshakeLimits = { failures: 20, windowMs: 60_000, blockMs: 60_000 };

/** Addresses remembered at most (oldest forgotten first), so a scan of many cannot grow it without end. */
const MAX_ADDRESSES = 10_000;

interface Entry {
  /** Start of the current counting window. */
  since: number;
  count: number;
  blockedUntil: number;
}

export class HandshakeLimiter {
  readonly limits: HandshakeLimits;
  readonly #entries = new Map<string, Entry>();

  constructor(limits: HandshakeLimits = DEFAULT_HANDSHAKE_LIMITS) {
    this.limits = limits;
  }

  /** Whether connections from `address` are refused now. */
  isBlocked(address: string, now = Date.now()): boolean {
    const e = this.#entries.get(address);
    return e !== undefined && now < e.blockedUntil;
  }

  /** Counts a failed handshake; returns true if this one made the address blocked. */
  fail(address: string, now = Date.now()): boolean {
    let e = this.#entries.get(address);
    if (!e || now - e.since > this.limits.windowMs) {
      if (e) this.#entries.delete(address);
      else if (this.#entries.size >= MAX_ADDRESSES) this.#entries.delete(this.#entries.keys().next().value!);
      e = { since: now, count: 0, blockedUntil: 0 };
      this.#entries.set(address, e); // re-inserted: the Map's order stays oldest-first
    }
    e.count++;
    if (e.count < this.limits.failures || now < e.blockedUntil) return false;
    e.blockedUntil = now + this.limits.blockMs;
    // A new window starts with the block, so it counts again from zero once the block ends.
    e.since = e.blockedUntil;
    e.count = 0;
    return true;
  }
}
