// npm run bench:gap -- [--case json-1k] [--against normalizing|node] [--case-b NAME] [--db-url-b URL] [--rounds 2] [--seconds 5] [--connections 32] [-- gateway flags]
//
// Where the gateway's time goes beyond a floor's, function by function: the gateway and a
// floor (bench/minimal-proxy.ts, the normalizing one by default) each profiled by V8's
// CPU profiler under the same load, in alternating rounds, the profiler started through
// the inspector after a warm-up (so the start-up's compilation is not in it). Prints each
// one's main-thread time a request, by group and by function, and the functions sorted by
// what the gateway spends over the floor. A profile is wall time on the main thread: a
// system call's time includes waiting for the CPU (on loopback, a write wakes its reader),
// so `writev` reads high on both sides; compare the two, not the absolute figures. A
// function the JIT inlined is counted in its caller, and two processes may inline
// differently (a store stream's `#deltaInPlace` read 5 µs less and its caller `onEvents`
// 8 µs more, with the same events): compare groups and folders before single functions.
// What other threads take (GC's helpers) is in bench:threads.
//
// --case-b NAME: no floor; the gateway sending --case against another gateway sending
// NAME: what a request option costs, by function (`--case stream-100 --case-b
// stream-100-store`: what storing a stream takes). Each gateway stores in a database
// file of its own, so that SQLite's WAL writes count.
// --db-url-b URL: the second gateway stores there instead (PostgreSQL: in a schema of its
// own, dropped at the end): `--case continue-100-store --case-b continue-100-store
// --db-url-b postgres://… --connections 1` is what PostgreSQL costs over SQLite.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toolArgs } from './args.ts';
import { findLoadTool, runLoad } from './load.ts';
import { freePort } from './free-port.ts';
import { connectInspector } from './inspector.ts';
import { ROOT, startBenchGateway, startBenchSim, startProcess, type Started } from './processes.ts';
import { bodyFor, requestCase, type RequestCase } from './cases.ts';
import { createBenchSchema } from './pg-schema.ts';

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

const { option, passthrough: gatewayFlags } = toolArgs();
const caseName = option('case') ?? 'json-1k';
const job = requestCase(caseName);
const caseB = option('case-b');
const dbUrlB = option('db-url-b');
if (dbUrlB !== undefined && caseB === undefined) throw new Error('--db-url-b goes with --case-b');
const against = option('against') ?? 'normalizing';
if (against !== 'normalizing' && against !== 'node') throw new Error('--against: normalizing or node');
const rounds = Number(option('rounds') ?? 2);
const seconds = Number(option('seconds') ?? 5);
const connections = Number(option('connections') ?? 32);

