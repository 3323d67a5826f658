// The transparent proxy: bodies byte for byte, streams without buffering, backpressure,
// other /v1 routes, and clients that leave.
import assert from 'node:assert/strict';
import { flood, type Flood } from './helpers/flood.ts';
import { after, before, describe, it } from 'node:test';
import type { SimVllm } from '../sim/vllm-sim.ts';
import { closeAll, startSimAndGateway, type TestGateway } from './helpers/gateway.ts';
import { sseChunks } from './helpers/replay.ts';
import { ChunkReader, openRequest, parseSse, postJson, readAll, send, startRequest } from './helpers/http.ts';

let sim: SimVllm;
let gw: TestGateway;

before(async () => {
  // Byte-for-byte relay of /v1/responses is what --passthrough-raw promises (by default
  // the gateway normalises it); this suite checks the relay itself.
  ({ sim, gw } = await startSimAndGateway({ 'passthrough-raw': 'true' }));
});
after(() => closeAll(gw, sim));

describe('non-streamed passthrough', () => {
  it('sends the client\'s body bytes and query string upstream unchanged', async () => {
    const body = '{ "model":"m",  "input" : "caf\\u00e9 ☕",\n "stream":false, "z":[1,2 ,3] }';
    const arrived = sim.nextRequest();
    const res = await send(`${gw.url}/v1/responses?trace=1&x=%20y`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    assert.equal(res.status, 200);
    const seen = await arrived;
    assert.equal(seen.body.toString('utf8'), body);
    assert.equal(seen.url, '/v1/responses?trace=1&x=%20y');
  });

  it('gives the client vLLM\'s status, headers and body byte for byte', async () => {
    const payload = Buffer.from('{"id":"resp_1",  "odd":"spacing ✓","n":1.50}\n');
    sim.enqueue((_req, res) => {
      res.writeHead(201, { 'content-type': 'application/json', 'x-upstream-custom': 'kept', 'content-length': payload.length });
      res.end(payload);
    });
    const res = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'x' });
    assert.equal(res.status, 201);
    assert.deepEqual(res.body, payload);
    assert.equal(res.headers['x-upstream-custom'], 'kept');
    assert.equal(res.headers['content-length'], String(payload.length));
  });
});

