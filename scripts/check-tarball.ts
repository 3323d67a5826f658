// npm run check:tarball: installs the gateway as README's "Install" says, from a packed
// tarball (npm pack; npm install -g) into a scratch prefix, on the Node running this, and
// serves requests with the installed command in front of the simulated vLLM. On a Node
// without node:sqlite (20) the first start must fail with one line giving the command that
// fixes it; that command is then run, and the gateway must start. Exits non-zero on any
// failure. Used by .ci/run on Node 20 and Node 24.
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSimVllm } from '../sim/vllm-sim.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const START_TIMEOUT_MS = 60_000;

function run(command: string, args: readonly string[], options: SpawnSyncOptions = {}): string {
  const result = spawnSync(command, args, { cwd: ROOT, encoding: 'utf8', ...options });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${String(result.status)}):\n${String(result.stdout)}${String(result.stderr)}`);
  }
  return String(result.stdout);
}

function hasBuiltInSqlite(): boolean {
  try {
    createRequire(import.meta.url)('node:sqlite');
    return true;
  } catch {
    return false;
  }
}

interface Started {
  readonly url: string;
  stop(): Promise<void>;
}

/** Starts the installed command; resolves once it listens, rejects with its stderr if it exits. */
function startInstalled(bin: string, upstream: string, dbDir: string): Promise<Started> {
  const child = spawn(
    bin,
    ['--llm-api-base', upstream, '--gateway-host', '127.0.0.1', '--gateway-port', '0', '--log-format', 'json', '--db-url', `sqlite:${join(dbDir, 'responses.db')}`],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OPENAI_API_KEY: undefined, GATEWAY_API_KEYS: undefined } },
  );
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the installed gateway did not start within ${START_TIMEOUT_MS / 1000} s:\n${stdout}${stderr}`));
    }, START_TIMEOUT_MS);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const line = stdout.split('\n').find((candidate) => candidate.includes('"gateway listening"'));
      if (line === undefined) return;
      clearTimeout(timer);
      const url = String((JSON.parse(line) as { url: string }).url);
      resolve({
        url,
        stop: () =>
          new Promise<void>((done) => {
            child.once('exit', () => done());
            child.kill('SIGTERM');
          }),
      });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(Object.assign(new Error(`the installed gateway exited with ${String(code)}: ${stderr.trim()}`), { stderr }));
    });
  });
}

async function serveRequests(url: string): Promise<void> {
  const json = await fetch(`${url}/v1/responses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'sim-model', input: 'hello from the tarball' }),
  });
  const body = (await json.json()) as { id?: string; status?: string; output?: unknown[] };
  if (json.status !== 200 || body.status !== 'completed' || !Array.isArray(body.output)) {
    throw new Error(`POST /v1/responses answered ${json.status}: ${JSON.stringify(body)}`);
  }
  const stored = await fetch(`${url}/v1/responses/${String(body.id)}`);
  if (stored.status !== 200) throw new Error(`the stored response was not found (${stored.status})`);
  const stream = await fetch(`${url}/v1/responses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'sim-model', input: 'and streamed', stream: true, previous_response_id: body.id }),
  });
  const events = await stream.text();
  if (stream.status !== 200 || !events.includes('event: response.completed')) {
    throw new Error(`the streamed continuation answered ${stream.status}: ${events.slice(0, 500)}`);
  }
}

const work = mkdtempSync(join(tmpdir(), 'rg-tarball-'));
const sim = await startSimVllm({ port: 0 });
try {
  run('npm', ['pack', '--silent', '--pack-destination', work]);
  const tarball = readdirSync(work).find((name) => name.endsWith('.tgz'));
  if (tarball === undefined) throw new Error('npm pack wrote no tarball');
  const prefix = join(work, 'prefix');
  run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', join(work, tarball)]);
  const bin = join(prefix, 'bin', 'responses-gateway');
  const version = run(bin, ['--version']).trim();
  console.log(`installed ${tarball} with Node ${process.versions.node}: responses-gateway ${version}`);
  const installed = join(prefix, 'lib', 'node_modules', 'responses-gateway');
  if (existsSync(join(installed, 'node_modules', 'better-sqlite3'))) throw new Error('the tarball brought better-sqlite3 along: it must not');

  if (!hasBuiltInSqlite()) {
    // Node 20: without better-sqlite3 the start fails, naming the fix.
    const fix = 'npm install -g better-sqlite3@12';
    const failed = await startInstalled(bin, sim.url, work).then(
      async (started) => {
        await started.stop();
        return undefined;
      },
      (error: Error & { stderr?: string }) => error.stderr ?? error.message,
    );
    if (failed === undefined) throw new Error('the gateway started on Node 20 without better-sqlite3');
    if (!failed.includes(fix)) throw new Error(`the error does not give "${fix}": ${failed}`);
    console.log(`without better-sqlite3 the start fails with: ${failed.trim().split('\n')[0]}`);
    run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', 'better-sqlite3@12'], { stdio: 'inherit' });
  }

  const gateway = await startInstalled(bin, sim.url, work);
  try {
    await serveRequests(gateway.url);
  } finally {
    await gateway.stop();
  }
  console.log('the installed gateway served a stored response and a streamed continuation');
} finally {
  await sim.close();
  rmSync(work, { recursive: true, force: true });
}
