/**
 * Worker nodes the pool starts on this machine (`maxWorkers` slots), restarted when they die.
 * They are ordinary worker-node processes connecting over loopback: the local case is the LAN
 * case with a short cable, so both are tested by the same code.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Resources } from '../shared/resources.ts';
import { deno, IS_DENO } from '../shared/runtime.ts';

export type WorkerRuntime = 'node' | 'deno';

/** Signals the pool sends its local nodes (tests and demos of failure handling use them). */
export type Signal = 'SIGKILL' | 'SIGTERM' | 'SIGINT' | 'SIGSTOP' | 'SIGCONT';

export interface LocalWorkersOptions {
  token: string;
  slots: number;
  runtime: WorkerRuntime;
  /** The pool's frame limit, which its local nodes accept too. */
  maxMessageBytes: number;
  /** Called when local nodes keep dying before they ever connect: the pool cannot work. */
  onBroken: (message: string) => void;
  /** Nodes are named NAME-1, NAME-2… as they are (re)started (default `local`). */
  name?: string;
  /** What the local node declares (`--resources`), as numbers. */
  resources?: Resources;
  log: (level: 'info' | 'warn', message: string) => void;
}

/**
 * Running from the TypeScript sources (development in the repository), nodes start from cli.ts
 * under tsx; from the compiled package, from cli.js with nothing but the runtime.
 */
const FROM_SOURCES = import.meta.url.endsWith('.ts');
const CLI = fileURLToPath(new URL(FROM_SOURCES ? '../worker-node/cli.ts' : '../worker-node/cli.js', import.meta.url));
/** Consecutive failed starts before the pool is declared broken. */
const MAX_FAILED_STARTS = 5;

/** True when this coordinator runs under Deno (see shared/runtime.ts). */
export function isDenoRuntime(): boolean {
  return IS_DENO;
}

function command(runtime: WorkerRuntime): { cmd: string; args: string[] } {
  if (runtime === 'deno') {
    if (deno) return { cmd: deno.execPath(), args: ['run', '-A', CLI] };
    // From Node, run the binary the `deno` npm package installed next to its bin.cjs, not
    // bin.cjs itself: that wrapper runs deno with spawnSync and forwards no signal, so kill()
    // (a crash simulation, or close() giving up on a slow node) hit only the wrapper and left
    // the Deno worker node running, orphaned; and `pid` was the wrapper's. The wrapper stays
    // the fallback for when the binary is not installed yet (it installs it on first use).
    // A project that has no `deno` package installed runs the deno on its PATH.
    let wrapper: string;
    try {
      wrapper = fileURLToPath(import.meta.resolve('deno/bin.cjs'));
    } catch {
      return { cmd: 'deno', args: ['run', '-A', CLI] };
    }
    const exe = join(dirname(wrapper), process.platform === 'win32' ? 'deno.exe' : 'deno');
    return existsSync(exe) ? { cmd: exe, args: ['run', '-A', CLI] } : { cmd: process.execPath, args: [wrapper, 'run', '-A', CLI] };
  }
  // Under Deno, `process.execPath` is deno itself: find node on the PATH instead.
  const node = isDenoRuntime() ? 'node' : process.execPath;
  return { cmd: node, args: FROM_SOURCES ? ['--import', import.meta.resolve('tsx'), CLI] : [CLI] };
}

/**
 * Sends `signal` to a child still running. By pid rather than `child.kill(signal)`: Deno's
 * node:child_process ignores every `child.kill()` after the first one, so after a kill() with
 * another signal, close()'s SIGKILL for a slow node (or a second kill()) would never be sent
 * and the node would stay alive. Only called while the child is #child, or from close() before
 * its 'exit': it has not exited, so the pid is still its own.
 */
function signalChild(child: ChildProcess, signal: Signal): void {
  if (child.pid === undefined || child.exitCode !== null) return;
  try {
    process.kill(child.pid, signal);
  } catch {
    // already gone
  }
}

export class LocalWorkers {
  readonly #options: LocalWorkersOptions;
  #child: ChildProcess | undefined;
  #closed = false;
  #failedStarts = 0;
  #generation = 0;
  #stderrTail = '';
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
  /** Whether the node process keeps this process alive (see hold). */
  #held = true;
  /** The current node connected (said ready); until then it has nothing to finish. */
  #connected = false;

