// Several replicas of one model behind one gateway (--llm-api-base repeated): routing to
// the least busy, affinity of a chain to its replica (with the simulated vLLM's prefix
// cache counting the hits), failover before an answer, a replica dying mid-stream, health
// checks with slow start, /ready and /metrics. Real simulated servers on loopback.
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startSimVllm, type SimVllm } from '../sim/vllm-sim.ts';
import { checkStream } from './helpers/conformance.ts';
import { closeAll, metricValue, startGateway, waitForMetric, type TestGateway } from './helpers/gateway.ts';
import { postJson, send } from './helpers/http.ts';
import type { AnyJson } from './helpers/responses-api.ts';

/** Which of the sims got requests since `before` (counts by index). */
function servedSince(sims: readonly SimVllm[], before: readonly number[]): number[] {
  return sims.map((sim, i) => sim.requests.filter((request) => request.url === '/v1/responses').length - (before[i] as number));
}

function responsesCounts(sims: readonly SimVllm[]): number[] {
  return servedSince(sims, sims.map(() => 0));
}

/** A server that accepts connections and resets them at once, before any answer. */
async function resettingServer(): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((socket) => socket.resetAndDestroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A loopback port nothing listens on. */
async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

describe('three replicas', () => {
  let sims: SimVllm[];
  let gw: TestGateway;
  before(async () => {
    sims = await Promise.all([startSimVllm(), startSimVllm(), startSimVllm()]);
    gw = await startGateway(sims.map((sim) => sim.url).join(','), { 'upstream-health-interval': '60s' });
  });
  after(() => closeAll(gw, ...(sims ?? [])));

  it('spreads concurrent requests over the replicas (least outstanding)', async () => {
    const before = responsesCounts(sims);
    await Promise.all(Array.from({ length: 12 }, (_, i) => postJson(`${gw.url}/v1/responses`, { model: 'm', input: `spread ${i}`, store: false }, { 'x-sim': 'deltas=20;slow=5' })));
    const served = servedSince(sims, before);
    assert.equal(served.reduce((sum, n) => sum + n, 0), 12);
    assert.ok(served.every((n) => n >= 2 && n <= 6), `served ${served.join(', ')}`);
  });

  it('keeps a previous_response_id chain on the replica that served it: its prefix cache is hit', async () => {
    const before = responsesCounts(sims);
    const hitsBefore = sims.map((sim) => sim.prefixCache.hits);
    let previous: string | undefined;
    for (let turn = 0; turn < 4; turn++) {
      const answer = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: `turn ${turn} of a chain`, ...(previous === undefined ? {} : { previous_response_id: previous }) });
      assert.equal(answer.status, 200);
      previous = (answer.json()).id;
    }
    const served = servedSince(sims, before);
    assert.equal(served.filter((n) => n > 0).length, 1, `one replica served the chain: ${served.join(', ')}`);
    const chainReplica = served.findIndex((n) => n === 4);
    assert.notEqual(chainReplica, -1);
    const sim = sims[chainReplica] as SimVllm;
    assert.ok(sim.prefixCache.hits > (hitsBefore[chainReplica] as number), 'turns 2 to 4 found their history cached');
    assert.equal(await metricValue(gw.url, 'gateway_upstream_affinity_total{outcome="kept"}'), 3);
  });

  it('sends a conversation, and a prompt_cache_key, to one replica', async () => {
    const conversation: AnyJson = (await postJson(`${gw.url}/v1/conversations`, {})).json();
    let before = responsesCounts(sims);
    for (let turn = 0; turn < 3; turn++) {
      assert.equal((await postJson(`${gw.url}/v1/responses`, { model: 'm', input: `conversation turn ${turn}`, conversation: conversation.id })).status, 200);
    }
    assert.equal(servedSince(sims, before).filter((n) => n > 0).length, 1);
    before = responsesCounts(sims);
    for (let turn = 0; turn < 3; turn++) {
      assert.equal((await postJson(`${gw.url}/v1/responses`, { model: 'm', input: `cached ${turn}`, store: false, prompt_cache_key: 'team-prompt-7' })).status, 200);
    }
    assert.equal(servedSince(sims, before).filter((n) => n > 0).length, 1);
  });

  it('ends a stream whose replica dies mid-stream as with one replica: not sent again', async () => {
    const before = responsesCounts(sims);
    const answer = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'cut', stream: true, store: false }, { 'x-sim': 'deltas=20;reset-after=6' });
    const checked = checkStream(answer.text());
    assert.equal(checked.terminal.status, 'failed');
    assert.deepEqual(servedSince(sims, before).reduce((sum, n) => sum + n, 0), 1);
  });

  it('shows each replica on /metrics', async () => {
    for (const sim of sims) {
      assert.equal(await metricValue(gw.url, `gateway_upstream_replica_up{replica="${sim.url}"}`), 1);
      assert.ok((await metricValue(gw.url, `gateway_upstream_replica_requests_total{replica="${sim.url}"}`)) > 0);
      assert.equal(await metricValue(gw.url, `gateway_upstream_replica_in_flight{replica="${sim.url}"}`), 0);
    }
  });
});

