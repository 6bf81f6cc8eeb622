/**
 * Task modules: functions travel by reference, as pickle sends them. The coordinator imports
 * each module named in `tasks` (the same module instance the user's own `import` got, since
 * modules are cached by URL), so it can map a function object back to (module, export name).
 * It also bundles each module once for worker nodes that have no copy of the project.
 */
import { bundleModule } from '../shared/bundle.ts';
import type { ModuleInfo } from '../shared/protocol.ts';
import type { AnyFunction } from './executor.ts';

export interface TaskRef {
  moduleId: number;
  exportName: string;
}

export interface LoadedModule extends ModuleInfo {
  code: string;
  exports: string[];
}

export class TaskRegistry {
  readonly #refs = new Map<AnyFunction, TaskRef>();
  readonly modules: LoadedModule[] = [];
  readonly urls: URL[];
  /** Settles when every module is imported and bundled; rejects with the first failure. */
  readonly loaded: Promise<void>;
  #isLoaded = false;

  constructor(urls: URL[]) {
    this.urls = urls;
    this.loaded = this.#load();
    this.loaded.then(() => (this.#isLoaded = true), () => {});
  }

  get isLoaded(): boolean {
    return this.#isLoaded;
  }

  async #load(): Promise<void> {
    await Promise.all(
      this.urls.map(async (url, id) => {
        let ns: Record<string, unknown>;
        try {
          ns = await import(url.href);
        } catch (err) {
          throw new TypeError(`task module ${url.href} could not be imported: ${(err as Error)?.message ?? err}`, { cause: err });
        }
        const exports: string[] = [];
        for (const [name, value] of Object.entries(ns)) {
          if (typeof value !== 'function') continue;
          exports.push(name);
          // The first module to export a function wins: re-exports of the same function from
          // two task modules are one task.
          if (!this.#refs.has(value as AnyFunction)) this.#refs.set(value as AnyFunction, { moduleId: id, exportName: name });
        }
        const { code, hash } = await bundleModule(url);
        this.modules[id] = { id, url: url.href, hash, code, exports };
      }),
    );
  }

  /** The reference of `fn`, or undefined if no task module exports it (or not loaded yet). */
  lookup(fn: AnyFunction): TaskRef | undefined {
    return this.#refs.get(fn);
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
