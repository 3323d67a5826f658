// npm run bench:allocations -- [--case stream-100|stream-1|json-1k] [--connections 1] [--seconds 3] [--all] [-- gateway flags]
//
// Where the gateway allocates what outlives a scavenge: V8's sampling heap profiler,
// through the inspector, over one load after a warm-up. By default it keeps the samples of
// objects that survived at least one minor GC (those a major GC freed later included):
// what gets promoted, which is what makes scavenges and the helper threads' marking cost
// (bench:threads). --all keeps every allocation instead. Prints KiB per request by
// allocating function and the heaviest stacks.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { toolArgs } from './args.ts';
import { findLoadTool, runLoad } from './load.ts';
import { freePort } from './free-port.ts';
import { ROOT, startBenchGateway, startBenchSim } from './processes.ts';
import { bodyFor, requestCase } from './cases.ts';

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

if (spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' }).status !== 0) throw new Error('build failed');
const dir = mkdtempSync(join(tmpdir(), 'rg-allocations-'));
const sim = await startBenchSim(dir);
const inspectorPort = await freePort();
const gateway = await startBenchGateway(sim.url, dir, ['--db-url', 'sqlite::memory:', ...gatewayFlags], ROOT, [`--inspect=127.0.0.1:${inspectorPort}`]);
const body = await bodyFor(job, gateway.url);

const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
const socket = new WebSocket((targets[0] as { webSocketDebuggerUrl: string }).webSocketDebuggerUrl);
await new Promise((resolve) => socket.once('open', resolve));
const answers = new Map<number, (result: unknown) => void>();
socket.on('message', (data: Buffer) => {
  const message = JSON.parse(data.toString('utf8')) as { id?: number; result?: unknown };
  if (message.id !== undefined) answers.get(message.id)?.(message.result);
});
let lastId = 0;
function call<T>(method: string, params: object = {}): Promise<T> {
  const id = ++lastId;
  return new Promise((resolve) => {
    answers.set(id, resolve as (result: unknown) => void);
    socket.send(JSON.stringify({ id, method, params }));
  });
}

const tool = findLoadTool(() => {});
const drive = (forSeconds: number): ReturnType<typeof runLoad> =>
  runLoad(tool, { url: `${gateway.url}/v1/responses`, body, headers: job.headers, connections, seconds: forSeconds, scratchDir: dir });
drive(2); // warm-up
await call('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: flag('all') });
const load = drive(seconds);
const { profile } = await call<{ profile: { head: ProfileNode } }>('HeapProfiler.stopSampling');
socket.close();
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

const kib = (bytes: number): string => `${(bytes / 1024 / load.requests).toFixed(2).padStart(7)} KiB`;
console.log(`${caseName} at c=${connections}, ${load.requests} requests, node ${process.version}: ${flag('all') ? 'all allocations' : 'objects that survived a scavenge'}, ${kib(total).trim()} a request`);
console.log('by allocating function (a request):');
for (const [name, bytes] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`  ${kib(bytes)}  ${name}`);
console.log('heaviest stacks (a request):');
for (const [stack, bytes] of [...byStack].sort((a, b) => b[1] - a[1]).slice(0, 10)) console.log(`  ${kib(bytes)}  ${stack}`);
process.exit(0);