  constructor(options: LocalWorkersOptions) {
    this.#options = options;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  #url = '';

  /** Starts the node, pointed at `url` (then restarts it at the same URL when it dies). */
  start(url = this.#url): void {
    if (this.#closed) return;
    this.#url = url;
    const { token, slots, runtime } = this.#options;
    const { cmd, args } = command(runtime);
    const name = `${this.#options.name ?? 'local'}-${++this.#generation}`;
    const resources = this.#options.resources;
    // The token goes by environment, not argv, so other users cannot read it from `ps`; the
    // resources too, so that an inherited WSFUTURES_RESOURCES never speaks for the pool's node.
    const env: Record<string, string | undefined> = { ...process.env, WSFUTURES_TOKEN: token };
    delete env.WSFUTURES_RESOURCES;
    if (resources) env.WSFUTURES_RESOURCES = Object.entries(resources).map(([k, v]) => `${k}=${v}`).join(',');
    const child = spawn(cmd, [
      ...args,
      '--connect',
      url,
      '--concurrency',
      String(slots),
      '--name',
      name,
      '--no-reconnect',
      '--exit-on-shutdown',
      '--quiet',
      '--max-message-bytes',
      String(this.#options.maxMessageBytes),
    ], {
      env,
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    this.#child = child;
    this.#connected = false;
    this.#stderrTail = '';
    child.stderr!.on('data', (d: Buffer) => {
      // Passed through, as a process pool's children share its stderr: a task's console.error
      // and the node's warnings reach the user. The tail is kept to explain a crash loop.
      process.stderr.write(d);
      this.#stderrTail = (this.#stderrTail + d.toString()).slice(-4000);
    });
    if (!this.#held) this.#release(child);
    child.on('error', (err) => this.#options.log('warn', `could not start a local worker node (${cmd}): ${err.message}`));
    child.on('exit', (code, signal) => {
      if (this.#child === child) this.#child = undefined;
      if (this.#closed) return;
      this.#failedStarts++;
      const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
      if (this.#failedStarts >= MAX_FAILED_STARTS) {
        this.#options.onBroken(`local worker node ${name} ${how}, and ${MAX_FAILED_STARTS} starts in a row failed; its last output:\n${this.#stderrTail.trim()}`);
        return;
      }
      this.#options.log('warn', `local worker node ${name} ${how}; starting a new one`);
      // Back off a little on repeated failures, so a crash loop does not spin the CPU.
      this.#restartTimer = setTimeout(() => this.start(), Math.min(5000, 100 * 2 ** this.#failedStarts));
    });
  }

  /**
   * Whether the node process (and the pipe of its stderr) keeps this process alive. The pool
   * lets go while it has no work outstanding, so a program that never calls shutdown() still
   * exits once its work is done: the node then sees its connection close and exits too.
   */
  hold(held: boolean): void {
    if (this.#held === held) return;
    this.#held = held;
    const child = this.#child;
    if (!child) return;
    if (held) {
      child.ref();
      (child.stderr as unknown as { ref?: () => void } | null)?.ref?.();
    } else this.#release(child);
  }

  #release(child: ChildProcess): void {
    child.unref();
    (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();
  }

  /** Whether the current node has connected (and not exited since). */
  get isConnected(): boolean {
    return this.#connected && this.#child !== undefined;
  }

  /** A local node connected: its start succeeded. */
  connected(): void {
    this.#connected = true;
    this.#failedStarts = 0;
  }

  /** Kills the local node (tests use it to simulate a crash). */
  kill(signal: Signal = 'SIGKILL'): void {
    if (this.#child) signalChild(this.#child, signal);
  }

  /** Waits for the node to exit after the coordinator closed its connection; kills it if slow. */
  async close(): Promise<void> {
    this.#closed = true;
    this.hold(true); // its exit is awaited below
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    const child = this.#child;
    if (!child || child.exitCode !== null) return;
    // A node that has not connected yet has nothing to finish, and would only report that it
    // could not reach the coordinator that is closing on purpose: end it, silently.
    if (!this.#connected) signalChild(child, 'SIGKILL');
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => signalChild(child, 'SIGKILL'), 3000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
