// npm run stress:inputs [-- --seconds 20] [--db-url URL] [--out FILE] [--profile] [--accepted]
//
// Huge inputs at the gateway's default limits (docs/reliability.md): while 8 clients send
// bodies of the largest size accepted (10 MiB of hundreds of thousands of tiny items,
// refused by --max-input-items) and 10 clients continue the largest stored response,
// GET /health must answer with a p99 under 100 ms and the gateway's RSS stay under 1 GiB.
// --accepted: half the 8 send the largest body that is accepted instead (as many ~1 KB
// items as --max-input-items allows), each one stored. The gateway runs compiled, in its
// own process, in front of the simulated vLLM (its own process).
// Exit code 1 when a target is missed or a request gets an unexpected answer.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { ROOT, startBenchGateway, startBenchSim } from '../bench/processes.ts';
import { printProfileSummary } from '../bench/profile-summary.ts';
import { percentile } from '../bench/stats.ts';
import { toolArgs } from '../bench/args.ts';

const { argv: args, option } = toolArgs();
const seconds = Number(option('seconds') ?? 20);
const outFile = option('out');
const acceptedToo = args.includes('--accepted');
const MAX_BODY_BYTES = 10 * 1024 * 1024; // --max-body-size's default
const MAX_INPUT_ITEMS = 10_000; // --max-input-items's default
const HEALTH_P99_TARGET_MS = 100;
const RSS_TARGET_MIB = 1024;

const build = spawnSync('npm', ['run', 'build', '--silent'], { stdio: 'inherit' });
if (build.status !== 0) throw new Error('npm run build failed');
const scratch = mkdtempSync(join(tmpdir(), 'rg-huge-'));
const dbUrl = option('db-url') ?? `sqlite:${join(scratch, 'huge.db')}`;
const sim = await startBenchSim(scratch);
const profiling = args.includes('--profile');
const nodeFlags = [...(profiling ? ['--cpu-prof', `--cpu-prof-dir=${scratch}`] : []), ...(process.env['GATEWAY_NODE_FLAGS']?.split(' ').filter(Boolean) ?? [])];
const gateway = await startBenchGateway(sim.url, scratch, ['--db-url', dbUrl, '--log-level', 'warn'], ROOT, nodeFlags);
console.error(`logs in ${scratch}`);
const client = new Pool(gateway.url, { connections: 32 });

// --- the bodies ------------------------------------------------------------------------

/** The most items a body may have that a continuation can still add to (input + output). */
const LARGEST_ITEMS = MAX_INPUT_ITEMS - 10;
const tinyItems = (): Buffer => {
  const item = '{"role":"user","content":"x"},';
  const count = Math.floor((MAX_BODY_BYTES - 100) / item.length);
  return Buffer.from(`{"model":"m","input":[${item.repeat(count).slice(0, -1)}]}`);
};
const largestAccepted = (): Buffer => {
  const text = 'y'.repeat(Math.floor(MAX_BODY_BYTES / LARGEST_ITEMS) - 40);
  const item = `{"role":"user","content":"${text}"},`;
  return Buffer.from(`{"model":"m","input":[${item.repeat(LARGEST_ITEMS).slice(0, -1)}]}`);
};
const tiny = tinyItems();
const largest = largestAccepted();
if (tiny.length > MAX_BODY_BYTES || largest.length > MAX_BODY_BYTES) throw new Error('a body is over --max-body-size');

async function post(body: Buffer | string): Promise<{ status: number; text: string }> {
  const res = await client.request({ method: 'POST', path: '/v1/responses', headers: { 'content-type': 'application/json' }, body });
  return { status: res.statusCode, text: await res.body.text() };
}

const stored = await post(largest);
if (stored.status !== 200) throw new Error(`storing the largest response failed: ${stored.status} ${stored.text.slice(0, 200)}`);
const largestId = (JSON.parse(stored.text) as { id: string }).id;

// --- the load --------------------------------------------------------------------------