describe('affinity off', () => {
  it('spreads a chain over the replicas, and the prefix cache is hit less', async () => {
    const sims = await Promise.all([startSimVllm(), startSimVllm(), startSimVllm()]);
    const withAffinity = await startGateway(sims.map((sim) => sim.url).join(','), { 'upstream-health-interval': '60s' });
    const without = await startGateway(sims.map((sim) => sim.url).join(','), { 'upstream-health-interval': '60s', 'upstream-affinity': 'off' });
    try {
      const hitsOf = async (gateway: TestGateway): Promise<{ hits: number; replicas: number }> => {
        const hitsBefore = sims.reduce((sum, sim) => sum + sim.prefixCache.hits, 0);
        const before = responsesCounts(sims);
        let previous: string | undefined;
        for (let turn = 0; turn < 6; turn++) {
          const answer = await postJson(`${gateway.url}/v1/responses`, { model: 'm', input: `turn ${turn}`, ...(previous === undefined ? {} : { previous_response_id: previous }) });
          previous = (answer.json()).id;
        }
        return { hits: sims.reduce((sum, sim) => sum + sim.prefixCache.hits, 0) - hitsBefore, replicas: servedSince(sims, before).filter((n) => n > 0).length };
      };
      const on = await hitsOf(withAffinity);
      const off = await hitsOf(without);
      assert.equal(on.replicas, 1);
      assert.equal(off.replicas, 3, 'least outstanding alone turns over the idle replicas');
      assert.ok(on.hits > off.hits, `hits with affinity ${on.hits}, without ${off.hits}`);
    } finally {
      await closeAll(withAffinity, without, ...sims);
    }
  });
});

describe('failover', () => {
  it('a replica refusing connections is marked down and the request goes to another: the client never sees it', async () => {
    const [gone, sim] = await Promise.all([startSimVllm(), startSimVllm()]);
    const gw = await startGateway(`${gone.url},${sim.url}`, { 'upstream-health-interval': '60s' }, { captureLogs: true, logLevel: 'warn' });
    try {
      await waitForMetric(gw.url, `gateway_upstream_replica_up{replica="${gone.url}"}`, (value) => value === 1);
      // It stops between health checks: the gateway still counts it up.
      await gone.close();
      const answers = await Promise.all(Array.from({ length: 4 }, (_, i) => postJson(`${gw.url}/v1/responses`, { model: 'm', input: `failover ${i}`, stream: i % 2 === 0 })));
      for (const answer of answers) assert.equal(answer.status, 200, answer.text());
      assert.equal(responsesCounts([sim])[0], 4);
      assert.equal(await metricValue(gw.url, `gateway_upstream_replica_up{replica="${gone.url}"}`), 0);
      assert.ok((await metricValue(gw.url, `gateway_upstream_replica_errors_total{replica="${gone.url}"}`)) >= 1);
      const marked = gw.logs.find((line) => line['msg'] === 'replica marked down; its requests go to the others until /health passes');
      assert.equal(marked?.['replica'], gone.url);
      assert.equal(marked?.['reason'], 'connect_refused');
      // /ready: one replica is enough.
      assert.equal((await send(`${gw.url}/ready`)).status, 200);
    } finally {
      await closeAll(gw, sim);
    }
  });

  it('a replica resetting before it answers: the request is sent once to another', async () => {
    const sim = await startSimVllm();
    const resetting = await resettingServer();
    const gw = await startGateway(`${resetting.url},${sim.url}`, { 'upstream-health-interval': '60s' });
    try {
      const answers = await Promise.all(Array.from({ length: 4 }, (_, i) => postJson(`${gw.url}/v1/responses`, { model: 'm', input: `reset ${i}`, store: false })));
      for (const answer of answers) assert.equal(answer.status, 200, answer.text());
      assert.equal(responsesCounts([sim])[0], 4);
    } finally {
      await closeAll(gw, sim, resetting);
    }
  });

  it('with every replica gone, the client gets the error of the last one tried', async () => {
    const gw = await startGateway(`${await closedPortUrl()},${await closedPortUrl()}`, { 'upstream-health-interval': '60s' });
    try {
      const answer = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'nobody', store: false });
      assert.equal(answer.status, 502);
      assert.equal((answer.json()).error.code, 'upstream_connection_refused');
      const ready = await send(`${gw.url}/ready`);
      assert.equal(ready.status, 503);
      assert.match((ready.json()).error.message, /no replica is ready/);
    } finally {
      await gw.close();
    }
  });
});

describe('health checks and slow start', () => {
  it('a replica failing /health takes nothing until it passes, then a growing share', async () => {
    const sims = await Promise.all([startSimVllm(), startSimVllm()]);
    const [a, b] = sims;
    const gw = await startGateway(`${a.url},${b.url}`, { 'upstream-health-interval': '50ms', 'upstream-slow-start': '1h' });
    const upMetric = `gateway_upstream_replica_up{replica="${b.url}"}`;
    try {
      b.setHealthy(false);
      await waitForMetric(gw.url, upMetric, (value) => value === 0);
      let before = responsesCounts(sims);
      await Promise.all(Array.from({ length: 6 }, (_, i) => postJson(`${gw.url}/v1/responses`, { model: 'm', input: `down ${i}`, store: false })));
      assert.deepEqual(servedSince(sims, before), [6, 0]);
      b.setHealthy(true);
      await waitForMetric(gw.url, upMetric, (value) => value === 1);
      // Back, but at a tenth of its share for the slow start (an hour here): ten concurrent
      // requests all fit on the replica that stayed up before it counts as busier.
      before = responsesCounts(sims);
      await Promise.all(Array.from({ length: 9 }, (_, i) => postJson(`${gw.url}/v1/responses`, { model: 'm', input: `slow start ${i}`, store: false }, { 'x-sim': 'deltas=10;slow=5' })));
      assert.deepEqual(servedSince(sims, before), [9, 0]);
    } finally {
      await closeAll(gw, ...sims);
    }
  });
});
