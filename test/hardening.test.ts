// Protections: inbound API keys, limits (headers, slow clients, concurrency, upstream
// events, JSON depth), no secrets or internals in answers, upstream connection hygiene.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startSimVllm, type SimVllm } from '../sim/vllm-sim.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { ChunkReader, openRequest, postJson, send, sendRaw, startRequest } from './helpers/http.ts';
import { checkStream, assertFailedWith } from './helpers/conformance.ts';

let sim: SimVllm;
before(async () => {
  sim = await startSimVllm();
});
after(() => sim?.close());

function bearer(key: string): Record<string, string> {
  return { authorization: `Bearer ${key}` };
}

describe('inbound API keys', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(sim.url, { 'api-keys': 'key-one, key-two', 'openai-api-key': 'sk-upstream' }, { captureLogs: true });
  });
  after(() => gw?.close());

  it('require a key on /v1/*: none, a wrong one, or one in the wrong header get 401 invalid_api_key', async () => {
    const before = sim.requests.length;
    for (const headers of [
      {},
      bearer('key-three'),
      bearer('key-one-but-longer'),
      { 'x-api-key': 'key-one' },
      { 'api-key': 'key-one' },
      { authorization: 'key-one' },
      { authorization: 'Basic a2V5LW9uZTo=' },
    ]) {
      const res = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'x' }, headers);
      assert.equal(res.status, 401, JSON.stringify(headers));
      assert.equal(res.json().error.code, 'invalid_api_key');
      assert.equal(res.json().error.type, 'invalid_request_error');
    }
    assert.equal((await send(`${gw.url}/v1/models`)).status, 401);
    assert.equal(sim.requests.length, before, 'nothing reached vLLM');
  });

  it('let a valid key through, and send vLLM the gateway\'s own key, never the client\'s', async () => {
    for (const key of ['key-one', 'key-two']) {
      const arrived = sim.nextRequest();
      const res = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'x' }, bearer(key));
      assert.equal(res.status, 200);
      assert.equal((await arrived).headers.authorization, 'Bearer sk-upstream');
    }
    const lowercase = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'x' }, { authorization: 'bearer key-one' });
    assert.equal(lowercase.status, 200, 'the scheme is case-insensitive');
  });

  it('send vLLM no key at all when the gateway has none of its own', async () => {
    const noUpstreamKey = await startGateway(sim.url, { 'api-keys': 'only-key' });
    try {
      const arrived = sim.nextRequest();
      await postJson(`${noUpstreamKey.url}/v1/chat/completions`, { messages: [] }, bearer('only-key'));
      assert.equal((await arrived).headers.authorization, undefined);
    } finally {
      await noUpstreamKey.close();
    }
  });

  it('leave /health, /ready, /metrics and CORS preflights open', async () => {
    for (const path of ['/health', '/ready', '/metrics']) assert.equal((await send(`${gw.url}${path}`)).status, 200, path);
    const preflight = await send(`${gw.url}/v1/responses`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
    });
    assert.equal(preflight.status, 204);
  });

  it('key /metrics too with --metrics-auth', async () => {
    const keyed = await startGateway(sim.url, { 'api-keys': 'k', 'metrics-auth': 'true' });
    try {
      assert.equal((await send(`${keyed.url}/metrics`)).status, 401);
      assert.equal((await send(`${keyed.url}/metrics`, { headers: bearer('k') })).status, 200);
      assert.equal((await send(`${keyed.url}/health`)).status, 200);
    } finally {
      await keyed.close();
    }
  });

  it('never write a key, gateway\'s or upstream, in the log', async () => {
    await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'x' }, bearer('key-one'));
    await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'x' }, bearer('not-a-key-secret'));
    const text = gw.logText();
    assert.ok(gw.logs.length >= 2);
    for (const secret of ['key-one', 'key-two', 'sk-upstream', 'not-a-key-secret']) assert.ok(!text.includes(secret), secret);
  });
});

