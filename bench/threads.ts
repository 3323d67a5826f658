// npm run bench:threads -- [--case stream-100|stream-1|json-1k] [--connections 1] [--seconds 5] [--floor | --normalizing-floor] [--node-flags "..."] [-- gateway flags]
//
// CPU per request by thread of the gateway (or a floor): the main thread, where the
// JavaScript runs, and the others, V8's helper threads (parallel scavenges, concurrent
// marking and compilation) and libuv's pool. /proc/<pid>/task/*/stat before and after one
// load; a thread's name says little (all are "node"), so the main thread is the one whose
// id is the process's. After a 3 s warm-up (the optimizing compiler's work is on the
// helpers). What the helpers take is what a profile of the main thread does not show.
import { readdirSync, readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { toolArgs } from './args.ts';
import { findLoadTool, runLoad } from './load.ts';
import { ROOT, startBenchGateway, startBenchSim, startProcess, type Started } from './processes.ts';
import { bodyFor, requestCase } from './cases.ts';

const { option, flag, passthrough: gatewayFlags } = toolArgs();
const caseName = option('case') ?? 'stream-100';
const job = requestCase(caseName);

const connections = Number(option('connections') ?? 1);
const seconds = Number(option('seconds') ?? 5);
const nodeFlags = (option('node-flags') ?? '').split(' ').filter(Boolean);

if (spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' }).status !== 0) throw new Error('build failed');
const dir = mkdtempSync(join(tmpdir(), 'rg-threads-'));
const sim = await startBenchSim(dir);
const floor = flag('floor') ? 'node floor' : flag('normalizing-floor') ? 'normalizing floor' : undefined;
const target: Started = floor !== undefined
  ? await startProcess(['bench/minimal-proxy.ts', ...(flag('floor') ? [] : ['--normalize']), '--llm-api-base', sim.url], '--gateway-port', dir, nodeFlags)
  : await startBenchGateway(sim.url, dir, ['--db-url', 'sqlite::memory:', ...gatewayFlags], ROOT, nodeFlags);

/** CPU ticks of each thread, by thread id: user and system (the kernel's work for it:
 * socket writes on loopback include delivering the bytes to the reader). */
function ticksByThread(pid: number): Map<number, { user: number; system: number }> {
  const ticks = new Map<number, { user: number; system: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks.set(Number(tid), { user: Number(fields[11]), system: Number(fields[12]) });
  }
  return ticks;
}

const body = await bodyFor(job, target.url);
const tool = findLoadTool(() => {});
const drive = (forSeconds: number): ReturnType<typeof runLoad> =>
  runLoad(tool, { url: `${target.url}/v1/responses`, body, headers: job.headers, connections, seconds: forSeconds, scratchDir: dir });
// Warm-up first: the compiler's threads optimize the hot code in the first seconds.
drive(3);
const before = ticksByThread(target.pid);
const load = drive(seconds);
const after = ticksByThread(target.pid);
const status = readFileSync(`/proc/${target.pid}/status`, 'utf8');
const peakRss = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
target.child.kill('SIGTERM');
sim.child.kill('SIGTERM');

// A tick is 10 ms (USER_HZ 100): µs per request = ticks * 10,000 / requests.
const perRequest = (ticks: number): string => `${((ticks * 10_000) / load.requests).toFixed(0)} µs`;
let main = 0;
let mainSystem = 0;
let others = 0;
const byThread: string[] = [];
for (const [tid, ticks] of after) {
  const earlier = before.get(tid) ?? { user: 0, system: 0 };
  const used = ticks.user + ticks.system - earlier.user - earlier.system;
  if (tid === target.pid) {
    main += used;
    mainSystem += ticks.system - earlier.system;
  } else others += used;
  if (used > 0 && tid !== target.pid) byThread.push(`${tid}: ${perRequest(used)}`);
}
console.log(`${floor ?? 'gateway'} ${nodeFlags.join(' ')}, ${caseName} at c=${connections}, ${load.requests} requests in ${seconds} s, node ${process.version}`);
console.log(`  main thread     ${perRequest(main)} a request, of which the kernel ${perRequest(mainSystem)}`);
console.log(`  peak RSS        ${peakRss === undefined ? '?' : (Number(peakRss) / 1024).toFixed(1)} MB (VmHWM)`);
console.log(`  other threads   ${perRequest(others)} a request (V8's helpers: GC, compilation; libuv's pool): ${byThread.join(', ')}`);
process.exit(0);
