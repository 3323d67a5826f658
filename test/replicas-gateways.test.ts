// Many gateways on one PostgreSQL in front of one replica set, as deployed: real gateway
// processes, clients spread over them. A chain continued on any gateway goes to the replica
// that served it (found from the stored response, not from a process's memory), and so does
// a conversation's turn (its id hashed alike everywhere); a background response made on one
// is resumed and cancelled on another. And a replica killed for real under a gateway
// process: its stream ends, the others take the rest, it comes back.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { startSimVllm, type SimVllm } from '../sim/vllm-sim.ts';
import { REPO_ROOT, freePort, portOf, runCli, type CliRun } from './helpers/cli.ts';
import { checkStream } from './helpers/conformance.ts';
import { closeAll, waitForMetric } from './helpers/gateway.ts';
import { ChunkReader, openRequest, postJson, send } from './helpers/http.ts';
import { createTestSchema, describeUnlessSkipped, postgresSkip, testDatabaseUrl, type TestSchema } from './helpers/postgres.ts';
import type { AnyJson } from './helpers/responses-api.ts';
import { checkJoined, eventBlocks, readUntilThenLeave, resume, sequenceOf } from './helpers/runs.ts';

function responsesCounts(sims: readonly SimVllm[]): number[] {
  return sims.map((sim) => sim.requests.filter((request) => request.url === '/v1/responses').length);
}

/** The index of the one sim that got requests since `before` (fails if several did). */
function onlyServer(sims: readonly SimVllm[], before: readonly number[]): number {
  const served = responsesCounts(sims).map((n, i) => n - (before[i] as number));
  const used = served.flatMap((n, i) => (n > 0 ? [i] : []));
  assert.equal(used.length, 1, `one replica served it: ${served.join(', ')}`);
  return used[0] as number;
}

describeUnlessSkipped('three gateway processes on one PostgreSQL, three replicas', await postgresSkip(), () => {
  let schema: TestSchema;
  let sims: SimVllm[];
  const gateways: { run: CliRun; url: string }[] = [];
  /** The URL of gateway `i` (of three, in turn). */
  const at = (i: number): string => (gateways[i % gateways.length] as { url: string }).url;

  before(async () => {
    schema = await createTestSchema(testDatabaseUrl());
    sims = await Promise.all([startSimVllm(), startSimVllm(), startSimVllm()]);
    const base = sims.map((sim) => sim.url).join(',');
    // All at once, as a deployment starts them: the migrations are applied once, under a lock.
    const runs = [0, 1, 2].map(() =>
      runCli(['--gateway-port', '0', '--gateway-host', '127.0.0.1', '--llm-api-base', base, '--db-url', schema.url, '--upstream-health-interval', '60s']),
    );
    for (const run of runs) gateways.push({ run, url: `http://127.0.0.1:${portOf(await run.waitForLog('gateway listening'))}` });
  });
  after(async () => {
    for (const gateway of gateways) gateway.run.child.kill('SIGTERM');
    await Promise.all(gateways.map((gateway) => gateway.run.exited));
    await closeAll(...(sims ?? []));
    await schema?.drop();
  });

  it('a chain continued on each gateway in turn stays on the replica that served its first turn', { timeout: 30_000 }, async () => {
    const before = responsesCounts(sims);
    let previous: string | undefined;
    for (let turn = 0; turn < 6; turn++) {
      const answer = await postJson(`${at(turn)}/v1/responses`, { model: 'm', input: `turn ${turn}`, ...(previous === undefined ? {} : { previous_response_id: previous }) });
      assert.equal(answer.status, 200, answer.text());
      previous = (answer.json()).id;
    }
    const replica = onlyServer(sims, before);
    assert.ok((sims[replica] as SimVllm).prefixCache.hits > 0, 'the later turns found their history in its prefix cache');
    // Any gateway reads any of the chain's responses.
    assert.equal((await send(`${at(2)}/v1/responses/${previous as string}`)).json().status, 'completed');
  });

  it("a conversation's turns, sent to different gateways, go to one replica", { timeout: 30_000 }, async () => {
    const conversation: AnyJson = (await postJson(`${at(0)}/v1/conversations`, {})).json();
    const before = responsesCounts(sims);
    for (let turn = 0; turn < 4; turn++) {
      assert.equal((await postJson(`${at(turn + 1)}/v1/responses`, { model: 'm', input: `conversation ${turn}`, conversation: conversation.id })).status, 200);
    }
    onlyServer(sims, before);
    const items: AnyJson = (await send(`${at(2)}/v1/conversations/${conversation.id}/items?limit=100`)).json();
    assert.equal(items.data.length, 8, 'four turns of two items each, whichever gateway took them');
  });

  it('clients spread over the gateways are spread over the replicas', { timeout: 30_000 }, async () => {
    const before = responsesCounts(sims);
    const answers = await Promise.all(
      Array.from({ length: 18 }, (_, i) => postJson(`${at(i)}/v1/responses`, { model: 'm', input: `spread ${i}`, store: false }, { 'x-sim': 'deltas=20;slow=5' })),
    );
    for (const answer of answers) assert.equal(answer.status, 200);
    const served = responsesCounts(sims).map((n, i) => n - (before[i] as number));
    assert.ok(served.every((n) => n >= 3), `served ${served.join(', ')}`);
  });

  it('a background stream made on one gateway is resumed on another, and cancelled on the third', { timeout: 30_000 }, async () => {
    const [a, b, c] = [at(0), at(1), at(2)];
    const first = await readUntilThenLeave(`${a}/v1/responses`, 5, {
      body: { model: 'm', input: 'resumed elsewhere', background: true, stream: true },
      headers: { 'x-sim': 'deltas=40;slow=20' },
    });
    const resumed = await resume(b, first.responseId, 5);
    assert.equal(checkJoined(first.blocks, resumed.text).terminal.status, 'completed');

    const upstream = Promise.race(sims.map((sim) => sim.nextRequest().then((request) => ({ sim, request }))));
    const created: AnyJson = (await postJson(`${a}/v1/responses`, { model: 'm', input: 'cancelled elsewhere', background: true }, { 'x-sim': 'deltas=400;slow=25' })).json();
    const { sim, request } = await upstream;
    await readUntilThenLeave(`${b}/v1/responses/${created.id}?stream=true`, 4);
    const cancelled = await send(`${c}/v1/responses/${created.id}/cancel`, { method: 'POST' });
    assert.equal(cancelled.json().status, 'cancelled');
    await sim.whenAborted(request);
  });
});

