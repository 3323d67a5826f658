// npm run bench:syscalls -- [--case stream-100|json-1k] [--baseline DIR] [--floor] [--requests N] [--connections N] [-- gateway flags]
//
// System calls the gateway makes per request (c=1, one keep-alive connection, unless
// --connections N: N at once, as under load, where SQLite's group commit gathers the
// turns' writes): `strace -c -f` attached to the compiled gateway for N requests after a
// warm-up, per call and per request. A syscall saved is a figure that does not drown in
// this machine's noise the way CPU time does. --baseline: the same for the gateway built
// in DIR (an earlier checkout), first; --floor: for the node floor (bench/minimal-proxy.ts).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { ROOT, startBenchGateway, startBenchSim, startProcess, type Started } from './processes.ts';
import { bodyFor, requestCase } from './cases.ts';
import { toolArgs } from './args.ts';

const { option, flag, passthrough: gatewayFlags } = toolArgs();
const requests = Number(option('requests') ?? 500);
const connections = Number(option('connections') ?? 1);
const baseline = option('baseline');
const caseName = option('case') ?? 'stream-100';
const job = requestCase(caseName);

if (spawnSync('strace', ['-V']).status !== 0) throw new Error('strace is not installed (apt-get install strace)');

const dir = mkdtempSync(join(tmpdir(), 'rg-syscalls-'));
const sim = await startBenchSim(dir);
const headers = { 'content-type': 'application/json', ...job.headers };

async function countFor(start: () => Promise<Started>, label: string): Promise<void> {
  const gateway = await start();
  const body = await bodyFor(job, gateway.url);
  const agent = new Agent({ connections });
  const one = async (): Promise<void> => {
    const response = await request(`${gateway.url}/v1/responses`, { method: 'POST', body, headers, dispatcher: agent });
    await response.body.text();
  };
  for (let i = 0; i < 50; i++) await one();
  // The label may hold a path (--baseline DIR): the file is named apart from it.
  const out = join(dir, `${label.replace(/[^A-Za-z0-9]+/g, '-')}-strace.txt`);
  const tracer = spawn('strace', ['-c', '-f', '-o', out, '-p', String(gateway.pid)], { stdio: 'ignore' });
  // Listened for at once: a strace that cannot start exits before the requests are done.
  const traced = new Promise((resolve) => tracer.once('exit', resolve));
  // strace prints nothing when attached; its attach takes a moment, then the count starts.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  await Promise.all(
    Array.from({ length: connections }, async () => {
      for (let i = 0; i < requests / connections; i++) await one();
    }),
  );
  tracer.kill('SIGINT');
  await traced;
  await agent.close();
  gateway.child.kill('SIGTERM');
  console.log(`\n${label}: ${requests} requests of ${caseName} at c=${connections} (calls, per request)`);
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    const fields = line.trim().split(/\s+/);
    const name = fields[fields.length - 1] ?? '';
    const calls = Number(fields[3]);
    if (!/^\d/.test(fields[0] ?? '') || !Number.isFinite(calls)) continue;
    console.log(`  ${name.padEnd(16)} ${String(calls).padStart(7)}  ${(calls / requests).toFixed(2).padStart(6)}`);
  }
}

const gatewayIn = (root: string, label: string) => (): Promise<Started> =>
  startBenchGateway(sim.url, dir, ['--db-url', `sqlite:${join(dir, `${label}.db`)}`, ...gatewayFlags], root);
if (flag('floor')) {
  await countFor(() => startProcess(['bench/minimal-proxy.ts', '--llm-api-base', sim.url], '--gateway-port', dir), 'node floor');
}
if (baseline !== undefined) await countFor(gatewayIn(baseline, 'baseline'), `baseline (${baseline})`);
await countFor(gatewayIn(ROOT, 'this'), `this checkout${gatewayFlags.length > 0 ? ` (${gatewayFlags.join(' ')})` : ''}`);
sim.child.kill('SIGTERM');
process.exit(0);
