// --upstream-api: which API the gateway reaches the model server through, how auto finds
// out (at startup, after the server was unreachable, when it was replaced), and what a
// client sees of a chat backend's failures.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startSimVllm } from '../sim/vllm-sim.ts';
import { freePort } from './helpers/cli.ts';
import { assertFailedWith } from './helpers/conformance.ts';
import { closeAll, startGateway } from './helpers/gateway.ts';
import { postJson, send } from './helpers/http.ts';
import { create, createStream, type AnyJson } from './helpers/responses-api.ts';

const choices = (logs: readonly Record<string, unknown>[]): unknown[] => logs.filter((line) => typeof line['api'] === 'string').map((line) => line['api']);

describe('--upstream-api auto', () => {
  it('finds vLLM\'s Responses API and a chat-only server, and logs the choice', async () => {
    const vllm = await startSimVllm();
    const chatOnly = await startSimVllm({ chatOnly: true });
    const toVllm = await startGateway(vllm.url, {}, { captureLogs: true, logLevel: 'info' });
    const toChat = await startGateway(chatOnly.url, {}, { captureLogs: true, logLevel: 'info' });
    try {
      assert.equal((await create(toVllm.url, { model: 'm', input: 'hi' })).status, 200);
      assert.equal((await create(toChat.url, { model: 'm', input: 'hi' })).status, 200);
      assert.equal(toVllm.gateway.deps.backend.api, 'responses');
      assert.equal(toChat.gateway.deps.backend.api, 'chat');
      assert.deepEqual(choices(toVllm.logs), ['responses']);
      assert.deepEqual(choices(toChat.logs), ['chat']);
      assert.match(JSON.stringify(toChat.logs), /POST \/v1\/responses answered 404/);
      assert.deepEqual(vllm.requests.map((request) => request.url), ['/v1/responses']);
      assert.deepEqual(chatOnly.requests.map((request) => request.url), ['/v1/chat/completions']);
      assert.deepEqual([vllm.apiProbes, chatOnly.apiProbes], [1, 1], 'each asked once');
    } finally {
      await closeAll(toVllm, toChat, vllm, chatOnly);
    }
  });

  it('a server not up at startup is asked again before the next request once it answers', async () => {
    const port = await freePort();
    const gw = await startGateway(`http://127.0.0.1:${port}`, {}, { captureLogs: true, logLevel: 'info' });
    let sim;
    try {
      const down = await create(gw.url, { model: 'm', input: 'anyone?' });
      assert.equal(down.status, 502);
      assert.equal(down.json().error.code, 'upstream_connection_refused');
      sim = await startSimVllm({ port, chatOnly: true });
      const up = await create(gw.url, { model: 'm', input: 'now?' });
      assert.equal(up.status, 200, up.text());
      assert.equal(up.json().output[0].content[0].text, 'You said: now?');
      assert.equal(gw.gateway.deps.backend.api, 'chat');
      assert.ok(gw.logs.some((line) => line['msg'] === 'the model server did not answer which API it has; asking again before the next request'));
    } finally {
      await closeAll(gw, sim);
    }
  });

  it('a vLLM replaced by a chat-only server: the request that meets the 404 is sent through chat', async () => {
    const port = await freePort();
    const vllm = await startSimVllm({ port });
    const gw = await startGateway(vllm.url, {}, { captureLogs: true, logLevel: 'info' });
    let chatOnly;
    try {
      assert.equal((await create(gw.url, { model: 'm', input: 'one' })).status, 200);
      await vllm.close();
      chatOnly = await startSimVllm({ port, chatOnly: true });
      const after = await createStream(gw.url, { model: 'm', input: 'two' });
      assert.equal(after.status, 200);
      assert.equal(after.terminal.output[0].content[0].text, 'You said: two');
      assert.deepEqual(chatOnly.requests.map((request) => request.url), ['/v1/responses', '/v1/chat/completions'], 'the 404, then the request again through chat');
      assert.equal(chatOnly.apiProbes, 1, 'asked once, after the 404');
      assert.deepEqual(choices(gw.logs), ['responses', 'chat']);
    } finally {
      await closeAll(gw, chatOnly);
    }
  });

  it("a 404 that is vLLM's own answer (an unknown model) reaches the client as it is", async () => {
    const vllm = await startSimVllm();
    const gw = await startGateway(vllm.url);
    try {
      assert.equal((await create(gw.url, { model: 'm', input: 'one' })).status, 200);
      const missing = await create(gw.url, { model: 'nope', input: 'two' }, { 'x-sim': 'status=404' });
      assert.equal(missing.status, 404);
      assert.equal(gw.gateway.deps.backend.api, 'responses');
    } finally {
      await closeAll(gw, vllm);
    }
  });

  it('a gateway pointed at itself is asked once (508: it cannot tell) and answers 508 as before', async () => {
    const port = await freePort();
    const gw = await startGateway(`http://127.0.0.1:${port}`, { 'gateway-port': String(port) }, { captureLogs: true, logLevel: 'info' });
    try {
      for (let n = 0; n < 3; n++) assert.equal((await create(gw.url, { model: 'm', input: `x ${n}` })).status, 508);
      assert.equal(gw.gateway.deps.backend.api, 'responses');
      assert.deepEqual(choices(gw.logs), ['responses'], 'one choice, logged once');
      assert.match(JSON.stringify(gw.logs), /answered 508, which does not tell/);
    } finally {
      await gw.close();
    }
  });
});

