// npm run soak [-- --minutes 10 | --seconds 60] [--concurrency 16] [--workers 2] [--db-url URL] [--out FILE]
//
// Mixed traffic through the real gateway (the compiled command, --workers 2, its own
// processes) to the simulated vLLM (its own process), with faults injected from every
// side:
// - vLLM: resets, truncated and stalled streams, 500s, garbage, missing terminal events;
// - clients: random aborts, clients that stop reading (ended by --client-write-timeout),
//   and background streams dropped and resumed with starting_after (perhaps on the other
//   worker; the joined stream must hold every sequence number once, in order);
// - the database: its connections terminated every few seconds (PostgreSQL:
//   TEST_DATABASE_URL or --db-url; with SQLite there is no connection to kill);
// - the gateway itself: a worker SIGKILLed every 15 s (4 a minute: under the crash-loop
//   limit of 3 per worker).
// Some responses use an MCP server (sim/mcp-server.ts, its own process): tools listed,
// called (a call that fails on purpose among them), answered, stored and continued.
// A request may fail only because of a fault injected while it ran. At the end, every
// response a client saw completed is read back: its body must be the one the client got,
// and its input items must be there (nothing lost, nothing half-written). It samples the
// gateway's RSS and open file descriptors (all its processes), and checks that no
// connection to vLLM is left open. Exit code 1 on an unexpected error, a lost or
// half-written response, growth after warm-up, or a leak.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type ClientRequest } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Pool } from 'undici';
import { toolArgs } from '../bench/args.ts';

const ROOT = new URL('../', import.meta.url).pathname;
const { argv: args, option } = toolArgs();
const durationMs = option('seconds') !== undefined ? Number(option('seconds')) * 1000 : Number(option('minutes') ?? 10) * 60_000;
const concurrency = Number(option('concurrency') ?? 16);
const workers = Number(option('workers') ?? 2);
const outFile = option('out');
const SAMPLE_EVERY_MS = durationMs >= 300_000 ? 15_000 : 5_000;
/** The first part of the run is warm-up: growth is judged after it. */
const WARMUP_FRACTION = 0.25;
const DB_KILL_EVERY_MS = 3_000;
const WORKER_KILL_EVERY_MS = 15_000;
const WRITE_TIMEOUT_S = 2;
/** A fault counts for the requests it overlapped, and this long after (a pool's dead
 * connection is found on its next use). */
const FAULT_MARGIN_MS = 1_000;
/** How long after a worker is killed the open files of the processes are still settling. */
const WORKER_SETTLE_MS = 5_000;

/** `command` runs under node; TypeScript sources get tsx, compiled JavaScript runs bare. */
function startProcess(command: string[], name: string): { child: ChildProcess; line: (pattern: RegExp) => Promise<RegExpExecArray> } {
  const loader = (command[0] ?? '').endsWith('.ts') ? ['--import', 'tsx'] : [];
  const child = spawn(process.execPath, [...loader, ...command], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let buffered = '';
  const waiters: Array<{ pattern: RegExp; resolve: (match: RegExpExecArray) => void }> = [];
  child.stdout?.on('data', (chunk: Buffer) => {
    if (waiters.length === 0) return; // after startup the output is only drained
    buffered += chunk.toString();
    for (const waiter of waiters.slice()) {
      const match = waiter.pattern.exec(buffered);
      if (match !== null) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(match);
      }
    }
    if (waiters.length === 0) buffered = '';
  });
  child.once('exit', (code) => {
    if (!stopping) {
      console.error(`${name} exited unexpectedly (${String(code)})`);
      process.exitCode = 1;
    }
  });
  return { child, line: (pattern) => new Promise((resolve) => waiters.push({ pattern, resolve })) };
}

let stopping = false;
// The gateway runs as users run it: compiled, without a TypeScript loader.
const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
if (build.status !== 0) throw new Error('npm run build failed');
const dbDir = mkdtempSync(join(tmpdir(), 'rg-soak-'));

// --- the database ----------------------------------------------------------------------

