// npm run soak [-- --minutes 10 | --seconds 60] [--concurrency 16] [--out FILE]
//
// Mixed traffic through the real gateway (CLI, its own process) to the simulated vLLM
// (its own process): streamed and non-streamed responses, continuations, chat
// completions, random client aborts, and injected upstream faults. It samples the
// gateway's RSS and open file descriptors, and at the end checks that no connection to
// vLLM is left open. Exit code 1 on an unexpected error, growth after warm-up, or a leak.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';

const ROOT = new URL('../', import.meta.url).pathname;
const args = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const index = args.indexOf(`--${name}`);
  return index === -1 ? undefined : args[index + 1];
};
const durationMs = option('seconds') !== undefined ? Number(option('seconds')) * 1000 : Number(option('minutes') ?? 10) * 60_000;
const concurrency = Number(option('concurrency') ?? 16);
const outFile = option('out');
const SAMPLE_EVERY_MS = durationMs >= 300_000 ? 15_000 : 5_000;
/** The first part of the run is warm-up: growth is judged after it. */
const WARMUP_FRACTION = 0.25;

/** `command` runs under node; TypeScript sources get tsx, compiled JavaScript runs bare. */
function startProcess(command: string[], name: string): { child: ChildProcess; line: (pattern: RegExp) => Promise<RegExpExecArray> } {
  const loader = (command[0] ?? '').endsWith('.ts') ? ['--import', 'tsx'] : [];
  const child = spawn(process.execPath, [...loader, ...command], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let buffered = '';
  const waiters: Array<{ pattern: RegExp; resolve: (match: RegExpExecArray) => void }> = [];
  child.stdout?.on('data', (chunk: Buffer) => {
    if (waiters.length === 0) return; // after startup the output is only drained
    buffered += chunk.toString();
    for (const waiter of waiters.slice()) {
      const match = waiter.pattern.exec(buffered);
      if (match !== null) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(match);
      }
    }
    if (waiters.length === 0) buffered = '';
  });
  child.once('exit', (code) => {
    if (!stopping) {
      console.error(`${name} exited unexpectedly (${String(code)})`);
      process.exitCode = 1;
    }
  });
  return { child, line: (pattern) => new Promise((resolve) => waiters.push({ pattern, resolve })) };
}

let stopping = false;
// The gateway runs as users run it: compiled, without a TypeScript loader.
const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
if (build.status !== 0) throw new Error('npm run build failed');
const dbDir = mkdtempSync(join(tmpdir(), 'rg-soak-'));

const sim = startProcess(['sim/cli.ts', '--port', '0', '--no-record', '--chunk-delay-ms', '2'], 'simulated vLLM');
const simUrl = (await sim.line(/listening on (http:\/\/\S+)/))[1] as string;
const gateway = startProcess(
  [
    'dist/cli/main.js',
    '--llm-api-base', simUrl,
    '--gateway-host', '127.0.0.1',
    '--gateway-port', '0',
    '--db-url', `sqlite:${join(dbDir, 'soak.db')}`,
    '--upstream-idle-timeout', '1',
    '--log-level', 'info',
  ],
  'gateway',
);
const gatewayUrl = (await gateway.line(/"url":"(http:\/\/[^"]+)"/))[1] as string;
const gatewayPid = gateway.child.pid as number;

// --- traffic ---------------------------------------------------------------------------

type Outcome = 'ok' | 'injected' | 'client_abort' | 'unexpected';
const counts = new Map<string, number>();
const unexpected: string[] = [];
const latenciesMs: number[] = [];
let requests = 0;
const previousIds: string[] = [];

function count(kind: string): void {
  counts.set(kind, (counts.get(kind) ?? 0) + 1);
}

const client = new Pool(gatewayUrl, { connections: concurrency, pipelining: 1 });

interface Plan {
  readonly kind: string;
  readonly path: string;
  readonly body: Record<string, unknown>;
  readonly sim: string;
  /** What counts as the expected outcome of an injected fault. */
  readonly fault?: 'status' | 'stream-failed';
  readonly abortAfterMs?: number;
}