describe('--upstream-api chat', () => {
  it('sends chat even to a server that has /v1/responses, without asking', async () => {
    const vllm = await startSimVllm();
    const gw = await startGateway(vllm.url, { 'upstream-api': 'chat' });
    try {
      assert.equal((await create(gw.url, { model: 'm', input: 'hi' })).status, 200);
      assert.deepEqual(vllm.requests.map((request) => request.url), ['/v1/chat/completions']);
      assert.equal(vllm.apiProbes, 0, 'not asked');
      // Other routes are proxied as they are.
      assert.equal((await postJson(`${gw.url}/v1/chat/completions`, { model: 'm', messages: [{ role: 'user', content: 'raw' }] })).json().choices[0].message.content, 'You said: raw');
    } finally {
      await closeAll(gw, vllm);
    }
  });

  it("what a chat server's failures look like: its refusal, a cut stream, an error chunk, an answer that is no completion", async () => {
    const chatOnly = await startSimVllm({ chatOnly: true });
    const gw = await startGateway(chatOnly.url, { 'upstream-api': 'chat' });
    try {
      const refused = await create(gw.url, { model: 'm', input: 'hi' }, { 'x-sim': 'status=400' });
      assert.equal(refused.status, 400);
      assert.equal(refused.json().error.message, 'simulated error 400');
      const cut = await createStream(gw.url, { model: 'm', input: 'one two three four five' }, { 'x-sim': 'reset-after=3' });
      assertFailedWith(cut.terminal, 'upstream_stream_interrupted');
      const errorChunk = await createStream(gw.url, { model: 'm', input: 'hello' }, { 'x-sim': 'quirk=chat-error-chunk' });
      assert.equal(errorChunk.terminal.status, 'failed');
      assert.match(errorChunk.terminal.error.message, /the engine died/);
      assert.ok(errorChunk.events.some((event) => event.data.type === 'error'));
      const garbage = await create(gw.url, { model: 'm', input: 'hi' }, { 'x-sim': 'garbage' });
      assert.equal(garbage.status, 502);
    } finally {
      await closeAll(gw, chatOnly);
    }
  });

  it('bounds what it holds of a chat chunk not yet complete, and of a whole answer', async () => {
    const chatOnly = await startSimVllm({ chatOnly: true });
    const gw = await startGateway(chatOnly.url, { 'upstream-api': 'chat', 'max-upstream-event-size': '64KiB' });
    try {
      chatOnly.enqueue((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: {"choices":[{"index":0,"delta":{"content":"');
        res.write('a'.repeat(128 * 1024)); // no end in sight
      });
      const endless = await createStream(gw.url, { model: 'm', input: 'hi' });
      assertFailedWith(endless.terminal, 'upstream_invalid_response');
      chatOnly.enqueue((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: 'b'.repeat(128 * 1024) } }] }));
      });
      const whole = await create(gw.url, { model: 'm', input: 'hi' });
      assert.equal(whole.status, 502);
      assert.equal(whole.json().error.code, 'upstream_invalid_response');
    } finally {
      await closeAll(gw, chatOnly);
    }
  });

  it('refuses what has no chat form with a 400 naming it: JSON, streamed and background alike, nothing sent', async () => {
    const chatOnly = await startSimVllm({ chatOnly: true });
    const gw = await startGateway(chatOnly.url, { 'upstream-api': 'chat' });
    try {
      const input = [{ role: 'user', content: [{ type: 'input_image', file_id: 'file-1' }] }];
      for (const extra of [{}, { stream: true }, { background: true }]) {
        const res = await postJson(`${gw.url}/v1/responses`, { model: 'm', input, ...extra });
        assert.equal(res.status, 400, JSON.stringify(extra));
        const error: AnyJson = res.json().error;
        assert.equal(error.code, 'unsupported_parameter');
        assert.equal(error.param, 'input[0].content[0].file_id');
        assert.equal(error.type, 'invalid_request_error');
      }
      assert.equal(chatOnly.requests.length, 0, 'the model server never saw them');
    } finally {
      await closeAll(gw, chatOnly);
    }
  });

  it('/ready follows a server without /health (Ollama) by its model list', async () => {
    const ollama = await startSimVllm({ chatOnly: true, chatDialect: 'ollama', noHealthRoute: true });
    const gw = await startGateway(ollama.url, { 'upstream-api': 'chat' });
    try {
      assert.equal((await send(`${gw.url}/ready`)).status, 200);
      assert.equal(ollama.requests.at(-1)?.url, '/v1/models', 'asked for its models after the 404');
      await ollama.close();
      const down = await send(`${gw.url}/ready`);
      assert.equal(down.status, 503);
    } finally {
      await closeAll(gw);
    }
  });

  it('compacts through chat: the summary comes from a chat completion', async () => {
    const chatOnly = await startSimVllm({ chatOnly: true });
    const gw = await startGateway(chatOnly.url, { 'upstream-api': 'chat' });
    try {
      const first = (await create(gw.url, { model: 'm', input: 'my name is Ada' })).json();
      const compacted = await postJson(`${gw.url}/v1/responses/compact`, { model: 'm', previous_response_id: first.id });
      assert.equal(compacted.status, 200, compacted.text());
      assert.equal(compacted.json().output.at(-1).type, 'compaction');
      assert.equal(chatOnly.requests.at(-1)?.url, '/v1/chat/completions');
      assert.equal(chatOnly.requests.at(-1)?.json?.['stream'], undefined, 'read whole');
    } finally {
      await closeAll(gw, chatOnly);
    }
  });
});
