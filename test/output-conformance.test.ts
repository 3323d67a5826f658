// Spec-faithful output: whatever vLLM sends, /v1/responses answers and streams follow
// OpenAI's Responses API. Each vLLM quirk is reproduced by the simulator on its own and
// the gateway's answer is held to the conformance checker.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { SimVllm } from '../sim/vllm-sim.ts';
import { isVllmRecording, loadCassettes } from './helpers/cassettes.ts';
import { checkResponseObject, checkStream, assertFailedWith } from './helpers/conformance.ts';
import { closeAll, startGateway, startSimAndGateway, type TestGateway } from './helpers/gateway.ts';
import { parseSse, postJson } from './helpers/http.ts';
import { replayTurn, sseChunks } from './helpers/replay.ts';
import { getJson, type AnyJson } from './helpers/responses-api.ts';


let sim: SimVllm;
let gw: TestGateway;
before(async () => ({ sim, gw } = await startSimAndGateway({ 'upstream-idle-timeout': '0.5' })));
after(() => closeAll(gw, sim));

const TOOLS = [
  {
    type: 'function',
    name: 'get_weather',
    description: 'Weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
];

async function stream(body: object, simSwitches: string): Promise<{ terminal: AnyJson; events: { event: string; data: AnyJson }[]; text: string }> {
  const res = await postJson(`${gw.url}/v1/responses`, { model: 'm', stream: true, ...body }, { 'x-sim': simSwitches });
  assert.equal(res.status, 200);
  const checked = checkStream(res.text());
  return { ...checked, text: res.text() };
}

function typesOf(events: readonly { data: AnyJson }[]): string[] {
  return events.map((event) => event.data.type as string);
}

describe('vLLM quirks, each corrected on its own', () => {
  it('streamed item ids that differ from the completed ids: one id everywhere, with OpenAI prefixes', async () => {
    const { terminal, events } = await stream({ input: 'think first' }, 'reasoning=1');
    assert.deepEqual(terminal.output.map((item: AnyJson) => item.type), ['reasoning', 'message']);
    assert.match(terminal.output[0].id, /^rs_/);
    assert.match(terminal.output[1].id, /^msg_/);
    const deltaIds = new Set(events.filter((event) => event.data.type.endsWith('.delta')).map((event) => event.data.item_id));
    assert.deepEqual(deltaIds, new Set(terminal.output.map((item: AnyJson) => item.id)));
    assert.deepEqual((await getJson(`${gw.url}/v1/responses/${String(terminal.id)}`)).body, terminal, 'stored under the same ids');
  });

  it('vLLM\'s reasoning_part events become content_part events', async () => {
    const { events } = await stream({ input: 'think' }, 'reasoning=1');
    assert.ok(!typesOf(events).some((type) => type.startsWith('response.reasoning_part')));
    const added = events.find((event) => event.data.type === 'response.content_part.added' && event.data.part.type === 'reasoning_text');
    assert.ok(added !== undefined);
  });

  it('reasoning deltas for a part never announced: the part is announced first', async () => {
    const { events } = await stream({ input: 'think' }, 'reasoning=1;quirk=unannounced-reasoning-part');
    const types = typesOf(events);
    assert.ok(types.indexOf('response.content_part.added') < types.indexOf('response.reasoning_text.delta'));
  });

  it('function-call argument deltas that do not join to the final arguments: the final ones are sent', async () => {
    for (const quirk of ['', 'quirk=fc-args-mismatch']) {
      const { terminal, events } = await stream({ input: 'call get_weather please', tools: TOOLS }, quirk);
      const call = terminal.output.find((item: AnyJson) => item.type === 'function_call');
      assert.ok(call !== undefined, 'a function call was made');
      assert.match(call.call_id, /^call_/);
      const joined = events
        .filter((event) => event.data.type === 'response.function_call_arguments.delta')
        .map((event) => event.data.delta)
        .join('');
      assert.equal(joined, call.arguments);
      assert.doesNotThrow(() => JSON.parse(call.arguments as string));
    }
  });

  it('function calls keep one call_id across the stream, the terminal response and the store', async () => {
    const { terminal, events } = await stream({ input: 'call get_weather', tools: TOOLS }, '');
    const added = events.find((event) => event.data.type === 'response.output_item.added' && event.data.item.type === 'function_call');
    const call = terminal.output.find((item: AnyJson) => item.type === 'function_call');
    assert.equal(added?.data.item.call_id, call.call_id);
    const stored = (await getJson(`${gw.url}/v1/responses/${String(terminal.id)}`)).body;
    assert.equal(stored.output.find((item: AnyJson) => item.type === 'function_call').call_id, call.call_id);
  });

  it('item status null: every item status is in_progress, completed or incomplete', async () => {
    const { terminal } = await stream({ input: 'call get_weather', tools: TOOLS }, 'reasoning=1');
    for (const item of terminal.output as AnyJson[]) assert.equal(item.status, 'completed');
  });

  it('out-of-order and duplicate sequence numbers: renumbered from 0 without gaps', async () => {
    await stream({ input: 'one two three four five six' }, 'quirk=seq-out-of-order');
    await stream({ input: 'one two three four five six' }, 'quirk=seq-duplicate');
  });

  it('content_index not reset per item: each item counts its parts from 0', async () => {
    const { events } = await stream({ input: 'think' }, 'reasoning=1;quirk=content-index-not-reset');
    const messageParts = events.filter((event) => event.data.output_index === 1 && 'content_index' in event.data);
    assert.ok(messageParts.length > 0);
    for (const event of messageParts) assert.equal(event.data.content_index, 0);
  });

  it('a done text longer than the deltas: the missing text is sent as a delta', async () => {
    const { terminal } = await stream({ input: 'hello there' }, 'quirk=text-done-extends');
    assert.equal(terminal.output[0].content[0].text, 'You said: hello there (and more)');
  });

  it('a done text that contradicts the deltas: the text the client saw wins', async () => {
    const { terminal } = await stream({ input: 'hello there' }, 'quirk=text-done-differs');
    assert.equal(terminal.output[0].content[0].text, 'You said: hello there');
  });

  it('the same over a long answer, its deltas kept in blocks: the client saw every one of them', async () => {
    const long = Array.from({ length: 150 }, (_, i) => `w${i}`).join(' ');
    const { terminal: differs, events } = await stream({ input: long }, 'quirk=text-done-differs');
    const deltas = events.filter((event) => event.data.type === 'response.output_text.delta');
    assert.ok(deltas.length > 100, `${deltas.length} deltas: more than three blocks`);
    assert.equal(differs.output[0].content[0].text, `You said: ${long}`);
    assert.equal(deltas.map((event) => event.data.delta).join(''), `You said: ${long}`);
    const { terminal: extends_ } = await stream({ input: long }, 'quirk=text-done-extends');
    assert.equal(extends_.output[0].content[0].text, `You said: ${long} (and more)`);
  });

  it('vLLM\'s own data: [DONE] is not doubled', async () => {
    const { text } = await stream({ input: 'hi' }, 'quirk=vllm-done');
    assert.equal(text.split('data: [DONE]').length, 2);
  });

  it('a missing terminal event: error event, then response.failed, stored as failed', async () => {
    const { terminal, events } = await stream({ input: 'hello there' }, 'quirk=no-terminal');
    assert.equal(terminal.status, 'failed');
    assertFailedWith(terminal, 'upstream_stream_interrupted');
    const error = events.find((event) => event.data.type === 'error');
    assert.equal(error?.data.error.code, 'upstream_stream_interrupted');
    assert.equal(error?.data.error.type, 'server_error');
    assert.deepEqual((await getJson(`${gw.url}/v1/responses/${String(terminal.id)}`)).body, terminal);
  });

  it('a stream that ends after output_item.added: the item is closed as incomplete, response.failed', async () => {
    const { terminal } = await stream({ input: 'hello there' }, 'quirk=end-after-item-added');
    assert.equal(terminal.status, 'failed');
    assert.equal(terminal.output.length, 1);
    assert.equal(terminal.output[0].status, 'incomplete');
  });

  it('an error event from vLLM (flat form): nested error event, then response.failed', async () => {
    const { terminal, events } = await stream({ input: 'hello there' }, 'quirk=error-event');
    const error = events.find((event) => event.data.type === 'error');
    assert.equal(error?.data.error.code, 'engine_dead');
    assert.equal(error?.data.error.message, 'the engine died');
    assert.equal(terminal.status, 'failed');
    assert.deepEqual(terminal.error, { code: 'server_error', message: 'the engine died (engine_dead)' });
  });

  it('a connection cut mid-stream: error event and response.failed with sequence numbers', async () => {
    const { terminal, events } = await stream({ input: 'one two three four five' }, 'reset-after=6');
    const error = events.find((event) => event.data.type === 'error');
    assert.equal(error?.data.error.code, 'upstream_stream_interrupted');
    assert.equal(terminal.status, 'failed');
    assert.equal((await getJson(`${gw.url}/v1/responses/${String(terminal.id)}`)).body.status, 'failed');
  });

  it('vLLM going silent mid-stream: upstream_timeout, then response.failed', async () => {
    const { terminal, events } = await stream({ input: 'one two three four five' }, 'stall-after=6');
    assert.equal(events.find((event) => event.data.type === 'error')?.data.error.code, 'upstream_timeout');
    assertFailedWith(terminal, 'upstream_timeout');
  });

  it('a response cut by max_output_tokens: response.incomplete with its reason', async () => {
    const { terminal } = await stream({ input: 'one two three four five six', max_output_tokens: 2 }, '');
    assert.equal(terminal.status, 'incomplete');
    assert.deepEqual(terminal.incomplete_details, { reason: 'max_output_tokens' });
    assert.equal(terminal.completed_at, null);
  });

  it('non-streamed answers have the same shape and ids', async () => {
    const res = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'call get_weather', tools: TOOLS }, { 'x-sim': 'reasoning=1' });
    const body = res.json();
    checkResponseObject(body);
    assert.deepEqual(body.output.map((item: AnyJson) => item.type), ['reasoning', 'function_call']);
    assert.equal(res.headers['content-type'], 'application/json');
  });

  it('answers 502 when vLLM answers garbage, or a stream with no event stream', async () => {
    const garbage = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'x' }, { 'x-sim': 'garbage' });
    assert.equal(garbage.status, 502);
    assert.equal(garbage.json().error.code, 'upstream_invalid_response');
    const wrongType = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'x', stream: true }, { 'x-sim': 'wrong-content-type' });
    assert.equal(wrongType.status, 502);
    const empty = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'x' }, { 'x-sim': 'no-body' });
    assert.equal(empty.status, 502);
  });
});