const outcomes = new Map<string, number>();
const unexpected: string[] = [];
const note = (kind: string, status: number, expected: number, text: string): void => {
  outcomes.set(`${kind} ${status}`, (outcomes.get(`${kind} ${status}`) ?? 0) + 1);
  if (status !== expected && unexpected.length < 20) unexpected.push(`${kind}: ${status} ${text.slice(0, 160)}`);
};
const deadline = Date.now() + seconds * 1000;
const healthMs: number[] = [];
const rssMiB: number[] = [];
const readStatus = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${gateway.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

const senders = Array.from({ length: 8 }, async (_, n) => {
  while (Date.now() < deadline) {
    const refused = !acceptedToo || n % 2 === 0;
    const res = await post(refused ? tiny : largest);
    note(refused ? 'tiny items' : 'largest accepted', res.status, refused ? 400 : 200, res.text);
  }
});
const continuers = Array.from({ length: 10 }, async () => {
  while (Date.now() < deadline) {
    const res = await post(JSON.stringify({ model: 'm', input: 'and then?', previous_response_id: largestId }));
    note('continuation', res.status, 200, res.text);
  }
});
const prober = (async () => {
  const health = new Pool(gateway.url, { connections: 1 });
  while (Date.now() < deadline) {
    const started = performance.now();
    const res = await health.request({ method: 'GET', path: '/health' });
    await res.body.dump();
    healthMs.push(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await health.close();
})();
const sampler = setInterval(() => rssMiB.push(readStatus('VmRSS')), 250);
await Promise.all([...senders, ...continuers, prober]);
clearInterval(sampler);
const peakMiB = readStatus('VmHWM');
const lag = /^gateway_nodejs_eventloop_lag_p99_seconds (\S+)/m.exec(await (await fetch(`${gateway.url}/metrics`)).text())?.[1];
await client.close();
gateway.child.kill('SIGTERM');
await new Promise((resolve) => gateway.child.once('exit', resolve));
sim.child.kill('SIGTERM');
if (profiling) printProfileSummary(scratch);

// --- report ----------------------------------------------------------------------------

const p99 = percentile(healthMs, 99);
const problems: string[] = [];
if (p99 >= HEALTH_P99_TARGET_MS) problems.push(`/health p99 ${p99.toFixed(1)} ms (target < ${HEALTH_P99_TARGET_MS})`);
if (peakMiB >= RSS_TARGET_MIB) problems.push(`peak RSS ${peakMiB.toFixed(0)} MiB (target < ${RSS_TARGET_MIB})`);
if (unexpected.length > 0) problems.push(`${unexpected.length} unexpected answers`);
const lines = [
  `## Huge inputs: ${new Date().toISOString().slice(0, 16)}Z, ${seconds} s`,
  '',
  `Node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'} (${cpus().length} cores), store ${dbUrl.split(':')[0]}. Command: \`npm run stress:inputs -- ${args.join(' ')}\``,
  '',
  `- bodies: ${(tiny.length / 1048576).toFixed(1)} MiB of ${tiny.toString().split('},{').length} tiny items (refused), ${(largest.length / 1048576).toFixed(1)} MiB of ${LARGEST_ITEMS} items (accepted); the largest stored response has ${LARGEST_ITEMS} items`,
  `- answers: ${JSON.stringify(Object.fromEntries(outcomes))}`,
  `- GET /health while loaded: ${healthMs.length} probes, p50 ${percentile(healthMs, 50).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${Math.max(...healthMs).toFixed(1)} ms`,
  `- gateway RSS: median ${percentile(rssMiB, 50).toFixed(0)} MiB, peak (VmHWM) ${peakMiB.toFixed(0)} MiB; event-loop delay p99 (from /metrics) ${lag === undefined ? 'n/a' : `${(Number(lag) * 1000).toFixed(1)} ms`}`,
  `- verdict: ${problems.length === 0 ? 'pass' : `FAIL: ${problems.join('; ')}`}`,
  '',
];
if (unexpected.length > 0) lines.push('Unexpected:', ...unexpected.map((line) => `- ${line}`), '');
const report = lines.join('\n');
console.log(report);
if (outFile !== undefined) writeFileSync(outFile, report);
process.exit(problems.length === 0 ? 0 : 1);
