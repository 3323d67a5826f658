// npm run bench:pg-round-trips: the statements one continuation over 100 items sends to
// PostgreSQL, read from PostgreSQL's own log (the gateway's sessions get
// `log_statement=all` through the connection's options, in a schema of their own, dropped
// afterwards), and the round trips they take, counted by a TCP relay between the gateway
// and PostgreSQL: what the gateway sends after PostgreSQL's bytes reached it may depend on
// them, so it starts a new round trip; what it sends before is pipelined with what it
// sent already. The relay hands PostgreSQL's bytes on ANSWER_DELAY_MS late, so that the
// rest of what the gateway wrote at once reaches the relay before any answer could have
// reached the gateway: what was sent together is counted together. Needs TEST_DATABASE_URL (or BENCH_DATABASE_URL) and the server's log at
// LOG_FILE (Debian's default below), readable by this user.
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { createServer, connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startBenchGateway, startBenchSim } from './processes.ts';
const dir = mkdtempSync(join(tmpdir(), 'pgc-'));
const base = process.env['BENCH_DATABASE_URL'] ?? process.env['TEST_DATABASE_URL'];
if (base === undefined) throw new Error('set TEST_DATABASE_URL or BENCH_DATABASE_URL');
const LOG_FILE = process.env['PG_LOG_FILE'] ?? '/var/log/postgresql/postgresql-15-main.log';
const schema = `pgc_${Date.now()}`;
const c = new pg.Client({ connectionString: base }); await c.connect(); await c.query(`CREATE SCHEMA ${schema}`);
/** Long beside the microseconds between writes the gateway makes at once. */
const ANSWER_DELAY_MS = 5;
const server = new URL(base);
/** Round trips since the count was last reset, and whether PostgreSQL answered since the
 * gateway last began one. */
const trips = { count: 0, answered: true };
const relay = createServer((client) => {
  const upstream = connect(Number(server.port || 5432), server.hostname);
  client.on('data', (chunk) => {
    if (trips.answered) trips.count += 1;
    trips.answered = false;
    upstream.write(chunk);
  });
  upstream.on('data', (chunk) => {
    // Timers of one delay fire in order: the bytes keep theirs.
    setTimeout(() => {
      client.write(chunk);
      trips.answered = true;
    }, ANSWER_DELAY_MS);
  });
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
});
await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
const url = new URL(base);
url.host = `127.0.0.1:${(relay.address() as AddressInfo).port}`;
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
trips.count = 0;
await post({ model: 'm', input: 'and now?', previous_response_id: first.id });
const roundTrips = trips.count;
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
console.log(`${roundTrips} round trips (statements sent together share one)`);
gw.child.kill('SIGTERM'); sim.child.kill('SIGTERM'); relay.close();
await c.query(`DROP SCHEMA ${schema} CASCADE`); await c.end();
process.exit(0);
