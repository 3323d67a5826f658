// Clients that stop reading: their answer is ended after --client-write-timeout, vLLM's
// generation is aborted, and their request slots go to clients that read.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SimVllm } from '../sim/vllm-sim.ts';
import { closeAll, metricValue, startGateway, startSimAndGateway, waitForMetric, type TestGateway } from './helpers/gateway.ts';
import { openRequest, postJson } from './helpers/http.ts';

/** A request whose answer is never read: the socket's receive window fills and stays full. */
function neverRead(url: string, body: object, sim: string): Promise<IncomingMessage> {
  return openRequest(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-sim': sim }, body: JSON.stringify(body) });
}

const TIMEOUTS = 'gateway_client_write_timeouts_total';

describe('clients that stop reading', () => {
  let sim: SimVllm;
  let gw: TestGateway;
  before(async () => ({ sim, gw } = await startSimAndGateway({ 'max-concurrent': '2', 'client-write-timeout': '1' })));
  after(() => closeAll(gw, sim));

  it('never keep a client that reads out for longer than --client-write-timeout, and vLLM stops generating', { timeout: 30_000 }, async () => {
    const url = `${gw.url}/v1/responses`;
    const stalled = [];
    for (let n = 0; n < 2; n++) {
      const arrived = sim.nextRequest();
      // More than the sockets between them hold: vLLM, held back, is still generating.
      await neverRead(url, { model: 'm', input: 'a lot', stream: true }, 'deltas=300000');
      stalled.push(await arrived);
    }
    // Both slots are taken: a client that reads is turned away for now.
    const refused = await postJson(url, { model: 'm', input: 'let me in' });
    assert.equal(refused.status, 429);
    const turnedAway = performance.now();

    // The stalled answers are ended, their generations aborted...
    await Promise.all(stalled.map((upstream) => sim.whenAborted(upstream)));
    // ...and the reading client gets in. Left alone, the stalled streams would hold their
    // slots for ever (they never finish): the bound only tells "ended by the timeout" from
    // "never", with room for a busy machine (the timeout is 1 s, checked every 250 ms).
    const served = await postJson(url, { model: 'm', input: 'let me in' });
    assert.equal(served.status, 200);
    const waitedMs = performance.now() - turnedAway;
    assert.ok(waitedMs < 15_000, `waited ${Math.round(waitedMs)} ms with --client-write-timeout 1`);
    assert.ok((await metricValue(gw.url, TIMEOUTS)) >= 2);
  });

  it('end a large JSON answer nobody reads too', { timeout: 60_000 }, async () => {
    // The 10 MB answer is made and read through a gateway of its own that waits for slow
    // readers (a busy machine can hold this test's reading for a second), stored in a
    // file the gateway under test reads too; only the GET below is left unread.
    const dbUrl = `sqlite:${join(mkdtempSync(join(tmpdir(), 'rg-stalled-')), 'responses.db')}`;
    const maker = await startGateway(sim.url, { 'db-url': dbUrl });
    const reader = await startGateway(sim.url, { 'db-url': dbUrl, 'client-write-timeout': '1' });
    try {
      const big = await postJson(`${maker.url}/v1/responses`, { model: 'm', input: 'long' }, { 'x-sim': 'deltas=1500000' });
      assert.equal(big.status, 200);
      assert.ok(big.body.length > 10_000_000, 'an answer larger than the socket buffers');
      await openRequest(`${reader.url}/v1/responses/${String(big.json().id)}`);
      await waitForMetric(reader.url, TIMEOUTS, (value) => value === 1);
      assert.equal(await metricValue(reader.url, 'gateway_http_requests_in_flight'), 0, 'its slot is free');
    } finally {
      await closeAll(reader, maker);
    }
  });

  it('leave a slow reader alone while it reads', { timeout: 30_000 }, async () => {
    const res = await openRequest(`${gw.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-sim': 'deltas=20000' },
      body: JSON.stringify({ model: 'm', input: 'slowly', stream: true }),
    });
    // Reads a chunk every 100 ms (well under the 1 s timeout) until the end.
    let text = '';
    res.pause();
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        let chunk: Buffer | null;
        while ((chunk = res.read(256 * 1024) as Buffer | null) !== null) text += chunk.toString();
      }, 100);
      res.on('end', () => {
        clearInterval(timer);
        resolve();
      });
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('cut off')));
    });
    assert.ok(text.endsWith('data: [DONE]\n\n'), 'the whole stream arrived');
  });
});
