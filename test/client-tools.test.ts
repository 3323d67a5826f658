// What coding agents send as tools, made to work on vLLM, which knows function tools only:
// custom tools (Codex's apply_patch, with a grammar), namespace tools (flattened, restored),
// hosted tools vLLM cannot run (--unsupported-tools), and their calls continued, stored or
// replayed by a stateless client.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { startSimVllm, type SimVllm } from '../sim/vllm-sim.ts';
import { closeAll, startGateway, type TestGateway } from './helpers/gateway.ts';
import { create, createStream, messageText, type AnyJson } from './helpers/responses-api.ts';

const APPLY_PATCH = {
  type: 'custom',
  name: 'apply_patch',
  description: 'Use the `apply_patch` tool to edit files.',
  format: { type: 'grammar', syntax: 'lark', definition: 'start: begin_patch hunk+ end_patch' },
};
const SHELL = {
  type: 'namespace',
  name: 'shell',
  description: 'Runs commands.',
  tools: [{ type: 'function', name: 'exec', description: 'Runs one command.', parameters: { type: 'object', properties: { cmd: { type: 'string' } }, required: ['cmd'] } }],
};

const types = (response: AnyJson): string[] => (response.output as AnyJson[]).map((item) => item.type);
const itemOf = (response: AnyJson, type: string): AnyJson => (response.output as AnyJson[]).find((item) => item.type === type);

