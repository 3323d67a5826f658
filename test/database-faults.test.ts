// PostgreSQL failing under a running gateway, for real: the gateway is the real command
// in its own process, and its connections are terminated (pg_terminate_backend) or frozen
// (SIGSTOP on their server processes) on the real server. Each gateway names its
// connections (application_name), so only they are touched.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, it } from 'node:test';
import pg from 'pg';
import { startSimVllm, type SimVllm } from '../sim/vllm-sim.ts';
import { killLeftovers, portOf, runCli, type CliRun } from './helpers/cli.ts';
import { checkStream, assertFailedWith } from './helpers/conformance.ts';
import { waitForMetric } from './helpers/gateway.ts';
import { parseSse, postJson, send, type RawResponse } from './helpers/http.ts';
import { createTestSchema, describeUnlessSkipped, postgresSkip, testDatabaseUrl, type TestSchema } from './helpers/postgres.ts';

let sim: SimVllm;
let schema: TestSchema;
let admin: pg.Client;
/** Server processes this file froze; thawed whatever happens. */
const frozen = new Set<number>();

function thawAll(): void {
  for (const pid of frozen) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // Already gone.
    }
  }
  frozen.clear();
}

async function gateway(app: string, flags: string[]): Promise<{ run: CliRun; url: string }> {
  const db = new URL(schema.url);
  db.searchParams.set('application_name', app);
  const run = runCli(['--gateway-port', '0', '--gateway-host', '127.0.0.1', '--llm-api-base', sim.url, '--db-url', db.toString(), ...flags]);
  return { run, url: `http://127.0.0.1:${portOf(await run.waitForLog('gateway listening'))}` };
}

/** Terminates the gateway's connections; returns how many. */
async function terminate(app: string): Promise<number> {
  const result = await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [app]);
  return result.rowCount ?? 0;
}

/** Attempts at seeing every connection of `app` idle, 10 ms apart: a connection the gateway
 * has just handed back reads as active until its backend waits for the next command. */
const IDLE_ATTEMPTS = 300;

/**
 * Freezes the server processes of the gateway's idle connections: TCP stays open, nothing
 * answers. `pooledOnly` leaves the connection that LISTENs for the run log alone.
 */
async function freeze(app: string, { pooledOnly = false } = {}): Promise<number[]> {
  for (let attempt = 0; attempt < IDLE_ATTEMPTS; attempt++) {
    const busy = await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle'", [app]);
    if (busy.rows[0]?.n === 0) break;
    await delay(10);
  }
  const listening = pooledOnly ? " AND query NOT LIKE 'LISTEN %'" : '';
  const { rows } = await admin.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle'${listening}`, [app]);
  for (const { pid } of rows) {
    process.kill(pid, 'SIGSTOP');
    frozen.add(pid);
  }
  return rows.map((row) => row.pid);
}

const appName = (what: string): string => `rg_${what}_${randomBytes(4).toString('hex')}`;

/** What a request may end as while its database fails: success, or a clean store_unavailable. */
function assertCleanAnswer(res: RawResponse, what: string): 'ok' | 'unavailable' {
  if (res.status === 503) {
    assert.equal(res.json().error.code, 'store_unavailable', what);
    return 'unavailable';
  }
  assert.equal(res.status, 200, `${what}: ${res.status} ${res.text().slice(0, 200)}`);
  if (res.headers['content-type']?.startsWith('text/event-stream') === true) {
    checkStream(res.text());
    const events = parseSse(res.text()).filter((event) => event.data !== '[DONE]').map((event) => JSON.parse(event.data));
    const terminal = events.at(-1);
    if (terminal.type === 'response.failed') {
      assertFailedWith(terminal.response, 'store_unavailable');
      return 'unavailable';
    }
    assert.equal(terminal.type, 'response.completed', what);
  }
  return 'ok';
}

/** The response id a successful answer reported. */
function responseIdOf(res: RawResponse): string | undefined {
  if (res.status !== 200) return undefined;
  if (res.headers['content-type']?.startsWith('application/json') === true) return res.json().id as string;
  const terminal = parseSse(res.text()).filter((event) => event.data !== '[DONE]').map((event) => JSON.parse(event.data)).at(-1);
  return terminal?.type === 'response.completed' ? (terminal.response.id as string) : undefined;
}

