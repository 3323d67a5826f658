// The Responses API's WebSocket mode, with the official openai SDK's WebSocket client
// (ResponsesWS): responses created on the socket and streamed as JSON messages (the same
// normalized events as over HTTP, checked by the conformance checker), several one after
// another, `store: false` continued on the socket and not on another, errors as `error`
// events, API keys on the upgrade, backpressure, and the close codes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { ResponsesWS } from 'openai/resources/responses/ws';
import { WebSocket } from 'ws';
import { startMcpServer } from '../sim/mcp-server.ts';
import { startSimVllm, type SimVllm } from '../sim/vllm-sim.ts';
import { checkStream } from './helpers/conformance.ts';
import { flood, type Flood } from './helpers/flood.ts';
import { closeAll, startGateway, type TestGateway } from './helpers/gateway.ts';
import { send } from './helpers/http.ts';
import type { AnyJson } from './helpers/responses-api.ts';

/** The events of one response on the socket, up to its terminal event (or an error). */
async function oneResponse(ws: ResponsesWS, body: Record<string, unknown>): Promise<AnyJson[]> {
  const events: AnyJson[] = [];
  return new Promise((resolve, reject) => {
    const onEvent = (event: AnyJson): void => {
      events.push(event);
      if (['response.completed', 'response.incomplete', 'response.failed'].includes(event.type) || (event.type === 'error' && !events.some((e) => e.type === 'response.created'))) {
        ws.off('event', onEvent);
        resolve(events);
      }
    };
    ws.on('event', onEvent);
    ws.on('error', (error) => {
      // An error event before the response began: the SDK reports it here too.
      if (events.length === 0) reject(error);
    });
    ws.send({ type: 'response.create', ...body } as AnyJson);
  });
}

/** The events as the SSE text they would have been over HTTP, for the conformance checker. */
function asSse(events: readonly AnyJson[]): string {
  return events.map((event) => `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`).join('') + 'data: [DONE]\n\n';
}

