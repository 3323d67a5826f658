// The gateway's own answers: bad requests, unknown routes, CORS, health, readiness, metrics.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SimVllm } from '../sim/vllm-sim.ts';
import { closeAll, startGateway, startSimAndGateway, type TestGateway } from './helpers/gateway.ts';
import { postJson, send, sendRaw } from './helpers/http.ts';

let sim: SimVllm;
let gw: TestGateway;

before(async () => ({ sim, gw } = await startSimAndGateway({ 'max-body-size': '1KiB' })));
after(() => closeAll(gw, sim));

function errorOf(body: unknown): Record<string, unknown> {
  return (body as { error: Record<string, unknown> }).error;
}

describe('request validation', () => {
  it('refuses a body over --max-body-size with 413, before anything goes upstream', async () => {
    const before = sim.requests.length;
    const big = JSON.stringify({ model: 'm', input: 'x'.repeat(2048) });
    const res = await postJson(`${gw.url}/v1/responses`, big);
    assert.equal(res.status, 413);
    assert.equal(errorOf(res.json())['code'], 'request_too_large');
    const proxied = await postJson(`${gw.url}/v1/chat/completions`, big);
    assert.equal(proxied.status, 413);
    assert.equal(sim.requests.length, before);
  });

  it('refuses an oversized chunked body with 413', async () => {
    const chunk = 'x'.repeat(600);
    const body = `258\r\n${chunk}\r\n258\r\n${chunk}\r\n0\r\n\r\n`;
    const res = await sendRaw(
      gw.port,
      `POST /v1/responses HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${body}`,
    );
    assert.equal(res.status, 413);
  });

  it('answers Expect: 100-continue with 413 when the declared body is too large', async () => {
    const res = await sendRaw(
      gw.port,
      'POST /v1/responses HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n',
    );
    assert.equal(res.status, 413);
    assert.equal(errorOf(JSON.parse(res.body))['code'], 'request_too_large');
  });

  it('refuses a /v1/responses body that is not a JSON object with 400 invalid_json', async () => {
    const before = sim.requests.length;
    for (const body of ['{"model":', '[1,2]', '"text"', 'null', '']) {
      const res = await postJson(`${gw.url}/v1/responses`, body);
      assert.equal(res.status, 400, `body ${JSON.stringify(body)}`);
      const error = errorOf(res.json());
      assert.equal(error['code'], 'invalid_json');
      assert.equal(error['type'], 'invalid_request_error');
    }
    const invalidUtf8 = await send(`${gw.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
    });
    assert.equal(invalidUtf8.status, 400);
    assert.equal(sim.requests.length, before, 'vLLM was not called');
  });

  it('answers malformed HTTP with JSON, not HTML', async () => {
    const res = await sendRaw(gw.port, 'THIS IS NOT HTTP\r\n\r\n');
    assert.equal(res.status, 400);
    assert.equal(errorOf(JSON.parse(res.body))['type'], 'invalid_request_error');
  });
});

describe('routes', () => {
  it('answers 404 JSON outside /v1', async () => {
    for (const path of ['/', '/v2/responses', '/nope', '/v1']) {
      const res = await send(`${gw.url}${path}`);
      assert.equal(res.status, 404, path);
      assert.equal(errorOf(res.json())['code'], 'not_found');
    }
  });

  it('answers 405 JSON with Allow on the gateway\'s own endpoints', async () => {
    for (const path of ['/health', '/ready', '/metrics']) {
      const res = await send(`${gw.url}${path}`, { method: 'POST', body: '{}' });
      assert.equal(res.status, 405, path);
      assert.equal(errorOf(res.json())['code'], 'method_not_allowed');
      assert.match(String(res.headers['allow']), /GET/);
    }
  });
});

describe('CORS', () => {
  it('answers a preflight itself, for any origin by default', async () => {
    const before = sim.requests.length;
    const res = await send(`${gw.url}/v1/responses`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers['access-control-allow-origin'], '*');
    assert.match(String(res.headers['access-control-allow-methods']), /POST/);
    assert.equal(res.headers['access-control-allow-headers'], 'authorization, content-type');
    assert.equal(res.headers['access-control-allow-credentials'], undefined);
    assert.equal(sim.requests.length, before);
  });

  it('adds CORS headers to relayed responses, replacing vLLM\'s', async () => {
    sim.enqueue((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': 'https://evil.example' });
      res.end('{}');
    });
    const res = await send(`${gw.url}/v1/models`, { headers: { origin: 'https://app.example' } });
    assert.equal(res.headers['access-control-allow-origin'], '*');
    assert.match(String(res.headers['access-control-expose-headers']), /x-request-id/);
  });

  it('allows only the listed origins when --cors-origins is set', async () => {
    const listed = await startGateway(sim.url, { 'cors-origins': 'https://a.example, https://b.example' });
    try {
      const preflight = (origin: string) =>
        send(`${listed.url}/v1/responses`, {
          method: 'OPTIONS',
          headers: { origin, 'access-control-request-method': 'POST' },
        });
      const allowed = await preflight('https://b.example');
      assert.equal(allowed.headers['access-control-allow-origin'], 'https://b.example');
      assert.match(String(allowed.headers['vary']), /Origin/);
      const refused = await preflight('https://evil.example');
      assert.equal(refused.headers['access-control-allow-origin'], undefined);
      const simple = await send(`${listed.url}/health`, { headers: { origin: 'https://a.example' } });
      assert.equal(simple.headers['access-control-allow-origin'], 'https://a.example');
    } finally {
      await listed?.close();
    }
  });
});

describe('health and readiness', () => {
  it('GET /health answers 200 without touching vLLM', async () => {
    const probes = sim.healthProbes;
    const res = await send(`${gw.url}/health`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.json(), { status: 'ok' });
    assert.equal(sim.healthProbes, probes);
  });

  it('GET /ready follows vLLM\'s /health', async () => {
    assert.equal((await send(`${gw.url}/ready`)).status, 200);
    sim.setHealthy(false);
    try {
      const down = await send(`${gw.url}/ready`);
      assert.equal(down.status, 503);
      const error = errorOf(down.json());
      assert.equal(error['code'], 'upstream_not_ready');
      assert.match(String(error['message']), /503/);
    } finally {
      sim.setHealthy(true);
    }
    assert.equal((await send(`${gw.url}/ready`)).status, 200);
  });

  it('GET /ready answers 503 when vLLM is unreachable', async () => {
    const lonely = await startGateway('http://127.0.0.1:9');
    try {
      const res = await send(`${lonely.url}/ready`);
      assert.equal(res.status, 503);
      assert.match(String(errorOf(res.json())['message']), /^vLLM is not ready: vLLM \/health failed: The model server refused the connection: nothing is listening on its port \(upstream_connection_refused\)\.$/);
    } finally {
      await lonely?.close();
    }
  });

  it('concurrent /ready callers share one probe in flight', async () => {
    const release = sim.holdHealth();
    const probesBefore = sim.healthProbes;
    const answers = Array.from({ length: 5 }, () => send(`${gw.url}/ready`));
    // Wait (bounded) until all five are inside the gateway, waiting on the held probe.
    for (let spins = 0; gw.gateway.inFlight() < 5 && spins < 10_000; spins++) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(gw.gateway.inFlight(), 5);
    release();
    const statuses = (await Promise.all(answers)).map((res) => res.status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200]);
    assert.equal(sim.healthProbes - probesBefore, 1);
  });
});

describe('metrics', () => {
  it('exposes requests, latency, open streams and stream time to first byte after traffic', async () => {
    const metricsGw = await startGateway(sim.url);
    try {
      await postJson(`${metricsGw.url}/v1/responses`, { model: 'm', input: 'x' });
      await postJson(`${metricsGw.url}/v1/responses`, { model: 'm', input: 'x', stream: true });
      await send(`${metricsGw.url}/v1/models`);
      await send(`${metricsGw.url}/nope`);
      const res = await send(`${metricsGw.url}/metrics`);
      assert.equal(res.status, 200);
      assert.match(String(res.headers['content-type']), /text\/plain/);
      const text = res.text();
      assert.match(text, /gateway_http_requests_total\{route="\/v1\/responses",method="POST",status="200"\} 2/);
      assert.match(text, /gateway_http_requests_total\{route="\/v1\/models",method="GET",status="200"\} 1/);
      assert.match(text, /gateway_http_requests_total\{route="unmatched",method="GET",status="404"\} 1/);
      assert.match(text, /gateway_http_request_duration_seconds_count\{route="\/v1\/responses"\} 2/);
      assert.match(text, /gateway_open_streams 0/);
      assert.match(text, /gateway_stream_time_to_first_byte_seconds_count\{route="\/v1\/responses"\} 1/);
      assert.match(text, /gateway_process_cpu_seconds_total/);
    } finally {
      await metricsGw?.close();
    }
  });
});