describeUnlessSkipped('PostgreSQL failing under the gateway', await postgresSkip(), () => {
  before(async () => {
    sim = await startSimVllm({ record: false });
    schema = await createTestSchema(testDatabaseUrl());
    admin = new pg.Client({ connectionString: testDatabaseUrl() });
    await admin.connect();
  });
  after(async () => {
    thawAll();
    killLeftovers();
    await admin?.end();
    await schema?.drop();
    await sim?.close();
  });

  it('connections killed at any moment, under load, 20 times: the process stays up, every answer is clean, the pool recovers', { timeout: 90_000 }, async () => {
    const app = appName('kill');
    const { run, url } = await gateway(app, ['--db-pool-size', '4']);
    const seed = (await postJson(`${url}/v1/responses`, { model: 'm', input: 'seed' })).json();
    const conversation = (await postJson(`${url}/v1/conversations`, {})).json();
    const requests = [
      () => postJson(`${url}/v1/responses`, { model: 'm', input: 'stream', stream: true, previous_response_id: seed.id }),
      () => postJson(`${url}/v1/responses`, { model: 'm', input: 'json', previous_response_id: seed.id }),
      () => postJson(`${url}/v1/responses`, { model: 'm', input: 'fresh', stream: true }),
      () => postJson(`${url}/v1/responses`, { model: 'm', input: 'in a conversation', conversation: conversation.id }),
      () => send(`${url}/v1/responses/${String(seed.id)}`),
      () => postJson(`${url}/v1/conversations/${String(conversation.id)}/items`, { items: [{ role: 'user', content: 'added' }] }),
    ];
    const reported: string[] = [];
    const outcomes = { ok: 0, unavailable: 0 };
    let killed = 0;
    for (let round = 0; round < 20; round++) {
      const batch = Array.from({ length: 8 }, (_, i) => (requests[(round + i) % requests.length] as () => Promise<RawResponse>)());
      // The kill lands after a varying number of the batch's requests have finished: while
      // others are loading history, generating or saving.
      await Promise.all(batch.slice(0, round % 5));
      killed += await terminate(app);
      for (const [i, res] of (await Promise.all(batch)).entries()) {
        outcomes[assertCleanAnswer(res, `round ${round}, request ${i}`)] += 1;
        const id = responseIdOf(res);
        if (id !== undefined && id !== seed.id) reported.push(id);
      }
      assert.equal(run.child.exitCode, null, `the gateway is still running after round ${round}`);
    }
    assert.ok(killed >= 20, `${killed} connections were terminated`);

    // The pool recovered by itself: everything works again, and every response reported
    // as completed is stored whole.
    for (let n = 0; n < 5; n++) {
      const res = await (requests[n] as () => Promise<RawResponse>)();
      const warnings = JSON.stringify(run.logs().filter((line) => (line.level as number) >= 40).slice(-5));
      assert.equal(assertCleanAnswer(res, `after, ${n}`), 'ok', `after the kills, request ${n}: ${res.text().slice(0, 300)}; the gateway's last warnings: ${warnings}`);
    }
    for (const id of reported) {
      const stored = await send(`${url}/v1/responses/${id}`);
      assert.equal(stored.status, 200, `${id} was reported completed and is stored`);
      assert.equal(stored.json().status, 'completed');
    }
    assert.ok(outcomes.ok > 0);
    run.child.kill('SIGTERM');
    assert.equal((await run.exited).code, 0);
  });

  it('every pooled connection ended by the server before the gateway heard of it: the next request tries each, drops it, and succeeds on a new one', { timeout: 60_000 }, async () => {
    const app = appName('ended');
    const poolSize = 3;
    const { run, url } = await gateway(app, ['--db-pool-size', String(poolSize)]);
    const seed = (await postJson(`${url}/v1/responses`, { model: 'm', input: 'seed' })).json();
    const read = (): Promise<RawResponse> => send(`${url}/v1/responses/${String(seed.id)}`);
    // Reads at once open the pool's connections.
    for (const res of await Promise.all(Array.from({ length: poolSize * 2 }, read))) assert.equal(res.status, 200);
    try {
      // The pool's connections, idle, frozen so that none can tell the gateway it ends: the
      // server's end of each is signalled, and lands only once they are thawed.
      const pooled = await freeze(app, { pooledOnly: true });
      assert.ok(pooled.length >= 2, `${pooled.length} pooled connections to end: more than one dead in a row is the case`);
      await admin.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS t(pid)', [pooled]);
      // The read takes a pooled connection and sends its query to a frozen server process.
      const answer = read();
      await waitForMetric(url, 'gateway_http_requests_in_flight', (value) => value >= 1);
      // Thawed one by one, each ends its connection: the read meets one dead connection
      // after another, each dropped, until the pool opens a new one.
      thawAll();
      const res = await answer;
      assert.equal(res.status, 200, res.text());
      assert.equal(res.json().id, seed.id);
    } finally {
      thawAll();
    }
    run.child.kill('SIGTERM');
    assert.equal((await run.exited).code, 0);
  });

  it('a database that stops answering: queries end at their deadline, free their connection, and stateless requests go on', { timeout: 60_000 }, async () => {
    const app = appName('stall');
    const { run, url } = await gateway(app, ['--db-pool-size', '2', '--db-query-timeout', '1']);
    const seed = (await postJson(`${url}/v1/responses`, { model: 'm', input: 'seed' })).json();
    await Promise.all([send(`${url}/v1/responses/${String(seed.id)}`), send(`${url}/v1/responses/${String(seed.id)}`)]);
    try {
      // Pooled connections only: were the run log's LISTEN connection counted, one request
      // more than the pool holds would wait for a slot, and the slot a deadline frees could
      // reach it before its own wait ran out (a 200 where the test wants a 503).
      const frozenNow = await freeze(app, { pooledOnly: true });
      assert.ok(frozenNow.length > 0 && frozenNow.length <= 2, `the gateway has 1 or 2 idle pooled connections to freeze: ${frozenNow.length}`);
      // As many requests as frozen connections: the pool hands each one a frozen connection.
      const stuck = frozenNow.map((_, n) =>
        n % 2 === 0
          ? postJson(`${url}/v1/responses`, { model: 'm', input: 'x', previous_response_id: seed.id })
          : send(`${url}/v1/responses/${String(seed.id)}`),
      );
      const stateless = await postJson(`${url}/v1/responses`, { model: 'm', input: 'no state', store: false });
      assert.equal(stateless.status, 200, 'a request that needs no database is served meanwhile');
      for (const res of await Promise.all(stuck)) {
        assert.equal(res.status, 503);
        assert.equal(res.json().error.code, 'store_unavailable');
      }
      // The frozen connections were dropped, their slots freed: with a pool of 2, three
      // requests in a row get new connections and succeed while the old ones stay frozen.
      for (let n = 0; n < 3; n++) {
        const res = await postJson(`${url}/v1/responses`, { model: 'm', input: `again ${n}`, previous_response_id: seed.id });
        assert.equal(res.status, 200, res.text());
      }
    } finally {
      thawAll();
    }
    run.child.kill('SIGTERM');
    assert.equal((await run.exited).code, 0);
  });

  it('SIGTERM while a query hangs: the gateway still stops within --shutdown-timeout', { timeout: 60_000 }, async () => {
    const app = appName('term');
    // A deadline far beyond the grace period: only shutdown can end the hanging request.
    const { run, url } = await gateway(app, ['--db-pool-size', '1', '--db-query-timeout', '120', '--shutdown-timeout', '2']);
    const seed = (await postJson(`${url}/v1/responses`, { model: 'm', input: 'seed' })).json();
    try {
      assert.ok((await freeze(app)).length > 0);
      const hanging = send(`${url}/v1/responses/${String(seed.id)}`).catch((error: unknown) => error);
      await waitForMetric(url, 'gateway_http_requests_in_flight', (value) => value >= 1);
      const signalled = performance.now();
      run.child.kill('SIGTERM');
      const exit = await run.exited;
      // 2 s of grace, and a margin for the process's own exit on a busy machine; the
      // hanging query alone would hold it for 120 s (--db-query-timeout).
      const tookMs = performance.now() - signalled;
      assert.ok(tookMs < 8_000, `stopped ${Math.round(tookMs)} ms after SIGTERM, with --shutdown-timeout 2`);
      assert.equal(exit.code, 0);
      await hanging;
    } finally {
      thawAll();
    }
  });
});
