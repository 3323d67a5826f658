// What each open stream keeps alive in the JavaScript heap: the gateway's and the node
// floor's, measured the same way. RSS per stream (npm run bench) mixes live data with how
// V8 sizes its heap and glibc keeps its arenas; a heap snapshot counts only what is
// reachable (V8 collects before it writes one). Each process is snapshotted idle and again
// with N streams open (600-delta streams at one event per 100 ms, held by a separate
// process: open for a minute); what grew, divided by N, is what one stream holds, by kind
// of object.
//
//   npm run bench:heap -- [--streams 1000] [--top 25] [--after 0]
//
// --after S: the second snapshot S seconds after the last stream opened, when each has
// streamed S seconds more of its answer (what grows with an answer's length shows).
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { toolArgs } from './args.ts';
import { holdOpenStreams, startPacedSim } from './open-streams.ts';
import { ROOT, startBenchGateway, startProcess, type Started } from './processes.ts';

const { option } = toolArgs();
const STREAMS = Number(option('streams') ?? 1000);
const TOP = Number(option('top') ?? 25);
const AFTER_S = Number(option('after') ?? 0);
/** How long a snapshot may take to be written (a 1,000-stream heap: a few seconds). */
const SNAPSHOT_WAIT_MS = 120_000;


/** Self size by kind of object: `type name`, e.g. "object ServerResponse", "closure onData". */
type HeapCensus = Map<string, { bytes: number; count: number }>;

/** Reads a .heapsnapshot: every node's self size, summed by its type and name. */
function censusOf(file: string): { total: number; byKind: HeapCensus } {
  const snapshot = JSON.parse(readFileSync(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
    nodes: number[];
    edges: number[];
    strings: string[];
  };
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const edgeCountAt = fields.indexOf('edge_count');
  const edgeFields = snapshot.snapshot.meta.edge_fields;
  const edgeWidth = edgeFields.length;
  const edgeTypeAt = edgeFields.indexOf('type');
  const edgeNameAt = edgeFields.indexOf('name_or_index');
  const propertyType = snapshot.snapshot.meta.edge_types[0].indexOf('property');
  const byKind: HeapCensus = new Map();
  let total = 0;
  let edge = 0;
  for (let i = 0; i < snapshot.nodes.length; i += width) {
    const type = types[snapshot.nodes[i + typeAt] as number] as string;
    const bytes = snapshot.nodes[i + sizeAt] as number;
    const edges = snapshot.nodes[i + edgeCountAt] as number;
    total += bytes;
    // Strings and numbers are named by their value: counted by their type alone.
    let name = type === 'object' || type === 'closure' || type === 'native' ? (snapshot.strings[snapshot.nodes[i + nameAt] as number] ?? '') : '';
    // A plain object is told apart by its first properties' names.
    if (type === 'object' && name === 'Object') {
      const keys: string[] = [];
      for (let e = edge; e < edge + edges * edgeWidth && keys.length < 4; e += edgeWidth) {
        if (snapshot.edges[e + edgeTypeAt] === propertyType) keys.push(snapshot.strings[snapshot.edges[e + edgeNameAt] as number] ?? '');
      }
      name = `{${keys.join(', ')}}`;
    }
    edge += edges * edgeWidth;
    const key = name === '' ? `(${type})` : `${type} ${name}`;
    const entry = byKind.get(key);
    if (entry === undefined) byKind.set(key, { bytes, count: 1 });
    else {
      entry.bytes += bytes;
      entry.count += 1;
    }
  }
  return { total, byKind };
}

/** Has the process write a heap snapshot (it runs with --heapsnapshot-signal) and reads it. */
async function snapshot(proc: Started, dir: string): Promise<{ total: number; byKind: HeapCensus }> {
  const before = new Set(readdirSync(dir));
  proc.child.kill('SIGUSR2');
  const deadline = Date.now() + SNAPSHOT_WAIT_MS;
  for (;;) {
    const written = readdirSync(dir).find((name) => !before.has(name) && name.endsWith('.heapsnapshot'));
    // V8 writes the file in one go and closes it; a file whose size stopped growing is whole.
    if (written !== undefined) {
      const path = join(dir, written);
      let size = -1;
      for (;;) {
        const now = statSync(path).size;
        if (now === size && now > 0) break;
        size = now;
        await sleep(500);
      }
      const census = censusOf(path);
      rmSync(path);
      return census;
    }
    if (Date.now() > deadline) throw new Error(`no heap snapshot from pid ${proc.pid} in ${SNAPSHOT_WAIT_MS} ms`);
    await sleep(200);
  }
}

interface PerStream {
  readonly label: string;
  readonly idleKiB: number;
  readonly perStreamBytes: number;
  readonly byKind: Array<{ kind: string; bytes: number; count: number }>;
}

async function measure(label: string, proc: Started, dir: string): Promise<PerStream> {
  // A warm-up stream, so that what every first request loads (code, caches) is in the idle snapshot.
  await warmUp(proc.url);
  const idle = await snapshot(proc, dir);
  const held = await holdOpenStreams(proc.url, STREAMS);
  if (held.opened !== STREAMS) throw new Error(`${held.opened} of ${STREAMS} streams opened`);
  if (AFTER_S > 0) await sleep(AFTER_S * 1000);
  const open = await snapshot(proc, dir);
  await held.close();
  const byKind: PerStream['byKind'] = [];
  for (const [kind, now] of open.byKind) {
    const was = idle.byKind.get(kind) ?? { bytes: 0, count: 0 };
    byKind.push({ kind, bytes: (now.bytes - was.bytes) / STREAMS, count: (now.count - was.count) / STREAMS });
  }
  byKind.sort((a, b) => b.bytes - a.bytes);
  return { label, idleKiB: idle.total / 1024, perStreamBytes: (open.total - idle.total) / STREAMS, byKind };
}

async function warmUp(url: string): Promise<void> {
  const response = await fetch(`${url}/v1/responses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-sim': 'deltas=3' },
    body: JSON.stringify({ model: 'm', input: 'x', stream: true, store: false }),
  });
  await response.text();
}

const scratch = mkdtempSync(join(tmpdir(), 'rg-heap-'));
const nodeFlags = ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${scratch}`];
const sim = await startPacedSim(scratch);
const gateway = await startBenchGateway(sim.url, scratch, [], ROOT, nodeFlags);
const floor = await startProcess(['bench/minimal-proxy.ts', '--llm-api-base', sim.url], '--gateway-port', scratch, nodeFlags);

const results = [await measure('gateway', gateway, scratch), await measure('node floor', floor, scratch)];
for (const proc of [gateway, floor, sim]) proc.child.kill('SIGTERM');
rmSync(scratch, { recursive: true, force: true });

const kib = (bytes: number): string => (bytes / 1024).toFixed(1);
console.log(`\nlive heap per open stream (${STREAMS} open${AFTER_S > 0 ? `, ${AFTER_S} s after the last opened` : ''}, Node ${process.version}), from heap snapshots idle and with them open:`);
for (const result of results) console.log(`  ${result.label.padEnd(11)} ${kib(result.perStreamBytes)} KiB a stream (idle heap ${result.idleKiB.toFixed(0)} KiB)`);
for (const result of results) {
  console.log(`\n${result.label}: what one stream holds, by kind of object (bytes, objects)`);
  for (const { kind, bytes, count } of result.byKind.slice(0, TOP)) console.log(`  ${bytes.toFixed(0).padStart(7)}  ${count.toFixed(2).padStart(6)}  ${kind}`);
}
