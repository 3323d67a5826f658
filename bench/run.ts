// npm run bench [-- --quick] [--rounds N] [--cases a,b] [--nginx] [--floor] [--workers] [--baseline DIR]
//
// What the gateway adds to latency, CPU and memory, side by side with vLLM called
// directly. The simulated vLLM (its own process, --fast: prepared answers, no delay) and
// the compiled gateway (its own process) are driven by load generators in their own
// processes, pipelining 1. Each case alternates direct and through-gateway rounds
// (A B A B ...). Results: a markdown table on stdout and in bench/results/.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterOverIdle, backWhen, measureOpenStreams, startPacedSim } from './open-streams.ts';
import { cpuNs } from './proc.ts';
import { median, percentile } from './stats.ts';
import { findLoadTool, runLoad, type LoadTool } from './load.ts';
import { ROOT, startBenchGateway, startBenchSim, startProcess, type Started } from './processes.ts';
import { toolArgs } from './args.ts';
import { filler } from './cases.ts';
import { createBenchSchema, type BenchSchema } from './pg-schema.ts';

const { argv, option } = toolArgs();
const quick = argv.includes('--quick');
const ROUNDS = Number(option('rounds') ?? (quick ? 2 : 5));
const C1_REQUESTS = quick ? 100 : 1000;
const C1_WARMUP = quick ? 20 : 100;
const LOAD_SECONDS = quick ? 2 : 5;
const LOAD_CONNECTIONS = 32;
const OPEN_STREAMS = quick ? 200 : 1000;
const log = (line: string): void => console.error(line);
const scratch = mkdtempSync(join(tmpdir(), 'rg-bench-'));

// --- processes -------------------------------------------------------------------------

type Proc = Started;
const started: ChildProcess[] = [];

function startSim(extra: string[] = []): Promise<Proc> {
  return startBenchSim(scratch, extra);
}

/** --baseline DIR: a checkout whose dist/ (an earlier build) is measured in the same rounds. */
const baselineDir = option('baseline');

function startGateway(upstream: string, dbUrl: string, root = ROOT): Promise<Proc> {
  return startBenchGateway(upstream, scratch, ['--db-url', dbUrl, '--max-concurrent', '4096'], root);
}

function startNginx(upstream: string): Proc | undefined {
  const nginx = spawnSync('sh', ['-c', 'command -v nginx || ls /usr/sbin/nginx'], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
  if (nginx === undefined || nginx === '') return undefined;
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const upstreamHost = new URL(upstream).host;
  const conf = join(scratch, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1; daemon off; pid ${scratch}/nginx.pid; error_log ${scratch}/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  upstream vllm { server ${upstreamHost}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://vllm; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_buffering off; proxy_request_buffering off; client_max_body_size 20m;
    }
  }
}
`,
  );
  const child = spawn(nginx, ['-c', conf, '-p', scratch], { stdio: 'ignore' });
  started.push(child);
  return { child, url: `http://127.0.0.1:${port}`, pid: child.pid as number };
}

/** nginx's worker is a child of its master (and --workers' of the primary); CPU is summed over all. */
function childPids(master: number): number[] {
  const children = spawnSync('pgrep', ['-P', String(master)], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean).map(Number);
  return [master, ...children];
}

// --- cases -----------------------------------------------------------------------------

interface Case {
  readonly name: string;
  readonly description: string;
  readonly stream: boolean;
  readonly gatewayBody: string;
  readonly directBody: string;
  readonly headers: Record<string, string>;
  /** Which gateway: SQLite, PostgreSQL, or SQLite in front of a chat-only server (--upstream-api chat). */
  readonly db: 'sqlite' | 'postgres' | 'chat';
  /** Where the direct side sends directBody (a chat server: its chat endpoint). */
  readonly directPath?: string;
  /** Also measured through nginx (stateless cases only). */
  readonly nginx: boolean;
  /** Also measured through the node floor (bench/minimal-proxy.ts). */
  readonly floor: boolean;
  /** Gateway bodies sent in turn instead of gatewayBody (continuations of many chains). */
  readonly gatewayBodies?: readonly string[];
}

