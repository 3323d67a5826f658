// npm run bench:pg-round-trips: the statements one continuation over 100 items sends to
// PostgreSQL, read from PostgreSQL's own log (the gateway's sessions get
// `log_statement=all` through the connection's options, in a schema of their own, dropped
// afterwards), and the round trips they take, counted by a TCP relay between the gateway
// and PostgreSQL (round-trip-relay.ts). Needs TEST_DATABASE_URL (or BENCH_DATABASE_URL)
// and the server's log at LOG_FILE (Debian's default below), readable by this user.
// Then what one durable commit costs on this server, whatever sends it: a one-row INSERT
// committed alone, COMMIT_SAMPLES times on one connection, with `synchronous_commit` on
// (the server's default: the COMMIT waits for its WAL to be flushed to disk) and off (it
// does not); the difference is the flush every stored response waits for.
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBenchGateway, startBenchSim } from './processes.ts';
import { startRoundTripRelay } from './round-trip-relay.ts';
import { createBenchSchema } from './pg-schema.ts';
const dir = mkdtempSync(join(tmpdir(), 'pgc-'));
const base = process.env['BENCH_DATABASE_URL'] ?? process.env['TEST_DATABASE_URL'];
if (base === undefined) throw new Error('set TEST_DATABASE_URL or BENCH_DATABASE_URL');
const LOG_FILE = process.env['PG_LOG_FILE'] ?? '/var/log/postgresql/postgresql-15-main.log';
const pgc = await createBenchSchema(base, 'pgc');
const { name: schema, client: c } = pgc;
const relay = await startRoundTripRelay(base);
const url = new URL(relay.url);
url.searchParams.set('options', `-c search_path=${schema} -c log_statement=all -c log_min_duration_statement=0`);
const sim = await startBenchSim(dir);
const gw = await startBenchGateway(sim.url, dir, ['--db-url', url.toString()]);
const post = async (body: object) => (await (await fetch(`${gw.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json()) as { id: string };
const input = Array.from({ length: 99 }, (_, i) => ({ type: 'message', role: 'user', content: `turn ${i}` }));
const first = await post({ model: 'm', input });
// A named statement gets its generic plan from its sixth execution on a connection on.
for (let n = 0; n < 8; n++) await post({ model: 'm', input: 'warm', previous_response_id: first.id });
// The log is written asynchronously by the server: what the last request sent is in it by then.
await new Promise((resolve) => setTimeout(resolve, 500));
const from = statSync(LOG_FILE).size;
relay.reset();
await post({ model: 'm', input: 'and now?', previous_response_id: first.id });
const roundTrips = relay.count();
const statementsSent = relay.statements();
await new Promise((resolve) => setTimeout(resolve, 1000));
const text = readFileSync(LOG_FILE).subarray(from).toString();
/** Each statement with the server's time on it: its parse and bind (logged before it) and
 * its execution (logged after it). */
const statements: { text: string; ms: number }[] = [];
let before = 0;
for (const line of text.split('\n')) {
  const entry = /LOG: {2}(?:duration: ([\d.]+) ms(?: {2}|$))?(?:(parse|bind) \S+: |(statement|execute)( \S+)?: )?(.*)$/.exec(line);
  if (entry === null) continue;
  const [, ms, phase, statement, name, rest] = entry;
  if (phase !== undefined) before += Number(ms);
  else if (statement !== undefined) {
    statements.push({ text: `${statement}${name ?? ''}: ${rest ?? ''}`, ms: before });
    before = 0;
  } else if (ms !== undefined && statements.length > 0) (statements.at(-1) as { ms: number }).ms += Number(ms);
}
const serverMs = statements.reduce((sum, statement) => sum + statement.ms, 0);
console.log(`${statements.length} statements for one continuation over 100 items (the server's time on each: parse, bind, execute):`);
for (const statement of statements) console.log(`  ${statement.ms.toFixed(3).padStart(7)} ms  ${statement.text.slice(0, 130)}`);
console.log(`  ${serverMs.toFixed(3).padStart(7)} ms  in all`);
if (!statements.some((statement) => statement.text.startsWith('statement: COMMIT'))) {
  // PostgreSQL logs a statement's execution, and a statement sent outside BEGIN commits
  // after it, when its Sync comes: that commit is timed below.
  console.log('  (the write, one statement, commits on its own after its logged time: its durable commit below is on top)');
}
console.log(`${roundTrips} round trips (statements sent together share one), ${statementsSent} statements sent (counted by the relay)`);
gw.child.kill('SIGTERM'); sim.child.kill('SIGTERM'); await relay.close();

const COMMIT_SAMPLES = 400;
/** Median wall time of a one-row INSERT committed alone, in ms, after a few unmeasured. */
async function commitMs(synchronousCommit: 'on' | 'off'): Promise<number> {
  await c.query(`SET synchronous_commit = ${synchronousCommit}`);
  const times: number[] = [];
  for (let n = 0; n < COMMIT_SAMPLES + 20; n++) {
    const started = process.hrtime.bigint();
    await c.query(`INSERT INTO ${schema}.commit_probe (n) VALUES ($1)`, [n]);
    if (n >= 20) times.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1] as number;
}
await c.query(`CREATE TABLE ${schema}.commit_probe (n integer)`);
const durable = await commitMs('on');
const unflushed = await commitMs('off');
await c.query('RESET synchronous_commit');
console.log(
  `one durable commit (a one-row INSERT committed alone, median of ${COMMIT_SAMPLES}): ${durable.toFixed(3)} ms; ` +
    `with synchronous_commit off ${unflushed.toFixed(3)} ms: the WAL flush takes ${(durable - unflushed).toFixed(3)} ms`,
);
await pgc.drop();
process.exit(0);
