// Huge inputs: --max-input-items bounds what one response may hold (input and history
// together), and large bodies are read on a parser thread with the same answers as small
// ones. (What they cost the event loop is measured by npm run stress:inputs.)
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { THREAD_PARSE_FROM_BYTES } from '../src/responses/request-parser.ts';
import type { SimVllm } from '../sim/vllm-sim.ts';
import { closeAll, metricValue, startSimAndGateway, type TestGateway } from './helpers/gateway.ts';
import { postJson, send } from './helpers/http.ts';
import { create, type AnyJson } from './helpers/responses-api.ts';

const messages = (count: number, text = 'x'): { role: string; content: string }[] =>
  Array.from({ length: count }, (_, i) => ({ role: 'user', content: `${text} ${i}` }));

describe('--max-input-items', () => {
  let sim: SimVllm;
  let gw: TestGateway;
  before(async () => ({ sim, gw } = await startSimAndGateway({ 'max-input-items': '6' })));
  after(() => closeAll(gw, sim));

  const refused = async (body: object, what: string): Promise<void> => {
    const before = sim.requests.length;
    const res = await postJson(`${gw.url}/v1/responses`, body);
    assert.equal(res.status, 400, what);
    assert.equal(res.json().error.code, 'too_many_input_items', what);
    assert.equal(res.json().error.param, 'input', what);
    assert.match(res.json().error.message, /at most 6 are accepted \(--max-input-items\)/);
    assert.equal(sim.requests.length, before, `${what}: vLLM was not called`);
  };

  it('refuses an input with more items than the limit, and takes one at the limit', async () => {
    await refused({ model: 'm', input: messages(7) }, 'seven items');
    assert.equal((await create(gw.url, { model: 'm', input: messages(6), store: false })).status, 200);
  });

  it('counts the history a continuation brings', async () => {
    // 3 input items and 1 output: 4 in its context.
    const first = (await create(gw.url, { model: 'm', input: messages(3) })).json();
    const second = await create(gw.url, { model: 'm', input: 'one more', previous_response_id: first.id });
    assert.equal(second.status, 200, '4 + 1 fits');
    // Its context is now 6 (4, its input, its output): one more item is one too many.
    await refused({ model: 'm', input: 'too many now', previous_response_id: second.json().id }, 'a continuation past the limit');
    await refused({ model: 'm', input: messages(3), previous_response_id: first.id }, '4 + 3');
  });

  it('counts the items of a conversation', async () => {
    const conversation = (await postJson(`${gw.url}/v1/conversations`, { items: messages(5) })).json();
    assert.equal((await create(gw.url, { model: 'm', input: 'sixth', conversation: conversation.id })).status, 200);
    await refused({ model: 'm', input: 'eighth', conversation: conversation.id }, 'a conversation past the limit');
  });
});

describe('large bodies, read on a parser thread', () => {
  let sim: SimVllm;
  let gw: TestGateway;
  before(async () => ({ sim, gw } = await startSimAndGateway({ 'max-input-items': '5000' })));
  after(() => closeAll(gw, sim));

  /** A body over the thread threshold: `count` messages padded to reach it. */
  const large = (count: number, extra: object = {}): AnyJson => {
    const padding = 'p'.repeat(Math.ceil(THREAD_PARSE_FROM_BYTES / count) + 10);
    return { model: 'm', input: messages(count, padding), ...extra };
  };

  it('are stored and continued like small ones', async () => {
    const body = large(400);
    assert.ok(JSON.stringify(body).length >= THREAD_PARSE_FROM_BYTES);
    const arrived = sim.nextRequest();
    const first = await create(gw.url, body);
    assert.equal(first.status, 200);
    assert.equal(((await arrived).json?.['input'] as unknown[]).length, 400, 'vLLM got every item');
    const items = await send(`${gw.url}/v1/responses/${String(first.json().id)}/input_items?limit=100&order=asc`);
    assert.equal(items.json().data[0].content[0].text, body.input[0].content);
    const next = sim.nextRequest();
    assert.equal((await create(gw.url, { model: 'm', input: 'and?', previous_response_id: first.json().id })).status, 200);
    assert.equal(((await next).json?.['input'] as unknown[]).length, 402, 'the history came back whole');
  });

  it('answer the same 400s as small bodies', async () => {
    const wrongItem = large(300);
    wrongItem.input[150] = { type: 'no_such_type' };
    const res = await postJson(`${gw.url}/v1/responses`, wrongItem);
    assert.equal(res.status, 400);
    assert.deepEqual([res.json().error.code, res.json().error.param], ['invalid_request', 'input[150].type']);

    const tooMany = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: messages(30_000) });
    assert.equal(tooMany.status, 400);
    assert.equal(tooMany.json().error.code, 'too_many_input_items');

    const notJson = await send(`${gw.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"model":"m","input":"${'x'.repeat(THREAD_PARSE_FROM_BYTES)}"`,
    });
    assert.equal(notJson.status, 400);
    assert.equal(notJson.json().error.code, 'invalid_json');
  });

  it("send vLLM the client's own bytes when nothing needs changing (store: false, no history)", async () => {
    const raw = JSON.stringify(large(300, { store: false }));
    const arrived = sim.nextRequest();
    const res = await send(`${gw.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw });
    assert.equal(res.status, 200);
    assert.equal((await arrived).body.toString(), raw);
  });

  it('resolve item references', async () => {
    const conversation = (await postJson(`${gw.url}/v1/conversations`, { items: [{ role: 'user', content: 'referenced text' }] })).json();
    const referenced = (await send(`${gw.url}/v1/conversations/${String(conversation.id)}/items`)).json().data[0];
    const body = large(300);
    body.input.push({ type: 'item_reference', id: referenced.id });
    const arrived = sim.nextRequest();
    assert.equal((await create(gw.url, body)).status, 200);
    const input = (await arrived).json?.['input'] as AnyJson[];
    assert.equal(input.at(-1).content, 'referenced text');
  });
});

describe('event-loop delay', () => {
  let sim: SimVllm;
  let gw: TestGateway;
  before(async () => ({ sim, gw } = await startSimAndGateway()));
  after(() => closeAll(gw, sim));

  it('is exported in /metrics', async () => {
    const p99 = await metricValue(gw.url, 'gateway_nodejs_eventloop_lag_p99_seconds');
    assert.ok(Number.isFinite(p99) && p99 >= 0);
  });
});
