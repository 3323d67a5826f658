// npm run bench:pg-store -- --baseline DIR [--rounds N] [--turns N] [--items N]
// npm run bench:pg-store -- --against postgres.js [...]
//
// What the store's work for one stored continuation costs on PostgreSQL, with no HTTP and
// no model around it: the context read (kept by the process, as the gateway keeps it) and
// the turn's write, one continuation at a time, for this build and an earlier one (DIR: a
// checkout with node_modules, built), each on a schema of its own, in alternating rounds.
// With `--against postgres.js`: this build's store on pg and on another driver, postgres.js
// (bench/postgres-js-backend.ts), which sends the same statements the same way.
// This process's CPU a continuation (pg's JavaScript and its socket calls: what the store
// costs the gateway) and its wall time (that, the round trips and the server's work). The
// full runs put the same work behind a gateway, where the rest of a request's CPU and a
// shared machine's noise are several times what a change to the store moves.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { spawnSync } from 'node:child_process';
import { toolArgs } from './args.ts';
import { createBenchSchema, type BenchSchema } from './pg-schema.ts';
import { ROOT } from './processes.ts';
import { median, percentile, spread } from './stats.ts';
import type { Store } from '../src/store/store.ts';
import { items, TENANT, turn } from './store-records.ts';
import type * as SqlStoreModule from '../src/store/sql-store.ts';
import type * as PostgresModule from '../src/store/postgres/postgres-backend.ts';

const { option } = toolArgs();
const ROUNDS = Number(option('rounds') ?? 7);
/** Continuations measured a round, spread over CHAINS chains begun afresh each round. */
const TURNS = Number(option('turns') ?? 320);
const CHAINS = 32;
/** A continuation's new input items (one output item besides). */
const INPUT_ITEMS = Number(option('items') ?? 1);
/** The first turn's items: its chain's continuations are over this many and more, as continue-100's. */
const HISTORY_ITEMS = 99;
const baselineDir = option('baseline');
const against = option('against');
if ((baselineDir === undefined) === (against === undefined)) throw new Error('--baseline DIR (an earlier build) or --against postgres.js (another driver)');
if (against !== undefined && against !== 'postgres.js') throw new Error(`--against ${against}: the other driver measured is postgres.js`);
const base = process.env['BENCH_DATABASE_URL'] ?? process.env['TEST_DATABASE_URL'];
if (base === undefined) throw new Error('set BENCH_DATABASE_URL or TEST_DATABASE_URL');
if (spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' }).status !== 0) throw new Error('build failed');

interface Build {
  readonly label: string;
  readonly schema: BenchSchema;
  readonly store: Store;
  readonly cpuUs: number[];
  readonly wallP50Us: number[];
}

const POOL_SIZE = 2;

/** The build in `dir` on pg; or, `onPostgresJs`, its store on postgres.js (its schema migrated
 * by pg first: the other backend runs the store's work, not its migrations). */
async function open(label: string, dir: string, onPostgresJs = false): Promise<Build> {
  const dist = pathToFileURL(resolve(dir, 'dist/store')).href;
  const { SqlStore } = (await import(`${dist}/sql-store.js`)) as typeof SqlStoreModule;
  const { PostgresBackend } = (await import(`${dist}/postgres/postgres-backend.js`)) as typeof PostgresModule;
  const schema = await createBenchSchema(base as string, `pgstore_${label.replace(/\W/g, '_')}`);
  // The gateway's default context cache (--context-cache-size 64 MiB): a continuation's read is one row.
  const storeOptions = { retentionMs: null, contextCacheBytes: 64 * 1024 * 1024 };
  const pgStore = new SqlStore(new PostgresBackend({ connectionString: schema.url, poolSize: POOL_SIZE, queryTimeoutMs: 10_000 }), storeOptions);
  await pgStore.migrate();
  if (!onPostgresJs) return { label, schema, store: pgStore, cpuUs: [], wallP50Us: [] };
  await pgStore.close();
  const { PostgresJsBackend } = await import('./postgres-js-backend.ts');
  const store = new SqlStore(new PostgresJsBackend(base as string, POOL_SIZE, schema.name), storeOptions);
  await store.migrate();
  return { label, schema, store, cpuUs: [], wallP50Us: [] };
}

async function round(build: Build): Promise<void> {
  const heads: string[] = [];
  for (let n = 0; n < CHAINS; n++) {
    const first = turn({ inputItems: items(HISTORY_ITEMS - 1) });
    await build.store.saveResponse(first);
    // Read once, so that the process keeps it, as the gateway does from a chain's second turn.
    await build.store.loadResponseContext(TENANT, first.id, Date.now());
    heads.push(first.id);
  }
  const walls: number[] = [];
  const cpuBefore = process.cpuUsage();
  for (let n = 0; n < TURNS; n++) {
    const started = process.hrtime.bigint();
    const previous = heads[n % CHAINS] as string;
    const context = await build.store.loadResponseContext(TENANT, previous, Date.now());
    if (context === undefined) throw new Error(`${previous} was not found`);
    const next = turn({ previousResponseId: previous, historySeqs: context.seqs, inputItems: items(INPUT_ITEMS) });
    await build.store.saveResponse(next);
    heads[n % CHAINS] = next.id;
    walls.push(Number(process.hrtime.bigint() - started) / 1000);
  }
  const cpu = process.cpuUsage(cpuBefore);
  build.cpuUs.push((cpu.user + cpu.system) / TURNS);
  build.wallP50Us.push(percentile(walls, 50));
}

const a = baselineDir !== undefined ? await open('before', resolve(baselineDir)) : await open('pg', ROOT);
const b = baselineDir !== undefined ? await open('after', ROOT) : await open('postgres.js', ROOT, true);
try {
  // One unmeasured round each: the statements prepared, the code compiled.
  for (const build of [a, b]) await round(build);
  for (const build of [a, b]) build.cpuUs.length = build.wallP50Us.length = 0;
  for (let n = 0; n < ROUNDS; n++) for (const build of n % 2 === 0 ? [a, b] : [b, a]) await round(build);
  const added = INPUT_ITEMS + 1;
  const longest = HISTORY_ITEMS + added * Math.ceil(TURNS / CHAINS - 1);
  console.log(
    `a stored continuation of ${added} new items over ${HISTORY_ITEMS}–${longest} on PostgreSQL (its context kept), ${ROUNDS} rounds of ${TURNS}, node ${process.version}`,
  );
  for (const build of [a, b]) {
    console.log(`${build.label.padEnd(11)} CPU ${median(build.cpuUs).toFixed(0)} µs (${spread(build.cpuUs)}), wall p50 ${median(build.wallP50Us).toFixed(0)} µs (${spread(build.wallP50Us)})`);
  }
  const ratios = (of: (build: Build) => number[]): string => {
    const values = of(b).map((value, i) => value / (of(a)[i] as number));
    return `${median(values).toFixed(2)}x (${spread(values, 2)})`;
  };
  console.log(`${b.label}/${a.label}: CPU ${ratios((build) => build.cpuUs)}, wall p50 ${ratios((build) => build.wallP50Us)} (medians of per-round ratios)`);
} finally {
  for (const build of [a, b]) {
    await build.store.close();
    await build.schema.drop();
  }
}
