// Runs the real `responses-gateway` command (from source, through tsx) as a child
// process, and a stand-in `vllm` executable built on the simulator.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { startSimVllm, type SimOptions, type SimVllm } from '../../sim/vllm-sim.ts';

export { freePort } from '../../bench/free-port.ts';

export const REPO_ROOT = new URL('../../', import.meta.url).pathname;

export interface CliRun {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout(): string;
  stderr(): string;
  /** JSON log lines printed so far. */
  logs(): Record<string, unknown>[];
  /** Resolves with the first log line whose msg matches (rejects if the process exits first). */
  waitForLog(msg: string): Promise<Record<string, unknown>>;
  /** Resolves with the log lines that match once there are `count` of them (lines leave
   * in batches, up to 200 ms after they were written). */
  waitForLogs(match: (line: Record<string, unknown>) => boolean, count: number): Promise<Record<string, unknown>[]>;
  /** Resolves with the first stdout line that matches (for --log-format pretty). */
  waitForLine(pattern: RegExp): Promise<string>;
}

/** Environment without the variables a developer's shell might set for the gateway. */
/** `extra` overrides; a variable set to undefined there is left out. */
function cleanEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (name.startsWith('GATEWAY_') || name === 'OPENAI_API_KEY' || name === 'DATABASE_URL') continue;
    env[name] = value;
  }
  for (const [name, value] of Object.entries(extra)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

const running = new Set<ChildProcess>();

const fakeVllmDirs: string[] = [];

/** Kills every command a test started and left running (call from an after hook), and
 * every stand-in vLLM: a gateway killed this way cannot stop its vLLM itself. */
export function killLeftovers(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
  for (const dir of fakeVllmDirs) {
    const pids = existsSync(join(dir, 'pids')) ? readFileSync(join(dir, 'pids'), 'utf8').split('\n').filter(Boolean) : [];
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // Already gone: it was stopped properly.
      }
    }
  }
}

/** A database file of its own for each run, never the user's ~/.responses-gateway. */
function scratchDatabase(): string {
  return `sqlite:${join(mkdtempSync(join(tmpdir(), 'rg-cli-')), 'responses.db')}`;
}

/** Runs the command; `env` adds variables (undefined: without DATABASE_URL's scratch default, say). */
export function runCli(args: readonly string[], env: Record<string, string | undefined> = {}): CliRun {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: REPO_ROOT,
    env: cleanEnv({ DATABASE_URL: scratchDatabase(), ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const listeners: Array<() => void> = [];
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    for (const listener of listeners.slice()) listener();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  running.add(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });
  const logs = (): Record<string, unknown>[] =>
    out
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  /** Resolves with what `find` finds, checked now and at every new stdout chunk; rejects
   * with `failure()` if the process exits before. */
  const waitFor = <T>(find: () => T | undefined, failure: () => string): Promise<T> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = find();
        if (found === undefined) return false;
        resolve(found);
        return true;
      };
      if (check()) return;
      const listener = (): void => {
        if (check()) listeners.splice(listeners.indexOf(listener), 1);
      };
      listeners.push(listener);
      void exited.then(() => {
        if (!check()) reject(new Error(failure()));
      });
    });
  const waitForLogs: CliRun['waitForLogs'] = (match, count) =>
    waitFor(
      () => {
        const found = logs().filter(match);
        return found.length < count ? undefined : found;
      },
      () => `exited with ${logs().filter(match).length} of ${count} lines; stdout: ${out}`,
    );
  const waitForLine: CliRun['waitForLine'] = (pattern) =>
    waitFor(
      () => out.split('\n').find((candidate) => pattern.test(candidate)),
      () => `exited without a line matching ${String(pattern)}; stdout: ${out}; stderr: ${err}`,
    );
  return {
    child,
    exited,
    waitForLine,
    stdout: () => out,
    stderr: () => err,
    logs,
    waitForLogs,
    waitForLog(msg) {
      return waitForLogs((line) => line['msg'] === msg, 1).then(
        (lines) => lines[0] as Record<string, unknown>,
        () => Promise.reject(new Error(`exited before "${msg}"; stderr: ${err}; stdout: ${out}`)),
      );
    },
  };
}

/** The port of a "gateway listening" log line. */
export function portOf(line: Record<string, unknown>): number {
  return Number(new URL(String(line['url'])).port);
}

/** A directory holding a `vllm` executable that runs the simulator in its place. */
export function fakeVllmBin(): { bin: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'fake-vllm-'));
  const bin = join(dir, 'vllm');
  // Records its pid (unchanged by exec) so that killLeftovers can find it.
  writeFileSync(bin, `#!/bin/sh\necho $$ >> "${dir}/pids"\ncd "${REPO_ROOT}" && exec "${process.execPath}" --import tsx sim/cli.ts "$@"\n`);
  chmodSync(bin, 0o755);
  fakeVllmDirs.push(dir);
  return { bin, dir };
}

/**
 * Why a test that needs a system tool cannot run here, or undefined when it can: pass it
 * as the test's `skip` option, so the reason shows in the runner's summary. Under CI
 * (CI=true) a missing tool is a failure instead: .ci/run's machine has them all.
 */
export function toolSkip(available: boolean, reason: string): string | undefined {
  if (available) return undefined;
  if (process.env['CI'] === 'true') throw new Error(`${reason}: under CI this is a failure`);
  return reason;
}

/**
 * One simulated vLLM for a file of command tests: started before them and handed to `use`;
 * after them, every command they left running is killed, then the simulator stopped.
 */
export function simForCliTests(use: (sim: SimVllm) => void, options: SimOptions = {}): void {
  let sim: SimVllm | undefined;
  before(async () => {
    sim = await startSimVllm(options);
    use(sim);
  });
  after(async () => {
    killLeftovers();
    await sim?.close();
  });
}
