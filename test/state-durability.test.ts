// State under stress: a slow commit still lands before the client can continue; a
// failing database gives 503 and the gateway recovers when it returns; several gateway
// processes share one PostgreSQL.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertFailedWith } from './helpers/conformance.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { sqliteDriver } from '../src/store/sqlite/sqlite-driver.ts';
import type { SimVllm } from '../sim/vllm-sim.ts';
import { simForCliTests, portOf, runCli } from './helpers/cli.ts';
import { controlledStore, type StoreControls } from './helpers/controlled-store.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { ChunkReader, openRequest, postJson, send } from './helpers/http.ts';
import { createTestSchema, describeUnlessSkipped, postgresSkip, testDatabaseUrl, type TestSchema } from './helpers/postgres.ts';
import { memoryStore } from './helpers/stores.ts';
import { create, createStream, getJson, messageText, type AnyJson } from './helpers/responses-api.ts';

let sim: SimVllm;
simForCliTests((started) => (sim = started));

/** A gateway whose (in-memory SQLite) store a test can slow down or make fail. */
async function gatewayOnControlledStore(): Promise<{ gw: TestGateway; controls: StoreControls }> {
  const controlled = controlledStore(memoryStore());
  return { gw: await startGateway(sim.url, {}, { store: controlled.store }), controls: controlled.controls };
}

describe('read your writes', () => {
  let gw: TestGateway;
  let controls: StoreControls;
  before(async () => ({ gw, controls } = await gatewayOnControlledStore()));
  after(() => gw?.close());

  it("a background stream shows an event only once it is in the run's log (what a client saw survives a crash)", async () => {
    let open: (() => void) | undefined;
    controls.appendGate = new Promise<void>((resolve) => (open = resolve));
    try {
      const arrived = sim.nextRequest();
      const res = await openRequest(`${gw.url}/v1/responses`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-sim': 'deltas=5' },
        body: JSON.stringify({ model: 'm', input: 'x', background: true, stream: true }),
      });
      assert.equal(res.statusCode, 200);
      const reader = new ChunkReader(res);
      const upstream = await arrived;
      // vLLM's answer is over (every event is in the run's memory); the log is held.
      // There is no event to wait on for the end of vLLM's answer: its flag, polled.
      while (!upstream.finished) await new Promise((resolve) => setTimeout(resolve, 10));
      // Two round trips to the gateway: whatever it wrote to this client has arrived.
      await send(`${gw.url}/health`);
      await send(`${gw.url}/health`);
      assert.equal(reader.buffered, 0, 'no event reaches the client before its append');
      (open as () => void)();
      const text = await reader.rest();
      assert.ok(text.includes('event: response.completed') && text.endsWith('data: [DONE]\n\n'), text.slice(-200));
    } finally {
      controls.appendGate = undefined;
    }
  });

  it('a slow commit finishes before the terminal event is sent', async () => {
    controls.saveDelayMs = 300;
    try {
      const res = await openRequest(`${gw.url}/v1/responses`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', input: 'slow store', stream: true }),
      });
      const reader = new ChunkReader(res);
      const seen = await reader.until('event: response.completed');
      const tail = seen.slice(seen.indexOf('event: response.completed'));
      const event = tail.includes('\n\n') ? tail : await reader.until('\n\n', tail);
      const id = JSON.parse(event.split('\n')[1]?.slice(6) ?? '{}').response.id as string;
      const next = await create(gw.url, { model: 'm', input: 'next', previous_response_id: id });
      assert.equal(next.status, 200, 'continuing at once finds the stored response');
      await reader.rest();

      const plain = (await create(gw.url, { model: 'm', input: 'slow, not streamed' })).json();
      assert.equal((await getJson(`${gw.url}/v1/responses/${plain.id}`)).status, 200);
    } finally {
      controls.saveDelayMs = 0;
    }
  });
});

describe('a conversation deleted while one of its turns streams', () => {
  let gw: TestGateway;
  let dbPath: string;
  before(async () => {
    dbPath = join(mkdtempSync(join(tmpdir(), 'rg-conv-')), 'state.db');
    gw = await startGateway(sim.url, { 'db-url': `sqlite:${dbPath}` });
  });
  after(() => gw?.close());

  const count = (table: string): number => {
    const db = sqliteDriver().open(dbPath, { readOnly: true });
    try {
      return Number(db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).all()[0]?.['n']);
    } finally {
      db.close();
    }
  };

  for (const store of [true, false]) {
    it(`leaves no row held by nothing (store: ${String(store)})`, async () => {
      const conversation = (await postJson(`${gw.url}/v1/conversations`, { items: [{ role: 'user', content: 'hello' }] })).json();
      const before = { items: count('items'), members: count('conversation_items'), responses: count('responses') };
      const res = await openRequest(`${gw.url}/v1/responses`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-sim': 'slow=20;deltas=20' },
        body: JSON.stringify({ model: 'm', input: 'a turn', conversation: conversation.id, stream: true, store }),
      });
      const reader = new ChunkReader(res);
      await reader.until('response.output_text.delta');
      // Deleted while the turn is still being generated.
      assert.equal((await send(`${gw.url}/v1/conversations/${String(conversation.id)}`, { method: 'DELETE' })).status, 200);
      const rest = await reader.rest();
      assert.ok(rest.includes('event: response.completed'), 'the turn still completes for its client');
      // The conversation's item went with it; the turn added nothing to the deleted
      // conversation, and kept its own items only if its response is stored.
      assert.equal(count('conversation_items'), before.members - 1);
      assert.equal(count('responses'), before.responses + (store ? 1 : 0));
      assert.equal(count('items'), before.items - 1 + (store ? 2 : 0));
    });
  }
});