describe('limits', () => {
  it('answers 431 to request headers larger than --max-header-size', async () => {
    const gw = await startGateway(sim.url, { 'max-header-size': '2KiB' });
    try {
      const res = await sendRaw(gw.port, `GET /v1/models HTTP/1.1\r\nHost: g\r\nX-Big: ${'a'.repeat(4096)}\r\n\r\n`);
      assert.equal(res.status, 431);
      assert.equal(JSON.parse(res.body).error.code, 'headers_too_large');
    } finally {
      await gw.close();
    }
  });

  it('answers 408 to a client that sends its headers too slowly (slowloris)', { timeout: 20_000 }, async () => {
    const gw = await startGateway(sim.url, { 'client-headers-timeout': '0.5', 'client-request-timeout': '1' });
    try {
      // ...and never finishes the headers.
      const res = await sendRaw(gw.port, 'GET /v1/models HTTP/1.1\r\nHost: g\r\nX-Slow: ');
      assert.equal(res.status, 408);
      assert.match(res.body, /"code":"request_timeout"/);
    } finally {
      await gw.close();
    }
  });

  it('answers 408 to a client that sends its body too slowly', { timeout: 20_000 }, async () => {
    const gw = await startGateway(sim.url, { 'client-headers-timeout': '0.5', 'client-request-timeout': '1' });
    try {
      const before = sim.requests.length;
      const res = await sendRaw(gw.port, 'POST /v1/responses HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"model":');
      assert.equal(res.status, 408);
      assert.equal(sim.requests.length, before);
    } finally {
      await gw.close();
    }
  });

  it('answers 429 with Retry-After beyond --max-concurrent, and recovers', async () => {
    const gw = await startGateway(sim.url, { 'max-concurrent': '2' });
    try {
      const held = [sim.nextRequest()];
      const slow = [
        startRequest(`${gw.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-sim': 'delay-headers=60000' }, body: '{"input":"a","store":false}' }),
      ];
      await held[0];
      const second = sim.nextRequest();
      slow.push(startRequest(`${gw.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-sim': 'delay-headers=60000' }, body: '{"input":"b","store":false}' }));
      await second;
      const refused = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'c' });
      assert.equal(refused.status, 429);
      assert.equal(refused.headers['retry-after'], '1');
      assert.equal(refused.json().error.code, 'too_many_requests');
      assert.equal(refused.json().error.type, 'rate_limit_error');
      assert.equal((await send(`${gw.url}/health`)).status, 200, 'the gateway\'s own endpoints are not counted');
      for (const { request, response } of slow) {
        response.catch(() => {});
        request.destroy();
      }
      // Bounded wait until the two slots are free again.
      for (let spins = 0; gw.gateway.inFlight() > 0 && spins < 10_000; spins++) await new Promise((resolve) => setImmediate(resolve));
      assert.equal((await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'd' })).status, 200);
    } finally {
      await gw.close();
    }
  });

  it('ends a stream cleanly when vLLM sends one event larger than --max-upstream-event-size', async () => {
    const gw = await startGateway(sim.url, { 'max-upstream-event-size': '64KiB' });
    try {
      const huge = 'x'.repeat(256 * 1024);
      for (const stream of [true, false]) {
        sim.enqueue((_req, res) => {
          if (stream) {
            res.writeHead(200, { 'content-type': 'text/event-stream' });
            res.write('event: response.created\ndata: {"type":"response.created","response":{"id":"resp_1","status":"in_progress","output":[]},"sequence_number":0}\n\n');
            // One "event" that never ends, larger than the cap.
            res.end(`event: response.output_text.delta\ndata: {"delta":"${huge}`);
          } else {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(`{"id":"resp_1","output":[],"padding":"${huge}"}`);
          }
        });
        const res = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'x', stream });
        if (stream) {
          const { terminal, events } = checkStream(res.text());
          assert.equal(terminal.status, 'failed');
          assert.equal(events.find((event) => event.data.type === 'error')?.data.error.code, 'upstream_invalid_response');
        } else {
          assert.equal(res.status, 502);
          assert.equal(res.json().error.code, 'upstream_invalid_response');
        }
      }
    } finally {
      await gw.close();
    }
  });

  it('refuses JSON nested deeper than --max-json-depth, before vLLM', async () => {
    const gw = await startGateway(sim.url, { 'max-json-depth': '16' });
    try {
      const nested = (depth: number): string => `{"model":"m","input":"x","metadata":${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}}`;
      const before = sim.requests.length;
      const deep = await postJson(`${gw.url}/v1/responses`, nested(17));
      assert.equal(deep.status, 400);
      assert.equal(deep.json().error.code, 'invalid_json');
      assert.equal(sim.requests.length, before);
      const bracketsInStrings = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[' });
      assert.equal(bracketsInStrings.status, 200, 'brackets inside strings do not count');
      const huge = await postJson(`${gw.url}/v1/conversations`, `{"metadata":${'['.repeat(100_000)}${']'.repeat(100_000)}}`);
      assert.equal(huge.status, 400);
    } finally {
      await gw.close();
    }
  });
});

