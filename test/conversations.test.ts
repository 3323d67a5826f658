// The Conversations API, and responses created in a conversation.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SimVllm } from '../sim/vllm-sim.ts';
import { closeAll, startSimAndGateway, type TestGateway } from './helpers/gateway.ts';
import { postJson, send } from './helpers/http.ts';
import { create, createStream, deleteJson, getJson, messageText, type AnyJson } from './helpers/responses-api.ts';

let sim: SimVllm;
let gw: TestGateway;

before(async () => ({ sim, gw } = await startSimAndGateway()));
after(() => closeAll(gw, sim));

async function newConversation(body: object = {}): Promise<AnyJson> {
  const res = await postJson(`${gw.url}/v1/conversations`, body);
  assert.equal(res.status, 200, res.text());
  return res.json();
}

describe('conversations', () => {
  it('are created with items and metadata, read, updated and deleted', async () => {
    const conversation = await newConversation({
      metadata: { topic: 'demo' },
      items: [{ type: 'message', role: 'user', content: 'Hello' }],
    });
    assert.match(conversation.id, /^conv_[0-9a-f]{32}$/);
    assert.equal(conversation.object, 'conversation');
    assert.equal(typeof conversation.created_at, 'number');
    assert.deepEqual(conversation.metadata, { topic: 'demo' });
    assert.deepEqual((await getJson(`${gw.url}/v1/conversations/${conversation.id}`)).body, conversation);

    const updated = await postJson(`${gw.url}/v1/conversations/${conversation.id}`, { metadata: { topic: 'changed' } });
    assert.deepEqual(updated.json().metadata, { topic: 'changed' });

    const deleted = await deleteJson(`${gw.url}/v1/conversations/${conversation.id}`);
    assert.deepEqual(deleted.body, { id: conversation.id, object: 'conversation.deleted', deleted: true });
    assert.equal((await getJson(`${gw.url}/v1/conversations/${conversation.id}`)).status, 404);
    assert.equal((await getJson(`${gw.url}/v1/conversations/${conversation.id}/items`)).status, 404);
  });

  it('accept an empty body, and refuse bad metadata or too many items', async () => {
    const empty = await send(`${gw.url}/v1/conversations`, { method: 'POST' });
    assert.equal(empty.status, 200);
    assert.deepEqual(empty.json().metadata, {});
    const badMetadata = await postJson(`${gw.url}/v1/conversations`, { metadata: { n: 5 } });
    assert.equal(badMetadata.status, 400);
    assert.equal(badMetadata.json().error.param, 'metadata');
    const tooMany = await postJson(`${gw.url}/v1/conversations`, {
      items: Array.from({ length: 21 }, () => ({ role: 'user', content: 'x' })),
    });
    assert.equal(tooMany.status, 400);
    assert.equal((await postJson(`${gw.url}/v1/conversations`, { items: [{ type: 'bogus' }] })).status, 400);
  });

  it('list, add, get and delete items', async () => {
    const conversation = await newConversation({ items: [{ role: 'user', content: 'one' }] });
    const base = `${gw.url}/v1/conversations/${conversation.id}/items`;
    const added = await postJson(base, { items: [{ role: 'user', content: 'two' }, { role: 'assistant', content: 'three' }] });
    assert.equal(added.status, 200);
    assert.equal(added.json().object, 'list');
    assert.equal(added.json().data.length, 2);
    assert.match(added.json().data[0].id, /^msg_/);

    const listed = await getJson(`${base}?order=asc`);
    assert.deepEqual(listed.body.data.map(messageText), ['one', 'two', 'three']);
    const newest = await getJson(`${base}?limit=1`);
    assert.deepEqual(newest.body.data.map(messageText), ['three']);
    assert.equal(newest.body.has_more, true);
    const rest = await getJson(`${base}?limit=5&after=${String(newest.body.last_id)}`);
    assert.deepEqual(rest.body.data.map(messageText), ['two', 'one']);

    const second = listed.body.data[1];
    assert.deepEqual((await getJson(`${base}/${String(second.id)}`)).body, second);
    const afterDelete = await deleteJson(`${base}/${String(second.id)}`);
    assert.equal(afterDelete.status, 200);
    assert.equal(afterDelete.body.object, 'conversation');
    assert.equal((await getJson(`${base}/${String(second.id)}`)).status, 404);
    assert.deepEqual((await getJson(`${base}?order=asc`)).body.data.map(messageText), ['one', 'three']);
    assert.equal((await deleteJson(`${base}/${String(second.id)}`)).status, 404);
  });

  it('answer unknown or malformed ids with 404 or 400', async () => {
    assert.equal((await getJson(`${gw.url}/v1/conversations/conv_00000000000000000000000000000000`)).status, 404);
    assert.equal((await getJson(`${gw.url}/v1/conversations/resp_123`)).status, 400);
    const conversation = await newConversation();
    assert.equal((await getJson(`${gw.url}/v1/conversations/${conversation.id}/items/msg_nope`)).status, 404);
    assert.equal((await postJson(`${gw.url}/v1/conversations/conv_00000000000000000000000000000000/items`, { items: [{ role: 'user', content: 'x' }] })).status, 404);
    assert.equal((await postJson(`${gw.url}/v1/conversations/${conversation.id}/items`, { items: [] })).status, 400);
    assert.equal((await send(`${gw.url}/v1/conversations/${conversation.id}`, { method: 'PUT', body: '{}' })).status, 405);
  });
});

describe('responses in a conversation', () => {
  it('read the conversation as history and append their input and output', async () => {
    const conversation = await newConversation({ items: [{ role: 'user', content: 'Remember CHERRY.' }] });
    const arrived = sim.nextRequest();
    const first = await create(gw.url, { model: 'm', input: 'What should you remember?', conversation: conversation.id });
    assert.equal(first.status, 200);
    assert.deepEqual(first.json().conversation, { id: conversation.id });
    const upstream: AnyJson = (await arrived).json;
    assert.equal('conversation' in upstream, false);
    assert.equal(upstream.store, false);
    assert.deepEqual((upstream.input as AnyJson[]).map(messageText), ['Remember CHERRY.', 'What should you remember?']);

    const nextArrived = sim.nextRequest();
    const second = await createStream(gw.url, { model: 'm', input: 'And now?', conversation: { id: conversation.id } });
    assert.equal(second.terminal.status, 'completed');
    assert.deepEqual(((await nextArrived).json?.['input'] as AnyJson[]).map(messageText), [
      'Remember CHERRY.',
      'What should you remember?',
      'You said: What should you remember?',
      'And now?',
    ]);
    const items = await getJson(`${gw.url}/v1/conversations/${conversation.id}/items?order=asc`);
    assert.deepEqual(items.body.data.map(messageText), [
      'Remember CHERRY.',
      'What should you remember?',
      'You said: What should you remember?',
      'And now?',
      'You said: And now?',
    ]);
    // The items listed are the very items of the responses.
    assert.equal(items.body.data[2].id, first.json().output[0].id);
    assert.equal(items.body.data[4].id, second.terminal.output[0].id);
  });

  it('appends a store: false turn to the conversation without keeping the response', async () => {
    const conversation = await newConversation();
    const turn = (await create(gw.url, { model: 'm', input: 'unstored', conversation: conversation.id, store: false })).json();
    assert.equal((await getJson(`${gw.url}/v1/responses/${turn.id}`)).status, 404);
    assert.equal((await getJson(`${gw.url}/v1/conversations/${conversation.id}/items`)).body.data.length, 2);
  });
});