describe('client tools vLLM cannot take as they are', () => {
  let sim: SimVllm;
  let gw: TestGateway;
  before(async () => {
    sim = await startSimVllm();
    gw = await startGateway(sim.url, {}, { captureLogs: true, logLevel: 'warn' });
  });
  after(() => closeAll(gw, sim));
  const since = (): number => sim.requests.length;
  const sent = (from: number): AnyJson[] => sim.requests.slice(from).map((request) => request.json);

  it('a custom tool is offered as a function of one string; its call comes back as a custom_tool_call, streamed and not', async () => {
    const from = since();
    const stream = await createStream(gw.url, { model: 'm', input: 'apply_patch please', tools: [APPLY_PATCH] });
    assert.equal(stream.status, 200, stream.text);
    const call = itemOf(stream.terminal, 'custom_tool_call');
    assert.deepEqual(types(stream.terminal), ['custom_tool_call']);
    assert.match(call.id, /^ctc_/);
    assert.equal(call.name, 'apply_patch');
    assert.equal(call.input, 'apply_patch please');
    assert.deepEqual(
      stream.events.map((event) => event.data.type).filter((type: string) => type.startsWith('response.custom_tool_call_input')),
      ['response.custom_tool_call_input.delta', 'response.custom_tool_call_input.done'],
    );
    const offered = (sent(from)[0].tools as AnyJson[])[0];
    assert.deepEqual([offered.type, offered.name, offered.parameters.required], ['function', 'apply_patch', ['input']]);
    assert.match(offered.description, /lark grammar:\nstart: begin_patch hunk\+ end_patch/);
    assert.deepEqual(stream.terminal.tools, [APPLY_PATCH], 'the response shows the tool as the client sent it');

    const json = await create(gw.url, { model: 'm', input: 'apply_patch please', tools: [APPLY_PATCH] });
    assert.deepEqual(types(json.json()), ['custom_tool_call']);
    assert.equal(itemOf(json.json(), 'custom_tool_call').input, 'apply_patch please');

    // The client runs it and continues: vLLM gets the call and its output as it knows them.
    const from2 = since();
    const next = await create(gw.url, {
      model: 'm',
      previous_response_id: stream.terminal.id,
      input: [{ type: 'custom_tool_call_output', call_id: call.call_id, output: 'Done! Updated 1 file.' }],
      tools: [APPLY_PATCH],
    });
    assert.equal(next.status, 200, next.text());
    assert.equal(messageText(itemOf(next.json(), 'message')), 'Tool results: Done! Updated 1 file.');
    const history = sent(from2)[0].input as AnyJson[];
    assert.deepEqual(history.slice(1).map((item) => item.type), ['function_call', 'function_call_output']);
    assert.equal(history[1].name, 'apply_patch');
    assert.deepEqual(JSON.parse(history[1].arguments), { input: 'apply_patch please' });
    assert.equal(history[2].call_id, call.call_id);
  });

  it("a namespace's functions are offered flattened and called under their own names, with their namespace", async () => {
    const from = since();
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const stream = await createStream(gw.url, { model: 'm', input: 'exec ls', tools: [SHELL] });
    const call = itemOf(stream.terminal, 'function_call');
    assert.deepEqual([call.name, call.namespace, JSON.parse(call.arguments)], ['exec', 'shell', { cmd: 'exec ls' }]);
    const done = stream.events.find((event) => event.data.type === 'response.function_call_arguments.done');
    assert.equal(done?.data.name, 'exec');
    assert.deepEqual((sent(from)[0].tools as AnyJson[]).map((tool) => tool.name), ['shell__exec']);
    const next = await client.responses.create({
      model: 'm',
      previous_response_id: stream.terminal.id,
      input: [{ type: 'function_call_output', call_id: call.call_id, output: 'README.md' }],
      tools: [SHELL] as AnyJson,
    });
    assert.equal(next.output_text, 'Tool results: README.md');
    const history = sent(from).at(-1).input as AnyJson[];
    assert.equal(history[1].name, 'shell__exec', 'vLLM sees the call under the name it was offered');
  });

  it('a stateless client replaying custom calls and namespaced calls gets them to vLLM in a form it accepts', async () => {
    const from = since();
    const replay = await create(gw.url, {
      model: 'm',
      store: false,
      input: [
        { role: 'user', content: 'fix it' },
        { type: 'custom_tool_call', call_id: 'call_1', name: 'apply_patch', input: '*** Begin Patch' },
        { type: 'custom_tool_call_output', call_id: 'call_1', output: [{ type: 'input_text', text: 'patched' }] },
        { type: 'function_call', call_id: 'call_2', name: 'exec', namespace: 'shell', arguments: '{"cmd":"ls"}' },
        { type: 'function_call_output', call_id: 'call_2', output: 'a.txt' },
      ],
      tools: [APPLY_PATCH, SHELL],
    });
    assert.equal(replay.status, 200, replay.text());
    const input = sent(from)[0].input as AnyJson[];
    assert.deepEqual(
      input.map((item) => [item.type ?? 'message', item.name ?? item.output ?? null]),
      [
        ['message', null],
        ['function_call', 'apply_patch'],
        ['function_call_output', 'patched'],
        ['function_call', 'shell__exec'],
        ['function_call_output', 'a.txt'],
      ],
    );
    assert.equal(messageText(itemOf(replay.json(), 'message')), 'Tool results: patched | a.txt');
  });

  it('tool_choice naming a custom or namespaced tool names its function', async () => {
    const from = since();
    await create(gw.url, { model: 'm', input: 'x', tools: [APPLY_PATCH, SHELL], tool_choice: { type: 'custom', name: 'apply_patch' } });
    await create(gw.url, { model: 'm', input: 'x', tools: [APPLY_PATCH, SHELL], tool_choice: { type: 'function', name: 'exec' } });
    assert.deepEqual(sent(from).map((body) => body.tool_choice), [
      { type: 'function', name: 'apply_patch' },
      { type: 'function', name: 'shell__exec' },
    ]);
  });

  it('hosted tools vLLM cannot run are left out of its request (logged once); the response echoes them', async () => {
    const from = since();
    const weather = { type: 'function', name: 'get_weather', parameters: { type: 'object', properties: {} } };
    const tools = [{ type: 'web_search' }, weather, { type: 'code_interpreter', container: { type: 'auto' } }];
    const first = await create(gw.url, { model: 'm', input: 'hello', tools, store: false });
    assert.equal(first.status, 200, first.text());
    await create(gw.url, { model: 'm', input: 'hello again', tools });
    assert.deepEqual(sent(from).map((body) => (body.tools as AnyJson[]).map((tool) => tool.type)), [['function'], ['function']]);
    // As sent, the function with what OpenAI fills in when a client leaves it out.
    assert.deepEqual(first.json().tools, [tools[0], { ...weather, strict: true }, tools[2]]);
    const logged = gw.logs.filter((line) => String(line['msg']).startsWith('a hosted tool the model server cannot run'));
    assert.deepEqual(logged.map((line) => line['tool_type']), ['web_search', 'code_interpreter'], 'each type once');
    const onlyHosted = await create(gw.url, { model: 'm', input: 'hi', tools: [{ type: 'web_search' }], tool_choice: 'required' });
    assert.equal(onlyHosted.status, 200);
    const body = sent(from).at(-1);
    assert.equal(body.tools, undefined, 'no tools left: none sent');
    assert.equal(body.tool_choice, undefined);
  });
});

describe('--unsupported-tools reject', () => {
  it('answers 400 naming the hosted tool, before vLLM is called', async () => {
    const sim = await startSimVllm();
    const gw = await startGateway(sim.url, { 'unsupported-tools': 'reject' });
    try {
      const res = await create(gw.url, { model: 'm', input: 'x', tools: [{ type: 'function', name: 'f' }, { type: 'file_search', vector_store_ids: [] }] });
      assert.equal(res.status, 400);
      assert.equal(res.json().error.param, 'tools[1].type');
      assert.match(res.json().error.message, /'file_search' cannot run on this gateway's model server/);
      assert.equal(sim.requests.length, 0);
    } finally {
      await closeAll(gw, sim);
    }
  });
});
