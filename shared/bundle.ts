/**
 * Task module bundling, shared by the coordinator (which ships modules) and worker nodes
 * started with local copies (which check theirs against the coordinator's by hash).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Turns a `tasks` entry (URL, file URL string or path) into a file URL; throws a clear error. */
export function toModuleUrl(entry: unknown, index: number): URL {
  const where = `tasks${index >= 0 ? `[${index}]` : ''}`;
  let url: URL;
  if (entry instanceof URL) url = entry;
  else if (typeof entry === 'string' && entry.startsWith('file:')) url = new URL(entry);
  else if (typeof entry === 'string' && entry.length > 0) url = pathToFileURL(resolve(entry));
  else {throw new TypeError(
      `${where} must be a URL or a file path of a task module (e.g. new URL('./tasks.ts', import.meta.url)): got ${
        typeof entry === 'string' ? JSON.stringify(entry) : typeof entry
      }`,
    );}
  if (url.protocol !== 'file:') throw new TypeError(`${where} must be a file: URL or a path (task modules are bundled from disk): got ${url.href}`);
  if (!existsSync(fileURLToPath(url))) {
    throw new TypeError(
      `${where}: no task module at ${fileURLToPath(url)}: check the path (relative paths resolve from the current directory; prefer new URL('./tasks.ts', import.meta.url))`,
    );
  }
  return url;
}

/** Bundles a task module: its own code and relative imports inlined, packages left as imports. */
/** `wsfutures/task`, here: inlined into shipped task modules that import it. (A function: the
 * single-file worker, run from an http: URL, has no file path, and never bundles.) */
const taskEntry = (): string => fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? './task.ts' : './task.js', import.meta.url));
/** `wsfutures/task` (also as `npm:wsfutures@1/task` under Deno), and `wsfutures` itself. */
const TASK_IMPORT = /^(?:npm:)?wsfutures(?:@[^/]*)?\/task$/;
const ROOT_IMPORT = /^(?:npm:)?wsfutures(?:@[^/]*)?$/;

/**
 * Bundles a task module: its own code and relative imports inlined, packages left as imports —
 * except wsfutures' task API (currentTask, the error classes), which is inlined so that a node
 * needs no copy of wsfutures. A module importing other names from `wsfutures` (a pool of its
 * own, say) keeps that import, and needs wsfutures installed where it runs.
 */
export async function bundleModule(url: URL): Promise<{ code: string; hash: string }> {
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch (err) {
    throw new Error(`bundling task module ${url.href} needs the esbuild package, which is not installed here: run \`npm install esbuild\` (or start the worker without --tasks)`, {
      cause: err,
    });
  }
  const build = (inlineRoot: boolean) =>
    esbuild.build({
      entryPoints: [fileURLToPath(url)],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'node',
      target: 'es2022',
      // Packages resolve on the worker node from its own node_modules: bundling them would ship
      // native addons that cannot run there and duplicate what is already installed.
      packages: 'external',
      plugins: [
        {
          name: 'wsfutures-task-api',
          setup(b) {
            b.onResolve(
              { filter: /^(npm:)?wsfutures/ },
              (args) => (TASK_IMPORT.test(args.path) || (inlineRoot && ROOT_IMPORT.test(args.path)) ? { path: taskEntry() } : undefined),
            );
          },
        },
      ],
      // Keep function names: they are how tasks are found, and they show in remote stacks.
      keepNames: true,
      sourcemap: 'inline',
      sourcesContent: false,
      logLevel: 'silent',
    });
  let result;
  try {
    result = await build(true);
  } catch {
    // It imports from `wsfutures` more than the task API: leave that import to the node.
    result = await build(false);
  }
  const code = result.outputFiles[0]!.text;
  return { code, hash: hashCode(code) };
}

export function hashCode(code: string): string {
  return createHash('sha256').update(code).digest('hex');
}
