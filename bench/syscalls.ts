// npm run bench:syscalls -- [--baseline DIR] [--streams N]
//
// System calls the gateway makes per 100-delta stream (store: false, c=1, one
// keep-alive connection): `strace -c -f` attached to the compiled gateway for N streams
// after a warm-up, per call and per stream. A syscall saved is a figure that does not
// drown in this machine's noise the way CPU time does. --baseline: the same for the
// gateway built in DIR (an earlier checkout), first.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { ROOT, startBenchGateway, startBenchSim } from './processes.ts';

const argv = process.argv.slice(2);
const valueOf = (name: string): string | undefined => {
  const at = argv.indexOf(name);
  return at === -1 ? undefined : argv[at + 1];
};
const streams = Number(valueOf('--streams') ?? 500);
const baseline = valueOf('--baseline');
if (spawnSync('strace', ['-V']).status !== 0) throw new Error('strace is not installed (apt-get install strace)');

const dir = mkdtempSync(join(tmpdir(), 'rg-syscalls-'));
const sim = await startBenchSim(dir);
const body = JSON.stringify({ model: 'm', input: 'x', stream: true, store: false });
const headers = { 'content-type': 'application/json', 'x-sim': 'deltas=100' };

async function countFor(root: string, label: string): Promise<void> {
  const gateway = await startBenchGateway(sim.url, dir, ['--db-url', `sqlite:${join(dir, `${label}.db`)}`], root);
  const agent = new Agent({ connections: 1 });
  const one = async (): Promise<void> => {
    const response = await request(`${gateway.url}/v1/responses`, { method: 'POST', body, headers, dispatcher: agent });
    await response.body.text();
  };
  for (let i = 0; i < 50; i++) await one();
  const out = join(dir, `${label}-strace.txt`);
  const tracer = spawn('strace', ['-c', '-f', '-o', out, '-p', String(gateway.pid)], { stdio: 'ignore' });
  // strace prints nothing when attached; its attach takes a moment, then the count starts.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  for (let i = 0; i < streams; i++) await one();
  tracer.kill('SIGINT');
  await new Promise((resolve) => tracer.once('exit', resolve));
  await agent.close();
  gateway.child.kill('SIGTERM');
  console.log(`\n${label}: ${streams} streams of 100 deltas at c=1 (calls, per stream)`);
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    const fields = line.trim().split(/\s+/);
    const name = fields[fields.length - 1] ?? '';
    const calls = Number(fields[3]);
    if (!/^\d/.test(fields[0] ?? '') || !Number.isFinite(calls)) continue;
    console.log(`  ${name.padEnd(16)} ${String(calls).padStart(7)}  ${(calls / streams).toFixed(2).padStart(6)}`);
  }
}

if (baseline !== undefined) await countFor(baseline, `baseline (${baseline})`);
await countFor(ROOT, 'this checkout');
sim.child.kill('SIGTERM');
process.exit(0);
