/**
 * Builds the package: `dist/` with ES modules and declarations compiled from the TypeScript
 * sources (tsc), and `dist/worker.mjs`, the single-file worker node with its dependencies
 * bundled in (esbuild). Runs on `npm install` in the repository and before `npm pack`.
 *
 * Usage: npm run build
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleStandaloneWorker } from '../coordinator/worker-download.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
const started = Date.now();

rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });

// tsc rewrites `.ts` import paths in the JavaScript it emits, not in declarations; a consumer's
// tsc would refuse `.ts` paths there (TS5097), so they become `.js` as in the code.
function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}
for (const file of walk(dist)) {
  if (!file.endsWith('.d.ts')) continue;
  const text = readFileSync(file, 'utf8');
  const fixed = text.replace(/(from\s+['"]|import\(\s*['"])(\.{1,2}\/[^'"]+)\.ts(['"])/g, '$1$2.js$3');
  if (fixed !== text) writeFileSync(file, fixed);
}

// The compiled counterpart of worker-node/thread-entry.mjs: no TypeScript loader to register.
writeFileSync(
  join(dist, 'worker-node', 'thread-entry.js'),
  `// Entry of a task thread (compiled package). A Deno web Worker drops messages that arrive before
// it has a handler, and importing thread.js takes a while: keep them until thread.js takes over.
if (typeof globalThis.Deno !== 'undefined') {
  const early = [];
  globalThis.onmessage = (e) => early.push(e.data);
  globalThis.__wsfuturesEarlyMessages = early;
}
await import('./thread.js');
`,
);
chmodSync(join(dist, 'worker-node', 'cli.js'), 0o755);
chmodSync(join(dist, 'coordinator', 'cli.js'), 0o755);

// The single-file worker node that coordinators serve (coordinator/worker-download.ts).
await bundleStandaloneWorker(join(dist, 'worker.mjs'));
console.log(`built dist/ in ${((Date.now() - started) / 1000).toFixed(1)} s (worker.mjs: ${(statSync(join(dist, 'worker.mjs')).size / 1024).toFixed(0)} KiB)`);