describe('the simulator really reproduces each quirk', () => {
  it('every quirk breaks a rule when vLLM\'s stream is relayed raw', async () => {
    const raw = await startGateway(sim.url, { 'passthrough-raw': 'true' });
    try {
      const cases: [object, string][] = [
        [{ input: 'think' }, 'reasoning=1'],
        [{ input: 'think' }, 'reasoning=1;quirk=unannounced-reasoning-part'],
        [{ input: 'call get_weather', tools: TOOLS }, 'quirk=fc-args-mismatch'],
        [{ input: 'one two three four five six' }, 'quirk=seq-out-of-order'],
        [{ input: 'one two three four five six' }, 'quirk=seq-duplicate'],
        [{ input: 'think' }, 'reasoning=1;quirk=content-index-not-reset'],
        [{ input: 'hello there' }, 'quirk=text-done-differs'],
        [{ input: 'hello there' }, 'quirk=no-terminal'],
        [{ input: 'hello there' }, 'quirk=end-after-item-added'],
        [{ input: 'hello there' }, 'quirk=error-event'],
      ];
      for (const [body, switches] of cases) {
        const res = await postJson(`${raw.url}/v1/responses`, { model: 'm', stream: true, ...body }, { 'x-sim': switches });
        assert.throws(() => checkStream(res.text()), assert.AssertionError, `${switches} should break a rule`);
      }
    } finally {
      await raw.close();
    }
  });
});