const postgresUrl = option('db-url') ?? process.env['TEST_DATABASE_URL'];
const appName = `rg_soak_${randomBytes(4).toString('hex')}`;
let admin: pg.Client | undefined;
let schema: string | undefined;
let dbUrl = `sqlite:${join(dbDir, 'soak.db')}`;
if (postgresUrl !== undefined && postgresUrl.startsWith('postgres')) {
  admin = new pg.Client({ connectionString: postgresUrl });
  await admin.connect();
  schema = `rg_soak_${randomBytes(4).toString('hex')}`;
  await admin.query(`CREATE SCHEMA ${schema}`);
  const url = new URL(postgresUrl);
  url.searchParams.set('options', `-c search_path=${schema}`);
  url.searchParams.set('application_name', appName);
  dbUrl = url.toString();
}

const sim = startProcess(['sim/cli.ts', '--port', '0', '--no-record', '--chunk-delay-ms', '2'], 'simulated vLLM');
const simUrl = (await sim.line(/listening on (http:\/\/\S+)/))[1] as string;
const mcpServer = startProcess(['sim/mcp-server.ts', '--port', '0'], 'MCP server');
const mcpUrl = (await mcpServer.line(/^(http:\/\/\S+)$/m))[1] as string;
const MCP_TOOL = { type: 'mcp', server_label: 'calc', server_url: mcpUrl, require_approval: 'never', allowed_tools: ['add', 'echo', 'fail'] };
const MCP_INPUTS = ['add 2 and 3', 'echo this then add 1 and 1', 'fail on purpose', 'say hello'];
const gateway = startProcess(
  [
    'dist/cli/main.js',
    '--llm-api-base', simUrl,
    '--gateway-host', '127.0.0.1',
    '--gateway-port', '0',
    '--workers', String(workers),
    '--db-url', dbUrl,
    '--db-pool-size', '4',
    // Short, so that the streams vLLM stalls on purpose end quickly; not 1 s: on two cores
    // shared with three gateway processes, PostgreSQL and the load, the simulator itself
    // was once starved for a second in the middle of a healthy stream.
    '--upstream-idle-timeout', '3',
    '--client-write-timeout', String(WRITE_TIMEOUT_S),
    '--log-level', 'info',
  ],
  'gateway',
);
const gatewayUrl = (await gateway.line(/"url":"(http:\/\/[^"]+)"/))[1] as string;
const gatewayPid = gateway.child.pid as number;

// --- faults from the outside -----------------------------------------------------------

/** When each kind of outside fault happened (epoch ms). */
const faultTimes = { db: [] as number[], worker: [] as number[] };
const counts = new Map<string, number>();
const count = (kind: string): void => void counts.set(kind, (counts.get(kind) ?? 0) + 1);

function faultDuring(kind: keyof typeof faultTimes, from: number, to: number): boolean {
  return faultTimes[kind].some((at) => at >= from - FAULT_MARGIN_MS && at <= to + FAULT_MARGIN_MS);
}

