/**
 * The single-file worker node (worker-node/standalone.ts bundled with its dependencies), which
 * the coordinator serves at `/wsfutures/worker.mjs` so that a machine with nothing but Node or
 * Deno joins with one command. The compiled package ships it as dist/worker.mjs; from the
 * TypeScript sources it is bundled on first request, with the same options as the build.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const WORKER_DOWNLOAD_PATH = '/wsfutures/worker.mjs';

export interface WorkerScript {
  code: Uint8Array;
  sha256: string;
}

const FROM_SOURCES = import.meta.url.endsWith('.ts');
let cached: Promise<WorkerScript> | undefined;

/** The single-file worker's bytes and their SHA-256 (made once per process). */
export function workerScript(): Promise<WorkerScript> {
  cached ??= load();
  cached.catch(() => (cached = undefined));
  return cached;
}

async function load(): Promise<WorkerScript> {
  let code: Uint8Array;
  const built = fileURLToPath(new URL('../worker.mjs', import.meta.url));
  if (!FROM_SOURCES && existsSync(built)) code = readFileSync(built);
  else code = await bundleStandaloneWorker();
  return { code, sha256: createHash('sha256').update(code).digest('hex') };
}

/**
 * Bundles worker-node/standalone.ts into one ES module (to `outfile`, or in memory). Every
 * dependency is inlined; `require` is provided for the CommonJS ones (ws). msgpackr's and ws's
 * native speed-ups are left out (a bare machine has none), and esbuild, needed only to compare
 * local copies of task modules (--tasks), says so when it is missing.
 */
export async function bundleStandaloneWorker(outfile?: string): Promise<Uint8Array> {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: [fileURLToPath(new URL('../worker-node/standalone.ts', import.meta.url))],
    ...(outfile ? { outfile } : { write: false, outfile: 'worker.mjs' }),
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'es2022',
    keepNames: true,
    legalComments: 'eof',
    external: ['msgpackr-extract', 'bufferutil', 'utf-8-validate', 'esbuild'],
    banner: {
      js: [
        '#!/usr/bin/env node',
        '// wsfutures worker node, in one file. Usage: node worker.mjs --connect HOST:PORT (token in WSFUTURES_TOKEN); --help for more.',
        "import { createRequire as __wsfCreateRequire } from 'node:module';",
        "import { cwd as __wsfCwd } from 'node:process';",
        // Run from an http: URL (deno run -A http://…/worker.mjs), `require` is needed for
        // built-in modules only, which resolve from anywhere.
        "const require = __wsfCreateRequire(import.meta.url.startsWith('file:') ? import.meta.url : __wsfCwd() + '/');",
      ].join('\n'),
    },
    logLevel: 'warning',
  });
  return outfile ? readFileSync(outfile) : result.outputFiles![0]!.contents;
}
