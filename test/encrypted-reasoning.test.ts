// Reasoning a stateless client carries: include: ["reasoning.encrypted_content"] returns
// each reasoning item sealed; sent back, it is unsealed for vLLM (the model reads its own
// reasoning again). Tampered, foreign and other tenants' items are refused with a 400;
// gateways that share --state-secret open each other's.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSimVllm, type SimVllm } from '../sim/vllm-sim.ts';
import { closeAll, startGateway, type TestGateway } from './helpers/gateway.ts';
import { create, createStream, type AnyJson } from './helpers/responses-api.ts';

const SECRET = 'a shared secret, long enough';
const ENCRYPTED = ['reasoning.encrypted_content'];

const reasoningOf = (response: AnyJson): AnyJson => (response.output as AnyJson[]).find((item) => item.type === 'reasoning');

describe('encrypted reasoning (store: false)', () => {
  let sim: SimVllm;
  let gw: TestGateway;
  let twin: TestGateway;
  let stranger: TestGateway;
  before(async () => {
    sim = await startSimVllm();
    const keys = { 'api-keys': 'key-a alice,key-b bob' };
    [gw, twin, stranger] = await Promise.all([
      startGateway(sim.url, { ...keys, 'state-secret': SECRET }),
      startGateway(sim.url, { ...keys, 'state-secret': SECRET }),
      startGateway(sim.url, { ...keys, 'state-secret': 'another secret, long enough' }),
    ]);
  });
  after(() => closeAll(gw, twin, stranger, sim));
  const alice = { authorization: 'Bearer key-a' };
  const lastSent = (): AnyJson => sim.requests.at(-1)?.json as AnyJson;

  it('seals each reasoning item, streamed and not, only when asked', async () => {
    const body = { model: 'm', store: false, reasoning: { effort: 'low' }, include: ENCRYPTED, input: 'think about it' };
    const json = (await create(gw.url, body, alice)).json();
    const sealed = reasoningOf(json);
    assert.equal(typeof sealed.encrypted_content, 'string');
    assert.ok(!sealed.encrypted_content.includes('think'), 'the reasoning is not readable in it');
    const stream = await createStream(gw.url, body, alice);
    const done = stream.events.find((event) => event.data.type === 'response.output_item.done' && event.data.item.type === 'reasoning')?.data.item;
    assert.equal(typeof done.encrypted_content, 'string');
    assert.equal(reasoningOf(stream.terminal).encrypted_content, done.encrypted_content);
    const plain = (await create(gw.url, { ...body, include: undefined }, alice)).json();
    assert.equal(reasoningOf(plain).encrypted_content, undefined);
  });

  it("sent back, the item is unsealed for vLLM: the model reads its reasoning; vLLM never sees the seal", async () => {
    const first = (await create(gw.url, { model: 'm', store: false, reasoning: {}, include: ENCRYPTED, input: 'plan a trip' }, alice)).json();
    const reasoning = reasoningOf(first);
    // What a stateless client sends: its reasoning item as the API returned it, minus the text
    // (OpenAI's reasoning items carry none), then the rest of the conversation.
    const carried = { type: 'reasoning', id: reasoning.id, summary: [], encrypted_content: reasoning.encrypted_content };
    for (const target of [gw, twin]) {
      const next = await create(target.url, { model: 'm', store: false, include: ENCRYPTED, input: [{ role: 'user', content: 'plan a trip' }, carried, first.output[1], { role: 'user', content: 'and back?' }] }, alice);
      assert.equal(next.status, 200, next.text());
      const sent = lastSent().input[1];
      assert.equal(sent.type, 'reasoning');
      assert.deepEqual(sent.content, reasoning.content, 'the reasoning text, unsealed');
      assert.equal(sent.encrypted_content, undefined);
    }
  });

  it('refuses an altered item, a foreign one and another tenant\'s with a 400 naming it', async () => {
    const first = (await create(gw.url, { model: 'm', store: false, reasoning: {}, include: ENCRYPTED, input: 'secret plans' }, alice)).json();
    const sealed: string = reasoningOf(first).encrypted_content;
    const bytes = Buffer.from(sealed, 'base64');
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1;
    const cases: Array<[TestGateway, string, Record<string, string>]> = [
      [gw, bytes.toString('base64'), alice],
      [gw, 'gAAAAABpZ2F0ZXdheS1mb3JlaWduLWl0ZW0=', alice],
      [gw, sealed, { authorization: 'Bearer key-b' }],
      [stranger, sealed, alice],
    ];
    for (const [target, content, headers] of cases) {
      const before = sim.requests.length;
      const answer = await create(target.url, { model: 'm', store: false, input: [{ type: 'reasoning', summary: [], encrypted_content: content }, { role: 'user', content: 'go on' }] }, headers);
      assert.equal(answer.status, 400, answer.text());
      assert.equal(answer.json().error.code, 'invalid_encrypted_content');
      assert.equal(answer.json().error.param, 'input[0].encrypted_content');
      assert.equal(sim.requests.length, before, 'nothing reached vLLM');
    }
  });
});
