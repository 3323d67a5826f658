// What clients see when vLLM fails: its own error statuses pass through; the gateway's
// own failures are 502/504 JSON, or a last SSE `error` event when a stream breaks.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { vllmError } from '../sim/wire.ts';
import type { SimVllm } from '../sim/vllm-sim.ts';
import { closeAll, startGateway, startSimAndGateway, type TestGateway } from './helpers/gateway.ts';
import { parseSse, postJson } from './helpers/http.ts';

let sim: SimVllm;
let gw: TestGateway;

before(async () => {
  // The raw relay's own error events; normalised streams are in output-conformance.test.ts.
  ({ sim, gw } = await startSimAndGateway({ 'upstream-headers-timeout': '0.3', 'upstream-idle-timeout': '0.3', 'passthrough-raw': 'true' }));
});
after(() => closeAll(gw, sim));

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function assertErrorShape(body: unknown, code: string, type = 'server_error'): void {
  const error = (body as { error: Record<string, unknown> }).error;
  assert.deepEqual(Object.keys(error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(error['code'], code);
  assert.equal(error['type'], type);
  assert.equal(typeof error['message'], 'string');
  assert.ok(!String(error['message']).includes('127.0.0.1'), 'no upstream address in the message');
}

const streamBody = (extra: object = {}): object => ({ model: 'm', input: 'hello there world', stream: true, ...extra });

describe('vLLM error statuses', () => {
  for (const status of [400, 404, 422, 500, 503]) {
    it(`passes ${status} through unchanged`, async () => {
      const res = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'x' }, { 'x-sim': `status=${status}` });
      assert.equal(res.status, status);
      assert.equal(res.text(), JSON.stringify(vllmError(status, `simulated error ${status}`)));
      assert.equal(res.headers['content-type'], 'application/json');
    });
  }
});

describe('the gateway\'s own upstream errors', () => {
  it('answers 502 upstream_unavailable when vLLM refuses the connection', async () => {
    const down = await startGateway(`http://127.0.0.1:${await closedPort()}`);
    try {
      const res = await postJson(`${down.url}/v1/responses`, { model: 'm', input: 'x' });
      assert.equal(res.status, 502);
      assertErrorShape(res.json(), 'upstream_unavailable');
      const models = await postJson(`${down.url}/v1/chat/completions`, {});
      assert.equal(models.status, 502);
    } finally {
      await down?.close();
    }
  });

  it('answers 502 when vLLM resets the connection before responding', async () => {
    const res = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'x' }, { 'x-sim': 'reset-before-headers' });
    assert.equal(res.status, 502);
    assertErrorShape(res.json(), 'upstream_unavailable');
  });

  it('answers 504 upstream_timeout when vLLM sends no headers in time, and stops waiting upstream', async () => {
    const arrived = sim.nextRequest();
    const res = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'x' }, { 'x-sim': 'delay-headers=20000' });
    assert.equal(res.status, 504);
    assertErrorShape(res.json(), 'upstream_timeout');
    await sim.whenAborted(await arrived);
  });
});

describe('mid-stream failures', () => {
  it('end with an error event when vLLM goes idle, and the stream closes', async () => {
    const res = await postJson(`${gw.url}/v1/responses`, streamBody(), { 'x-sim': 'stall-after=3' });
    assert.equal(res.status, 200);
    const events = parseSse(res.text());
    assert.equal(events.length, 4);
    const last = events.at(-1);
    assert.equal(last?.event, 'error');
    const data = JSON.parse(last?.data ?? '');
    assert.equal(data.type, 'error');
    assert.equal(data.error.code, 'upstream_timeout');
    assert.equal(data.error.type, 'server_error');
  });

  it('end with an error event when vLLM resets the connection', async () => {
    const res = await postJson(`${gw.url}/v1/responses`, streamBody(), { 'x-sim': 'reset-after=4' });
    const events = parseSse(res.text());
    assert.equal(events.length, 5);
    assert.equal(JSON.parse(events.at(-1)?.data ?? '').error.code, 'upstream_stream_interrupted');
  });

  it('never pass on half an event when vLLM is cut mid-event', async () => {
    const res = await postJson(`${gw.url}/v1/responses`, streamBody(), { 'x-sim': 'truncate-after=4' });
    const events = parseSse(res.text());
    assert.equal(events.length, 5, 'four whole events and the error');
    for (const event of events) assert.doesNotThrow(() => JSON.parse(event.data), 'every event is whole JSON');
    assert.equal(JSON.parse(events.at(-1)?.data ?? '').error.code, 'upstream_stream_interrupted');
  });

  it('work the same on other streamed routes', async () => {
    const res = await postJson(
      `${gw.url}/v1/chat/completions`,
      { stream: true, messages: [{ role: 'user', content: 'one two three four' }] },
      { 'x-sim': 'reset-after=2' },
    );
    const events = parseSse(res.text());
    assert.equal(events.at(-1)?.event, 'error');
    assert.equal(JSON.parse(events.at(-1)?.data ?? '').error.code, 'upstream_stream_interrupted');
  });

  it('are counted in the metrics by kind', async () => {
    const text = (await (await fetch(`${gw.url}/metrics`)).text());
    assert.match(text, /gateway_upstream_errors_total\{kind="idle_timeout"\} [1-9]/);
    assert.match(text, /gateway_upstream_errors_total\{kind="reset"\} [1-9]/);
    assert.match(text, /gateway_upstream_errors_total\{kind="headers_timeout"\} [1-9]/);
  });
});
