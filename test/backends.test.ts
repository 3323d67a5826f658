// One suite, every backend: the official openai SDK runs the same multi-turn, tool,
// conversation, reasoning, structured-output, background and WebSocket flows against
// vLLM's Responses API and against Chat Completions servers (the simulated server
// chat-only, in vLLM's, llama.cpp's, Ollama's and SGLang's dialects). What the gateway
// builds above the backend must not tell them apart.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { ResponsesWS } from 'openai/resources/responses/ws';
import type { ChatDialect } from '../sim/chat-wire.ts';
import { startMcpServer, type TestMcpServer } from '../sim/mcp-server.ts';
import type { RecordedRequest, SimVllm } from '../sim/vllm-sim.ts';
import { checkStream } from './helpers/conformance.ts';
import { closeAll, startSimAndGateway, type TestGateway } from './helpers/gateway.ts';
import { createStream, type AnyJson } from './helpers/responses-api.ts';

interface Backend {
  readonly name: string;
  /** The simulated server: vLLM, or a chat-only server in a dialect. */
  readonly chat: ChatDialect | undefined;
  readonly flags: Readonly<Record<string, string>>;
}

const BACKENDS: readonly Backend[] = [
  { name: "vLLM's Responses API", chat: undefined, flags: { 'upstream-api': 'responses' } },
  { name: 'a chat-only vLLM, found by --upstream-api auto', chat: 'vllm', flags: {} },
  { name: 'llama.cpp chat', chat: 'llama.cpp', flags: { 'upstream-api': 'chat' } },
  { name: 'Ollama chat', chat: 'ollama', flags: { 'upstream-api': 'chat' } },
  { name: 'SGLang chat', chat: 'sglang', flags: { 'upstream-api': 'chat' } },
];

const ADD = {
  type: 'function' as const,
  name: 'add',
  description: 'Adds two numbers',
  parameters: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } }, required: ['a', 'b'] },
  strict: false,
};
const MUL = { ...ADD, name: 'mul', description: 'Multiplies two numbers' };

/** The user texts of what the backend was sent, whichever API it speaks. */
function userTexts(request: RecordedRequest | undefined): string[] {
  const body = request?.json as AnyJson;
  const messages: AnyJson[] = body?.messages ?? (typeof body?.input === 'string' ? [{ role: 'user', content: body.input }] : (body?.input ?? []));
  return messages
    .filter((message) => message.role === 'user')
    .map((message) => (typeof message.content === 'string' ? message.content : message.content.map((part: AnyJson) => part.text).join('')));
}

/** The events of one response on a socket, up to its terminal event. */
function oneResponse(ws: ResponsesWS, body: Record<string, unknown>): Promise<AnyJson[]> {
  const events: AnyJson[] = [];
  return new Promise((resolve, reject) => {
    const onEvent = (event: AnyJson): void => {
      events.push(event);
      if (['response.completed', 'response.incomplete', 'response.failed'].includes(event.type)) {
        ws.off('event', onEvent);
        resolve(events);
      }
    };
    ws.on('event', onEvent);
    ws.on('error', reject);
    ws.send({ type: 'response.create', ...body } as AnyJson);
  });
}

let mcp: TestMcpServer;
before(async () => {
  mcp = await startMcpServer();
});
after(() => closeAll(mcp));