describe('every vLLM recording, replayed behind the gateway', () => {
  const recordings = loadCassettes().filter(isVllmRecording);
  for (const cassette of recordings) {
    for (const turn of cassette.turns.filter((t) => t.request.path === '/v1/responses' && t.request.body['previous_response_id'] === undefined)) {
      for (const store of [true, false]) {
        it(`${cassette.name} ${turn.filename}, store: ${String(store)}`, async () => {
          sim.enqueue(replayTurn(turn));
          const res = await postJson(`${gw.url}/v1/responses`, { ...turn.request.body, store });
          assert.equal(res.status, 200, res.text());
          const response = turn.response.sse !== undefined ? checkStream(res.text()).terminal : res.json();
          checkResponseObject(response);
          assert.equal(response.store, store);
          const stored = await getJson(`${gw.url}/v1/responses/${String(response.id)}`);
          if (store) assert.deepEqual(stored.body, response, 'the stored response equals the one sent');
          else assert.equal(stored.status, 404);
        });
      }
    }
  }
});

describe('the official openai SDK', () => {
  it('consumes the gateway\'s streams with its stream helper (which rejects index mismatches)', async () => {
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    for (const switches of ['reasoning=1', 'reasoning=1;quirk=unannounced-reasoning-part,content-index-not-reset', 'quirk=fc-args-mismatch']) {
      const events: string[] = [];
      const helper = client.responses
        .stream({ model: 'm', input: 'call get_weather for Paris', tools: TOOLS as never }, { headers: { 'x-sim': switches } })
        .on('event', (event) => events.push(event.type));
      const final = await helper.finalResponse();
      assert.equal(final.status, 'completed', switches);
      assert.ok(events.includes('response.completed'));
      const retrieved = await client.responses.retrieve(final.id);
      // The helper adds its own parsed_arguments to function calls; the rest is what was streamed.
      const withoutParsed = (output: readonly object[]) => output.map(({ parsed_arguments: _parsed, ...item }: AnyJson) => item);
      assert.deepEqual(withoutParsed(retrieved.output), withoutParsed(final.output));
    }
    const stateful = await client.responses.create({ model: 'm', input: 'first' });
    const next = await client.responses.create({ model: 'm', input: 'second', previous_response_id: stateful.id });
    assert.equal(next.output_text, 'You said: second');
    const items = await client.responses.inputItems.list(next.id);
    assert.equal(items.data.length, 3);
  });
});

describe('flags and other routes', () => {
  it('--raw-upstream-fields keeps vLLM\'s private fields', async () => {
    const raw = await startGateway(sim.url, { 'raw-upstream-fields': 'true' });
    try {
      const body = (await postJson(`${raw.url}/v1/responses`, { model: 'm', input: 'x' })).json();
      assert.ok('kv_transfer_params' in body && 'input_messages' in body);
      checkResponseObject(body, 'raw', { rawFields: true });
    } finally {
      await raw.close();
    }
  });

  it('leaves other routes byte for byte', async () => {
    const chunks = ['data: {"id":"c","choices":[{"delta":{"content":"a"}}]}\n\n', 'data: [DONE]\n\n'];
    sim.enqueue(sseChunks(chunks));
    const res = await postJson(`${gw.url}/v1/chat/completions`, { stream: true });
    assert.equal(res.text(), chunks.join(''));
    assert.equal(parseSse(res.text()).length, 2);
  });
});
