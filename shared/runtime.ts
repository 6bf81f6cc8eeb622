/**
 * Which runtime this is, asked in one place. Node and Deno 2 run the same code; the few places
 * that differ (how a task thread starts, how a process exits, whether busy polling pays) ask
 * here rather than each probing `globalThis.Deno` its own way.
 */

/** The part of Deno's global namespace this project uses. */
export interface DenoNamespace {
  execPath(): string;
  exit(code?: number): never;
  mainModule?: string;
  version: { deno: string };
}

/** Deno's namespace when running under Deno, undefined under Node. */
export const deno: DenoNamespace | undefined = (globalThis as { Deno?: DenoNamespace }).Deno;

/** True under Deno. */
export const IS_DENO = deno !== undefined;

/** 'deno' or 'node', and its version, as a node reports them in `register`. */
export function runtimeInfo(): { runtime: 'deno' | 'node'; version: string } {
  return deno ? { runtime: 'deno', version: deno.version.deno } : { runtime: 'node', version: process.versions.node };
}
