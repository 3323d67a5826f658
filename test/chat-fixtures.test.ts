// Chat Completions streams and answers of the servers people run (llama.cpp, Ollama,
// SGLang: written from their documented and reported behaviour; vLLM's chat dialect:
// recorded from the simulated server, scripts/record-chat-fixtures.ts), replayed behind a
// gateway with --upstream-api chat. Every translated stream passes the conformance
// checker and OpenAI's schema, whole and cut into small pieces, and says what the chat
// answer said: the text, the reasoning, the calls with their ids, the status, the usage.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { CustomHandler, SimVllm } from '../sim/vllm-sim.ts';
import { checkResponseObject } from './helpers/conformance.ts';
import { closeAll, startSimAndGateway, type TestGateway } from './helpers/gateway.ts';
import { create, createStream, getJson, type AnyJson } from './helpers/responses-api.ts';

const DIR = new URL('./fixtures/chat/', import.meta.url).pathname;

interface ExpectedItem {
  readonly type: 'reasoning' | 'message' | 'function_call';
  readonly text?: string;
  readonly name?: string;
  readonly arguments?: string;
  readonly call_id?: string;
}
interface Expected {
  readonly status: string;
  readonly incomplete_reason?: string;
  readonly error_message?: string;
  readonly output?: readonly ExpectedItem[];
  readonly usage?: { input_tokens: number; output_tokens: number; total_tokens: number; reasoning_tokens: number; cached_tokens: number };
}
interface Fixture {
  readonly name: string;
  readonly server: string;
  readonly request: AnyJson;
  readonly stream?: readonly string[];
  readonly completion?: AnyJson;
  readonly expect?: Expected;
}

const fixtures: Fixture[] = readdirSync(DIR)
  .filter((file) => file.endsWith('.json'))
  .sort()
  .map((file) => ({ name: file.replace(/\.json$/, ''), ...(JSON.parse(readFileSync(DIR + file, 'utf8')) as Omit<Fixture, 'name'>) }));

/** What a recorded chat answer says, read plainly (the recordings carry no expectation of
 * their own): chunks joined field by field, calls by index. */
function expectationOfRecording(fixture: Fixture): Expected {
  const chunks: AnyJson[] =
    fixture.completion !== undefined
      ? []
      : (fixture.stream ?? []).map((line) => line.replace(/^data: /, '').trim()).filter((data) => data !== '[DONE]').map((data) => JSON.parse(data));
  let reasoning = '';
  let text = '';
  const calls: { name: string; arguments: string; call_id: string }[] = [];
  let finish: string | undefined;
  let usage: AnyJson;
  const take = (message: AnyJson, whole: boolean): void => {
    reasoning += message.reasoning ?? message.reasoning_content ?? '';
    text += message.content ?? '';
    for (const [position, call] of (message.tool_calls ?? []).entries()) {
      const index = whole ? position : call.index;
      calls[index] ??= { name: '', arguments: '', call_id: call.id };
      if (call.function?.name) calls[index].name = call.function.name;
      calls[index].arguments += call.function?.arguments ?? '';
    }
  };
  if (fixture.completion !== undefined) {
    take(fixture.completion.choices[0].message, true);
    finish = fixture.completion.choices[0].finish_reason;
    usage = fixture.completion.usage;
  }
  for (const chunk of chunks) {
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices ?? []) {
      take(choice.delta, false);
      finish = choice.finish_reason ?? finish;
    }
  }
  const output: ExpectedItem[] = [];
  if (reasoning !== '') output.push({ type: 'reasoning', text: reasoning });
  if (text !== '') output.push({ type: 'message', text });
  for (const call of calls) output.push({ type: 'function_call', ...call });
  return {
    status: finish === 'length' ? 'incomplete' : 'completed',
    output,
    usage: {
      input_tokens: usage.prompt_tokens,
      output_tokens: usage.completion_tokens,
      total_tokens: usage.total_tokens,
      reasoning_tokens: usage.completion_tokens_details?.reasoning_tokens ?? 0,
      cached_tokens: usage.prompt_tokens_details?.cached_tokens ?? 0,
    },
  };
}

