/**
 * Task modules: functions travel by reference, as pickle sends them. The coordinator imports
 * each module named in `tasks` (the same module instance the user's own `import` got, since
 * modules are cached by URL), so it can map a function object back to (module, export name).
 * It also bundles each module once for worker nodes that have no copy of the project.
 */
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleModule } from '../shared/bundle.ts';
import type { ErrorClass, WireClassRef } from '../shared/errors.ts';
import { BundleSourceMap } from './remote-stack.ts';
import type { ModuleInfo } from '../shared/protocol.ts';
import type { AnyFunction } from './executor.ts';
import { deno } from '../shared/runtime.ts';

/**
 * Whether `url` is the program's main module (the script `node`/`tsx`/`deno run` was given).
 * The pool imports its task modules; importing the main module from within it waits for the
 * main module to finish, which waits for the pool: neither ever does.
 */
export function isMainModule(url: URL): boolean {
  try {
    const main = deno ? (deno.mainModule?.startsWith('file:') ? fileURLToPath(deno.mainModule) : undefined) : process.argv[1];
    if (!main) return false;
    return realpathSync(resolve(main)) === realpathSync(fileURLToPath(url));
  } catch {
    return false; // no main script (a REPL, an eval) or a file that is gone: not the same one
  }
}

export interface TaskRef {
  moduleId: number;
  exportName: string;
}

export interface LoadedModule extends ModuleInfo {
  code: string;
  exports: string[];
  /** The directory the bundle was made in: its source map's paths are relative to it. */
  bundledIn: string;
}

export class TaskRegistry {
  readonly #refs = new Map<AnyFunction, TaskRef>();
  readonly modules: LoadedModule[] = [];
  readonly urls: URL[];
  /**
   * Settles when every module is imported (every task function is known, so `lookup` is final);
   * rejects with the first failure. Bundling goes on after it.
   */
  readonly imported: Promise<void>;
  /** Settles when every module is imported and bundled; rejects with the first failure. */
  readonly loaded: Promise<void>;
  #isImported = false;
  #namespaces: Record<string, unknown>[] = [];

  constructor(urls: URL[]) {
    this.urls = urls;
    const namespaces = urls.map((url) => this.#import(url));
    this.imported = Promise.all(namespaces).then((list) => {
      // In `tasks` order, whatever order the imports finished in: the first module to export a
      // function wins, so re-exports of the same function from two task modules are one task.
      this.#namespaces = list;
      list.forEach((ns, id) => {
        for (const [name, value] of Object.entries(ns)) {
          if (typeof value === 'function' && !this.#refs.has(value as AnyFunction)) this.#refs.set(value as AnyFunction, { moduleId: id, exportName: name });
        }
      });
      this.#isImported = true;
    });
    this.loaded = this.imported.then(() => this.#bundle(namespaces));
    this.imported.catch(() => {});
    this.loaded.catch(() => {});
  }

  /** True once every module is imported: from then on, a function `lookup` does not find is not a task. */
  get isImported(): boolean {
    return this.#isImported;
  }

  async #import(url: URL): Promise<Record<string, unknown>> {
    try {
      return (await import(url.href)) as Record<string, unknown>;
    } catch (err) {
      throw new TypeError(`task module ${url.href} could not be imported: ${(err as Error)?.message ?? err}`, { cause: err });
    }
  }

  async #bundle(namespaces: Promise<Record<string, unknown>>[]): Promise<void> {
    await Promise.all(
      this.urls.map(async (url, id) => {
        const ns = await namespaces[id]!;
        const exports = Object.keys(ns).filter((name) => typeof ns[name] === 'function');
        // The bundle's source map names files relative to the directory it was made in.
        const bundledIn = process.cwd();
        const { code, hash } = await bundleModule(url);
        this.modules[id] = { id, url: url.href, hash, code, exports, bundledIn };
      }),
    );
  }

  /** The reference of `fn`, or undefined if no task module exports it (or not imported yet). */
  lookup(fn: AnyFunction): TaskRef | undefined {
    return this.#refs.get(fn);
  }

  /**
   * The source map of the bundle with this hash (decoded on first use), to show remote stacks in
   * the original files; undefined for a hash that is not one of ours.
   */
  sourceMap(hash: string): BundleSourceMap | undefined {
    if (this.#sourceMaps.has(hash)) return this.#sourceMaps.get(hash) ?? undefined;
    const mod = this.modules.find((m) => m?.hash === hash);
    const map = mod ? BundleSourceMap.fromCode(mod.code, mod.bundledIn) : undefined;
    this.#sourceMaps.set(hash, map ?? null);
    return map;
  }
  readonly #sourceMaps = new Map<string, BundleSourceMap | null>();

  /**
   * The error class a task module exports under `ref` (what a remote error names as its class),
   * or undefined if that export is not an error class.
   */
  errorClass(ref: WireClassRef): ErrorClass | undefined {
    const ns = this.#namespaces[ref.m];
    if (!ns || !Object.hasOwn(ns, ref.e)) return undefined;
    const value = ns[ref.e];
    return typeof value === 'function' && value.prototype instanceof Error ? (value as ErrorClass) : undefined;
  }

  /** The TypeError for a function that is not a task. */
  notATask(fn: AnyFunction, where: string): TypeError {
    const name = fn.name ? `function ${fn.name}` : 'an anonymous function';
    const list = this.urls.map((u) => u.href).join(', ');
    return new TypeError(
      `${where}: ${name} is not exported by any task module (${list}). Worker nodes run functions by reference, ` +
        `as pickle does: move it into a task module as an exported function, import it from there, and pass that ` +
        `import to submit/map; closures and lambdas cannot be sent (use AsyncPoolExecutor for local closures).`,
    );
  }
}
