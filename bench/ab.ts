// npm run bench:ab -- <labelA> "<flags A>" <labelB> "<flags B>" [--case json-1k|json-100k|stream-1|stream-100|stream-1000|json-1k-store|stream-100-store|chat-stream-100|continue-500|continue-500-developer] [--case-b NAME] [--baseline-a DIR | --entry-a "FILE [ARGS]"] [--node-a BIN] [--node-b BIN] [--rounds 5] [--seconds 3] [--connections 32] [--sim "delay-headers=N"]
//
// One performance change, measured side by side in one run: two gateways (different
// flags, or an earlier build with --baseline-a DIR) in front of one fast simulator,
// alternating rounds at c=32 (or --connections N) (A B A B ...). Prints CPU per request (all threads, from /proc)
// and throughput for each, and the median of the per-round ratios B/A.
//
// --case-b NAME: B sends that case instead (A sends --case), to measure what a request
// option costs side by side: `--case json-1k --case-b json-1k-store` is what store: true
// adds; the median of the per-round differences B − A is printed too.
//
// --sim "delay-headers=2": the simulator's switches for every request (the x-sim header):
// a model that takes 2 ms to answer, to see what the gateway does while it waits.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findLoadTool, runLoad } from './load.ts';
import { cpuNs } from './proc.ts';
import { median, spread } from './stats.ts';
import { ROOT, startBenchGateway, startBenchSim, startProcess, type Started } from './processes.ts';
import { toolArgs } from './args.ts';
import { bodyFor, requestCase } from './cases.ts';

const { argv, option } = toolArgs();
const [labelA = 'A', flagsA = '', labelB = 'B', flagsB = ''] = argv;
const ROUNDS = Number(option('rounds') ?? 5);
const SECONDS = Number(option('seconds') ?? 3);
const CONNECTIONS = Number(option('connections') ?? 32);
const job = requestCase(option('case') ?? 'json-1k');
const jobB = option('case-b') === undefined ? job : requestCase(option('case-b') as string);
if (jobB.chat !== job.chat) throw new Error('--case and --case-b must both be chat cases, or neither');

if (spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' }).status !== 0) throw new Error('build failed');
const logDir = mkdtempSync(join(tmpdir(), 'rg-ab-'));
const sim = await startBenchSim(logDir, job.chat === true ? ['--chat-only'] : []);
// --node-a/--node-b BIN: run that side's gateway on another Node (the same build).
const gateway = (flags: string, root: string, nodeBin = process.execPath): Promise<Started> =>
  startBenchGateway(sim.url, logDir, ['--db-url', 'sqlite::memory:', ...(job.chat === true ? ['--upstream-api', 'chat'] : []), ...flags.split(' ').filter(Boolean)], root, [], nodeBin);
// --entry-a "FILE [ARGS]": run that script as A (e.g. bench/minimal-proxy.ts, the node floor;
// "bench/minimal-proxy.ts --normalize", the normalizing floor).
const entryA = option('entry-a');
const a =
  entryA === undefined
    ? await gateway(flagsA, option('baseline-a') ?? ROOT, option('node-a'))
    : await startProcess([...entryA.split(' ').filter(Boolean), '--llm-api-base', sim.url], '--gateway-port', logDir);
const b = await gateway(flagsB, ROOT, option('node-b'));
// Every request carries --sim's switches to the simulator (the gateway forwards x-sim).
const simSwitches = option('sim');
const withSwitches = (headers: Record<string, string>): Record<string, string> => (simSwitches === undefined ? headers : { ...headers, 'x-sim': [headers['x-sim'], simSwitches].filter(Boolean).join(';') });
const jobs = { a: { ...job, headers: withSwitches(job.headers) }, b: { ...jobB, headers: withSwitches(jobB.headers) } };
const bodies = { a: await bodyFor(job, a.url), b: await bodyFor(jobB, b.url) };
const tool = findLoadTool(() => {});
const cpu: Record<'a' | 'b', number[]> = { a: [], b: [] };
const rps: Record<'a' | 'b', number[]> = { a: [], b: [] };
for (let round = 0; round < ROUNDS; round++) {
  for (const [key, target] of [['a', a], ['b', b]] as const) {
    const before = cpuNs(target.pid);
    const load = runLoad(tool, { url: `${target.url}/v1/responses`, body: bodies[key], headers: jobs[key].headers, connections: CONNECTIONS, seconds: SECONDS, scratchDir: '/tmp' });
    if (load.errors > 0) throw new Error(`${load.errors} errors`);
    cpu[key].push((cpuNs(target.pid) - before) / 1000 / load.requests);
    rps[key].push(load.rps);
  }
}
console.log(`case ${option('case') ?? 'json-1k'}${jobB === job ? '' : ` (B: ${option('case-b') as string})`}${simSwitches === undefined ? '' : `, x-sim ${simSwitches}`}, ${ROUNDS} rounds of ${SECONDS} s at c=${CONNECTIONS}, node ${process.version}`);
for (const [key, label] of [['a', labelA], ['b', labelB]] as const) {
  console.log(`${label.padEnd(12)} CPU/request ${median(cpu[key]).toFixed(0)} µs (${spread(cpu[key])}), ${median(rps[key]).toFixed(0)} req/s (${spread(rps[key])})`);
}
const cpuRatios = cpu.b.map((value, i) => value / (cpu.a[i] as number));
const rpsRatios = rps.b.map((value, i) => value / (rps.a[i] as number));
// The ratios' own range says whether B differs from A round after round, or only in some.
console.log(
  `${labelB}/${labelA}: CPU/request ${median(cpuRatios).toFixed(2)}x (${spread(cpuRatios, 2)}), throughput ${median(rpsRatios).toFixed(2)}x (${spread(rpsRatios, 2)}) (medians of per-round ratios)`,
);
if (jobB !== job) {
  const differences = cpu.b.map((value, i) => value - (cpu.a[i] as number));
  console.log(`${labelB} − ${labelA}: CPU/request ${median(differences).toFixed(0)} µs (${spread(differences)}) (median of per-round differences)`);
}
process.exit(0);
