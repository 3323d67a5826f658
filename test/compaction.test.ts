// Remote compaction: POST /v1/responses/compact summarises a conversation with the model
// and returns its user messages and one sealed compaction item, which continues the
// conversation when sent back; the official SDK's client.responses.compact() is the client.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { SimVllm } from '../sim/vllm-sim.ts';
import { closeAll, startSimAndGateway, type TestGateway } from './helpers/gateway.ts';
import { postJson } from './helpers/http.ts';
import { checkCompactedSchema } from './helpers/openai-schema.ts';
import { create, createStream, type AnyJson } from './helpers/responses-api.ts';

describe('remote compaction (POST /v1/responses/compact)', () => {
  let sim: SimVllm;
  let gw: TestGateway;
  let client: OpenAI;
  before(async () => {
    ({ sim, gw } = await startSimAndGateway({ 'state-secret': 'compaction test secret!' }));
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  after(() => closeAll(gw, sim));
  const lastSent = (): AnyJson => sim.requests.at(-1)?.json as AnyJson;
  const compact = (body: AnyJson, headers: Record<string, string> = {}) => postJson(`${gw.url}/v1/responses/compact`, body, headers);

  it('compacts a stored conversation: its user messages, then one compaction item', async () => {
    const first = (await create(gw.url, { model: 'm', input: 'my name is Ada' })).json();
    const second = (await create(gw.url, { model: 'm', previous_response_id: first.id, input: 'I like tea' })).json();
    const compacted = await client.responses.compact({ model: 'm', previous_response_id: second.id, instructions: 'Be brief.' });
    checkCompactedSchema(compacted, 'POST /v1/responses/compact');
    assert.equal(compacted.object, 'response.compaction');
    assert.match(compacted.id, /^resp_/);
    assert.equal(typeof compacted.created_at, 'number');
    const output = compacted.output as AnyJson[];
    assert.deepEqual(output.map((item) => [item.type, item.role]), [['message', 'user'], ['message', 'user'], ['compaction', undefined]]);
    assert.deepEqual(output[0].content, [{ type: 'input_text', text: 'my name is Ada' }]);
    assert.match(output[2].id, /^cmp_/);
    assert.equal(typeof output[2].encrypted_content, 'string');
    assert.ok(compacted.usage.input_tokens > 0 && compacted.usage.total_tokens >= compacted.usage.output_tokens);

    const sent = lastSent();
    assert.equal(sent.stream, false);
    assert.equal(sent.store, false);
    assert.equal(sent.instructions, 'Be brief.');
    assert.deepEqual(sent.input.map((item: AnyJson) => item.role), ['user', 'assistant', 'user', 'assistant', 'user']);
    assert.match(sent.input[4].content, /^Write a summary of the conversation above/);
  });

  it('compacts a stateless conversation, and the compaction continues it', async () => {
    const conversation = [
      { role: 'user', content: 'we are fixing bug 42' },
      { role: 'assistant', content: 'Looking at it.' },
      { role: 'user', content: 'the fix is in parser.ts' },
    ];
    const answer = await compact({ model: 'm', input: conversation });
    assert.equal(answer.status, 200, answer.text());
    checkCompactedSchema(answer.json(), 'stateless compaction');
    const output = answer.json().output as AnyJson[];
    assert.equal(output.length, 3);
    const next = await create(gw.url, { model: 'm', store: false, input: [...output, { role: 'user', content: 'what next?' }] });
    assert.equal(next.status, 200, next.text());
    const sent = lastSent().input as AnyJson[];
    assert.deepEqual(sent.map((item) => item.role), ['user', 'user', 'user', 'user']);
    assert.match(sent[2].content, /^Summary of the earlier conversation \(compacted\):\nYou said: Write a summary/);

    // Compacted again, the old summary is held by the new one, not listed as a user message.
    const again = await compact({ model: 'm', input: [...output, { role: 'user', content: 'what next?' }] });
    assert.equal(again.status, 200, again.text());
    assert.deepEqual((again.json().output as AnyJson[]).map((item) => item.type), ['message', 'message', 'message', 'compaction']);
  });

  it('refuses an altered compaction item, and a reasoning seal passed off as one', async () => {
    const output = (await compact({ model: 'm', input: 'remember this' })).json().output as AnyJson[];
    const item = output.at(-1);
    const bytes = Buffer.from(item.encrypted_content, 'base64');
    bytes[bytes.length - 2] = (bytes[bytes.length - 2] as number) ^ 4;
    const altered = await create(gw.url, { model: 'm', store: false, input: [{ type: 'compaction', encrypted_content: bytes.toString('base64') }, { role: 'user', content: 'go' }] });
    assert.equal(altered.status, 400, altered.text());
    assert.equal(altered.json().error.code, 'invalid_encrypted_content');
    assert.equal(altered.json().error.param, 'input[0].encrypted_content');

    const reasoned = (await create(gw.url, { model: 'm', store: false, reasoning: {}, include: ['reasoning.encrypted_content'], input: 'think' })).json();
    const sealedReasoning = (reasoned.output as AnyJson[]).find((entry) => entry.type === 'reasoning').encrypted_content;
    const swapped = await create(gw.url, { model: 'm', store: false, input: [{ type: 'compaction', encrypted_content: sealedReasoning }, { role: 'user', content: 'go' }] });
    assert.equal(swapped.status, 400, swapped.text());
    assert.equal(swapped.json().error.code, 'invalid_encrypted_content');
  });

  it('clear 4xx for what it cannot do; vLLM\'s refusal passes through', async () => {
    const noModel = await compact({ input: 'x' });
    assert.equal(noModel.status, 400);
    assert.equal(noModel.json().error.param, 'model');
    const nothing = await compact({ model: 'm' });
    assert.equal(nothing.status, 400);
    assert.equal(nothing.json().error.param, 'input');
    const unknown = await compact({ model: 'm', previous_response_id: 'resp_0123456789abcdef0123456789abcdef' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json().error.code, 'previous_response_not_found');
    const refused = await compact({ model: 'm', input: 'x' }, { 'x-sim': 'status=400' });
    assert.equal(refused.status, 400);
    assert.match(refused.json().error.message, /simulated error 400/);
  });
});

describe('server-side compaction (context_management)', () => {
  let sim: SimVllm;
  let gw: TestGateway;
  before(async () => ({ sim, gw } = await startSimAndGateway({ 'state-secret': 'compaction test secret!' })));
  after(() => closeAll(gw, sim));
  const CONVERSATION = [
    { role: 'developer', content: 'You are terse.' },
    { role: 'user', content: 'we are fixing bug 42 in the parser, which drops trailing commas' },
    { role: 'assistant', content: 'I found the loop that skips the last token; the fix is one line.' },
    { role: 'user', content: 'apply it' },
  ];
  const MANAGED = [{ type: 'compaction', compact_threshold: 40 }];

  it('over the threshold: the conversation is summarised first, the compaction item leads the output', async () => {
    for (const stream of [false, true]) {
      const from = sim.requests.length;
      const body = { model: 'm', store: false, context_management: MANAGED, input: CONVERSATION };
      const response = stream ? (await createStream(gw.url, body)).terminal : (await create(gw.url, body)).json();
      assert.deepEqual((response.output as AnyJson[]).map((item) => item.type), ['compaction', 'message']);
      assert.match(response.output[0].id, /^cmp_/);
      const [summaryRequest, generation] = sim.requests.slice(from).map((request) => request.json as AnyJson);
      assert.equal(summaryRequest.stream, false);
      assert.match(summaryRequest.input.at(-1).content, /^Write a summary of the conversation above/);
      assert.equal(summaryRequest.instructions, 'You are terse.');
      assert.equal(generation.instructions, 'You are terse.', 'instructions are kept, not summarised away');
      assert.deepEqual(generation.input.map((item: AnyJson) => item.role), ['user', 'user']);
      assert.match(generation.input[0].content, /^Summary of the conversation so far \(compacted; it replaces every earlier message\):\nYou said: Write a summary/);
      assert.equal(generation.input[1].content, 'apply it');
      assert.equal(generation.context_management, undefined);
    }
  });

  it('under the threshold: nothing is summarised', async () => {
    const from = sim.requests.length;
    const answer = await create(gw.url, { model: 'm', context_management: [{ type: 'compaction', compact_threshold: 100_000 }], input: CONVERSATION });
    assert.deepEqual((answer.json().output as AnyJson[]).map((item) => item.type), ['message']);
    assert.equal(sim.requests.length - from, 1);
  });

  it('continued, stored or stateless, from the compaction on: what it summarised is not sent again', async () => {
    const first = (await create(gw.url, { model: 'm', context_management: MANAGED, input: CONVERSATION })).json();
    await create(gw.url, { model: 'm', previous_response_id: first.id, input: 'and test it' });
    const stored = sim.requests.at(-1)?.json as AnyJson;
    assert.deepEqual(stored.input.map((item: AnyJson) => item.role), ['user', 'assistant', 'user']);
    assert.match(stored.input[0].content, /^Summary of the conversation so far/);
    assert.equal(stored.instructions, 'You are terse.', 'the developer message before the compaction is kept');

    const stateless = (await create(gw.url, { model: 'm', store: false, context_management: MANAGED, input: CONVERSATION })).json();
    await create(gw.url, { model: 'm', store: false, input: [...CONVERSATION, ...stateless.output, { role: 'user', content: 'and test it' }] });
    const sent = sim.requests.at(-1)?.json as AnyJson;
    assert.deepEqual(sent.input.map((item: AnyJson) => item.role), ['user', 'assistant', 'user']);
    assert.equal(sent.instructions, 'You are terse.');

    // Compacted again by POST /v1/responses/compact: the server's summary is no user message.
    const compacted = await postJson(`${gw.url}/v1/responses/compact`, { model: 'm', input: [...CONVERSATION, ...stateless.output, { role: 'user', content: 'and test it' }] });
    assert.equal(compacted.status, 200, compacted.text());
    assert.deepEqual((compacted.json().output as AnyJson[]).map((item) => item.content?.[0]?.text ?? item.type), ['and test it', 'compaction']);
  });

  it('a context_management entry it cannot follow: 400 naming it', async () => {
    for (const [entry, param] of [
      [{ type: 'truncate' }, 'context_management[0].type'],
      [{ type: 'compaction' }, 'context_management[0].compact_threshold'],
      [{ type: 'compaction', compact_threshold: -1 }, 'context_management[0].compact_threshold'],
    ] as const) {
      const answer = await create(gw.url, { model: 'm', input: 'x', context_management: [entry] });
      assert.equal(answer.status, 400, answer.text());
      assert.equal(answer.json().error.param, param);
    }
  });
});