function plan(): Plan {
  const roll = Math.random();
  const previous = previousIds.length > 0 && Math.random() < 0.5 ? previousIds[Math.floor(Math.random() * previousIds.length)] : undefined;
  const input = `soak ${requests} with a few words`;
  if (roll < 0.3) return { kind: 'json', path: '/v1/responses', body: { model: 'm', input, ...(previous ? { previous_response_id: previous } : {}) }, sim: '' };
  if (roll < 0.6) return { kind: 'stream', path: '/v1/responses', body: { model: 'm', input, stream: true, ...(previous ? { previous_response_id: previous } : {}) }, sim: `deltas=${20 + Math.floor(Math.random() * 80)}` };
  if (roll < 0.7) return { kind: 'stateless', path: '/v1/responses', body: { model: 'm', input, store: false }, sim: '' };
  if (roll < 0.78) return { kind: 'chat', path: '/v1/chat/completions', body: { model: 'm', stream: true, messages: [{ role: 'user', content: input }] }, sim: '' };
  if (roll < 0.85) return { kind: 'client-abort', path: '/v1/responses', body: { model: 'm', input, stream: true }, sim: 'deltas=200;slow=5', abortAfterMs: 5 + Math.random() * 40 };
  const fault = ['reset-after=5', 'truncate-after=6', 'stall-after=4', 'status=500', 'garbage', 'reset-before-headers', 'quirk=no-terminal'][Math.floor(Math.random() * 7)] as string;
  const streamed = !['status=500', 'garbage', 'reset-before-headers'].includes(fault);
  return { kind: `fault:${fault.split('=')[0] as string}`, path: '/v1/responses', body: { model: 'm', input, stream: streamed }, sim: fault, fault: streamed ? 'stream-failed' : 'status' };
}

async function once(): Promise<Outcome> {
  const p = plan();
  requests += 1;
  const started = performance.now();
  const abort = new AbortController();
  const timer = p.abortAfterMs === undefined ? undefined : setTimeout(() => abort.abort(), p.abortAfterMs);
  try {
    const res = await client.request({
      method: 'POST',
      path: p.path,
      headers: { 'content-type': 'application/json', ...(p.sim ? { 'x-sim': p.sim } : {}) },
      body: JSON.stringify(p.body),
      signal: abort.signal,
    });
    const text = await res.body.text();
    clearTimeout(timer);
    if (p.abortAfterMs !== undefined) return 'ok'; // finished before the abort fired
    if (p.fault === 'status') {
      if (res.statusCode >= 500) return 'injected';
      unexpected.push(`${p.kind}: status ${res.statusCode}`);
      return 'unexpected';
    }
    if (res.statusCode !== 200) {
      unexpected.push(`${p.kind}: status ${res.statusCode}: ${text.slice(0, 200)}`);
      return 'unexpected';
    }
    if (p.kind === 'chat') return text.endsWith('data: [DONE]\n\n') ? 'ok' : 'unexpected';
    const failed = text.includes('event: response.failed');
    if (p.fault === 'stream-failed') {
      if (failed && text.endsWith('data: [DONE]\n\n')) return 'injected';
      unexpected.push(`${p.kind}: the stream did not end with response.failed`);
      return 'unexpected';
    }
    if (failed) {
      unexpected.push(`${p.kind}: response.failed without a fault: ${text.slice(text.indexOf('event: error'), text.indexOf('event: error') + 300)}`);
      return 'unexpected';
    }
    const id = /"id":"(resp_[0-9a-f]+)"/.exec(text)?.[1];
    if (id !== undefined && p.body['store'] !== false) {
      previousIds.push(id);
      if (previousIds.length > 200) previousIds.shift();
    }
    latenciesMs.push(performance.now() - started);
    return 'ok';
  } catch (error) {
    clearTimeout(timer);
    if (p.abortAfterMs !== undefined && abort.signal.aborted) return 'client_abort';
    unexpected.push(`${p.kind}: ${error instanceof Error ? error.message : String(error)}`);
    return 'unexpected';
  }
}

// --- sampling --------------------------------------------------------------------------

interface Sample {
  readonly atS: number;
  readonly rssMiB: number;
  readonly fds: number;
  readonly requests: number;
}
const samples: Sample[] = [];
const startedAt = Date.now();

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