for (const backend of BACKENDS) {
  describe(`behind ${backend.name}`, () => {
    let sim: SimVllm;
    let gw: TestGateway;
    let client: OpenAI;
    before(async () => {
      ({ sim, gw } = await startSimAndGateway(
        { ...backend.flags, 'api-keys': 'key-alice alice, key-bob bob' },
        backend.chat === undefined ? {} : { chatOnly: true, chatDialect: backend.chat },
      ));
      client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'key-alice', maxRetries: 0 });
    });
    after(() => closeAll(gw, sim));

    const lastPath = (): string | undefined => sim.requests.at(-1)?.url;
    const expectedPath = backend.chat === undefined ? '/v1/responses' : '/v1/chat/completions';

    it('three turns with previous_response_id, JSON and streamed: the history reaches the model', async () => {
      const first = await client.responses.create({ model: 'm', input: 'one', instructions: 'Be brief.' });
      assert.equal(first.output_text, 'You said: one');
      assert.equal(lastPath(), expectedPath);
      const second = client.responses.stream({ model: 'm', input: 'two', previous_response_id: first.id, instructions: 'Be brief.' });
      let deltas = '';
      for await (const event of second) if (event.type === 'response.output_text.delta') deltas += event.delta;
      const secondFinal = await second.finalResponse();
      assert.equal(deltas, 'You said: two');
      assert.equal(secondFinal.output_text, deltas);
      const third = await client.responses.create({ model: 'm', input: 'three', previous_response_id: secondFinal.id });
      assert.equal(third.output_text, 'You said: three');
      assert.deepEqual(userTexts(sim.requests.at(-1)), ['one', 'two', 'three']);
      const stored = await client.responses.retrieve(third.id);
      assert.equal(stored.output_text, 'You said: three');
      const items = await client.responses.inputItems.list(third.id);
      assert.ok(items.data.length >= 5, 'the input items of the whole chain');
    });

    it('a function-call loop, streamed: the call, its output sent back, the answer; parallel calls; a named tool_choice', async () => {
      const stream = client.responses.stream({ model: 'm', input: 'use add with 2 and 3', tools: [ADD] });
      let args = '';
      for await (const event of stream) if (event.type === 'response.function_call_arguments.delta') args += event.delta;
      const called = await stream.finalResponse();
      const call = called.output.find((item) => item.type === 'function_call');
      assert.ok(call?.type === 'function_call');
      assert.equal(call.name, 'add');
      assert.deepEqual(JSON.parse(call.arguments), { a: 2, b: 3 });
      assert.equal(args, call.arguments, 'the argument deltas join to the arguments');
      const answered = await client.responses.create({
        model: 'm',
        previous_response_id: called.id,
        tools: [ADD],
        input: [{ type: 'function_call_output', call_id: call.call_id, output: '5' }],
      });
      assert.equal(answered.output_text, 'Tool results: 5');

      const parallel = await client.responses.create({ model: 'm', input: 'use add and mul with 2 and 3', tools: [ADD, MUL] });
      const calls = parallel.output.filter((item) => item.type === 'function_call');
      assert.deepEqual(calls.map((item) => item.name), ['add', 'mul']);
      assert.equal(new Set(calls.map((item) => item.call_id)).size, 2, 'each call its own call_id');
      const outputs = calls.map((item) => ({ type: 'function_call_output' as const, call_id: item.call_id, output: item.name === 'add' ? '5' : '6' }));
      const both = await client.responses.create({ model: 'm', previous_response_id: parallel.id, tools: [ADD, MUL], input: outputs });
      assert.equal(both.output_text, 'Tool results: 5 | 6');

      const named = await client.responses.create({ model: 'm', input: 'compute 4 and 5', tools: [ADD, MUL], tool_choice: { type: 'function', name: 'mul' } });
      assert.deepEqual(named.output.filter((item) => item.type === 'function_call').map((item) => item.name), ['mul']);
    });

    it("tenants: another tenant's key finds neither the response nor its chain", async () => {
      const mine = await client.responses.create({ model: 'm', input: 'private' });
      const bob = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'key-bob', maxRetries: 0 });
      await assert.rejects(bob.responses.retrieve(mine.id), (error: unknown) => error instanceof OpenAI.NotFoundError);
      await assert.rejects(bob.responses.create({ model: 'm', input: 'next', previous_response_id: mine.id }), (error: unknown) => error instanceof OpenAI.NotFoundError);
    });

    it('a conversation over two turns keeps its items', async () => {
      const conversation = await client.conversations.create({ metadata: { topic: 'backends' } });
      await client.responses.create({ model: 'm', input: 'first', conversation: conversation.id });
      const second = await client.responses.create({ model: 'm', input: 'second', conversation: conversation.id });
      assert.equal(second.output_text, 'You said: second');
      assert.deepEqual(userTexts(sim.requests.at(-1)), ['first', 'second']);
      const items = await client.conversations.items.list(conversation.id, { order: 'asc' });
      assert.deepEqual(
        items.data.map((item) => (item.type === 'message' ? item.role : item.type)),
        ['user', 'assistant', 'user', 'assistant'],
      );
    });

    it('reasoning, structured output and max_output_tokens, conformant and schema-exact', async () => {
      const reasoned = await createStream(gw.url, { model: 'm', input: 'think then use add with 1 and 2', tools: [ADD], reasoning: { effort: 'low' } }, { authorization: 'Bearer key-alice' });
      assert.equal(reasoned.status, 200);
      assert.deepEqual(reasoned.terminal.output.map((item: AnyJson) => item.type), ['reasoning', 'function_call']);
      assert.ok(reasoned.terminal.usage.output_tokens_details.reasoning_tokens > 0);

      const format = { type: 'json_schema' as const, name: 'answer', schema: { type: 'object', properties: { text: { type: 'string' } } }, strict: true };
      const structured = await client.responses.create({ model: 'm', input: 'json please', text: { format } });
      assert.deepEqual(structured.text?.format, format);
      const sent = sim.requests.at(-1)?.json as AnyJson;
      if (backend.chat === undefined) assert.deepEqual(sent.text.format, format);
      else assert.deepEqual(sent.response_format, { type: 'json_schema', json_schema: { name: 'answer', schema: format.schema, strict: true } });

      const cut = client.responses.stream({ model: 'm', input: 'a long answer of many words', max_output_tokens: 2 });
      for await (const _event of cut);
      const incomplete = await cut.finalResponse();
      assert.equal(incomplete.status, 'incomplete');
      assert.equal(incomplete.incomplete_details?.reason, 'max_output_tokens');
      assert.equal(incomplete.output_text, 'You said:');
    });

    it('background: created, streamed again from a sequence number, and cancelled', async () => {
      const created = await client.responses.create({ model: 'm', input: 'in the background', background: true });
      assert.equal(created.background, true);
      const stream = await client.responses.retrieve(created.id, { stream: true, starting_after: 1 });
      let final: AnyJson;
      const sequences: number[] = [];
      for await (const event of stream) {
        sequences.push(event.sequence_number);
        if (event.type === 'response.completed') final = event.response;
      }
      assert.equal(sequences[0], 2);
      assert.equal(final.output[0].content[0].text, 'You said: in the background');
      const long = await client.responses.create({ model: 'm', input: 'long', background: true }, { headers: { 'x-sim': 'deltas=400;slow=25' } });
      const cancelled = await client.responses.cancel(long.id);
      assert.equal(cancelled.status, 'cancelled');
    });

    it('an MCP tool loop: the tools listed, the call run by the gateway, the model answering with its output', async () => {
      const from = sim.requests.length;
      const response = await client.responses.create({ model: 'm', input: 'please add 2 and 3', tools: [{ type: 'mcp', server_label: 'calc', server_url: mcp.url, require_approval: 'never' }] });
      assert.deepEqual(response.output.map((item) => item.type), ['mcp_list_tools', 'mcp_call', 'message']);
      assert.equal(response.output_text, 'Tool results: 5');
      assert.deepEqual(sim.requests.slice(from).map((request) => request.url), [expectedPath, expectedPath], 'two model calls, both through this backend');
    });

    it('WebSocket mode: a turn and its continuation on one socket', async () => {
      const ws = new ResponsesWS(client);
      try {
        const first = checkStream(asSse(await oneResponse(ws, { model: 'm', input: 'over the socket' }))).terminal;
        assert.equal(first.output[0].content[0].text, 'You said: over the socket');
        const second = checkStream(asSse(await oneResponse(ws, { model: 'm', input: 'and again', previous_response_id: first.id }))).terminal;
        assert.equal(second.output[0].content[0].text, 'You said: and again');
        assert.deepEqual(userTexts(sim.requests.at(-1)), ['over the socket', 'and again']);
        assert.equal(lastPath(), expectedPath);
      } finally {
        ws.close();
      }
    });
  });
}

/** The events as the SSE text they would have been over HTTP, for the conformance checker. */
function asSse(events: readonly AnyJson[]): string {
  return events.map((event) => `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`).join('') + 'data: [DONE]\n\n';
}
