// npm run bench:state [-- --quick] [--rounds N] [--out DIR] [--baseline DIR]
//
// What stored state costs as it grows (docs/reliability.md, "Long chains"): continuing a
// chain at its 10th and at its 2,000th turn, against continuing one response that holds
// the same 4,000 items (what reading the history costs by itself); the checkpoint bytes
// the chain stored; and listing 10 items of a conversation of 10 and of 20,000 items.
// The compiled gateway in front of the fast simulator, requests one at a time, the cases
// alternating round by round. SQLite, and PostgreSQL when BENCH_DATABASE_URL or
// TEST_DATABASE_URL is set. Beside it, on the same database, the same gateway keeping no
// contexts (--context-cache-size 0): what reading the history at every continuation costs
// against confirming a kept one, in the same rounds. --baseline DIR: an earlier build
// (a checkout with node_modules, built) beside both, on the same database, keeping contexts
// as it did: a change to the store measured side by side.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createBenchSchema } from './pg-schema.ts';
import { Pool } from 'undici';
import { cpuNs } from './proc.ts';
import { ROOT, startBenchGateway, startBenchSim, type Started } from './processes.ts';
import { median, percentile, spread } from './stats.ts';
import { sqliteDriver } from '../src/store/sqlite/sqlite-driver.ts';
import { toolArgs } from './args.ts';

const { argv, option } = toolArgs();
const quick = argv.includes('--quick');
const ROUNDS = Number(option('rounds') ?? (quick ? 2 : 5));
const REQUESTS = quick ? 50 : 300;
const CHAIN_TURNS = quick ? 200 : 2_000;
const BIG_CONVERSATION = quick ? 2_000 : 20_000;
const log = (line: string): void => console.error(line);
const scratch = mkdtempSync(join(tmpdir(), 'rg-bench-state-'));
const baselineDir = option('baseline') === undefined ? undefined : resolve(option('baseline') as string);