function sample(): void {
  samples.push({
    atS: Math.round((Date.now() - startedAt) / 1000),
    rssMiB: Math.round(rssMiB(gatewayPid) * 10) / 10,
    fds: readdirSync(`/proc/${gatewayPid}/fd`).length,
    requests,
  });
}

async function upstreamConnections(): Promise<number> {
  const res = await fetch(`${simUrl}/_sim/stats`);
  return ((await res.json()) as { connections: number }).connections - 1; // minus this one
}

// --- run -------------------------------------------------------------------------------

console.log(`soak: ${durationMs / 1000} s, concurrency ${concurrency}, gateway ${gatewayUrl} (pid ${gatewayPid}), vLLM ${simUrl}`);
sample();
const sampler = setInterval(sample, SAMPLE_EVERY_MS);
const deadline = Date.now() + durationMs;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (Date.now() < deadline) count(await once());
  }),
);
clearInterval(sampler);
sample();
await client.close();

// Idle connections to vLLM close after the gateway's keep-alive (4 s): wait a little longer.
await new Promise((resolve) => setTimeout(resolve, 6_000));
const leaked = await upstreamConnections();

stopping = true;
gateway.child.kill('SIGTERM');
sim.child.kill('SIGTERM');

// --- report ----------------------------------------------------------------------------

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
};
const afterWarmup = samples.filter((s) => s.atS >= (durationMs / 1000) * WARMUP_FRACTION);
const firstHalf = afterWarmup.slice(0, Math.ceil(afterWarmup.length / 2));
const lastHalf = afterWarmup.slice(Math.floor(afterWarmup.length / 2));
const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
const rssGrowth = mean(lastHalf.map((s) => s.rssMiB)) - mean(firstHalf.map((s) => s.rssMiB));
const fdGrowth = Math.max(...lastHalf.map((s) => s.fds)) - Math.max(...firstHalf.map((s) => s.fds));
const problems: string[] = [];
if ((counts.get('unexpected') ?? 0) > 0) problems.push(`${counts.get('unexpected') ?? 0} unexpected errors`);
if (rssGrowth > 25) problems.push(`RSS grew by ${rssGrowth.toFixed(1)} MiB after warm-up`);
if (fdGrowth > 8) problems.push(`open file descriptors grew by ${fdGrowth} after warm-up`);
if (leaked !== 0) problems.push(`${leaked} connections to vLLM left open`);

const lines = [
  `## Soak: ${new Date(startedAt).toISOString().slice(0, 16)}Z, ${durationMs / 1000} s, concurrency ${concurrency}`,
  '',
  `Node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'} (${cpus().length} cores). Command: \`npm run soak -- ${args.join(' ')}\``,
  '',
  `- requests: ${requests} (${(requests / (durationMs / 1000)).toFixed(0)}/s); outcomes: ${JSON.stringify(Object.fromEntries(counts))}`,
  `- latency of successful requests (streams to their end): p50 ${percentile(latenciesMs, 50).toFixed(1)} ms, p99 ${percentile(latenciesMs, 99).toFixed(1)} ms`,
  `- gateway RSS after warm-up: ${mean(firstHalf.map((s) => s.rssMiB)).toFixed(1)} -> ${mean(lastHalf.map((s) => s.rssMiB)).toFixed(1)} MiB (${rssGrowth >= 0 ? '+' : ''}${rssGrowth.toFixed(1)}); open fds max ${Math.max(...firstHalf.map((s) => s.fds))} -> ${Math.max(...lastHalf.map((s) => s.fds))}`,
  `- connections to vLLM left open after the run: ${leaked}`,
  `- verdict: ${problems.length === 0 ? 'pass' : `FAIL: ${problems.join('; ')}`}`,
  '',
  '| t (s) | requests | RSS (MiB) | open fds |',
  '| ---: | ---: | ---: | ---: |',
  ...samples.map((s) => `| ${s.atS} | ${s.requests} | ${s.rssMiB} | ${s.fds} |`),
  '',
];
if (unexpected.length > 0) lines.push('Unexpected:', ...unexpected.slice(0, 20).map((line) => `- ${line}`), '');
const report = lines.join('\n');
console.log(report);
if (outFile !== undefined) writeFileSync(outFile, report);
process.exit(problems.length === 0 ? 0 : 1);
