// npm run bench:allocations -- [--case stream-100|stream-1|json-1k] [--connections 1] [--seconds 3] [--all] [--open-streams N] [--node-flags "..."] [-- gateway flags]
//
// Where the gateway allocates what outlives a scavenge: V8's sampling heap profiler,
// through the inspector, over one load after a warm-up. By default it keeps the samples of
// objects that survived at least one minor GC (those a major GC freed later included):
// what gets promoted, which is what makes scavenges and the helper threads' marking cost
// (bench:threads). --all keeps every allocation instead. Prints KiB per request by
// allocating function and the heaviest stacks.
//
// --open-streams N: instead of a load at full speed, N streams held open at a model's pace
// (one event per 100 ms, as the memory harness holds them), sampled for --seconds once all
// are open: bytes per event. At that pace an object a stream keeps from one event to the
// next outlives a scavenge, which a load at full speed does not show. --node-flags: V8's
// flags for the gateway (--max-semi-space-size=1: scavenges as often as they come then).
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toolArgs } from './args.ts';
import { findLoadTool, runLoad } from './load.ts';
import { freePort } from './free-port.ts';
import { connectInspector } from './inspector.ts';
import { ROOT, startBenchGateway, startBenchSim } from './processes.ts';
import { bodyFor, requestCase } from './cases.ts';
import { EVENT_INTERVAL_MS, holdOpenStreams, startPacedSim } from './open-streams.ts';
import { setTimeout as sleep } from 'node:timers/promises';

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

const { option, flag, passthrough: gatewayFlags } = toolArgs();
const caseName = option('case') ?? 'stream-100';
const job = requestCase(caseName);

const connections = Number(option('connections') ?? 1);
const seconds = Number(option('seconds') ?? 3);
const openStreams = option('open-streams') === undefined ? undefined : Number(option('open-streams'));
const nodeFlags = (option('node-flags') ?? '').split(' ').filter(Boolean);

if (spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' }).status !== 0) throw new Error('build failed');
const dir = mkdtempSync(join(tmpdir(), 'rg-allocations-'));
const sim = openStreams === undefined ? await startBenchSim(dir) : await startPacedSim(dir);
const inspectorPort = await freePort();
const gateway = await startBenchGateway(sim.url, dir, ['--db-url', 'sqlite::memory:', ...gatewayFlags], ROOT, [`--inspect=127.0.0.1:${inspectorPort}`, ...nodeFlags]);
const body = await bodyFor(job, gateway.url);

const inspector = await connectInspector(inspectorPort);
const call = inspector.call;

const tool = findLoadTool(() => {});
const drive = (forSeconds: number): ReturnType<typeof runLoad> =>
  runLoad(tool, { url: `${gateway.url}/v1/responses`, body, headers: job.headers, connections, seconds: forSeconds, scratchDir: dir });
/** What the sampled bytes are divided by: requests, or (--open-streams) events. */
let units: number;
let unitName: string;
let profile: { head: ProfileNode };
if (openStreams === undefined) {
  drive(2); // warm-up
  await call('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: flag('all') });
  units = drive(seconds).requests;
  unitName = 'request';
  ({ profile } = await call<{ profile: { head: ProfileNode } }>('HeapProfiler.stopSampling'));
} else {
  const held = await holdOpenStreams(gateway.url, openStreams);
  if (held.opened !== openStreams) throw new Error(`${held.opened} of ${openStreams} streams opened`);
  await sleep(3000); // the streams settled at their pace
  await call('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: flag('all') });
  await sleep(seconds * 1000);
  ({ profile } = await call<{ profile: { head: ProfileNode } }>('HeapProfiler.stopSampling'));
  units = (openStreams * seconds * 1000) / EVENT_INTERVAL_MS;
  unitName = 'event';
  await held.close();
}
inspector.close();
gateway.child.kill('SIGTERM');
sim.child.kill('SIGTERM');

const byFunction = new Map<string, number>();
const byStack = new Map<string, number>();
let total = 0;
const nameOf = ({ callFrame }: ProfileNode): string =>
  `${callFrame.functionName || '(anonymous)'} ${callFrame.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${callFrame.lineNumber + 1}`;
function walk(node: ProfileNode, stack: readonly string[]): void {
  const here = [nameOf(node), ...stack];
  if (node.selfSize > 0) {
    total += node.selfSize;
    byFunction.set(here[0] as string, (byFunction.get(here[0] as string) ?? 0) + node.selfSize);
    const key = here.slice(0, 4).join(' < ');
    byStack.set(key, (byStack.get(key) ?? 0) + node.selfSize);
  }
  for (const child of node.children) walk(child, here);
}
walk(profile.head, []);

const kib = (bytes: number): string =>
  unitName === 'request' ? `${(bytes / 1024 / units).toFixed(2).padStart(7)} KiB` : `${(bytes / units).toFixed(1).padStart(7)} B`;
const what = openStreams === undefined ? `${caseName} at c=${connections}, ${units} requests` : `${openStreams} streams open at one event per ${EVENT_INTERVAL_MS} ms, ${units} events`;
const per = unitName === 'event' ? 'an event' : 'a request';
console.log(`${what}, node ${process.version}${nodeFlags.length > 0 ? ` ${nodeFlags.join(' ')}` : ''}: ${flag('all') ? 'all allocations' : 'objects that survived a scavenge'}, ${kib(total).trim()} ${per}`);
console.log(`by allocating function (${per}):`);
for (const [name, bytes] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`  ${kib(bytes)}  ${name}`);
console.log(`heaviest stacks (${per}):`);
for (const [stack, bytes] of [...byStack].sort((a, b) => b[1] - a[1]).slice(0, 10)) console.log(`  ${kib(bytes)}  ${stack}`);
process.exit(0);