describe('WebSocket mode', () => {
  let sim: SimVllm;
  let gw: TestGateway;
  let client: OpenAI;
  before(async () => {
    sim = await startSimVllm();
    gw = await startGateway(sim.url, { 'api-keys': 'key-a alice' }, { captureLogs: true, logLevel: 'info' });
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'key-a', maxRetries: 0 });
  });
  after(() => closeAll(gw, sim));

  it('streams each response as JSON messages, several one after another, conformant', async () => {
    const ws = new ResponsesWS(client);
    try {
      const first = await oneResponse(ws, { model: 'm', input: 'hello there' });
      const checked = checkStream(asSse(first));
      assert.equal(checked.terminal.status, 'completed');
      assert.equal(checked.terminal.output[0].content[0].text, 'You said: hello there');
      const second = await oneResponse(ws, { model: 'm', input: 'again', previous_response_id: checked.terminal.id });
      const again = checkStream(asSse(second)).terminal;
      assert.equal(again.previous_response_id, checked.terminal.id);
      const sent = sim.requests.at(-1)?.json as AnyJson;
      assert.deepEqual(sent.input.map((item: AnyJson) => item.role ?? item.type), ['user', 'assistant', 'user'], 'a stored response continued as over HTTP');
      assert.ok(!Object.keys(sim.requests.at(-1)?.headers ?? {}).some((name) => name.startsWith('sec-websocket')), 'no handshake header reaches vLLM');
    } finally {
      ws.close();
    }
  });

  it('generate: false prepares a response without calling vLLM; the next one continues it with only its input', async () => {
    const ws = new ResponsesWS(client);
    try {
      const before = sim.requests.length;
      const tools = [{ type: 'function', name: 'exec', parameters: { type: 'object', properties: {} } }];
      const warm = await oneResponse(ws, { model: 'm', store: false, generate: false, instructions: 'Be brief.', input: [{ role: 'developer', content: 'Rule.' }], tools });
      assert.deepEqual(warm.map((event) => event.type), ['response.created', 'response.completed']);
      const prepared = checkStream(asSse(warm)).terminal;
      assert.deepEqual([prepared.status, prepared.output, prepared.usage.total_tokens], ['completed', [], 0]);
      assert.equal(sim.requests.length, before, 'vLLM was not called');
      const next = checkStream(asSse(await oneResponse(ws, { model: 'm', store: false, previous_response_id: prepared.id, instructions: 'Be brief.', input: 'go', tools }))).terminal;
      assert.equal(next.status, 'completed');
      const sent = sim.requests.at(-1)?.json as AnyJson;
      assert.equal(sent.instructions, 'Be brief.\n\nRule.', 'the warmed-up input comes first');
      assert.deepEqual(sent.input.map((item: AnyJson) => item.role), ['user']);
    } finally {
      ws.close();
    }
  });

  it('continues a store: false response on the same socket, and not on another', async () => {
    const ws = new ResponsesWS(client);
    const other = new ResponsesWS(client);
    try {
      const first = checkStream(asSse(await oneResponse(ws, { model: 'm', input: 'remember CHERRY', store: false }))).terminal;
      assert.equal(first.store, false);
      const second = checkStream(asSse(await oneResponse(ws, { model: 'm', input: 'which word?', store: false, previous_response_id: first.id }))).terminal;
      assert.equal(second.status, 'completed');
      const input = (sim.requests.at(-1)?.json as AnyJson).input as AnyJson[];
      assert.deepEqual(input.map((item) => item.role), ['user', 'assistant', 'user']);
      assert.equal(input[0].content, 'remember CHERRY');
      // Nothing was stored: HTTP does not know it, nor does another socket.
      assert.equal((await send(`${gw.url}/v1/responses/${first.id}`, { headers: { authorization: 'Bearer key-a' } })).status, 404);
      const elsewhere = await oneResponse(other, { model: 'm', input: 'x', store: false, previous_response_id: first.id });
      const error = elsewhere.find((event) => event.type === 'error');
      assert.equal(error?.error.code, 'previous_response_not_found');
    } finally {
      ws.close();
      other.close();
    }
  });

  it('sends errors as error events: a bad message, a bad request, vLLM refusing', async () => {
    const ws = new ResponsesWS(client);
    try {
      const bad = await oneResponse(ws, { model: 'm', input: 42 });
      assert.equal(bad[0].type, 'error');
      assert.equal(bad[0].error.param, 'input');
      sim.enqueue((_req, res) => {
        const body = JSON.stringify({ error: { message: 'The model `nope` does not exist.', type: 'NotFoundError', param: null, code: 404 } });
        res.writeHead(404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
      });
      const refused = await oneResponse(ws, { model: 'nope', input: 'x' });
      assert.equal(refused[0].type, 'error');
      assert.match(refused[0].error.message, /does not exist/);
      // The socket is still good for the next response.
      const fine = await oneResponse(ws, { model: 'm', input: 'still here' });
      assert.equal(fine.at(-1).type, 'response.completed');
    } finally {
      ws.close();
    }
    const raw = new WebSocket(`${gw.url.replace('http', 'ws')}/v1/responses`, { headers: { authorization: 'Bearer key-a' } });
    await new Promise((resolve) => raw.once('open', resolve));
    const reply = new Promise<AnyJson>((resolve) => raw.once('message', (data) => resolve(JSON.parse((data as Buffer).toString()))));
    raw.send('{"type":"session.update"}');
    const error = await reply;
    assert.deepEqual([error.type, error.error.param], ['error', 'type']);
    raw.close();
  });

  it('checks the API key on the upgrade, and answers other upgrades in JSON', async () => {
    const refused = new WebSocket(`${gw.url.replace('http', 'ws')}/v1/responses`, { headers: { authorization: 'Bearer wrong' } });
    const status = await new Promise<number>((resolve) => refused.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    assert.equal(status, 401);
    const elsewhere = new WebSocket(`${gw.url.replace('http', 'ws')}/v1/models`, { headers: { authorization: 'Bearer key-a' } });
    const notFound = await new Promise<number>((resolve) => elsewhere.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    assert.equal(notFound, 404);
  });

  it('runs MCP tools and client tools on a socket as over HTTP', async () => {
    const mcp = await startMcpServer();
    const ws = new ResponsesWS(client);
    try {
      const tools = [
        { type: 'mcp', server_label: 'calc', server_url: mcp.url, require_approval: 'never' },
        { type: 'custom', name: 'apply_patch', description: 'Edits files.' },
      ];
      const events = await oneResponse(ws, { model: 'm', input: 'add 2 and 3 then apply_patch', tools });
      const terminal = checkStream(asSse(events)).terminal;
      assert.deepEqual(
        (terminal.output as AnyJson[]).map((item) => item.type),
        ['mcp_list_tools', 'mcp_call', 'custom_tool_call'],
      );
      assert.equal(terminal.output[1].output, '5');
    } finally {
      ws.close();
      await mcp.close();
    }
  });

  it('logs each response on a socket as an access line', async () => {
    const ws = new ResponsesWS(client);
    try {
      await oneResponse(ws, { model: 'm', input: 'logged' });
    } finally {
      ws.close();
    }
    const line = gw.logs.filter((entry) => entry['msg'] === 'request' && entry['method'] === 'WS').at(-1);
    assert.equal(line?.['path'], '/v1/responses');
    assert.equal(line?.['status'], 200);
  });

  it('a socket that does not read pauses the reading from vLLM (backpressure); reading again gets every event', { timeout: 60_000 }, async () => {
    const totalDeltas = 2048; // 16 KiB each, 32 MiB: more than socket buffers hold
    const delta = 'x'.repeat(16 * 1024);
    let writer: Flood | undefined;
    sim.enqueue((_req, res) => {
      const deltaEvent = (n: number): string =>
        `event: response.output_text.delta\ndata: ${JSON.stringify({ type: 'response.output_text.delta', item_id: 'm1', output_index: 0, content_index: 0, delta, logprobs: [], sequence_number: n })}\n\n`;
      const completed = (): string =>
        `event: response.completed\ndata: ${JSON.stringify({ type: 'response.completed', response: { id: 'x', status: 'completed', output: [] }, sequence_number: totalDeltas })}\n\n`;
      writer = flood(res, totalDeltas, deltaEvent, completed);
    });
    const raw = new WebSocket(`${gw.url.replace('http', 'ws')}/v1/responses`, { headers: { authorization: 'Bearer key-a' } });
    await new Promise((resolve) => raw.once('open', resolve));
    const socket = (raw as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    const events: AnyJson[] = [];
    const done = new Promise<void>((resolve) =>
      raw.on('message', (data) => {
        const event = JSON.parse((data as Buffer).toString());
        events.push(event);
        if (event.type === 'response.completed' || event.type === 'error') resolve();
      }),
    );
    socket.pause();
    const arrivedFlood = sim.nextRequest();
    raw.send(JSON.stringify({ type: 'response.create', model: 'm', input: 'x' }));
    // The first chunk comes once vLLM was asked: wait for the request, then for the stall.
    await arrivedFlood;
    const progress = writer as Flood;
    await progress.stalled();
    assert.equal(progress.finished, false, 'vLLM could write everything: the gateway buffered the stream');
    assert.ok(progress.written < totalDeltas / 2, `vLLM wrote ${progress.written} of ${totalDeltas} deltas while the socket read nothing`);
    socket.resume();
    await done;
    checkStream(asSse(events));
    assert.equal(events.filter((event) => event.type === 'response.output_text.delta').length, totalDeltas);
    raw.close();
  });
});

describe('WebSocket mode: shutdown', () => {
  it('closes idle sockets at once (1001) and busy ones once their response has ended', async () => {
    const sim = await startSimVllm();
    const gw = await startGateway(sim.url);
    try {
      const url = `${gw.url.replace('http', 'ws')}/v1/responses`;
      const idle = new WebSocket(url);
      const busy = new WebSocket(url, { headers: { 'x-sim': 'deltas=20;slow=10' } });
      await Promise.all([idle, busy].map((ws) => new Promise((resolve) => ws.once('open', resolve))));
      const closes = [idle, busy].map((ws) => new Promise<number>((resolve) => ws.once('close', (code) => resolve(code))));
      const events: string[] = [];
      busy.on('message', (data) => events.push((JSON.parse((data as Buffer).toString())).type));
      const arrived = sim.nextRequest();
      busy.send(JSON.stringify({ type: 'response.create', model: 'm', input: 'x' }));
      await arrived;
      const closing = gw.close();
      assert.equal(await closes[0], 1001, 'the idle socket is closed at once, going away');
      assert.equal(await closes[1], 1001);
      assert.equal(events.at(-1), 'response.completed', 'the busy socket got its whole response first');
      await closing;
    } finally {
      await sim.close();
    }
  });
});