if (spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' }).status !== 0) throw new Error('build failed');
const dir = mkdtempSync(join(tmpdir(), 'rg-gap-'));
const sim = await startBenchSim(dir);
const tool = findLoadTool(() => {});

interface Side {
  readonly label: string;
  readonly job: RequestCase;
  readonly process: Started;
  readonly inspectorPort: number;
  readonly body: string;
  /** µs of main-thread time by function, summed over rounds. */
  readonly byFunction: Map<string, number>;
  requests: number;
}

async function start(label: string, sideJob: RequestCase, run: (inspect: string[]) => Promise<Started>): Promise<Side> {
  const inspectorPort = await freePort();
  const started = await run([`--inspect=127.0.0.1:${inspectorPort}`]);
  return { label, job: sideJob, process: started, inspectorPort, body: await bodyFor(sideJob, started.url), byFunction: new Map(), requests: 0 };
}

let gateways = 0;
const gatewaySide = (label: string, sideJob: RequestCase, dbUrl = `sqlite:${join(dir, `gateway-${gateways++}.db`)}`): Promise<Side> =>
  start(label, sideJob, (inspect) => startBenchGateway(sim.url, dir, ['--db-url', dbUrl, ...gatewayFlags], ROOT, inspect));
const schemaB = dbUrlB?.startsWith('postgres') === true ? await createBenchSchema(dbUrlB, 'gap') : undefined;
const dbLabelB = schemaB !== undefined ? ', PostgreSQL' : dbUrlB !== undefined ? `, ${dbUrlB}` : '';
const floorLabel = caseB !== undefined ? `gateway (${caseName})` : against === 'normalizing' ? 'normalizing floor' : 'node floor';
const sides = [
  caseB !== undefined
    ? await gatewaySide(floorLabel, job)
    : await start(floorLabel, job, (inspect) =>
        startProcess(['bench/minimal-proxy.ts', ...(against === 'normalizing' ? ['--normalize'] : []), '--llm-api-base', sim.url], '--gateway-port', dir, inspect),
      ),
  await gatewaySide(caseB === undefined ? 'gateway' : `gateway (${caseB}${dbLabelB})`, caseB === undefined ? job : requestCase(caseB), schemaB?.url ?? dbUrlB),
];

/** Where a sample's function is: the gateway's own files by path under dist/, packages by name. */
function nameOf(frame: CpuProfile['nodes'][number]['callFrame']): string {
  const where = frame.url.replace(/^.*\/(dist|node_modules|bench)\//, '$1/');
  return `${frame.functionName || '(anonymous)'} ${where}${where === '' ? '' : `:${frame.lineNumber + 1}`}`;
}

function groupOf(name: string): string {
  if (name.includes(' dist/')) return 'the gateway\'s code';
  if (name.includes(' bench/')) return 'the floor\'s code';
  if (name.includes(' node_modules/')) return `${/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(name)?.[1] ?? 'packages'}`;
  if (name.includes(' node:')) return 'Node\'s JavaScript';
  if (name.startsWith('(garbage collector)')) return 'garbage collector';
  if (name.startsWith('(idle)')) return 'idle';
  if (name.startsWith('writev') || name.startsWith('writeUtf8String') || name.startsWith('writeBuffer')) return 'socket writes';
  return 'V8 and native (parse, stringify, Buffer)';
}

for (let round = 0; round < rounds; round++) {
  for (const side of sides) {
    const inspector = await connectInspector(side.inspectorPort);
    runLoad(tool, { url: `${side.process.url}/v1/responses`, body: side.body, headers: side.job.headers, connections, seconds: 2, scratchDir: dir }); // warm-up
    await inspector.call('Profiler.enable');
    await inspector.call('Profiler.setSamplingInterval', { interval: 100 });
    await inspector.call('Profiler.start');
    const load = runLoad(tool, { url: `${side.process.url}/v1/responses`, body: side.body, headers: side.job.headers, connections, seconds, scratchDir: dir });
    const { profile } = await inspector.call<{ profile: CpuProfile }>('Profiler.stop');
    inspector.close();
    if (load.errors > 0) throw new Error(`${side.label}: ${load.errors} errors`);
    side.requests += load.requests;
    const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
    for (let i = 0; i < profile.samples.length; i++) {
      const frame = frames.get(profile.samples[i] as number);
      if (frame === undefined) continue;
      const name = nameOf(frame);
      // A sample's time is the delta to the next one.
      side.byFunction.set(name, (side.byFunction.get(name) ?? 0) + (profile.timeDeltas[i + 1] ?? 0));
    }
  }
}
for (const side of sides) side.process.child.kill('SIGTERM');
sim.child.kill('SIGTERM');
if (schemaB !== undefined) {
  // Its tables go once the gateway using them has closed its connections.
  const gatewayB = (sides[1] as Side).process.child;
  if (gatewayB.exitCode === null) await new Promise((resolve) => gatewayB.once('exit', resolve));
  await schemaB.drop();
}

const [floor, gateway] = sides as [Side, Side];
/** µs a request by the key each function's name maps to (skipped when it maps to none). */
function totals(side: Side, keyOf: (name: string) => string | undefined): Map<string, number> {
  const byKey = new Map<string, number>();
  for (const [name, us] of side.byFunction) {
    const key = keyOf(name);
    if (key !== undefined) byKey.set(key, (byKey.get(key) ?? 0) + us / side.requests);
  }
  return byKey;
}

/** Both sides by key, idle left out, what the gateway spends over the floor first. */
function compared(keyOf: (name: string) => string | undefined): { key: string; f: number; g: number }[] {
  const notIdle = (name: string): string | undefined => (groupOf(name) === 'idle' ? undefined : keyOf(name));
  const a = totals(floor, notIdle);
  const b = totals(gateway, notIdle);
  return [...new Set([...a.keys(), ...b.keys()])].map((key) => ({ key, f: a.get(key) ?? 0, g: b.get(key) ?? 0 })).sort((x, y) => y.g - y.f - (x.g - x.f));
}

const busy = (side: Side): number => [...totals(side, (name) => (groupOf(name) === 'idle' ? undefined : ''))].reduce((sum, [, us]) => sum + us, 0);
const cell = (us: number): string => us.toFixed(1).padStart(7);

console.log(`${caseB === undefined ? caseName : `${caseName} against ${caseB}`} at c=${connections}, ${rounds} alternating rounds of ${seconds} s, node ${process.version}; main thread, µs a request`);
console.log(`  ${floor.label}: ${floor.requests} requests, busy ${busy(floor).toFixed(1)} µs; ${gateway.label}: ${gateway.requests} requests, busy ${busy(gateway).toFixed(1)} µs (+${(busy(gateway) - busy(floor)).toFixed(1)})`);
const [headA, headB] = caseB === undefined ? ['floor', 'gateway'] : ['A', 'B'];
console.log(`\nby group:          ${headA.padStart(7)} ${headB.padStart(7)}  ${'over'.padStart(7)}`);
for (const { key, f, g } of compared(groupOf)) console.log(`  ${key.padEnd(40).slice(0, 40)} ${cell(f)} ${cell(g)} ${cell(g - f)}`);
console.log(`\nthe gateway's code by folder of src/:`);
// dist/ once compiled.
for (const { key, f, g } of compared((name) => / dist\/([^/:]+)\//.exec(name)?.[1])) console.log(`  ${`${key}/`.padEnd(40)} ${cell(f)} ${cell(g)} ${cell(g - f)}`);
const over = compared((name) => name);
console.log(`\nby function, what ${gateway.label} spends over ${floor.label} (top 40, then where it spends least):`);
console.log(`  ${'over'.padStart(7)} ${headA.padStart(7)} ${headB.padStart(7)}`);
for (const { key, f, g } of [...over.slice(0, 40), ...over.slice(-8)]) console.log(`  ${cell(g - f)} ${cell(f)} ${cell(g)}  ${key}`);
process.exit(0);
