/**
 * Task modules shipped by a coordinator, stored by content hash. A module is written once per
 * hash and reused across reconnects and coordinators. The cache lives under
 * `node_modules/.cache/wsfutures` of the working directory by default, so the packages a
 * bundle imports resolve from the worker's own node_modules.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createHash } from 'node:crypto';

export function defaultCacheDir(): string {
  return resolve('node_modules', '.cache', 'wsfutures');
}

export class ModuleCache {
  readonly dir: string;
  constructor(dir = defaultCacheDir()) {
    this.dir = dir;
  }

  /**
   * Where packages imported by cached modules must be installed: a module resolves its imports
   * from the node_modules folders above its own file, so that is the folder holding the first
   * node_modules above the cache (the working directory by default), or the cache's own folder.
   */
  get installDir(): string {
    const i = this.dir.split(sep).indexOf('node_modules');
    if (i > 0) return this.dir.split(sep).slice(0, i).join(sep) || sep;
    const cwd = process.cwd();
    return this.dir.startsWith(cwd + sep) ? cwd : dirname(this.dir);
  }

  #path(hash: string): string {
    if (!/^[0-9a-f]{64}$/.test(hash)) throw new Error(`not a sha256 hash: ${hash.slice(0, 80)}`);
    return join(this.dir, `${hash}.mjs`);
  }

  /** The file URL of a cached module, or undefined if it is not cached (or corrupt). */
  get(hash: string): string | undefined {
    const p = this.#path(hash);
    if (!existsSync(p)) return undefined;
    // Checked on every lookup: a truncated write or a hand edit must not run as that hash.
    const actual = createHash('sha256').update(readFileSync(p, 'utf8')).digest('hex');
    return actual === hash ? pathToFileURL(p).href : undefined;
  }

  /** Stores code after checking it matches its hash; returns its file URL. */
  put(hash: string, code: string): string {
    const actual = createHash('sha256').update(code).digest('hex');
    if (actual !== hash) throw new Error(`module code does not match its hash (expected ${hash.slice(0, 12)}…, got ${actual.slice(0, 12)}…)`);
    mkdirSync(this.dir, { recursive: true });
    const p = this.#path(hash);
    // Write then rename, so a concurrent reader never imports a half-written file.
    const tmp = `${p}.${process.pid}.${Date.now()}.tmp`;
    writeFileSync(tmp, code);
    renameSync(tmp, p);
    return pathToFileURL(p).href;
  }
}