describe('a failing database', () => {
  let gw: TestGateway;
  let controls: StoreControls;
  before(async () => ({ gw, controls } = await gatewayOnControlledStore()));
  after(() => gw?.close());

  it('answers 503 store_unavailable, keeps serving what needs no state, and recovers', async () => {
    const first = (await create(gw.url, { model: 'm', input: 'before the outage' })).json();
    controls.failing = true;
    try {
      const before = sim.requests.length;
      const continued = await create(gw.url, { model: 'm', input: 'x', previous_response_id: first.id });
      assert.equal(continued.status, 503);
      assert.deepEqual(Object.keys(continued.json().error).sort(), ['code', 'message', 'param', 'type']);
      assert.equal(continued.json().error.code, 'store_unavailable');
      assert.equal(sim.requests.length, before, 'vLLM was not called for a history that could not be read');
      assert.equal((await getJson(`${gw.url}/v1/responses/${first.id}`)).status, 503);

      // Generated but not storable: not reported as stored.
      const plain = await create(gw.url, { model: 'm', input: 'cannot be stored' });
      assert.equal(plain.status, 503);
      const streamed = await createStream(gw.url, { model: 'm', input: 'cannot be stored either' });
      assert.equal(streamed.terminal.status, 'failed');
      assertFailedWith(streamed.terminal, 'store_unavailable');
      assert.ok(streamed.events.some((event) => event.event === 'error' && event.data.error.code === 'store_unavailable'));
      assert.ok(streamed.endedWithDone);

      const stateless = await create(gw.url, { model: 'm', input: 'no state needed', store: false });
      assert.equal(stateless.status, 200);
    } finally {
      controls.failing = false;
    }
    const recovered = await create(gw.url, { model: 'm', input: 'after the outage', previous_response_id: first.id });
    assert.equal(recovered.status, 200);
  });
});

describeUnlessSkipped('PostgreSQL shared by several gateway processes', await postgresSkip(), () => {
  let schema: TestSchema;
  let baseUrl: string;
  before(async () => {
    baseUrl = testDatabaseUrl();
    schema = await createTestSchema(baseUrl);
  });
  after(async () => {
    await schema?.drop();
  });

  it('two processes, started at once, continue each other\'s responses', { timeout: 60_000 }, async () => {
    const args = ['--gateway-port', '0', '--gateway-host', '127.0.0.1', '--llm-api-base', sim.url];
    const a = runCli(args, { DATABASE_URL: schema.url });
    const b = runCli(args, { DATABASE_URL: schema.url });
    const [portA, portB] = (await Promise.all([a.waitForLog('gateway listening'), b.waitForLog('gateway listening')])).map(portOf);
    const urlA = `http://127.0.0.1:${String(portA)}`;
    const urlB = `http://127.0.0.1:${String(portB)}`;

    const first = (await create(urlA, { model: 'm', input: 'told to A' })).json();
    const arrived = sim.nextRequest();
    const second = (await create(urlB, { model: 'm', input: 'asked of B', previous_response_id: first.id })).json();
    const upstream: AnyJson = (await arrived).json;
    assert.deepEqual(
      (upstream.input as AnyJson[]).map((item) => messageText(item)),
      ['told to A', 'You said: told to A', 'asked of B'],
    );
    const streamed = await createStream(urlA, { model: 'm', input: 'back to A', previous_response_id: second.id });
    assert.equal(streamed.terminal.status, 'completed');
    assert.deepEqual((await getJson(`${urlB}/v1/responses/${streamed.terminal.id}`)).body, streamed.terminal);

    a.child.kill('SIGTERM');
    b.child.kill('SIGTERM');
    assert.deepEqual([(await a.exited).code, (await b.exited).code], [0, 0]);
  });

  it('recovers by itself when the database drops its connections', async () => {
    // A name for this gateway's connections, so only they are cut (other test files
    // may be using the same server at the same time).
    const applicationName = `rg_recovery_${process.pid}`;
    const url = new URL(schema.url);
    url.searchParams.set('application_name', applicationName);
    const gw = await startGateway(sim.url, { 'db-url': url.toString(), 'db-pool-size': '2' });
    try {
      const first = (await create(gw.url, { model: 'm', input: 'before' })).json();
      const admin = new pg.Client({ connectionString: baseUrl });
      await admin.connect();
      const killed = await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [applicationName]);
      await admin.end();
      assert.ok((killed.rowCount ?? 0) > 0, 'the gateway\'s connections were cut');
      // The pool drops the dead connections and makes new ones: at most one request
      // (one that held a dead connection) may see 503 on the way.
      const statuses: number[] = [];
      for (let attempt = 0; attempt < 5; attempt++) {
        const res = await create(gw.url, { model: 'm', input: 'after', previous_response_id: first.id });
        statuses.push(res.status);
        if (res.status === 200) break;
        assert.equal(res.json().error.code, 'store_unavailable');
      }
      assert.equal(statuses.at(-1), 200, `statuses: ${statuses.join(', ')}`);
      assert.ok(statuses.length <= 2, `statuses: ${statuses.join(', ')}`);
    } finally {
      await gw.close();
    }
  });
});