/** Serves the fixture's bytes: each recorded chunk as one write, or cut every `piece` bytes. */
function serve(fixture: Fixture, piece?: number): CustomHandler {
  return (_req, res) => {
    if (fixture.completion !== undefined) {
      const body = JSON.stringify(fixture.completion);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const chunks = fixture.stream ?? [];
    if (piece === undefined) for (const chunk of chunks) res.write(chunk);
    else {
      const bytes = Buffer.from(chunks.join(''));
      for (let at = 0; at < bytes.length; at += piece) res.write(bytes.subarray(at, at + piece));
    }
    res.end();
  };
}

function assertSays(response: AnyJson, expected: Expected, where: string): void {
  assert.equal(response.status, expected.status, `${where}: status`);
  if (expected.incomplete_reason !== undefined) assert.equal(response.incomplete_details?.reason, expected.incomplete_reason, `${where}: incomplete reason`);
  if (expected.error_message !== undefined) assert.match(response.error.message, new RegExp(expected.error_message), `${where}: error`);
  if (expected.output !== undefined) {
    const got = response.output.map((item: AnyJson) => {
      if (item.type === 'reasoning') return { type: 'reasoning', text: item.content.map((part: AnyJson) => part.text).join('') };
      if (item.type === 'message') return { type: 'message', text: item.content.map((part: AnyJson) => part.text).join('') };
      return { type: item.type, name: item.name, arguments: item.arguments, call_id: item.call_id };
    });
    assert.deepEqual(got, expected.output, `${where}: output`);
  }
  if (expected.usage !== undefined) {
    const usage = response.usage;
    assert.deepEqual(
      {
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        total_tokens: usage.total_tokens,
        reasoning_tokens: usage.output_tokens_details.reasoning_tokens,
        cached_tokens: usage.input_tokens_details.cached_tokens,
      },
      expected.usage,
      `${where}: usage`,
    );
  }
}

let sim: SimVllm;
let gw: TestGateway;
before(async () => ({ sim, gw } = await startSimAndGateway({ 'upstream-api': 'chat' }, { chatOnly: true })));
after(() => closeAll(gw, sim));

describe('chat answers of every server, translated', () => {
  it('has fixtures of llama.cpp, Ollama, SGLang and vLLM', () => {
    const servers = fixtures.map((fixture) => fixture.server.split(' ')[0]?.toLowerCase());
    for (const server of ['llama.cpp', 'ollama', 'sglang', 'the']) assert.ok(servers.includes(server), `a fixture of ${server}`);
  });

  for (const fixture of fixtures) {
    const expected = fixture.expect ?? expectationOfRecording(fixture);
    // A stream whole and cut in pieces; a completion asked for as JSON, and as a stream (a
    // server that answers a streamed request whole: the client still gets a stream).
    const variants: { piece?: number; streamAsked: boolean; label: string }[] =
      fixture.stream !== undefined
        ? [{ streamAsked: true, label: '' }, { piece: 5, streamAsked: true, label: ', cut every 5 bytes' }]
        : [{ streamAsked: false, label: '' }, { streamAsked: true, label: ', answered whole to a streamed request' }];
    for (const { piece, streamAsked, label } of variants) {
      it(`${fixture.name}${label}`, async () => {
        sim.enqueue(serve(fixture, piece));
        const arrived = sim.nextRequest();
        let response: AnyJson;
        if (streamAsked) {
          const streamed = await createStream(gw.url, fixture.request); // conformance and schema checked
          assert.equal(streamed.status, 200);
          response = streamed.terminal;
          // Joined deltas equal the final text (the checker holds them to it; this says which).
          const deltas = streamed.events.filter((event) => event.data.type === 'response.output_text.delta').map((event) => event.data.delta).join('');
          const finalText = (response.output as AnyJson[]).filter((item) => item.type === 'message').map((item) => item.content.map((part: AnyJson) => part.text).join('')).join('');
          assert.equal(deltas, finalText);
        } else {
          const answered = await create(gw.url, fixture.request);
          assert.equal(answered.status, 200, answered.text());
          response = answered.json();
        }
        assertSays(response, expected, fixture.name);
        const sent = await arrived;
        assert.equal(sent.url, '/v1/chat/completions');
        assert.equal(sent.json?.['stream'] === true, streamAsked, 'streamed as the client asked');
        // The stored response reads the same.
        const stored = await getJson(`${gw.url}/v1/responses/${response.id}`);
        assert.equal(stored.status, 200);
        checkResponseObject(stored.body, 'stored');
        assertSays(stored.body, expected, `${fixture.name} (stored)`);
      });
    }
  }

  it('a translated turn is continued: calls, their ids and the reasoning go back as chat messages', async () => {
    const fixture = fixtures.find((candidate) => candidate.name === 'llama.cpp-reasoning-tool-call') as Fixture;
    sim.enqueue(serve(fixture));
    const first = await createStream(gw.url, fixture.request);
    const call = first.terminal.output.find((item: AnyJson) => item.type === 'function_call');
    const arrived = sim.nextRequest();
    // The simulated server refuses a tool message that answers no call of the message before it.
    const second = await create(gw.url, { model: 'qwen3-8b', previous_response_id: first.terminal.id, tools: fixture.request.tools, input: [{ type: 'function_call_output', call_id: call.call_id, output: '18 C, sunny' }] });
    assert.equal(second.status, 200, second.text());
    assert.equal(second.json().output[0].content[0].text, 'Tool results: 18 C, sunny');
    const messages = (await arrived).json?.['messages'] as AnyJson[];
    assert.deepEqual(messages.map((message) => message.role), ['user', 'assistant', 'tool']);
    assert.equal(messages[1].reasoning, 'The user asks for the weather in Paris.');
    assert.equal(messages[1].reasoning_content, 'The user asks for the weather in Paris.', 'under both names: llama.cpp reads reasoning_content, vLLM reasoning');
    assert.deepEqual(messages[1].tool_calls, [{ id: 'uH0Bq8Zkq2xV9aLmR3cT5nWd7YfJ1sEp', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris"}' } }]);
    assert.equal(messages[2].tool_call_id, 'uH0Bq8Zkq2xV9aLmR3cT5nWd7YfJ1sEp');
  });
});