if (spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' }).status !== 0) throw new Error('build failed');
const sim = await startBenchSim(scratch);

interface Store {
  readonly name: 'SQLite' | 'PostgreSQL';
  readonly gateway: Started;
  /** The same build on the same database, keeping no contexts. */
  readonly notKeeping: Started;
  /** --baseline: the earlier build, on the same database. */
  readonly baseline: Started | undefined;
  checkpointBytes(ids: readonly string[]): Promise<number>;
  /** Removes what the run created in the database (PostgreSQL: its schema). */
  dispose(): Promise<void>;
}

/** The baseline build on this database, started after this build migrated it. */
function startBaseline(dbUrl: string): Promise<Started> | undefined {
  return baselineDir === undefined ? undefined : startBenchGateway(sim.url, scratch, ['--db-url', dbUrl, '--log-level', 'warn'], baselineDir);
}

const stores: Store[] = [];
const sqlitePath = join(scratch, 'state.db');
stores.push({
  name: 'SQLite',
  gateway: await startBenchGateway(sim.url, scratch, ['--db-url', `sqlite:${sqlitePath}`, '--log-level', 'warn']),
  notKeeping: await startBenchGateway(sim.url, scratch, ['--db-url', `sqlite:${sqlitePath}`, '--log-level', 'warn', '--context-cache-size', '0']),
  baseline: await startBaseline(`sqlite:${sqlitePath}`),
  checkpointBytes: (ids) => {
    const db = sqliteDriver().open(sqlitePath, { readOnly: true });
    try {
      const row = db.prepare(`SELECT SUM(length(checkpoint)) AS bytes FROM responses WHERE id IN (SELECT value FROM json_each(?))`).all(JSON.stringify(ids))[0] as { bytes: number };
      return Promise.resolve(row.bytes);
    } finally {
      db.close();
    }
  },
  dispose: () => Promise.resolve(), // the file goes with the scratch directory
});
const pgUrl = process.env['BENCH_DATABASE_URL'] ?? process.env['TEST_DATABASE_URL'];
if (pgUrl !== undefined) {
  const schema = await createBenchSchema(pgUrl, 'bench_state');
  stores.push({
    name: 'PostgreSQL',
    gateway: await startBenchGateway(sim.url, scratch, ['--db-url', schema.url, '--log-level', 'warn']),
    notKeeping: await startBenchGateway(sim.url, scratch, ['--db-url', schema.url, '--log-level', 'warn', '--context-cache-size', '0']),
    baseline: await startBaseline(schema.url),
    checkpointBytes: async (ids) => {
      const { rows } = await schema.client.query(`SELECT SUM(octet_length(checkpoint))::int AS bytes FROM ${schema.name}.responses WHERE id = ANY($1)`, [ids]);
      return Number((rows[0] as { bytes: number }).bytes);
    },
    dispose: () => schema.drop(),
  });
} else {
  log('PostgreSQL skipped: set BENCH_DATABASE_URL (or TEST_DATABASE_URL)');
}

async function post(client: Pool, path: string, body: object): Promise<Record<string, unknown>> {
  const res = await client.request({ method: 'POST', path, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = (await res.body.json()) as Record<string, unknown>;
  if (res.statusCode !== 200) throw new Error(`${path}: ${res.statusCode} ${JSON.stringify(json).slice(0, 200)}`);
  return json;
}

interface Case {
  readonly name: string;
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly body: string;
}

/** Latencies of `requests` sequential requests (own process), and the gateway's CPU for them. */
function measure(gateway: Started, testCase: Case): { p50Us: number; p99Us: number; cpuUs: number } {
  const before = cpuNs(gateway.pid);
  const job = { origin: gateway.url, method: testCase.method, path: testCase.path, body: testCase.body, requests: REQUESTS, warmup: 10 };
  const out = spawnSync(process.execPath, ['--import', 'tsx', 'bench/c1-client.ts', JSON.stringify(job)], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (out.status !== 0) throw new Error(`c1 client failed: ${out.stderr}`);
  const { latencyUs } = JSON.parse(out.stdout) as { latencyUs: number[] };
  return { p50Us: percentile(latencyUs, 50), p99Us: percentile(latencyUs, 99), cpuUs: (cpuNs(gateway.pid) - before) / 1000 / (REQUESTS + 10) };
}

const lines: string[] = [];
for (const store of stores) {
  const client = new Pool(store.gateway.url, { connections: 4 });
  log(`${store.name}: a chain of ${CHAIN_TURNS} turns`);
  const chain: string[] = [];
  let previous: string | undefined;
  for (let turn = 0; turn < CHAIN_TURNS; turn++) {
    const response = await post(client, '/v1/responses', { model: 'm', input: `turn ${turn}`, ...(previous === undefined ? {} : { previous_response_id: previous }) });
    previous = response['id'] as string;
    chain.push(previous);
  }
  log(`${store.name}: one response of ${2 * CHAIN_TURNS - 1} items`);
  const flat = await post(client, '/v1/responses', { model: 'm', input: Array.from({ length: 2 * CHAIN_TURNS - 1 }, (_, i) => ({ role: 'user', content: `item ${i}` })) });
  log(`${store.name}: conversations of 10 and ${BIG_CONVERSATION} items`);
  const small = await post(client, '/v1/conversations', { items: Array.from({ length: 10 }, (_, i) => ({ role: 'user', content: `item ${i}` })) });
  const big = await post(client, '/v1/conversations', {});
  for (let added = 0; added < BIG_CONVERSATION; added += 20) {
    await post(client, `/v1/conversations/${big['id'] as string}/items`, { items: Array.from({ length: 20 }, (_, i) => ({ role: 'user', content: `item ${added + i}` })) });
  }
  const continuing = (id: string): string => JSON.stringify({ model: 'm', input: 'and now?', previous_response_id: id });
  const cases: Case[] = [
    { name: 'continue turn 10', method: 'POST', path: '/v1/responses', body: continuing(chain[9] as string) },
    { name: `continue turn ${CHAIN_TURNS}`, method: 'POST', path: '/v1/responses', body: continuing(chain.at(-1) as string) },
    { name: `continue one response of ${2 * CHAIN_TURNS} items`, method: 'POST', path: '/v1/responses', body: continuing(flat['id'] as string) },
    { name: 'list 10 items of a conversation of 10', method: 'GET', path: `/v1/conversations/${small['id'] as string}/items?limit=10`, body: '' },
    { name: `list 10 items of a conversation of ${BIG_CONVERSATION}`, method: 'GET', path: `/v1/conversations/${big['id'] as string}/items?limit=10`, body: '' },
  ];
  type Measured = ReturnType<typeof measure>;
  const rounds = new Map<string, Measured[]>(cases.map((c) => [c.name, []]));
  const roundsNotKeeping = new Map<string, Measured[]>(cases.map((c) => [c.name, []]));
  const roundsBaseline = new Map<string, Measured[]>(cases.map((c) => [c.name, []]));
  const sides: [Started, Map<string, Measured[]>][] = [
    [store.gateway, rounds],
    [store.notKeeping, roundsNotKeeping],
    ...(store.baseline === undefined ? [] : [[store.baseline, roundsBaseline] as [Started, Map<string, Measured[]>]]),
  ];
  for (let round = 0; round < ROUNDS; round++) {
    log(`${store.name}: round ${round + 1}/${ROUNDS}`);
    for (const testCase of cases) {
      // Which goes first turns round by round: none always meets a warmer machine.
      for (let i = 0; i < sides.length; i++) {
        const [gateway, into] = sides[(round + i) % sides.length] as [Started, Map<string, Measured[]>];
        into.get(testCase.name)?.push(measure(gateway, testCase));
      }
    }
  }
  const bytes = await store.checkpointBytes(chain);
  const cell = (values: number[]): string => `${median(values).toFixed(0)} (${spread(values)})`;
  /** The median of per-round ratios, kept over not kept. */
  const ratio = (kept: Measured[], notKept: Measured[], pick: (m: Measured) => number): string =>
    `${median(kept.map((m, i) => pick(m) / pick(notKept[i] as Measured))).toFixed(2)}x`;
  const withBaseline = store.baseline !== undefined;
  lines.push(
    `### ${store.name}`,
    '',
    '| case | p50 (µs) | p99 (µs) | gateway CPU/request (µs) | p50, no kept contexts | CPU/request, no kept contexts | p50 / CPU, kept over not |' +
      (withBaseline ? ' p50, baseline | CPU/request, baseline | p50 / CPU, over the baseline |' : ''),
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |' + (withBaseline ? ' ---: | ---: | ---: |' : ''),
  );
  for (const testCase of cases) {
    const measured = rounds.get(testCase.name) ?? [];
    const notKept = roundsNotKeeping.get(testCase.name) ?? [];
    const baseline = roundsBaseline.get(testCase.name) ?? [];
    lines.push(
      `| ${testCase.name} | ${cell(measured.map((r) => r.p50Us))} | ${cell(measured.map((r) => r.p99Us))} | ${cell(measured.map((r) => r.cpuUs))} | ` +
        `${cell(notKept.map((r) => r.p50Us))} | ${cell(notKept.map((r) => r.cpuUs))} | ${ratio(measured, notKept, (r) => r.p50Us)} / ${ratio(measured, notKept, (r) => r.cpuUs)} |` +
        (withBaseline
          ? ` ${cell(baseline.map((r) => r.p50Us))} | ${cell(baseline.map((r) => r.cpuUs))} | ${ratio(measured, baseline, (r) => r.p50Us)} / ${ratio(measured, baseline, (r) => r.cpuUs)} |`
          : ''),
    );
  }
  const wholeEveryTurn = Array.from({ length: CHAIN_TURNS }, (_, turn) => 2 * (turn + 1)).reduce((sum, items) => sum + items, 0);
  lines.push('', `Checkpoints of the ${CHAIN_TURNS}-turn chain (${2 * CHAIN_TURNS} items): ${bytes} bytes (${(bytes / CHAIN_TURNS).toFixed(1)} per turn); a whole checkpoint every turn would hold ${wholeEveryTurn} seqs, about ${wholeEveryTurn} bytes or more.`, '');
  await client.close();
}
for (const store of stores) {
  store.gateway.child.kill('SIGTERM');
  store.notKeeping.child.kill('SIGTERM');
  store.baseline?.child.kill('SIGTERM');
  // A gateway still finishing a transaction only makes the DROP wait for its lock.
  await store.dispose();
}
sim.child.kill('SIGTERM');

const date = new Date();
const report = [
  `# State benchmark: ${date.toISOString().slice(0, 16)}Z${quick ? ' (--quick)' : ''}`,
  '',
  `- Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores; Node ${process.version}. Command: \`npm run bench:state${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}\``,
  `- ${ROUNDS} rounds, the cases in turn; each: ${REQUESTS} requests at c=1 after 10 warm-up, on the gateway and on the same build with --context-cache-size 0${baselineDir === undefined ? '' : ` and on the baseline build (${baselineDir})`} (same database), in turns, the first changing round by round. Cells: median (min–max) over rounds; the last column, medians of per-round ratios. Each turn adds 2 items (its input and output).`,
  '',
  ...lines,
].join('\n');
process.stdout.write(`${report}\n`);
const outDir = resolve(option('out') ?? join(ROOT, 'bench/results'));
mkdirSync(outDir, { recursive: true });
const file = join(outDir, `state-${date.toISOString().slice(0, 16).replace(':', '')}${quick ? '-quick' : ''}.md`);
writeFileSync(file, report);
log(`written to ${file}`);
process.exit(0);