describe('streamed passthrough', () => {
  it('delivers the first event before vLLM has sent the last (no buffering)', { timeout: 10_000 }, async () => {
    let releaseRest: () => void = () => {};
    const rest = new Promise<void>((resolve) => {
      releaseRest = resolve;
    });
    sim.enqueue((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: first\n');
      res.write('data: {"n":1}\n');
      res.write('\n');
      // The rest is only sent once the client has shown it holds the first event.
      void rest.then(() => res.end('event: last\ndata: {"n":2}\n\n'));
    });
    const res = await openRequest(`${gw.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"model":"m","input":"x","stream":true}',
    });
    assert.equal(res.headers['content-type'], 'text/event-stream');
    assert.equal(res.headers['cache-control'], 'no-cache');
    assert.equal(res.headers['x-accel-buffering'], 'no');
    assert.equal(res.headers['content-encoding'], undefined);
    const reader = new ChunkReader(res);
    const first = await reader.until('data: {"n":1}\n\n');
    assert.equal(first, 'event: first\ndata: {"n":1}\n\n');
    releaseRest();
    assert.equal(await reader.rest(), 'event: last\ndata: {"n":2}\n\n');
  });

  it('sends a stream\'s head as soon as vLLM sent its own, before any event', { timeout: 10_000 }, async () => {
    let releaseEvent: () => void = () => {};
    const event = new Promise<void>((resolve) => {
      releaseEvent = resolve;
    });
    sim.enqueue((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      // The event is only sent once the client has shown it holds the head.
      void event.then(() => res.end('event: only\ndata: {"n":1}\n\n'));
    });
    const res = await openRequest(`${gw.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"model":"m","input":"x","stream":true}',
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'text/event-stream');
    releaseEvent();
    assert.equal((await readAll(res)).toString('utf8'), 'event: only\ndata: {"n":1}\n\n');
  });

  it('pauses reading from vLLM while the client does not read (backpressure)', { timeout: 60_000 }, async () => {
    const eventBytes = 64 * 1024;
    const totalEvents = 4096; // 256 MiB: far more than socket buffers can hold
    const event = Buffer.from(`data: ${'x'.repeat(eventBytes - 8)}\n\n`);
    let writer: Flood | undefined;
    sim.enqueue((_req, res) => (writer = flood(res, totalEvents, () => event)));
    const res = await openRequest(`${gw.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"stream":true}',
    });
    res.pause();
    const progress = writer as Flood;
    await progress.stalled();
    assert.equal(progress.finished, false, 'vLLM could write everything: the gateway buffered the stream');
    assert.ok(progress.written < totalEvents / 4, `vLLM wrote ${progress.written} of ${totalEvents} events while the client read nothing`);
    // Reading again lets the whole stream through, intact.
    res.resume();
    const body = await readAll(res);
    assert.equal(body.length, eventBytes * totalEvents);
    assert.equal(progress.finished, true);
  });
});

describe('client disconnects', () => {
  it('aborts the upstream request when a streaming client leaves', { timeout: 10_000 }, async () => {
    const arrived = sim.nextRequest();
    const res = await openRequest(`${gw.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-sim': 'slow=200;deltas=100' },
      body: '{"model":"m","input":"x","stream":true}',
    });
    const reader = new ChunkReader(res);
    await reader.until('response.created');
    const upstream = await arrived;
    res.destroy();
    await sim.whenAborted(upstream);
    assert.equal(upstream.aborted, true);
  });

  it('aborts the upstream request when a non-streaming client leaves', { timeout: 10_000 }, async () => {
    const arrived = sim.nextRequest();
    const { request, response } = startRequest(`${gw.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-sim': 'delay-headers=30000' },
      body: '{"model":"m","input":"x"}',
    });
    response.catch(() => {});
    const upstream = await arrived;
    request.destroy();
    await sim.whenAborted(upstream);
    assert.equal(upstream.aborted, true);
  });
});

describe('other /v1 routes', () => {
  it('forwards GET /v1/models', async () => {
    const res = await send(`${gw.url}/v1/models`);
    assert.equal(res.status, 200);
    assert.equal(res.json().data[0].id, 'sim-model');
  });

  it('forwards chat completions, streamed and not', async () => {
    const plain = await postJson(`${gw.url}/v1/chat/completions`, { model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(plain.status, 200);
    assert.equal(plain.json().choices[0].message.content, 'You said: hi');

    const streamed = await postJson(`${gw.url}/v1/chat/completions`, {
      model: 'm',
      stream: true,
      messages: [{ role: 'user', content: 'hello world' }],
    });
    assert.equal(streamed.status, 200);
    assert.equal(streamed.headers['cache-control'], 'no-cache');
    const events = parseSse(streamed.text());
    assert.equal(events.at(-1)?.data, '[DONE]');
    const text = events
      .slice(0, -1)
      .map((event) => JSON.parse(event.data).choices[0].delta.content ?? '')
      .join('');
    assert.equal(text, 'You said: hello world');
  });

  it('relays a streamed chat completion byte for byte', async () => {
    const chunks = ['data: {"id":"c","choices":[{"delta":{"content":"a"}}]}\n\n', 'data: {"id":"c","choices":[]}\n\n', 'data: [DONE]\n\n'];
    sim.enqueue(sseChunks(chunks));
    const res = await postJson(`${gw.url}/v1/chat/completions`, { stream: true });
    assert.equal(res.text(), chunks.join(''));
  });

  it('forwards completions, embeddings, and methods without a body', async () => {
    assert.equal((await postJson(`${gw.url}/v1/completions`, { model: 'm', prompt: 'p' })).json().object, 'text_completion');
    assert.equal((await postJson(`${gw.url}/v1/embeddings`, { model: 'm', input: 'p' })).json().object, 'list');
    const arrived = sim.nextRequest();
    const res = await send(`${gw.url}/v1/files/file-1`, { method: 'DELETE' });
    assert.equal(res.status, 404, 'vLLM\'s own 404 comes back');
    assert.equal((await arrived).method, 'DELETE');
  });
});
