/**
 * The one retry delay: exponential from 0.25 s, capped at 10 s, with jitter. Quick after a
 * blip, gentle on a peer that stays down, and peers that failed together (every node of a
 * coordinator that restarted, every thread of a node) spread out instead of retrying in step.
 */
const FIRST_MS = 250;
const MAX_MS = 10_000;

/** The delay before retry number `failures` (0 for the first retry), ms: between half and all of 0.25 s × 2^failures, at most 10 s. */
export function backoffMs(failures: number, random: () => number = Math.random): number {
  return Math.min(MAX_MS, FIRST_MS * 2 ** Math.min(failures, 6)) * (0.5 + random() / 2);
}