/** The gateway's processes: the primary and its workers (Linux). */
function workerPids(): number[] {
  try {
    return readFileSync(`/proc/${gatewayPid}/task/${gatewayPid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const faultTimers: NodeJS.Timeout[] = [];
if (admin !== undefined) {
  const killer = admin;
  faultTimers.push(
    setInterval(() => {
      faultTimes.db.push(Date.now());
      killer
        .query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [appName])
        .then((result) => counts.set('db connections killed', (counts.get('db connections killed') ?? 0) + (result.rowCount ?? 0)))
        .catch(() => undefined);
    }, DB_KILL_EVERY_MS),
  );
}
if (workers > 1) {
  faultTimers.push(
    setInterval(() => {
      const pids = workerPids();
      const victim = pids[Math.floor(Math.random() * pids.length)];
      if (victim === undefined) return;
      faultTimes.worker.push(Date.now());
      try {
        process.kill(victim, 'SIGKILL');
        count('workers killed');
      } catch {
        // Gone already.
      }
    }, WORKER_KILL_EVERY_MS),
  );
}

// --- traffic ---------------------------------------------------------------------------

type Outcome = 'ok' | 'injected' | 'client_abort' | 'stalled' | 'unexpected';
const unexpected: string[] = [];
const latenciesMs: number[] = [];
let requests = 0;
const previousIds: string[] = [];
/** Every response a client saw completed (and stored), with a hash of what it got. */
const completed = new Map<string, string>();
/** Clients that stopped reading, kept open to the end (the gateway must end them). */
const stalledClients: ClientRequest[] = [];

const client = new Pool(gatewayUrl, { connections: concurrency, pipelining: 1 });

interface Plan {
  readonly kind: string;
  readonly path: string;
  readonly body: Record<string, unknown>;
  readonly sim: string;
  /** What counts as the expected outcome of an injected fault. */
  readonly fault?: 'status' | 'stream-failed';
  readonly abortAfterMs?: number;
  readonly stopReading?: boolean;
  /** A background stream: read for abortAfterMs, dropped, resumed with starting_after. */
  readonly resume?: boolean;
}

function plan(): Plan {
  const roll = Math.random();
  const previous = previousIds.length > 0 && Math.random() < 0.5 ? previousIds[Math.floor(Math.random() * previousIds.length)] : undefined;
  const input = `soak ${requests} with a few words`;
  if (roll < 0.25) return { kind: 'json', path: '/v1/responses', body: { model: 'm', input, ...(previous ? { previous_response_id: previous } : {}) }, sim: '' };
  if (roll < 0.3) {
    const mcpInput = `${MCP_INPUTS[Math.floor(Math.random() * MCP_INPUTS.length)] as string} (${requests})`;
    return { kind: 'mcp', path: '/v1/responses', body: { model: 'm', input: mcpInput, tools: [MCP_TOOL], stream: Math.random() < 0.5, ...(previous ? { previous_response_id: previous } : {}) }, sim: '' };
  }
  if (roll < 0.6) return { kind: 'stream', path: '/v1/responses', body: { model: 'm', input, stream: true, ...(previous ? { previous_response_id: previous } : {}) }, sim: `deltas=${20 + Math.floor(Math.random() * 80)}` };
  if (roll < 0.68) return { kind: 'stateless', path: '/v1/responses', body: { model: 'm', input, store: false }, sim: '' };
  if (roll < 0.75) return { kind: 'chat', path: '/v1/chat/completions', body: { model: 'm', stream: true, messages: [{ role: 'user', content: input }] }, sim: '' };
  if (roll < 0.82) return { kind: 'client-abort', path: '/v1/responses', body: { model: 'm', input, stream: true }, sim: 'deltas=200;slow=5', abortAfterMs: 5 + Math.random() * 40 };
  if (roll < 0.85) return { kind: 'stops reading', path: '/v1/responses', body: { model: 'm', input, stream: true, store: false }, sim: 'deltas=60000;slow=0', stopReading: true };
  if (roll < 0.9) return { kind: 'background', path: '/v1/responses', body: { model: 'm', input, stream: true, background: true }, sim: 'deltas=100;slow=2', abortAfterMs: 5 + Math.random() * 100, resume: true };
  const fault = ['reset-after=5', 'truncate-after=6', 'stall-after=4', 'status=500', 'garbage', 'reset-before-headers', 'quirk=no-terminal'][Math.floor(Math.random() * 7)] as string;
  const streamed = !['status=500', 'garbage', 'reset-before-headers'].includes(fault);
  return { kind: `fault:${fault.split('=')[0] as string}`, path: '/v1/responses', body: { model: 'm', input, stream: streamed }, sim: fault, fault: streamed ? 'stream-failed' : 'status' };
}

/** The response object a client got: the JSON body, or a stream's terminal event's. */
function finalResponse(text: string, streamed: boolean): { id: string; status: string; json: string } | undefined {
  let response: Record<string, unknown> | undefined;
  try {
    if (!streamed) response = JSON.parse(text) as Record<string, unknown>;
    else {
      const data = text.split('\n').filter((line) => line.startsWith('data: {')).at(-1);
      response = data === undefined ? undefined : ((JSON.parse(data.slice(6)) as { response?: Record<string, unknown> }).response);
    }
  } catch {
    return undefined;
  }
  if (response === undefined || typeof response['id'] !== 'string') return undefined;
  return { id: response['id'], status: String(response['status']), json: JSON.stringify(response) };
}

const hash = (text: string): string => createHash('sha256').update(text).digest('hex');

/** A request whose answer is never read: the gateway ends it after --client-write-timeout. */
function stopReading(p: Plan): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = httpRequest(`${gatewayUrl}${p.path}`, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', 'x-sim': p.sim },
    });
    req.on('response', (res) => {
      res.pause();
      resolve('stalled');
    });
    req.on('error', () => resolve('stalled'));
    req.end(JSON.stringify(p.body));
    stalledClients.push(req);
  });
}

const inFlight = new Map<number, { kind: string; since: number }>();
async function once(): Promise<Outcome> {
  const key = requests;
  const p = plan();
  inFlight.set(key, { kind: `${p.kind} ${p.sim}`, since: Date.now() });
  try {
    return await onceWith(p);
  } finally {
    inFlight.delete(key);
  }
}

/** The complete events of an SSE text, [DONE] left out. */
function eventsOf(text: string): string[] {
  return text
    .slice(0, text.lastIndexOf('\n\n') + 2)
    .split('\n\n')
    .filter((event) => event.length > 0 && event !== 'data: [DONE]');
}

/**
 * A background stream whose client leaves and comes back: read for a while, dropped,
 * resumed after the last sequence number it had (perhaps on the other worker). The two
 * parts must join into one stream, every sequence number once, in order.
 */
async function backgroundResumed(p: Plan, injected: () => boolean): Promise<Outcome> {
  const abort = new AbortController();
  let first = '';
  const res = await client.request({
    method: 'POST',
    path: p.path,
    headers: { 'content-type': 'application/json', 'x-sim': p.sim },
    body: JSON.stringify(p.body),
    signal: abort.signal,
  });
  if (res.statusCode !== 200) {
    const text = await res.body.text();
    if (res.statusCode === 503 && injected()) return 'injected';
    unexpected.push(`background: status ${res.statusCode}: ${text.slice(0, 200)}`);
    return 'unexpected';
  }
  const timer = setTimeout(() => abort.abort(), p.abortAfterMs);
  try {
    for await (const chunk of res.body) first += (chunk as Buffer).toString();
  } catch {
    // dropped on purpose
  }
  clearTimeout(timer);
  const kept = eventsOf(first);
  const id = /"id":"(resp_[0-9a-f]+)"/.exec(kept[0] ?? '')?.[1];
  if (id === undefined) return 'client_abort'; // left before the first event: nothing to resume from
  const after = kept.length - 1;
  const rest = await client.request({ method: 'GET', path: `/v1/responses/${id}?stream=true&starting_after=${after}` });
  const restText = await rest.body.text();
  if (rest.statusCode !== 200) {
    if (injected()) return 'injected';
    unexpected.push(`background resume: status ${rest.statusCode}: ${restText.slice(0, 200)}`);
    return 'unexpected';
  }
  const joined = [...kept, ...eventsOf(restText)];
  const gap = joined.findIndex((event, index) => !event.includes(`"sequence_number":${index}`));
  if (gap !== -1) {
    unexpected.push(`background: the resumed stream has no sequence number ${gap} where expected`);
    return 'unexpected';
  }
  const text = `${joined.join('\n\n')}\n\ndata: [DONE]\n\n`;
  if (!restText.endsWith('data: [DONE]\n\n')) {
    if (injected()) return 'injected';
    unexpected.push('background: the resumed stream was cut off');
    return 'unexpected';
  }
  if (text.includes('event: response.failed')) {
    // Its worker killed mid-run (run_interrupted), or the database cut while storing.
    if ((text.includes('"run_interrupted"') || text.includes('"store_unavailable"')) && injected()) return 'injected';
    unexpected.push(`background: response.failed without a fault: ${text.slice(text.indexOf('event: error'), text.indexOf('event: error') + 300)}`);
    return 'unexpected';
  }
  const response = finalResponse(text, true);
  if (response?.status !== 'completed') {
    unexpected.push(`background: ended ${response?.status ?? 'without a terminal event'}: ...${text.slice(-300)}`);
    return 'unexpected';
  }
  completed.set(response.id, hash(response.json));
  return 'ok';
}

async function onceWith(p: Plan): Promise<Outcome> {
  requests += 1;
  if (p.stopReading === true) return stopReading(p);
  const startedAt = Date.now();
  const started = performance.now();
  const abort = new AbortController();
  const timer = p.abortAfterMs === undefined ? undefined : setTimeout(() => abort.abort(), p.abortAfterMs);
  const injected = (): boolean => faultDuring('db', startedAt, Date.now()) || faultDuring('worker', startedAt, Date.now());
  if (p.resume === true) {
    try {
      return await backgroundResumed(p, injected);
    } catch (error) {
      if (injected()) return 'injected';
      unexpected.push(`background: ${error instanceof Error ? error.message : String(error)}`);
      return 'unexpected';
    }
  }
  try {
    const res = await client.request({
      method: 'POST',
      path: p.path,
      headers: { 'content-type': 'application/json', ...(p.sim ? { 'x-sim': p.sim } : {}) },
      body: JSON.stringify(p.body),
      signal: abort.signal,
    });
    const text = await res.body.text();
    clearTimeout(timer);
    if (p.abortAfterMs !== undefined) return 'ok'; // finished before the abort fired
    if (p.fault === 'status') {
      if (res.statusCode >= 500) return 'injected';
      unexpected.push(`${p.kind}: status ${res.statusCode}`);
      return 'unexpected';
    }
    if (res.statusCode === 503 && text.includes('"store_unavailable"') && faultDuring('db', startedAt, Date.now())) return 'injected';
    if (res.statusCode !== 200) {
      unexpected.push(`${p.kind}: status ${res.statusCode}: ${text.slice(0, 200)}`);
      return 'unexpected';
    }
    if (p.kind === 'chat') {
      if (text.endsWith('data: [DONE]\n\n')) return 'ok';
      if (injected()) return 'injected';
      unexpected.push('chat: the stream did not end with [DONE]');
      return 'unexpected';
    }
    const streamed = p.body['stream'] === true;
    if (streamed && !text.endsWith('data: [DONE]\n\n')) {
      if (injected()) return 'injected'; // its worker was killed mid-stream
      unexpected.push(`${p.kind}: the stream was cut off`);
      return 'unexpected';
    }
    const failed = text.includes('event: response.failed');
    if (p.fault === 'stream-failed') {
      if (failed) return 'injected';
      unexpected.push(`${p.kind}: the stream did not end with response.failed`);
      return 'unexpected';
    }
    if (failed) {
      if (text.includes('"store_unavailable"') && faultDuring('db', startedAt, Date.now())) return 'injected';
      unexpected.push(`${p.kind}: response.failed without a fault: ${text.slice(text.indexOf('event: error'), text.indexOf('event: error') + 300)}`);
      return 'unexpected';
    }
    const response = finalResponse(text, streamed);
    if (response !== undefined && response.status === 'completed' && p.body['store'] !== false) {
      completed.set(response.id, hash(response.json));
      previousIds.push(response.id);
      if (previousIds.length > 200) previousIds.shift();
    }
    latenciesMs.push(performance.now() - started);
    return 'ok';
  } catch (error) {
    clearTimeout(timer);
    if (p.abortAfterMs !== undefined && abort.signal.aborted) return 'client_abort';
    if (injected()) return 'injected';
    unexpected.push(`${p.kind}: ${error instanceof Error ? error.message : String(error)}`);
    return 'unexpected';
  }
}

// --- sampling --------------------------------------------------------------------------

interface Sample {
  /** Date.now() when taken. */
  readonly at: number;
  readonly atS: number;
  readonly rssMiB: number;
  readonly fds: number;
  readonly requests: number;
}
const samples: Sample[] = [];
const startedAt = Date.now();

function rssMiB(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  } catch {
    return 0; // a worker that just died
  }
}

function fds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

function sample(): void {
  const pids = [gatewayPid, ...workerPids()];
  const at = Date.now();
  samples.push({
    at,
    atS: Math.round((at - startedAt) / 1000),
    rssMiB: Math.round(pids.reduce((sum, pid) => sum + rssMiB(pid), 0) * 10) / 10,
    fds: pids.reduce((sum, pid) => sum + fds(pid), 0),
    requests,
  });
}

async function upstreamConnections(): Promise<number> {
  const res = await fetch(`${simUrl}/_sim/stats`);
  return ((await res.json()) as { connections: number }).connections - 1; // minus this one
}

// --- run -------------------------------------------------------------------------------

console.log(
  `soak: ${durationMs / 1000} s, concurrency ${concurrency}, gateway ${gatewayUrl} (pid ${gatewayPid}, ${workers} workers), ` +
    `vLLM ${simUrl}, store ${admin === undefined ? 'SQLite (no database connections to kill)' : 'PostgreSQL'}`,
);
sample();
const sampler = setInterval(() => {
  sample();
  const last = samples.at(-1);
  console.error(`  ${last?.atS ?? 0} s: ${requests} requests, RSS ${last?.rssMiB ?? 0} MiB`);
  const old = [...inFlight.values()].filter((r) => Date.now() - r.since > 10_000);
  if (old.length > 0) console.error(`  still in flight after 10 s: ${JSON.stringify(old.map((r) => r.kind))}`);
}, SAMPLE_EVERY_MS);
const deadline = Date.now() + durationMs;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (Date.now() < deadline) count(await once());
  }),
);
for (const timer of faultTimers) clearInterval(timer);
clearInterval(sampler);
sample();

console.error(`  load over; reading back ${completed.size} completed responses`);
// Nothing completed is lost or half-written: each is read back whole.
let lost = 0;
let halfWritten = 0;
const readBack = [...completed];
await Promise.all(
  Array.from({ length: 16 }, async () => {
    for (let next = readBack.pop(); next !== undefined; next = readBack.pop()) {
      const [id, expected] = next;
      const res = await client.request({ method: 'GET', path: `/v1/responses/${id}` });
      const text = await res.body.text();
      if (res.statusCode !== 200) {
        lost += 1;
        if (unexpected.length < 40) unexpected.push(`${id}: completed, then GET answered ${res.statusCode}`);
        continue;
      }
      const items = await client.request({ method: 'GET', path: `/v1/responses/${id}/input_items?limit=1` });
      const itemsJson = (await items.body.json()) as { data?: unknown[] };
      if (hash(JSON.stringify(JSON.parse(text))) !== expected || items.statusCode !== 200 || (itemsJson.data?.length ?? 0) === 0) {
        halfWritten += 1;
        if (unexpected.length < 40) unexpected.push(`${id}: stored differently from what the client got, or without its items`);
      }
    }
  }),
);

// Connections of clients that stopped reading: the gateway ended them (else their
// generations would still hold connections to vLLM below). Idle connections to vLLM
// close after the gateway's keep-alive (4 s): wait a little longer.
await new Promise((resolve) => setTimeout(resolve, 6_000));
const leaked = await upstreamConnections();
if (leaked > 0) {
  const metrics = await (await fetch(`${gatewayUrl}/metrics`)).text();
  console.error(metrics.split('\n').filter((line) => /^gateway_(open_streams|http_requests_in_flight|client_write_timeouts_total)/.test(line)).join('\n'));
}
for (const req of stalledClients) req.destroy();
await client.close();

stopping = true;
gateway.child.kill('SIGTERM');
sim.child.kill('SIGTERM');
mcpServer.child.kill('SIGTERM');
if (admin !== undefined) {
  await admin.query(`DROP SCHEMA ${schema as string} CASCADE`).catch(() => undefined);
  await admin.end();
}

// --- report ----------------------------------------------------------------------------

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
};
const afterWarmup = samples.filter((s) => s.atS >= (durationMs / 1000) * WARMUP_FRACTION);
const firstHalf = afterWarmup.slice(0, Math.ceil(afterWarmup.length / 2));
const lastHalf = afterWarmup.slice(Math.floor(afterWarmup.length / 2));
const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
const rssGrowth = mean(lastHalf.map((s) => s.rssMiB)) - mean(firstHalf.map((s) => s.rssMiB));
// A killed worker's replacement is starting, and its clients reconnecting, for a few
// seconds: the sum of open files over the processes swings then (one run read +56 at its
// last sample, taken in the second of a kill), which is no leak. Those samples are left
// out of the comparison (unless a half has no other).
const settledFds = (half: readonly Sample[]): number[] => {
  const settled = half.filter((s) => !faultTimes.worker.some((at) => s.at >= at && s.at - at < WORKER_SETTLE_MS));
  return (settled.length > 0 ? settled : half).map((s) => s.fds);
};
const fdsBefore = Math.max(...settledFds(firstHalf));
const fdsAfter = Math.max(...settledFds(lastHalf));
const fdGrowth = fdsAfter - fdsBefore;
const problems: string[] = [];
if ((counts.get('unexpected') ?? 0) > 0) problems.push(`${counts.get('unexpected') ?? 0} unexpected errors`);
if (lost > 0) problems.push(`${lost} completed responses lost`);
if (halfWritten > 0) problems.push(`${halfWritten} completed responses half-written`);
// Workers are killed and replaced: the sum over processes swings by one worker's size.
const rssAllowance = workers > 1 ? 60 : 25;
if (rssGrowth > rssAllowance) problems.push(`RSS grew by ${rssGrowth.toFixed(1)} MiB after warm-up`);
if (fdGrowth > 8 * workers) problems.push(`open file descriptors grew by ${fdGrowth} after warm-up`);
if (leaked !== 0) problems.push(`${leaked} connections to vLLM left open`);

const lines = [
  `## Soak: ${new Date(startedAt).toISOString().slice(0, 16)}Z, ${durationMs / 1000} s, concurrency ${concurrency}`,
  '',
  `Node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'} (${cpus().length} cores), ${workers} workers, store ${admin === undefined ? 'SQLite' : 'PostgreSQL'}. Command: \`npm run soak -- ${args.join(' ')}\``,
  '',
  `- requests: ${requests} (${(requests / (durationMs / 1000)).toFixed(0)}/s); outcomes: ${JSON.stringify(Object.fromEntries(counts))}`,
  `- outside faults: ${faultTimes.db.length} rounds of database connection kills, ${faultTimes.worker.length} workers killed, ${stalledClients.length} clients that stopped reading`,
  `- completed responses read back: ${completed.size}; lost: ${lost}; half-written: ${halfWritten}`,
  `- latency of successful requests (streams to their end): p50 ${percentile(latenciesMs, 50).toFixed(1)} ms, p99 ${percentile(latenciesMs, 99).toFixed(1)} ms`,
  `- gateway RSS (all its processes) after warm-up: ${mean(firstHalf.map((s) => s.rssMiB)).toFixed(1)} -> ${mean(lastHalf.map((s) => s.rssMiB)).toFixed(1)} MiB (${rssGrowth >= 0 ? '+' : ''}${rssGrowth.toFixed(1)}); open fds max ${fdsBefore} -> ${fdsAfter} (outside the 5 s after a worker was killed)`,
  `- connections to vLLM left open after the run: ${leaked}`,
  `- verdict: ${problems.length === 0 ? 'pass' : `FAIL: ${problems.join('; ')}`}`,
  '',
  '| t (s) | requests | RSS (MiB) | open fds |',
  '| ---: | ---: | ---: | ---: |',
  ...samples.map((s) => `| ${s.atS} | ${s.requests} | ${s.rssMiB} | ${s.fds} |`),
  '',
];
if (unexpected.length > 0) lines.push('Unexpected:', ...unexpected.slice(0, 20).map((line) => `- ${line}`), '');
const report = lines.join('\n');
console.log(report);
if (outFile !== undefined) writeFileSync(outFile, report);
process.exit(problems.length === 0 ? 0 : 1);