describe('what never reaches a client', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(sim.url);
  });
  after(() => gw?.close());

  it('no X-Powered-By, no stack trace, no internal path, no HTML', async () => {
    const answers = [
      await send(`${gw.url}/nope`),
      await postJson(`${gw.url}/v1/responses`, '{bad'),
      await sendRaw(gw.port, 'BAD REQUEST LINE\r\n\r\n').then((raw) => ({ headers: {}, text: () => raw.body })),
      await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'x' }, { 'x-sim': 'garbage' }),
      await send(`${gw.url}/v1/responses/resp_nope`),
    ];
    for (const answer of answers) {
      assert.equal((answer.headers as Record<string, unknown>)['x-powered-by'], undefined);
      const text = answer.text();
      assert.doesNotMatch(text, /<html|\n\s+at |\/work\/|node_modules|\.ts:\d+/i, text);
      assert.doesNotThrow(() => JSON.parse(text));
    }
  });
});

describe('upstream connection hygiene', () => {
  it('a pooled connection vLLM closed (keep-alive timeout) never fails a client request', { timeout: 60_000 }, async () => {
    const quick = await startSimVllm({ keepAliveTimeoutMs: 40 });
    const gw = await startGateway(quick.url);
    try {
      const failures: number[] = [];
      // Requests spaced around vLLM's keep-alive timeout, so some land as it closes.
      for (let i = 0; i < 60; i++) {
        const res = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: `n${i}`, store: false });
        if (res.status !== 200) failures.push(res.status);
        await new Promise((resolve) => setTimeout(resolve, 30 + (i % 7) * 3));
      }
      assert.deepEqual(failures, []);
    } finally {
      await gw.close();
      await quick.close();
    }
  });

  it('a connection vLLM closes just as the request arrives is retried once, on a new one', async () => {
    const gw = await startGateway(sim.url);
    try {
      const closeOnArrival = (): void =>
        sim.enqueue((req) => {
          req.socket.destroy(); // the keep-alive race: vLLM had just decided to close
        });
      closeOnArrival();
      const retried = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'race' });
      assert.equal(retried.status, 200);
      closeOnArrival();
      closeOnArrival();
      const twice = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'race twice' });
      assert.equal(twice.status, 502, 'only once: a vLLM that keeps closing is down');
      assert.equal(twice.json().error.code, 'upstream_unavailable');
    } finally {
      await gw.close();
    }
  });

  it('a vLLM restart fails only the requests in flight; new ones succeed once it is back', { timeout: 30_000 }, async () => {
    let upstream = await startSimVllm();
    const port = upstream.port;
    const gw = await startGateway(upstream.url);
    try {
      assert.equal((await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'before' })).status, 200);
      const res = await openRequest(`${gw.url}/v1/responses`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-sim': 'slow=50;deltas=50' },
        body: JSON.stringify({ model: 'm', input: 'in flight', stream: true }),
      });
      const reader = new ChunkReader(res);
      const start = await reader.until('response.output_text.delta');
      await upstream.close(); // vLLM goes away mid-stream
      const { terminal } = checkStream(start + (await reader.rest()));
      assert.equal(terminal.status, 'failed');
      assertFailedWith(terminal, 'upstream_stream_interrupted');
      const down = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'while down' });
      assert.equal(down.status, 502);
      upstream = await startSimVllm({ port }); // back on the same port
      assert.equal((await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'after' })).status, 200);
    } finally {
      await gw.close();
      await upstream.close();
    }
  });
});

describe('faults', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(sim.url, { 'upstream-idle-timeout': '0.5' });
  });
  after(() => gw?.close());

  it('vLLM hanging after headers: the stream ends with upstream_timeout', async () => {
    const res = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'x', stream: true }, { 'x-sim': 'hang-after-headers' });
    const { terminal } = checkStream(res.text());
    assertFailedWith(terminal, 'upstream_timeout');
  });

  it('vLLM cut in the middle of an event: no half event reaches the client', async () => {
    const res = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'a b c d e f', stream: true }, { 'x-sim': 'truncate-after=5' });
    const { terminal } = checkStream(res.text());
    assertFailedWith(terminal, 'upstream_stream_interrupted');
  });

  it('a client that leaves while sending its body: vLLM is never called, the gateway carries on', async () => {
    const before = sim.requests.length;
    await new Promise<void>((resolve) => {
      const socket = connect(gw.port, '127.0.0.1', () => {
        socket.write('POST /v1/responses HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model":"m",');
        socket.destroy();
        resolve();
      });
    });
    for (let spins = 0; gw.gateway.inFlight() > 0 && spins < 10_000; spins++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(sim.requests.length, before);
    assert.equal((await send(`${gw.url}/health`)).status, 200);
  });
});
