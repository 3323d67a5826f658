// State: previous_response_id, stored responses, input items, deletion, store: false,
// restarts. The simulated vLLM records what it receives, so each test checks that vLLM
// got the whole history, in order, as one stateless request.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SimVllm } from '../sim/vllm-sim.ts';
import { closeAll, startGateway, startSimAndGateway, type TestGateway } from './helpers/gateway.ts';
import { openRequest, ChunkReader, send } from './helpers/http.ts';
import { create, createStream, deleteJson, getJson, messageText, type AnyJson } from './helpers/responses-api.ts';

let sim: SimVllm;
let gw: TestGateway;

before(async () => ({ sim, gw } = await startSimAndGateway()));
after(() => closeAll(gw, sim));

/** What vLLM received for the next request made by `action`. */
async function upstreamBodyOf<T>(action: () => Promise<T>): Promise<{ result: T; upstream: AnyJson }> {
  const arrived = sim.nextRequest();
  const result = await action();
  return { result, upstream: (await arrived).json };
}

function historyTexts(upstream: AnyJson): string[] {
  return (upstream.input as AnyJson[]).map((item) => `${item.role ?? item.type}: ${messageText(item)}`);
}

describe('previous_response_id', () => {
  it('sends vLLM the whole history as one stateless request, without previous_response_id', async () => {
    const first = (await create(gw.url, { model: 'm', input: 'My name is Ada.' })).json();
    assert.match(first.id, /^resp_[0-9a-f]{32}$/);
    assert.match(first.output[0].id, /^msg_[0-9a-f]{32}$/);
    assert.equal(first.store, true);
    assert.equal(first.previous_response_id, null);

    const { result, upstream } = await upstreamBodyOf(() =>
      create(gw.url, { model: 'm', input: 'What is my name?', previous_response_id: first.id, instructions: 'Be brief.' }),
    );
    assert.equal(result.status, 200);
    const second = result.json();
    assert.equal(second.previous_response_id, first.id);
    assert.equal(second.instructions, 'Be brief.');
    assert.equal(upstream.store, false, 'vLLM is told to keep nothing');
    assert.equal('previous_response_id' in upstream, false);
    assert.equal(upstream.instructions, 'Be brief.');
    assert.deepEqual(historyTexts(upstream), [
      'user: My name is Ada.',
      'assistant: You said: My name is Ada.',
      'user: What is my name?',
    ]);

    // instructions are not carried over (OpenAI's rule): only the new request's count.
    const { upstream: third } = await upstreamBodyOf(() =>
      create(gw.url, { model: 'm', input: 'And again?', previous_response_id: second.id }),
    );
    assert.equal('instructions' in third, false);
    assert.equal(third.input.length, 5);
  });

  it('works the same when streaming; the streamed id is the one to continue from', async () => {
    const first = await createStream(gw.url, { model: 'm', input: 'Remember APPLE.' });
    assert.equal(first.status, 200);
    assert.ok(first.endedWithDone);
    const created = first.events[0]?.data;
    assert.equal(created.type, 'response.created');
    assert.equal(created.response.id, first.terminal.id, 'one id from the first event to the last');

    const { result, upstream } = await upstreamBodyOf(() =>
      createStream(gw.url, { model: 'm', input: 'What did I ask?', previous_response_id: first.terminal.id }),
    );
    assert.equal(result.terminal.status, 'completed');
    assert.equal(upstream.stream, true);
    assert.deepEqual(historyTexts(upstream), ['user: Remember APPLE.', 'assistant: You said: Remember APPLE.', 'user: What did I ask?']);
  });

  it('stores exactly what the client received, streamed or not', async () => {
    const plain = await create(gw.url, { model: 'm', input: 'plain' });
    const stored = await getJson(`${gw.url}/v1/responses/${plain.json().id}`);
    assert.equal(stored.status, 200);
    assert.equal(stored.text, plain.text());

    const streamed = await createStream(gw.url, { model: 'm', input: 'streamed', metadata: { k: 'v' } });
    const storedStream = await getJson(`${gw.url}/v1/responses/${streamed.terminal.id}`);
    assert.deepEqual(storedStream.body, streamed.terminal);
    assert.deepEqual(storedStream.body.metadata, { k: 'v' });
  });

  it('carries a history of 1000 items', async () => {
    const input = Array.from({ length: 999 }, (_, i) => ({ role: 'user', content: `line ${i}` }));
    const first = (await create(gw.url, { model: 'm', input })).json();
    const { upstream } = await upstreamBodyOf(() => create(gw.url, { model: 'm', input: 'last', previous_response_id: first.id }));
    assert.equal(upstream.input.length, 1001);
    assert.equal(messageText(upstream.input[0]), 'line 0');
    assert.equal(messageText(upstream.input[998]), 'line 998');
    assert.equal(upstream.input[999].role, 'assistant');
    assert.equal(messageText(upstream.input[1000]), 'last');
  });

  it('branches: two continuations of one response at once each get their own history', async () => {
    const root = (await create(gw.url, { model: 'm', input: 'root' })).json();
    const [left, right] = await Promise.all([
      create(gw.url, { model: 'm', input: 'left', previous_response_id: root.id }),
      create(gw.url, { model: 'm', input: 'right', previous_response_id: root.id }),
    ]);
    const { upstream: leftNext } = await upstreamBodyOf(() =>
      create(gw.url, { model: 'm', input: 'left again', previous_response_id: left.json().id }),
    );
    const { upstream: rightNext } = await upstreamBodyOf(() =>
      create(gw.url, { model: 'm', input: 'right again', previous_response_id: right.json().id }),
    );
    assert.deepEqual(historyTexts(leftNext), ['user: root', 'assistant: You said: root', 'user: left', 'assistant: You said: left', 'user: left again']);
    assert.deepEqual(historyTexts(rightNext), ['user: root', 'assistant: You said: root', 'user: right', 'assistant: You said: right', 'user: right again']);
  });

  it('can be continued the instant the terminal event arrives', async () => {
    const res = await openRequest(`${gw.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-sim': 'deltas=30' },
      body: JSON.stringify({ model: 'm', input: 'quick', stream: true }),
    });
    const reader = new ChunkReader(res);
    const seen = await reader.until('event: response.completed');
    const terminalLine = seen.slice(seen.indexOf('event: response.completed'));
    const withData = terminalLine.includes('\n\n') ? terminalLine : await reader.until('\n\n', terminalLine);
    const id = JSON.parse(withData.split('\n')[1]?.slice(6) ?? '{}').response.id as string;
    // Sent before the stream has even ended.
    const next = await create(gw.url, { model: 'm', input: 'next', previous_response_id: id });
    assert.equal(next.status, 200);
    await reader.rest();
  });
});

describe('history vLLM would refuse', () => {
  it('keeps an empty assistant message in the history but never sends it to vLLM', async () => {
    const first = await create(gw.url, {
      model: 'm',
      input: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: '' },
        { role: 'user', content: 'still there?' },
      ],
    });
    assert.equal(first.status, 200, first.text());
    const items = await getJson(`${gw.url}/v1/responses/${String(first.json().id)}/input_items?order=asc`);
    assert.equal(items.body.data.length, 3, 'the stored history has all three');
    const { upstream } = await upstreamBodyOf(() => create(gw.url, { model: 'm', input: 'next', previous_response_id: first.json().id }));
    assert.deepEqual(historyTexts(upstream), ['user: hi', 'user: still there?', 'assistant: You said: still there?', 'user: next']);
  });
});

describe('store: false', () => {
  it('keeps nothing: neither retrievable nor continuable, and vLLM is told store: false', async () => {
    const { result, upstream } = await upstreamBodyOf(() => create(gw.url, { model: 'm', input: 'secret', store: false }));
    const body = result.json();
    assert.equal(body.store, false);
    assert.equal(upstream.store, false);
    assert.equal((await getJson(`${gw.url}/v1/responses/${body.id}`)).status, 404);
    const next = await create(gw.url, { model: 'm', input: 'more', previous_response_id: body.id });
    assert.equal(next.status, 404);
    assert.equal(next.json().error.code, 'previous_response_not_found');
  });

  it('can still continue a stored response without storing the new one', async () => {
    const first = (await create(gw.url, { model: 'm', input: 'kept' })).json();
    const { result, upstream } = await upstreamBodyOf(() =>
      create(gw.url, { model: 'm', input: 'not kept', previous_response_id: first.id, store: false }),
    );
    assert.equal(upstream.input.length, 3);
    assert.equal((await getJson(`${gw.url}/v1/responses/${result.json().id}`)).status, 404);
  });
});

describe('deletion', () => {
  it('removes a response; continuations made before keep working', async () => {
    const first = (await create(gw.url, { model: 'm', input: 'one' })).json();
    const second = (await create(gw.url, { model: 'm', input: 'two', previous_response_id: first.id })).json();
    const deleted = await deleteJson(`${gw.url}/v1/responses/${first.id}`);
    assert.deepEqual(deleted, { status: 200, body: { id: first.id, object: 'response.deleted', deleted: true } });
    assert.equal((await getJson(`${gw.url}/v1/responses/${first.id}`)).status, 404);
    assert.equal((await deleteJson(`${gw.url}/v1/responses/${first.id}`)).status, 404);
    assert.equal((await create(gw.url, { model: 'm', input: 'x', previous_response_id: first.id })).status, 404);
    const { upstream } = await upstreamBodyOf(() => create(gw.url, { model: 'm', input: 'three', previous_response_id: second.id }));
    assert.deepEqual(historyTexts(upstream), ['user: one', 'assistant: You said: one', 'user: two', 'assistant: You said: two', 'user: three']);
  });
});

describe('input items', () => {
  let responseId: string;
  let inputIds: string[];
  before(async () => {
    const first = (await create(gw.url, { model: 'm', input: [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }] })).json();
    const second = (await create(gw.url, { model: 'm', input: 'c', previous_response_id: first.id })).json();
    responseId = second.id;
    const all = await getJson(`${gw.url}/v1/responses/${responseId}/input_items?order=asc`);
    inputIds = all.body.data.map((item: AnyJson) => item.id);
  });

  it('lists the whole context before the response, newest first by default', async () => {
    const list = await getJson(`${gw.url}/v1/responses/${responseId}/input_items`);
    assert.equal(list.body.object, 'list');
    assert.equal(list.body.data.length, 4, 'a, b, the first answer, c');
    assert.equal(messageText(list.body.data[0]), 'c');
    assert.equal(list.body.first_id, list.body.data[0].id);
    assert.equal(list.body.last_id, list.body.data[3].id);
    assert.equal(list.body.has_more, false);
    assert.deepEqual([...inputIds].reverse(), list.body.data.map((item: AnyJson) => item.id));
  });

  it('pages with limit, after and before', async () => {
    const page = await getJson(`${gw.url}/v1/responses/${responseId}/input_items?order=asc&limit=1`);
    assert.deepEqual(page.body.data.map((item: AnyJson) => item.id), [inputIds[0]]);
    assert.equal(page.body.has_more, true);
    const next = await getJson(`${gw.url}/v1/responses/${responseId}/input_items?order=asc&limit=2&after=${inputIds[0]}`);
    assert.deepEqual(next.body.data.map((item: AnyJson) => item.id), inputIds.slice(1, 3));
    assert.equal(next.body.has_more, true);
    const last = await getJson(`${gw.url}/v1/responses/${responseId}/input_items?order=asc&limit=2&after=${inputIds[2]}`);
    assert.deepEqual(last.body.data.map((item: AnyJson) => item.id), [inputIds[3]]);
    assert.equal(last.body.has_more, false);
    const end = await getJson(`${gw.url}/v1/responses/${responseId}/input_items?order=asc&after=${inputIds[3]}`);
    assert.deepEqual(end.body, { object: 'list', data: [], first_id: null, last_id: null, has_more: false });
    const before = await getJson(`${gw.url}/v1/responses/${responseId}/input_items?order=desc&before=${inputIds[1]}`);
    assert.deepEqual(before.body.data.map((item: AnyJson) => item.id), [inputIds[3], inputIds[2]]);
  });

  it('refuses out-of-range parameters with 400', async () => {
    for (const [query, param] of [
      ['limit=0', 'limit'],
      ['limit=101', 'limit'],
      ['limit=ten', 'limit'],
      ['order=up', 'order'],
      ['after=msg_doesnotexist', 'after'],
    ] as const) {
      const res = await getJson(`${gw.url}/v1/responses/${responseId}/input_items?${query}`);
      assert.equal(res.status, 400, query);
      assert.equal(res.body.error.param, param);
      assert.equal(res.body.error.type, 'invalid_request_error');
    }
    const full = await getJson(`${gw.url}/v1/responses/${responseId}/input_items?limit=100`);
    assert.equal(full.status, 200);
  });
});

describe('bad input', () => {
  it('answers ids of the wrong kind with 400 and unknown ids with 404', async () => {
    const wrongKind = await getJson(`${gw.url}/v1/responses/msg_0123`);
    assert.equal(wrongKind.status, 400);
    assert.equal(wrongKind.body.error.param, 'response_id');
    const unknown = await getJson(`${gw.url}/v1/responses/resp_0123456789abcdef`);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'response_not_found');
    assert.equal((await getJson(`${gw.url}/v1/responses/resp_bad%20id`)).status, 400);
    assert.equal((await send(`${gw.url}/v1/responses/resp_x/nope`)).status, 404);
    assert.equal((await send(`${gw.url}/v1/responses/resp_x`, { method: 'PUT', body: '{}' })).status, 405);
  });

  it('refuses a bad previous_response_id, input or item before calling vLLM', async () => {
    const before = sim.requests.length;
    const cases: [object, number, string][] = [
      [{ input: 'x', previous_response_id: 'msg_123' }, 400, 'previous_response_id'],
      [{ input: 'x', previous_response_id: 42 }, 400, 'previous_response_id'],
      [{ input: 'x', previous_response_id: 'resp_00000000000000000000000000000000' }, 404, 'previous_response_id'],
      [{ input: 'x', previous_response_id: 'resp_abc', conversation: 'conv_abc' }, 400, 'conversation'],
      [{ input: 42 }, 400, 'input'],
      [{ input: [{ type: 'no_such_item' }] }, 400, 'input[0].type'],
      [{ input: [{ role: 'wizard', content: 'x' }] }, 400, 'input[0].role'],
      [{ input: [{ type: 'function_call_output', output: 'x' }] }, 400, 'input[0].call_id'],
      [{ input: [{ type: 'item_reference', id: 'msg_missing' }] }, 404, 'input[0].id'],
      [{ input: 'x', store: 'yes' }, 400, 'store'],
      [{ input: 'x', stream: 'yes' }, 400, 'stream'],
      [{ input: 'x', conversation: 'conv_00000000000000000000000000000000' }, 404, 'conversation'],
    ];
    for (const [body, status, param] of cases) {
      const res = await create(gw.url, { model: 'm', ...body });
      assert.equal(res.status, status, JSON.stringify(body));
      assert.equal(res.json().error.param, param, JSON.stringify(body));
    }
    assert.equal(sim.requests.length, before, 'vLLM was never called');
  });
});

describe('restarts and processes', () => {
  it('keeps state across a restart (SQLite file)', async () => {
    const dbUrl = `sqlite:${join(mkdtempSync(join(tmpdir(), 'rg-restart-')), 'state.db')}`;
    const firstRun = await startGateway(sim.url, { 'db-url': dbUrl });
    const first = (await create(firstRun.url, { model: 'm', input: 'before the restart' })).json();
    await firstRun.close();
    const secondRun = await startGateway(sim.url, { 'db-url': dbUrl });
    try {
      assert.equal((await getJson(`${secondRun.url}/v1/responses/${first.id}`)).status, 200);
      const { upstream } = await upstreamBodyOf(() => create(secondRun.url, { model: 'm', input: 'after', previous_response_id: first.id }));
      assert.deepEqual(historyTexts(upstream), ['user: before the restart', 'assistant: You said: before the restart', 'user: after']);
    } finally {
      await secondRun.close();
    }
  });
});
