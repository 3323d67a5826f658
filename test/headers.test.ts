// Headers through the gateway, in both directions; the upstream key; request ids.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSimVllm, type SimVllm } from '../sim/vllm-sim.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { postJson, send, sendRaw } from './helpers/http.ts';

let sim: SimVllm;

before(async () => {
  sim = await startSimVllm();
});
after(async () => {
  await sim?.close();
});

function namesOf(rawHeaders: readonly string[]): string[] {
  return rawHeaders.filter((_, i) => i % 2 === 0).map((name) => name.toLowerCase());
}

function valuesOf(rawHeaders: readonly string[], lowerName: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] as string).toLowerCase() === lowerName) out.push(rawHeaders[i + 1] as string);
  }
  return out;
}

describe('hop-by-hop headers', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(sim.url);
  });
  after(() => gw?.close());

  it('are dropped on the way to vLLM, with those named in Connection; others pass, repeats stay', async () => {
    const arrived = sim.nextRequest();
    const res = await sendRaw(
      gw.port,
      [
        'GET /v1/models HTTP/1.1',
        'Host: gateway.example',
        'Connection: keep-alive, X-Hop-Secret',
        'X-Hop-Secret: nope',
        'Keep-Alive: timeout=5',
        'TE: trailers',
        'Trailer: X-Checksum',
        'Proxy-Authorization: Basic Zm9vOmJhcg==',
        'Proxy-Connection: keep-alive',
        'Upgrade: websocket',
        'X-Multi: one',
        'X-Unknown-Header: kept',
        'X-Multi: two',
        '',
        '',
      ].join('\r\n'),
    );
    assert.equal(res.status, 200);
    const seen = await arrived;
    const names = namesOf(seen.rawHeaders);
    for (const dropped of ['x-hop-secret', 'keep-alive', 'te', 'trailer', 'proxy-authorization', 'proxy-connection', 'upgrade']) {
      assert.ok(!names.includes(dropped), `${dropped} reached vLLM`);
    }
    assert.notEqual(seen.headers.connection, 'keep-alive, X-Hop-Secret');
    assert.deepEqual(valuesOf(seen.rawHeaders, 'x-multi'), ['one', 'two']);
    assert.deepEqual(valuesOf(seen.rawHeaders, 'x-unknown-header'), ['kept']);
    assert.equal(seen.headers.host, `127.0.0.1:${sim.port}`, 'Host names vLLM, not the gateway');
  });

  it('are dropped on the way back, with those named in Connection and vLLM\'s CORS headers', async () => {
    sim.enqueue((_req, res) => {
      res.writeHead(200, [
        'Content-Type', 'application/json',
        'Connection', 'X-Upstream-Hop',
        'X-Upstream-Hop', 'secret',
        'Proxy-Authenticate', 'Basic',
        'Access-Control-Allow-Origin', '*',
        'Set-Cookie', 'a=1',
        'Set-Cookie', 'b=2',
        'X-Upstream-Unknown', 'kept',
      ]);
      res.end('{}');
    });
    const res = await send(`${gw.url}/v1/models`);
    const names = namesOf(res.rawHeaders);
    assert.ok(!names.includes('x-upstream-hop'));
    assert.ok(!names.includes('proxy-authenticate'));
    assert.ok(!names.includes('access-control-allow-origin'), 'no Origin was sent, and vLLM\'s CORS header is dropped');
    assert.deepEqual(valuesOf(res.rawHeaders, 'set-cookie'), ['a=1', 'b=2']);
    assert.deepEqual(valuesOf(res.rawHeaders, 'x-upstream-unknown'), ['kept']);
  });
});

describe('upstream key', () => {
  let keyed: TestGateway;
  let blank: TestGateway;
  before(async () => {
    keyed = await startGateway(sim.url, { 'openai-api-key': 'sk-upstream-secret' }, { captureLogs: true });
    blank = await startGateway(sim.url, { 'openai-api-key': '   ' });
  });
  after(async () => {
    await keyed?.close();
    await blank?.close();
  });

  it('is injected when the client sends no Authorization', async () => {
    const arrived = sim.nextRequest();
    await postJson(`${keyed.url}/v1/responses`, { model: 'm', input: 'x' });
    assert.equal((await arrived).headers.authorization, 'Bearer sk-upstream-secret');
  });

  it('gives way to the client\'s own Authorization', async () => {
    const arrived = sim.nextRequest();
    await postJson(`${keyed.url}/v1/responses`, { model: 'm', input: 'x' }, { authorization: 'Bearer client-key' });
    assert.deepEqual(valuesOf((await arrived).rawHeaders, 'authorization'), ['Bearer client-key']);
  });

  it('is not sent when empty', async () => {
    const arrived = sim.nextRequest();
    await postJson(`${blank.url}/v1/responses`, { model: 'm', input: 'x' });
    assert.equal((await arrived).headers.authorization, undefined);
  });

  it('never appears in a log line', async () => {
    await postJson(`${keyed.url}/v1/responses`, { model: 'm', input: 'x' }, { 'x-sim': 'status=401' });
    await send(`${keyed.url}/nope`);
    assert.ok(keyed.logs.length > 0, 'requests were logged');
    assert.ok(!keyed.logText().includes('sk-upstream-secret'));
  });
});

describe('request id', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(sim.url, {}, { captureLogs: true });
  });
  after(() => gw?.close());

  it('passes the client\'s x-request-id to vLLM, back to the client and into the log', async () => {
    const arrived = sim.nextRequest();
    const res = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'x' }, { 'x-request-id': 'client-id-42' });
    assert.equal(res.headers['x-request-id'], 'client-id-42');
    assert.deepEqual(valuesOf((await arrived).rawHeaders, 'x-request-id'), ['client-id-42']);
    const line = gw.logs.find((entry) => entry['req_id'] === 'client-id-42');
    assert.ok(line !== undefined, 'the access log line carries the id');
    assert.equal(line['path'], '/v1/responses');
    assert.equal(line['status'], 200);
    assert.equal(line['upstream_status'], 200);
    assert.equal(line['streamed'], false);
    assert.equal(typeof line['duration_ms'], 'number');
  });

  it('makes one when the client sends none, the same for vLLM and the client', async () => {
    const arrived = sim.nextRequest();
    const res = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'x' });
    const id = res.headers['x-request-id'];
    assert.match(String(id), /^[0-9a-f-]{36}$/);
    assert.equal((await arrived).headers['x-request-id'], id);
  });

  it('replaces an id it will not use (too long)', async () => {
    const arrived = sim.nextRequest();
    const res = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'x' }, { 'x-request-id': 'x'.repeat(500) });
    assert.match(String(res.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    assert.equal((await arrived).headers['x-request-id'], res.headers['x-request-id']);
  });

  it('is on the gateway\'s own answers too', async () => {
    const res = await send(`${gw.url}/health`, { headers: { 'x-request-id': 'own-1' } });
    assert.equal(res.headers['x-request-id'], 'own-1');
  });
});
