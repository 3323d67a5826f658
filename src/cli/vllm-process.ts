// `serve <model>`: runs `vllm serve <model> --port <port> ...` as a child process and
// watches it. The child gets its own process group so that a Ctrl-C in the terminal
// reaches only the gateway, which then drains its requests before stopping vLLM.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import type { ServeConfig } from '../config/load-config.ts';
import type { HealthResult } from '../upstream/upstream-client.ts';

export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export function describeExit(exit: ChildExit): string {
  return exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${String(exit.code)}`;
}

export class StartupError extends Error {
  override name = 'StartupError';
}

/** The path `command` runs, as a shell would find it on PATH; undefined when none. */
export function findExecutable(command: string, searchPath: string = process.env['PATH'] ?? ''): string | undefined {
  const candidates = command.includes('/')
    ? [command]
    : searchPath.split(delimiter).filter((dir) => dir.length > 0).map((dir) => join(dir, command));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return resolve(candidate);
    } catch {
      // Not there, or not executable: try the next one.
    }
  }
  return undefined;
}

let setprivWithPdeathsig: string | null | undefined;

/** util-linux's setpriv, when it has --pdeathsig (2.33+); looked up once. */
function findSetpriv(): string | undefined {
  if (setprivWithPdeathsig === undefined) {
    setprivWithPdeathsig = null;
    const path = process.platform === 'linux' ? findExecutable('setpriv') : undefined;
    if (path !== undefined) {
      const help = spawnSync(path, ['--help'], { encoding: 'utf8', timeout: 5_000 });
      if (typeof help.stdout === 'string' && help.stdout.includes('--pdeathsig')) setprivWithPdeathsig = path;
    }
  }
  return setprivWithPdeathsig ?? undefined;
}

/**
 * How to start vLLM so that it does not outlive the gateway. An 'exit' handler covers
 * every ending but SIGKILL (the OOM killer's): then an orphaned vLLM would keep the GPU
 * and the port. On Linux the kernel can signal the child when its parent dies
 * (PR_SET_PDEATHSIG, kept across exec); setpriv sets it and execs vLLM, so the pid and
 * the process group are vLLM's own. Where that is not possible, vLLM starts directly,
 * and a binary that does not resolve is spawned as given, so that spawning reports it.
 */
export function vllmLaunch(vllmBin: string, args: readonly string[]): { file: string; args: string[] } {
  const setpriv = findSetpriv();
  const resolved = setpriv === undefined ? undefined : findExecutable(vllmBin);
  if (setpriv === undefined || resolved === undefined) return { file: vllmBin, args: [...args] };
  return { file: setpriv, args: ['--pdeathsig', 'TERM', '--', resolved, ...args] };
}

export class VllmProcess {
  readonly #config: ServeConfig;
  readonly #child: ChildProcess;
  readonly exited: Promise<ChildExit>;
  #exit: ChildExit | undefined;
  #stopping = false;

  constructor(config: ServeConfig) {
    this.#config = config;
    const args = ['serve', config.model, '--port', String(config.port), ...config.vllmArgs];
    const launch = vllmLaunch(config.vllmBin, args);
    this.#child = spawn(launch.file, launch.args, { stdio: 'inherit', detached: true });
    this.exited = new Promise((resolve) => {
      this.#child.once('error', (error: NodeJS.ErrnoException) => {
        // Spawning failed (not found, not executable): there is no process to wait for.
        this.#exit = { code: error.code === 'ENOENT' ? 127 : 126, signal: null };
        this.spawnError = error;
        resolve(this.#exit);
      });
      this.#child.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        resolve(this.#exit);
      });
    });
    // If the gateway exits without stopping vLLM (an uncaught error), vLLM goes too.
    process.once('exit', () => this.#signalGroup('SIGKILL'));
  }

  spawnError: NodeJS.ErrnoException | undefined;

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  get hasExited(): boolean {
    return this.#exit !== undefined;
  }

  /**
   * Polls vLLM's /health until it answers 200. Rejects with a one-line StartupError when
   * the timeout passes or the child exits first.
   */
  async waitUntilReady(
    probe: () => Promise<HealthResult>,
    onProgress: (elapsedMs: number, lastProblem: string) => void,
  ): Promise<void> {
    const { readyIntervalMs, readyTimeoutMs } = this.#config;
    const started = Date.now();
    let lastProblem = 'no answer yet';
    let lastReport = -Infinity;
    for (;;) {
      if (this.#exit !== undefined) throw this.#exitError();
      const result = await Promise.race([probe(), this.exited.then(() => undefined)]);
      if (result === undefined || this.#exit !== undefined) throw this.#exitError();
      if (result.ok) return;
      lastProblem = result.reason;
      const elapsed = Date.now() - started;
      if (elapsed >= readyTimeoutMs) {
        throw new StartupError(
          `vLLM did not become healthy within ${readyTimeoutMs / 1000}s (last probe: ${lastProblem}); see --upstream-ready-timeout`,
        );
      }
      if (elapsed - lastReport >= 10_000) {
        lastReport = elapsed;
        onProgress(elapsed, lastProblem);
      }
      const wait = Math.min(readyIntervalMs, readyTimeoutMs - elapsed);
      const exitedMeanwhile = await Promise.race([
        new Promise<false>((resolve) => setTimeout(() => resolve(false), wait).unref()),
        this.exited.then(() => true),
      ]);
      if (exitedMeanwhile) throw this.#exitError();
    }
  }

  #exitError(): StartupError {
    if (this.spawnError !== undefined) {
      const reason = this.spawnError.code === 'ENOENT' ? 'not found' : this.spawnError.code ?? 'failed';
      return new StartupError(`could not start "${this.#config.vllmBin}": ${reason} (see --vllm-bin)`);
    }
    return new StartupError(`vLLM ${describeExit(this.#exit as ChildExit)} before becoming healthy`);
  }

  /** SIGTERM to vLLM's process group, then SIGKILL after the stop timeout. */
  async stop(): Promise<ChildExit> {
    this.#stopping = true;
    if (this.#exit !== undefined) return this.#exit;
    this.#signalGroup('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.#signalGroup('SIGKILL');
        resolve();
      }, this.#config.stopTimeoutMs);
    });
    await Promise.race([this.exited, killed]);
    clearTimeout(timer);
    return this.exited;
  }

  /** Stops vLLM at once (a second Ctrl-C). */
  kill(): void {
    this.#stopping = true;
    this.#signalGroup('SIGKILL');
  }

  #signalGroup(signal: NodeJS.Signals): void {
    const pid = this.#child.pid;
    if (pid === undefined || this.#exit !== undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      try {
        this.#child.kill(signal);
      } catch {
        // Already gone.
      }
    }
  }
}
