#!/usr/bin/env node
// `npx wsfutures-worker`: runs cli.ts under Node with tsx's loader. The loader is passed as
// --import so that the node's task threads inherit it (worker threads get the parent's
// execArgv), which the in-process register() API would not give them.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const tsx = import.meta.resolve('tsx');
const cli = fileURLToPath(new URL('./cli.ts', import.meta.url));
const child = spawn(process.execPath, ['--import', tsx, cli, ...process.argv.slice(2)], { stdio: 'inherit' });
// Ctrl-C reaches the child through the terminal's process group, so SIGINT is not forwarded
// (a second copy would make the child skip draining); SIGTERM is usually sent to one PID, so
// it is forwarded.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
