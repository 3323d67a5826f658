// npm run bench:pg-round-trips: the statements one continuation over 100 items sends to
// PostgreSQL (each a network round trip), read from PostgreSQL's own log: the gateway's
// sessions get `log_statement=all` through the connection's options, in a schema of their
// own, dropped afterwards. Needs TEST_DATABASE_URL (or BENCH_DATABASE_URL) and the server's
// log at LOG_FILE (Debian's default below), readable by this user.
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
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
const url = new URL(base); url.searchParams.set('options', `-c search_path=${schema} -c log_statement=all -c log_min_duration_statement=-1`);
const sim = await startBenchSim(dir);
const gw = await startBenchGateway(sim.url, dir, ['--db-url', url.toString()]);
const post = async (body: object) => (await (await fetch(`${gw.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json()) as { id: string };
const input = Array.from({ length: 99 }, (_, i) => ({ type: 'message', role: 'user', content: `turn ${i}` }));
const first = await post({ model: 'm', input });
await post({ model: 'm', input: 'warm', previous_response_id: first.id });
// The log is written asynchronously by the server: what the last request sent is in it by then.
await new Promise((resolve) => setTimeout(resolve, 500));
const from = statSync(LOG_FILE).size;
await post({ model: 'm', input: 'and now?', previous_response_id: first.id });
await new Promise((resolve) => setTimeout(resolve, 1000));
const text = readFileSync(LOG_FILE).subarray(from).toString();
const lines = text.split('\n').filter((l) => /LOG: {2}(statement|execute)/.test(l));
console.log(`${lines.length} statements for one continuation over 100 items:`);
for (const l of lines) console.log('  ' + l.replace(/^.*LOG: {2}/, '').slice(0, 150));
gw.child.kill('SIGTERM'); sim.child.kill('SIGTERM');
await c.query(`DROP SCHEMA ${schema} CASCADE`); await c.end();
process.exit(0);