const ONE_KIB_INPUT = filler(1024 - 60);
const HUNDRED_KIB_INPUT = filler(100 * 1024 - 60);

function historyItems(count: number): object[] {
  const items: object[] = [];
  for (let i = 0; i < count - 1; i++) items.push({ type: 'message', role: 'user', content: `earlier turn ${i}: ${filler(40)}` });
  items.push({ type: 'message', role: 'assistant', id: 'msg_0', status: 'completed', content: [{ type: 'output_text', text: 'You said: benchmark', annotations: [] }] });
  return items;
}

/** Continuations are spread over this many chains: one base for all would measure
 * contention on one stored row, not what a continuation costs. */
const CHAINS = 32;

async function continuationBase(gatewayUrl: string, items: number): Promise<string> {
  const input = historyItems(items).slice(0, -1);
  const res = await fetch(`${gatewayUrl}/v1/responses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', input }),
  });
  const body = (await res.json()) as { id: string };
  return body.id;
}

// --- measuring -------------------------------------------------------------------------

interface Round {
  p50Us: number;
  p99Us: number;
  ttfbUs: number;
  rps: number;
  cpuUsPerRequest: number;
  simCpuUsPerRequest: number;
}

function c1(url: string, bodies: readonly string[], headers: Record<string, string>, path: string): { latencyUs: number[]; ttfbUs: number[] } {
  const parsed = new URL(url);
  // One argument holds the job, and Linux allows 128 KiB an argument: a 100 KiB body is sent once.
  const job = { origin: parsed.origin, path, body: bodies[0], ...(bodies.length > 1 ? { bodies } : {}), headers, requests: C1_REQUESTS, warmup: C1_WARMUP };
  const out = spawnSync(process.execPath, ['--import', 'tsx', 'bench/c1-client.ts', JSON.stringify(job)], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (out.status !== 0) throw new Error(`c1 client failed: ${out.stderr}`);
  return JSON.parse(out.stdout) as { latencyUs: number[]; ttfbUs: number[] };
}

function measure(tool: LoadTool, url: string, bodies: readonly string[], headers: Record<string, string>, measuredPids: number[], simPid: number, path = '/v1/responses'): Round {
  const cpu = (): number => measuredPids.reduce((sum, pid) => sum + cpuNs(pid), 0);
  const cpuBefore = cpu();
  const simBefore = cpuNs(simPid);
  const single = c1(url, bodies, headers, path);
  const load = runLoad(tool, { url: `${url}${path}`, body: bodies[0] as string, bodies, headers, connections: LOAD_CONNECTIONS, seconds: LOAD_SECONDS, scratchDir: scratch });
  if (load.errors > 0) throw new Error(`${load.errors} failed requests under load at ${url}`);
  const requests = C1_REQUESTS + C1_WARMUP + load.requests;
  return {
    p50Us: percentile(single.latencyUs, 50),
    p99Us: percentile(single.latencyUs, 99),
    ttfbUs: percentile(single.ttfbUs, 50),
    rps: load.rps,
    cpuUsPerRequest: (cpu() - cpuBefore) / 1000 / requests,
    simCpuUsPerRequest: (cpuNs(simPid) - simBefore) / 1000 / requests,
  };
}

interface CaseResult {
  readonly testCase: Case;
  readonly direct: Round[];
  readonly gateway: Round[];
  /** Rounds of the reference proxies (nginx, the node floor, a baseline build), by label. */
  readonly references: Map<string, Round[]>;
}

const REFERENCE_NOTES: Record<string, string> = {
  'node floor': '"via node floor" is bench/minimal-proxy.ts, the least a node:http + undici proxy does (no routing, logging, metrics or normalization)',
  'normalizing floor':
    '"via normalizing floor" is bench/minimal-proxy.ts --normalize, the least a normalizing proxy adds to that (the request read as JSON; each event\'s item id and sequence number spliced in bytes; a JSON answer parsed, its ids replaced, serialized)',
  nginx: '"via nginx" is nginx as a plain reverse proxy (keep-alive upstream, no buffering), one worker',
  baseline: '"via baseline" is the gateway built from the --baseline checkout',
  'baseline on SQLite': '"via baseline on SQLite" is that build on the gateway\'s own SQLite file, continuing the same chains',
  'baseline on PostgreSQL': '"via baseline on PostgreSQL" is that build on the gateway\'s own PostgreSQL schema, continuing the same chains',
  'workers 2': '"via workers 2" is the same gateway with --workers 2 (a primary and two workers; CPU summed over the three), sharing the 2 cores with the simulator and the load generator',
};

/** A proxy measured beside the gateway, in the same rounds, for comparison. */
interface Reference {
  readonly label: string;
  readonly proc: Proc;
  readonly pids: () => number[];
  /** Sends what vLLM would get (the direct body), not the gateway's. */
  readonly directBody: boolean;
  readonly applies: (testCase: Case) => boolean;
}

// --- report ----------------------------------------------------------------------------

function stats(values: number[]): { median: number; min: number; max: number } {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) };
}

function cell(values: number[], unit: '' | 'us' = 'us', digits = 0): string {
  if (values.length === 0 || values.some((value) => Number.isNaN(value))) return 'n/a';
  const { median, min, max } = stats(values);
  const fmt = (value: number): string => (unit === 'us' && Math.abs(value) >= 10_000 ? `${(value / 1000).toFixed(1)}ms` : value.toFixed(digits));
  return `${fmt(median)} (${fmt(min)}–${fmt(max)})`;
}

function differences(a: Round[], b: Round[], pick: (round: Round) => number): number[] {
  return a.map((round, i) => pick(round) - pick(b[i] as Round));
}

// --- main ------------------------------------------------------------------------------

const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
if (build.status !== 0) throw new Error('npm run build failed');
const tool = findLoadTool(log);
const pgUrl = process.env['BENCH_DATABASE_URL'] ?? process.env['TEST_DATABASE_URL'];
const sim = await startSim();
const gatewaySqlite = await startGateway(sim.url, `sqlite:${join(scratch, 'bench.db')}`);
let gatewayPg: Proc | undefined;
/** The gateway's own PostgreSQL schema, which a baseline build shares; dropped at the end. */
let pgSchema: BenchSchema | undefined;
if (pgUrl !== undefined && !quick) {
  pgSchema = await createBenchSchema(pgUrl, 'bench');
  gatewayPg = await startGateway(sim.url, pgSchema.url);
} else if (!quick) {
  log('PostgreSQL cases skipped: set BENCH_DATABASE_URL (or TEST_DATABASE_URL)');
}
// A chat-only server (llama.cpp, Ollama, ...) and a gateway translating for it.
const chatSim = await startSim(['--chat-only']);
const gatewayChat = await startBenchGateway(chatSim.url, scratch, ['--db-url', `sqlite:${join(scratch, 'chat.db')}`, '--max-concurrent', '4096', '--upstream-api', 'chat']);
const references: Reference[] = [];
if (baselineDir !== undefined) {
  const proc = await startGateway(sim.url, `sqlite:${join(scratch, 'baseline.db')}`, baselineDir);
  references.push({ label: 'baseline', proc, pids: () => [proc.pid], directBody: false, applies: (c) => c.db === 'sqlite' && !c.name.startsWith('continue') });
  // On the gateway's own SQLite file (WAL lets two processes share it): the baseline
  // continues the very chains the gateway does, as on PostgreSQL below.
  const onSqlite = await startGateway(sim.url, `sqlite:${join(scratch, 'bench.db')}`, baselineDir);
  references.push({ label: 'baseline on SQLite', proc: onSqlite, pids: () => [onSqlite.pid], directBody: false, applies: (c) => c.db === 'sqlite' && c.name.startsWith('continue') });
  if (pgSchema !== undefined) {
    // On the gateway's own database: two gateways share one PostgreSQL, so the baseline
    // continues the very chains the gateway does.
    const onPg = await startGateway(sim.url, pgSchema.url, baselineDir);
    references.push({ label: 'baseline on PostgreSQL', proc: onPg, pids: () => [onPg.pid], directBody: false, applies: (c) => c.db === 'postgres' });
  }
}
if (!quick || argv.includes('--floor')) {
  // The least a node:http + undici proxy costs on this machine: what Node itself takes.
  const proc = await startProcess(['bench/minimal-proxy.ts', '--llm-api-base', sim.url], '--gateway-port', scratch);
  references.push({ label: 'node floor', proc, pids: () => [proc.pid], directBody: true, applies: (c) => c.floor });
  // The least any Node.js proxy that normalizes pays on top: the bound of the CPU targets.
  const normalizing = await startProcess(['bench/minimal-proxy.ts', '--normalize', '--llm-api-base', sim.url], '--gateway-port', scratch);
  references.push({ label: 'normalizing floor', proc: normalizing, pids: () => [normalizing.pid], directBody: true, applies: (c) => c.floor });
}
if (!quick || argv.includes('--workers')) {
  const proc = await startBenchGateway(sim.url, scratch, ['--db-url', `sqlite:${join(scratch, 'workers.db')}`, '--max-concurrent', '4096', '--workers', '2']);
  references.push({ label: 'workers 2', proc, pids: () => childPids(proc.pid), directBody: false, applies: (c) => c.name === 'stream-100' || c.name === 'json-1k' });
}
const nginx = argv.includes('--nginx') || !quick ? startNginx(sim.url) : undefined;
if (nginx === undefined && !quick) log('nginx reference row skipped: nginx is not installed (apt-get install nginx-light)');
if (nginx !== undefined) {
  await new Promise((resolve) => setTimeout(resolve, 500)); // nginx has no readiness line
  references.push({ label: 'nginx', proc: nginx, pids: () => childPids(nginx.pid), directBody: true, applies: (c) => c.nginx });
}

const cases: Case[] = [
  { name: 'json-1k', description: 'non-streamed, 1 KiB body, store: false', stream: false, gatewayBody: JSON.stringify({ model: 'm', input: ONE_KIB_INPUT, store: false }), directBody: JSON.stringify({ model: 'm', input: ONE_KIB_INPUT, store: false }), headers: {}, db: 'sqlite', nginx: true, floor: true },
  { name: 'stream-100', description: '100-delta stream, store: false', stream: true, gatewayBody: JSON.stringify({ model: 'm', input: 'x', stream: true, store: false }), directBody: JSON.stringify({ model: 'm', input: 'x', stream: true, store: false }), headers: { 'x-sim': 'deltas=100' }, db: 'sqlite', nginx: true, floor: true },
  // The Responses stream made from a chat server's 100-delta stream; direct = that chat stream.
  { name: 'chat-stream-100', description: '100-delta stream from a Chat Completions server (--upstream-api chat), store: false; direct = its chat stream', stream: true, gatewayBody: JSON.stringify({ model: 'm', input: 'x', stream: true, store: false }), directBody: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true, stream_options: { include_usage: true } }), directPath: '/v1/chat/completions', headers: { 'x-sim': 'deltas=100' }, db: 'chat', nginx: false, floor: false },
];
if (!quick) {
  cases.push(
    { name: 'json-100k', description: 'non-streamed, 100 KiB body, store: false', stream: false, gatewayBody: JSON.stringify({ model: 'm', input: HUNDRED_KIB_INPUT, store: false }), directBody: JSON.stringify({ model: 'm', input: HUNDRED_KIB_INPUT, store: false }), headers: {}, db: 'sqlite', nginx: false, floor: true },
    { name: 'json-1k-store', description: 'non-streamed, 1 KiB body, store: true (default)', stream: false, gatewayBody: JSON.stringify({ model: 'm', input: ONE_KIB_INPUT }), directBody: JSON.stringify({ model: 'm', input: ONE_KIB_INPUT, store: false }), headers: {}, db: 'sqlite', nginx: false, floor: false },
    { name: 'stream-100-store', description: '100-delta stream, store: true (default)', stream: true, gatewayBody: JSON.stringify({ model: 'm', input: 'x', stream: true }), directBody: JSON.stringify({ model: 'm', input: 'x', stream: true, store: false }), headers: { 'x-sim': 'deltas=100' }, db: 'sqlite', nginx: false, floor: false },
    // A background stream: the run keeps its events and appends them to the store's log
    // (20 ms batches) while the client reads them live.
    { name: 'stream-100-background', description: '100-delta stream, background: true', stream: true, gatewayBody: JSON.stringify({ model: 'm', input: 'x', stream: true, background: true }), directBody: JSON.stringify({ model: 'm', input: 'x', stream: true, store: false }), headers: { 'x-sim': 'deltas=100' }, db: 'sqlite', nginx: false, floor: false },
  );
  const dbs = tool.kind !== 'wrk' ? [] : gatewayPg === undefined ? (['sqlite'] as const) : (['sqlite', 'postgres'] as const);
  if (tool.kind !== 'wrk') log('continuation cases skipped: they send many chains in turn, which needs wrk');
  for (const db of dbs) {
    for (const items of [10, 100]) {
      const gatewayUrl = db === 'sqlite' ? gatewaySqlite.url : (gatewayPg as Proc).url;
      const bases: string[] = [];
      for (let chain = 0; chain < CHAINS; chain++) bases.push(await continuationBase(gatewayUrl, items));
      const bodies = bases.map((base) => JSON.stringify({ model: 'm', input: 'and now?', previous_response_id: base }));
      cases.push({
        name: `continue-${items}-${db}`,
        description: `continuation over ${items} prior items (${db}), ${CHAINS} chains in turn; direct = the whole history resent`,
        stream: false,
        gatewayBody: bodies[0] as string,
        gatewayBodies: bodies,
        directBody: JSON.stringify({ model: 'm', input: [...historyItems(items), { type: 'message', role: 'user', content: 'and now?' }], store: false }),
        headers: {},
        db,
        nginx: false,
        floor: false,
      });
    }
  }
}
const selected = option('cases')?.split(',');
const results: CaseResult[] = [];
for (const testCase of cases.filter((c) => selected === undefined || selected.includes(c.name))) {
  const gateway = testCase.db === 'sqlite' ? gatewaySqlite : testCase.db === 'chat' ? gatewayChat : (gatewayPg as Proc);
  const upstream = testCase.db === 'chat' ? chatSim : sim;
  const result: CaseResult = { testCase, direct: [], gateway: [], references: new Map() };
  const applicable = references.filter((reference) => reference.applies(testCase));
  for (const reference of applicable) result.references.set(reference.label, []);
  for (let round = 0; round < ROUNDS; round++) {
    log(`${testCase.name}: round ${round + 1}/${ROUNDS}`);
    const gatewayBodies = testCase.gatewayBodies ?? [testCase.gatewayBody];
    result.direct.push(measure(tool, upstream.url, [testCase.directBody], testCase.headers, [], upstream.pid, testCase.directPath));
    result.gateway.push(measure(tool, gateway.url, gatewayBodies, testCase.headers, [gateway.pid], upstream.pid));
    for (const reference of applicable) {
      const bodies = reference.directBody ? [testCase.directBody] : gatewayBodies;
      result.references.get(reference.label)?.push(measure(tool, reference.proc.url, bodies, testCase.headers, reference.pids(), sim.pid));
    }
  }
  results.push(result);
}

// Memory with many streams open at once: a fresh gateway, a vLLM that emits slowly.
log(`open streams: ${OPEN_STREAMS} at once`);
const slowSim = await startPacedSim(scratch);
const freshGateway = await startGateway(slowSim.url, `sqlite:${join(scratch, 'streams.db')}`);
const memory = await measureOpenStreams(freshGateway, OPEN_STREAMS);
// What Node itself takes per open stream: the node floor, fresh, holding as many.
let floorMemory: Awaited<ReturnType<typeof measureOpenStreams>> | undefined;
if (references.some((reference) => reference.label === 'node floor')) {
  const floorProxy = await startProcess(['bench/minimal-proxy.ts', '--llm-api-base', slowSim.url], '--gateway-port', scratch);
  floorMemory = await measureOpenStreams(floorProxy, OPEN_STREAMS, false);
}

for (const child of started) child.kill('SIGTERM');
// A gateway still finishing a transaction only makes the DROP wait for its lock.
await pgSchema?.drop();

// --- output ----------------------------------------------------------------------------

/** One table row: what `measured` took against vLLM called directly, in the same rounds. */
function row(label: string, testCase: Case, direct: Round[], measured: Round[], bold: boolean): string {
  const strong = (text: string): string => (bold ? `**${text}**` : text);
  const ttfb = testCase.stream ? `${cell(direct.map((r) => r.ttfbUs))} / ${cell(measured.map((r) => r.ttfbUs))}` : '–';
  return `| ${label} | ${cell(direct.map((r) => r.p50Us))} | ${cell(measured.map((r) => r.p50Us))} | ${strong(cell(differences(measured, direct, (r) => r.p50Us)))} | ${cell(direct.map((r) => r.p99Us))} | ${cell(measured.map((r) => r.p99Us))} | ${ttfb} | ${cell(direct.map((r) => r.rps), '')} | ${cell(measured.map((r) => r.rps), '')} | ${strong(cell(measured.map((r) => r.cpuUsPerRequest)))} | ${cell(direct.map((r) => r.simCpuUsPerRequest))} |`;
}

const rows = results.map(({ testCase, direct, gateway }) => row(testCase.name, testCase, direct, gateway, true));
const referenceRows = results.flatMap(({ testCase, direct, references: measured }) =>
  [...measured].map(([label, rounds]) => row(`${testCase.name} via ${label}`, testCase, direct, rounds, false)),
);
const byName = new Map(results.map((r) => [r.testCase.name, r]));
/** Per round, the gateway's figure over a reference's (the same rounds). */
const against = (name: string, label: string, pick: (round: Round) => number): number[] => {
  const result = byName.get(name);
  const rounds = result?.references.get(label);
  if (result === undefined || rounds === undefined) return [];
  return result.gateway.map((round, i) => pick(round) / pick(rounds[i] as Round));
};
/** Per round, one reference's figure over another's (the normalizing floor over the node floor). */
const referenceAgainst = (name: string, label: string, base: string, pick: (round: Round) => number): number[] => {
  const result = byName.get(name);
  const rounds = result?.references.get(label);
  const baseRounds = result?.references.get(base);
  if (rounds === undefined || baseRounds === undefined) return [];
  return rounds.map((round, i) => pick(round) / pick(baseRounds[i] as Round));
};
/** Per round, a reference's p50 over the direct one. */
const referenceAdded = (name: string, label: string): number[] => {
  const result = byName.get(name);
  const rounds = result?.references.get(label);
  return result === undefined || rounds === undefined ? [] : differences(rounds, result.direct, (round) => round.p50Us);
};
/** A row showing what a reference measured where a target applies, for comparison. */
const comparison = (label: string, values: number[], unit: 'x' | 'µs'): string[] => {
  if (values.length === 0) return [];
  const median = stats(values).median;
  return [`| ${label} | – | ${unit === 'x' ? `${median.toFixed(2)}x` : `${median.toFixed(0)} µs`} | – |`];
};
const ratioLines = results.flatMap(({ testCase, references: measured }) =>
  [...measured.keys()].map((label) => {
    const cpu = stats(against(testCase.name, label, (r) => r.cpuUsPerRequest)).median;
    const rps = stats(against(testCase.name, label, (r) => r.rps)).median;
    return `- ${testCase.name}, gateway against ${label}: CPU/request ${cpu.toFixed(2)}x, throughput ${rps.toFixed(2)}x`;
  }),
);

/** One row of the targets table: the median of `values` against the goal. */
const target = (label: string, values: number[], limit: number, unit = 'µs', at: 'most' | 'least' = 'most'): string => {
  const digits = unit === 'x' ? 2 : unit === 'MB' || unit === 'KiB' ? 1 : 0;
  const show = (value: number): string => (unit === 'x' ? `${value.toFixed(digits)}x` : `${value.toFixed(digits)} ${unit}`);
  const goal = `${at === 'most' ? '≤' : '≥'} ${show(limit)}`;
  if (values.length === 0 || values.some((value) => Number.isNaN(value))) return `| ${label} | ${goal} | n/a | – |`;
  const median = stats(values).median;
  const met = at === 'most' ? median <= limit : median >= limit;
  return `| ${label} | ${goal} | ${show(median)} | ${met ? 'met' : '**not met**'} |`;
};
const added = (name: string): number[] => {
  const r = byName.get(name);
  return r === undefined ? [] : differences(r.gateway, r.direct, (round) => round.p50Us);
};
const cpuOf = (name: string): number[] => byName.get(name)?.gateway.map((r) => r.cpuUsPerRequest) ?? [];
/** Per round, a reference's figure over the gateway's (--workers 2 over one process). */
const referenceOver = (name: string, label: string, pick: (round: Round) => number): number[] => against(name, label, pick).map((ratio) => 1 / ratio);
/** The median CPU of case a minus that of case b (different rounds of one run). */
const cpuOver = (a: string, b: string): number[] => {
  const x = cpuOf(a);
  const y = cpuOf(b);
  return x.length > 0 && y.length > 0 ? [stats(x).median - stats(y).median] : [];
};
const perStreamRow = (label: string, result: typeof memory): string =>
  result.openSeen.min === result.streams
    ? target(`${label}: RSS per open stream (${result.streams} open)`, [result.perStreamKiB], 30, 'KiB')
    : `| ${label}: RSS per open stream | ≤ 30 KiB | ${result.perStreamKiB.toFixed(1)} KiB, but only ${result.openSeen.min} of ${result.streams} streams were open throughout | – |`;

const date = new Date();
const report = [
  `# Benchmark: ${date.toISOString().slice(0, 16)}Z${quick ? ' (--quick)' : ''}`,
  '',
  `- Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores; Node ${process.version}; ${tool.kind === 'wrk' ? 'wrk' : 'autocannon'} for c=${LOAD_CONNECTIONS}`,
  `- Command: \`npm run bench${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}\``,
  `- ${ROUNDS} rounds per case, direct and through the gateway alternating; each round: ${C1_REQUESTS} requests at c=1 (after ${C1_WARMUP} warm-up), then ${LOAD_SECONDS} s at c=${LOAD_CONNECTIONS}, pipelining 1. Cells: median (min–max) over rounds.`,
  '- The simulated vLLM answers at once (`--fast`: prepared answers, one write per event). CPU/request is the sum of all threads of the process, over the round.',
  ...(references.length > 0 ? [`- Reference rows, same rounds: ${references.map((r) => REFERENCE_NOTES[r.label] ?? r.label).join('; ')}.`] : []),
  '',
  '| case | direct p50 | gateway p50 | added p50 | direct p99 | gateway p99 | TTFB p50 direct / gateway | rps direct (c=32) | rps gateway (c=32) | gateway CPU/req | sim CPU/req |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows,
  ...referenceRows,
  '',
  ...(ratioLines.length > 0 ? ['Medians of per-round ratios (same rounds)' + (baselineDir === undefined ? ':' : `; baseline: the build in ${baselineDir}:`), '', ...ratioLines, ''] : []),
  `Memory of a fresh gateway with ${memory.streams} streams open at once (vLLM emitting one event per 100 ms, each stream a minute long; gateway_open_streams read ${memory.openSeen.min}–${memory.openSeen.max} while sampling): idle ${memory.idleMiB.toFixed(1)} MB, peak VmRSS ${memory.peakRssMiB.toFixed(1)} MB, VmHWM ${memory.hwmMiB.toFixed(1)} MB, ${memory.perStreamKiB.toFixed(1)} KiB per open stream; after they ended ${memory.afterMiB.toFixed(1)} MB (${afterOverIdle(memory).toFixed(0)}% over idle: ${backWhen(memory)}).`,
  ...(floorMemory === undefined
    ? []
    : [
        '',
        `The node floor, fresh, holding as many (all ${floorMemory.openSeen.min} started, a minute long): idle ${floorMemory.idleMiB.toFixed(1)} MB, peak VmRSS ${floorMemory.peakRssMiB.toFixed(1)} MB, VmHWM ${floorMemory.hwmMiB.toFixed(1)} MB, ${floorMemory.perStreamKiB.toFixed(1)} KiB per open stream; after they ended ${floorMemory.afterMiB.toFixed(1)} MB (${afterOverIdle(floorMemory).toFixed(0)}% over idle: ${backWhen(floorMemory)}).`,
      ]),
  '',
  '| target | goal | measured (median) | |',
  '| --- | --- | ---: | --- |',
  target('100-delta stream: gateway CPU / node floor CPU', against('stream-100', 'node floor', (r) => r.cpuUsPerRequest), 2, 'x'),
  target('100-delta stream: throughput at c=32 / node floor\'s', against('stream-100', 'node floor', (r) => r.rps), 0.5, 'x', 'least'),
  ...comparison('normalizing floor, for comparison: its CPU / node floor CPU', referenceAgainst('stream-100', 'normalizing floor', 'node floor', (r) => r.cpuUsPerRequest), 'x'),
  ...comparison('normalizing floor, for comparison: its throughput / node floor\'s', referenceAgainst('stream-100', 'normalizing floor', 'node floor', (r) => r.rps), 'x'),
  target('100-delta stream: added p50, c=1', added('stream-100'), 150),
  ...comparison('normalizing floor, for comparison: its added p50', referenceAdded('stream-100', 'normalizing floor'), 'µs'),
  target('JSON 1 KiB: gateway CPU / node floor CPU', against('json-1k', 'node floor', (r) => r.cpuUsPerRequest), 1.5, 'x'),
  ...comparison('normalizing floor, for comparison: its CPU / node floor CPU', referenceAgainst('json-1k', 'normalizing floor', 'node floor', (r) => r.cpuUsPerRequest), 'x'),
  target('JSON 1 KiB: added p50, c=1', added('json-1k'), 100),
  ...comparison('normalizing floor, for comparison: its added p50', referenceAdded('json-1k', 'normalizing floor'), 'µs'),
  target('JSON 100 KiB: gateway CPU / node floor CPU', against('json-100k', 'node floor', (r) => r.cpuUsPerRequest), 1.5, 'x'),
  ...comparison('normalizing floor, for comparison: its CPU / node floor CPU', referenceAgainst('json-100k', 'normalizing floor', 'node floor', (r) => r.cpuUsPerRequest), 'x'),
  target('JSON 100 KiB: added p50, c=1', added('json-100k'), 100),
  ...comparison('normalizing floor, for comparison: its added p50', referenceAdded('json-100k', 'normalizing floor'), 'µs'),
  target('store: true over store: false, CPU, JSON 1 KiB (SQLite)', cpuOver('json-1k-store', 'json-1k'), 100),
  target('store: true over store: false, CPU, 100-delta stream (SQLite)', cpuOver('stream-100-store', 'stream-100'), 100),
  target(`continuation over 100 items (${CHAINS} chains): added p50, SQLite`, added('continue-100-sqlite'), 1000),
  target(`continuation over 100 items (${CHAINS} chains): added p50, PostgreSQL`, added('continue-100-postgres'), 1000),
  perStreamRow('gateway', memory),
  ...(floorMemory === undefined ? [] : [`| node floor, for comparison: RSS per open stream (${floorMemory.streams} open) | – | ${floorMemory.perStreamKiB.toFixed(1)} KiB | – |`]),
  target('gateway: RSS after the streams ended (lowest within 60 s), over idle', [afterOverIdle(memory)], 10, '%'),
  ...(floorMemory === undefined ? [] : [`| node floor, for comparison: RSS after the streams ended (lowest within 60 s), over idle | – | ${afterOverIdle(floorMemory).toFixed(0)} % | – |`]),
  target('--workers 2 over one process: throughput at c=32, 100-delta stream', referenceOver('stream-100', 'workers 2', (r) => r.rps), 1.6, 'x', 'least'),
  target('--workers 2 over one process: throughput at c=32, JSON 1 KiB', referenceOver('json-1k', 'workers 2', (r) => r.rps), 1.6, 'x', 'least'),
  '',
].join('\n');
process.stdout.write(report);
// --out: CI keeps its runs out of the checkout; results/ holds the runs worth comparing.
const outDir = resolve(option('out') ?? join(ROOT, 'bench/results'));
mkdirSync(outDir, { recursive: true });
const file = join(outDir, `${date.toISOString().slice(0, 16).replace(':', '')}${quick ? '-quick' : ''}.md`);
writeFileSync(file, report);
log(`written to ${file}`);
process.exit(0);
