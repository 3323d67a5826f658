// Background responses across real processes: two gateways on one PostgreSQL (create on
// one, resume and cancel on the other), --workers 2 on one SQLite file (resume on the
// other worker), and a gateway killed with SIGKILL mid-run (the next one ends the run as
// failed, keeping its output).
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SimVllm } from '../sim/vllm-sim.ts';
import { simForCliTests, portOf, runCli, type CliRun } from './helpers/cli.ts';
import { checkResponseObject, checkStream, assertFailedWith } from './helpers/conformance.ts';
import { postJson, send } from './helpers/http.ts';
import { createTestSchema, describeUnlessSkipped, postgresSkip, testDatabaseUrl, type TestSchema } from './helpers/postgres.ts';
import type { AnyJson } from './helpers/responses-api.ts';
import { checkJoined, joinedDeltas, readUntilThenLeave, resume } from './helpers/runs.ts';

let sim: SimVllm;
simForCliTests((started) => (sim = started), { record: true });

async function gateway(dbUrl: string, flags: string[] = []): Promise<{ run: CliRun; url: string }> {
  const run = runCli(['--gateway-port', '0', '--gateway-host', '127.0.0.1', '--llm-api-base', sim.url, '--db-url', dbUrl, ...flags]);
  return { run, url: `http://127.0.0.1:${portOf(await run.waitForLog('gateway listening'))}` };
}

const SLOW = { 'x-sim': 'deltas=60;slow=25' };

describeUnlessSkipped('two gateway processes on one PostgreSQL', await postgresSkip(), () => {
  let schema: TestSchema;
  let a: { run: CliRun; url: string };
  let b: { run: CliRun; url: string };
  before(async () => {
    schema = await createTestSchema(testDatabaseUrl());
    a = await gateway(schema.url);
    b = await gateway(schema.url);
  });
  after(async () => {
    a?.run.child.kill('SIGTERM');
    b?.run.child.kill('SIGTERM');
    await Promise.all([a?.run.exited, b?.run.exited]);
    await schema?.drop();
  });

  it('created on one, left at event 5, resumed live on the other: every event once, in order', { timeout: 30_000 }, async () => {
    const upstream = sim.nextRequest();
    const first = await readUntilThenLeave(`${a.url}/v1/responses`, 5, {
      body: { model: 'm', input: 'across', background: true, stream: true },
      headers: SLOW,
    });
    const resumed = await resume(b.url, first.responseId, 5);
    assert.equal(resumed.status, 200);
    const checked = checkJoined(first.blocks, resumed.text);
    assert.equal(checked.terminal.status, 'completed');
    assert.equal((await upstream).aborted, false);
    const stored: AnyJson = (await send(`${b.url}/v1/responses/${first.responseId}`)).json();
    assert.equal(stored.output[0].content[0].text, joinedDeltas(checked));
    checkResponseObject(stored);
  });

  it('running on one, retrieved and cancelled on the other: vLLM is aborted, both see cancelled', { timeout: 30_000 }, async () => {
    const upstream = sim.nextRequest();
    const created: AnyJson = (await postJson(`${a.url}/v1/responses`, { model: 'm', input: 'cancel across', background: true }, { 'x-sim': 'deltas=400;slow=25' })).json();
    const vllmRequest = await upstream;
    // Read on B until text has arrived, so that the cancelled response has some.
    await readUntilThenLeave(`${b.url}/v1/responses/${created.id}?stream=true`, 6);
    const snapshot: AnyJson = (await send(`${b.url}/v1/responses/${created.id}`)).json();
    assert.equal(snapshot.status, 'in_progress');
    assert.ok(snapshot.output[0].content[0].text.length > 0, 'the snapshot has the text so far');
    const cancelled = await send(`${b.url}/v1/responses/${created.id}/cancel`, { method: 'POST' });
    assert.equal(cancelled.status, 200);
    assert.equal(cancelled.json().status, 'cancelled');
    await sim.whenAborted(vllmRequest);
    assert.equal((await send(`${a.url}/v1/responses/${created.id}`)).json().status, 'cancelled');
  });
});

