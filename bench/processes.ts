// Starting the processes a benchmark measures: on a free port chosen here, ready once
// GET /health answers, stdout to a file (a harness blocked on wrk would not drain a pipe,
// and the gateway's logging would stall), and all of them killed when the harness exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { freePort } from './free-port.ts';
import { join } from 'node:path';

export const ROOT = new URL('../', import.meta.url).pathname;

export interface Started {
  readonly child: ChildProcess;
  readonly url: string;
  readonly pid: number;
}

const children: ChildProcess[] = [];
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** Has `child` killed when the harness exits, as every process started here is. */
export function killOnExit(child: ChildProcess): void {
  children.push(child);
}


let logs = 0;

/** Runs `node [tsx] args... <port flag> <port>` and waits for its /health. `nodeBin`:
 * another Node than the bench's own (bench:ab --node-a/--node-b compares Node versions). */
export async function startProcess(
  args: readonly string[],
  portFlag: string,
  logDir: string,
  nodeFlags: readonly string[] = [],
  nodeBin: string = process.execPath,
): Promise<Started> {
  const port = await freePort();
  const loader = (args[0] ?? '').endsWith('.ts') ? ['--import', 'tsx'] : [];
  const fd = openSync(join(logDir, `process-${logs++}.log`), 'w');
  const child = spawn(nodeBin, [...nodeFlags, ...loader, ...args, portFlag, String(port)], { cwd: ROOT, stdio: ['ignore', fd, 'inherit'] });
  closeSync(fd);
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  for (let attempt = 0; attempt < 400; attempt++) {
    if (child.exitCode !== null) break;
    try {
      if ((await fetch(`${url}/health`)).ok) return { child, url, pid: child.pid as number };
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${args[0] ?? ''} did not start (log in ${logDir})`);
}

/** The simulated vLLM in benchmark mode (prepared answers, one write per event). */
export function startBenchSim(logDir: string, extra: readonly string[] = []): Promise<Started> {
  return startProcess(['sim/cli.ts', '--fast', '--no-record', '--coalesce', ...extra], '--port', logDir);
}

/** The compiled gateway (dist/ of `root`, this checkout by default). */
export function startBenchGateway(
  upstream: string,
  logDir: string,
  flags: readonly string[] = [],
  root = ROOT,
  nodeFlags: readonly string[] = [],
  nodeBin: string = process.execPath,
): Promise<Started> {
  return startProcess(
    [join(root, 'dist/cli/main.js'), '--llm-api-base', upstream, '--gateway-host', '127.0.0.1', ...flags],
    '--gateway-port',
    logDir,
    nodeFlags,
    nodeBin,
  );
}