/** A simulated vLLM as a process of its own (so it can be killed for real), on `port`. */
async function simProcess(port: number): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'sim/cli.ts', '--port', String(port), '--no-record'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('listening on')) resolve();
    });
    child.once('exit', () => reject(new Error(`the simulator exited: ${out}`)));
  });
  return { child, url: `http://127.0.0.1:${port}` };
}

/** Opens a stream and reads it until its event `sequence`; the rest is read by `rest()`. */
async function streamUntil(url: string, sequence: number, headers: Record<string, string>): Promise<{ rest(): Promise<string> }> {
  const res = await openRequest(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ model: 'm', input: 'held', stream: true }) });
  assert.equal(res.statusCode, 200);
  const reader = new ChunkReader(res);
  let text = '';
  for (;;) {
    const chunk = await reader.next();
    if (chunk === null) throw new Error(`ended before event ${sequence}`);
    text += chunk.toString();
    if (eventBlocks(text.slice(0, text.lastIndexOf('\n\n') + 2)).some((block) => sequenceOf(block) >= sequence)) break;
  }
  return {
    async rest() {
      for (let chunk = await reader.next(); chunk !== null; chunk = await reader.next()) text += chunk.toString();
      return text;
    },
  };
}

describe('a replica killed for real (SIGKILL) under a gateway process', () => {
  it('ends the stream it was serving, sends the rest to the other replica, and takes it back when it returns', { timeout: 60_000 }, async () => {
    const ports = [await freePort(), await freePort()];
    const sims = [await simProcess(ports[0] as number), await simProcess(ports[1] as number)];
    const [a, b] = sims as [{ child: ChildProcess; url: string }, { child: ChildProcess; url: string }];
    const run = runCli(['--gateway-port', '0', '--gateway-host', '127.0.0.1', '--llm-api-base', `${a.url},${b.url}`, '--upstream-health-interval', '100ms', '--upstream-slow-start', '100ms']);
    let restarted: { child: ChildProcess; url: string } | undefined;
    try {
      const url = `http://127.0.0.1:${portOf(await run.waitForLog('gateway listening'))}`;
      const up = (replica: string): string => `gateway_upstream_replica_up{replica="${replica}"}`;
      await waitForMetric(url, up(a.url), (value) => value === 1);
      // Two streams at once: one on each replica (the least busy takes each).
      const slow = { 'x-sim': 'deltas=200;slow=20' };
      const streams = [await streamUntil(`${url}/v1/responses`, 5, slow), await streamUntil(`${url}/v1/responses`, 5, slow)];
      a.child.kill('SIGKILL');
      const texts = await Promise.all(streams.map((stream) => stream.rest()));
      const statuses = texts.map((text) => checkStream(text).terminal.status).sort();
      assert.deepEqual(statuses, ['completed', 'failed'], 'the killed replica\'s stream failed, the other one completed');
      // Whatever the gateway knows of it yet, every new request is answered.
      const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => postJson(`${url}/v1/responses`, { model: 'm', input: `after the kill ${i}`, store: false })));
      for (const answer of answers) assert.equal(answer.status, 200, answer.text());
      await waitForMetric(url, up(a.url), (value) => value === 0);
      assert.equal((await send(`${url}/ready`)).status, 200);
      // Back on the same port: its /health passes and it takes requests again.
      restarted = await simProcess(ports[0] as number);
      await waitForMetric(url, up(a.url), (value) => value === 1);
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
      for (const sim of [restarted, b]) sim?.child.kill('SIGTERM');
    }
  });
});
