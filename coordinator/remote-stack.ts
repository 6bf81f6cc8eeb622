/**
 * Remote stacks in the user's own files. A worker node runs a task module as the bundle it was
 * shipped (`node_modules/.cache/wsfutures/<sha256>.mjs` on that machine), so a remote error's
 * frames point there. Each bundle carries an inline source map (shared/bundle.ts); the
 * coordinator, which made the bundle, reads the frames back to the original files and lines on
 * its own machine — whichever runtime and directory the node ran in.
 */
import { resolve } from 'node:path';
import type { WireError } from '../shared/errors.ts';

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const BASE64_VALUE = new Map([...BASE64].map((c, i) => [c, i]));

/** One mapping: from a generated column to a place in a source file (all 0-based). */
interface Segment {
  column: number;
  source: number;
  line: number;
  sourceColumn: number;
}

/** A bundle's source map, decoded once: generated line → segments in column order. */
export class BundleSourceMap {
  readonly #sources: string[];
  readonly #lines: Segment[][] = [];

  /** `baseDir`: what the map's relative `sources` are relative to (where it was bundled). */
  constructor(map: { sources: string[]; mappings: string }, baseDir: string) {
    this.#sources = map.sources.map((s) => resolve(baseDir, s));
    let source = 0;
    let line = 0;
    let sourceColumn = 0;
    for (const text of map.mappings.split(';')) {
      const segments: Segment[] = [];
      let column = 0;
      for (const part of text.split(',')) {
        if (part === '') continue;
        const v = decodeVlq(part);
        column += v[0] ?? 0;
        if (v.length < 4) continue; // a segment with no source
        source += v[1]!;
        line += v[2]!;
        sourceColumn += v[3]!;
        segments.push({ column, source, line, sourceColumn });
      }
      this.#lines.push(segments);
    }
  }

  /** Reads the inline map of bundled code; undefined if it has none (or it cannot be read). */
  static fromCode(code: string, baseDir: string): BundleSourceMap | undefined {
    const m = /\/\/# sourceMappingURL=data:application\/json;base64,([A-Za-z0-9+/=]+)\s*$/.exec(code);
    if (!m) return undefined;
    try {
      return new BundleSourceMap(JSON.parse(Buffer.from(m[1]!, 'base64').toString('utf8')), baseDir);
    } catch {
      return undefined;
    }
  }

  /** The original file, line and column (1-based, as stacks show them) of a generated position. */
  lookup(line: number, column: number): { file: string; line: number; column: number } | undefined {
    const segments = this.#lines[line - 1];
    if (!segments || segments.length === 0) return undefined;
    let found: Segment | undefined;
    for (const s of segments) {
      if (s.column > column - 1) break;
      found = s;
    }
    found ??= segments[0]!;
    const file = this.#sources[found.source];
    return file === undefined ? undefined : { file, line: found.line + 1, column: found.sourceColumn + 1 };
  }
}

function decodeVlq(text: string): number[] {
  const out: number[] = [];
  let value = 0;
  let shift = 0;
  for (const c of text) {
    const digit = BASE64_VALUE.get(c);
    if (digit === undefined) return out;
    value += (digit & 31) << shift;
    if (digit & 32) {
      shift += 5;
      continue;
    }
    out.push(value & 1 ? -(value >>> 1) : value >>> 1);
    value = 0;
    shift = 0;
  }
  return out;
}

/**
 * A frame's location in a shipped bundle, as Node (a path) or Deno (a file: URL) prints it:
 * after "(" or "at ", up to ".mjs:LINE:COLUMN" (the path may hold spaces).
 */
const BUNDLE_FRAME = /(\(|at )([^()\n]*?)([0-9a-f]{64})\.mjs:(\d+):(\d+)/g;

/**
 * Rewrites the frames of `stack` that point into a shipped bundle to the original file and line,
 * using `mapFor(hash)`; frames it cannot map are left as they are.
 */
export function mapStack(stack: string, mapFor: (hash: string) => BundleSourceMap | undefined): string {
  return stack.replace(BUNDLE_FRAME, (whole, before: string, _dir: string, hash: string, line: string, column: string) => {
    const at = mapFor(hash)?.lookup(Number(line), Number(column));
    return at ? `${before}${at.file}:${at.line}:${at.column}` : whole;
  });
}

/** Maps the stacks of a wire error, its cause and its aggregated errors, in place. */
export function mapWireStacks(wire: WireError, mapFor: (hash: string) => BundleSourceMap | undefined, depth = 0): void {
  if (typeof wire.stack === 'string') wire.stack = mapStack(wire.stack, mapFor);
  if (depth >= 8) return;
  const cause = wire.cause as unknown;
  if (cause !== null && typeof cause === 'object' && !('value' in cause)) mapWireStacks(cause as WireError, mapFor, depth + 1);
  if (Array.isArray(wire.errors)) { for (const e of wire.errors) if (e !== null && typeof e === 'object') mapWireStacks(e, mapFor, depth + 1); }
}