describe('--workers 2 on one SQLite file', () => {
  it('a stream left at event 5 is resumed on the other worker', { timeout: 60_000 }, async () => {
    const db = `sqlite:${join(mkdtempSync(join(tmpdir(), 'rg-bg-')), 'responses.db')}`;
    const gw = await gateway(db, ['--workers', '2']);
    const first = await readUntilThenLeave(`${gw.url}/v1/responses`, 5, {
      body: { model: 'm', input: 'workers', background: true, stream: true },
      headers: { ...SLOW, 'x-request-id': 'bg-create' },
    });
    const creator = (await gw.run.waitForLogs((line) => line['req_id'] === 'bg-create' && line['msg'] === 'request', 1))[0]?.['pid'];
    // Workers accept connections themselves: new connections until one lands on the other.
    let other = false;
    for (let attempt = 0; attempt < 40 && !other; attempt++) {
      const requestId = `bg-resume-${attempt}`;
      const resumed = await resume(gw.url, first.responseId, 5, { 'x-request-id': requestId });
      assert.equal(resumed.status, 200);
      checkJoined(first.blocks, resumed.text);
      const line = (await gw.run.waitForLogs((entry) => entry['req_id'] === requestId && entry['msg'] === 'request', 1))[0];
      other = line?.['pid'] !== creator;
    }
    assert.ok(other, 'a resume was served by the worker that did not create the response');
    gw.run.child.kill('SIGTERM');
    assert.equal((await gw.run.exited).code, 0);
  });
});

describe('a gateway killed mid-run', () => {
  it('SIGKILL, then a new gateway on the same file: the response ends failed, with its output so far', { timeout: 60_000 }, async () => {
    const db = `sqlite:${join(mkdtempSync(join(tmpdir(), 'rg-bg-')), 'responses.db')}`;
    const first = await gateway(db);
    const left = await readUntilThenLeave(`${first.url}/v1/responses`, 8, {
      body: { model: 'm', input: 'killed', background: true, stream: true },
      headers: { 'x-sim': 'deltas=400;slow=25' },
    });
    // Events are written in batches every 20 ms: wait until the log has what was read.
    for (;;) {
      const snapshot: AnyJson = (await send(`${first.url}/v1/responses/${left.responseId}`)).json();
      if ((snapshot.output[0]?.content[0]?.text ?? '').length >= 6) break;
    }
    first.run.child.kill('SIGKILL');
    await first.run.exited;
    const second = await gateway(db);
    const failed: AnyJson = (await send(`${second.url}/v1/responses/${left.responseId}`)).json();
    assert.equal(failed.status, 'failed');
    assertFailedWith(failed, 'run_interrupted');
    assert.ok(failed.output[0].content[0].text.startsWith('t0 t1 '), 'the text generated before the kill is kept');
    assert.equal(failed.output[0].status, 'incomplete');
    checkResponseObject(failed);
    // The log ends too: a reader gets the events, then error and response.failed.
    const replay = checkStream((await resume(second.url, left.responseId, -1)).text);
    assert.equal(replay.terminal.status, 'failed');
    second.run.child.kill('SIGTERM');
    await second.run.exited;
  });
});

describe('a gateway shut down mid-run', () => {
  it('SIGTERM: a background response gets the grace period, then ends failed with its output so far', { timeout: 60_000 }, async () => {
    const db = `sqlite:${join(mkdtempSync(join(tmpdir(), 'rg-bg-')), 'responses.db')}`;
    const gw = await gateway(db, ['--shutdown-timeout', '1']);
    const left = await readUntilThenLeave(`${gw.url}/v1/responses`, 8, {
      body: { model: 'm', input: 'shutdown', background: true, stream: true },
      headers: { 'x-sim': 'deltas=400;slow=25' },
    });
    gw.run.child.kill('SIGTERM');
    assert.equal((await gw.run.exited).code, 0);
    const next = await gateway(db);
    const failed: AnyJson = (await send(`${next.url}/v1/responses/${left.responseId}`)).json();
    assert.equal(failed.status, 'failed');
    assertFailedWith(failed, 'run_interrupted');
    assert.ok(failed.output[0].content[0].text.startsWith('t0 t1 '));
    const replay = checkStream((await resume(next.url, left.responseId, -1)).text);
    assert.equal(replay.terminal.status, 'failed');
    next.run.child.kill('SIGTERM');
    await next.run.exited;
  });
});
