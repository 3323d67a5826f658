// Instructions, system and developer messages reach vLLM as one leading system text: the
// simulated vLLM refuses what Qwen3's chat templates refuse (a system message that is not
// first, a developer message), as a coding agent's first request would meet it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SimVllm } from '../sim/vllm-sim.ts';
import { closeAll, startSimAndGateway, type TestGateway } from './helpers/gateway.ts';
import { create, createStream, type AnyJson } from './helpers/responses-api.ts';
import { postJson } from './helpers/http.ts';

const developer = (text: string): AnyJson => ({ type: 'message', role: 'developer', content: [{ type: 'input_text', text }] });
const system = (text: string): AnyJson => ({ role: 'system', content: text });
const user = (text: string): AnyJson => ({ type: 'message', role: 'user', content: [{ type: 'input_text', text }] });
const roles = (input: AnyJson[]): string[] => input.map((item) => item.role ?? item.type);

describe('instructions, system and developer messages', () => {
  let sim: SimVllm;
  let gw: TestGateway;
  before(async () => ({ sim, gw } = await startSimAndGateway()));
  after(() => closeAll(gw, sim));
  const lastSent = (): AnyJson => sim.requests[sim.requests.length - 1]?.json as AnyJson;

  it('the simulated vLLM refuses them as the chat template does, so the gateway is what makes them work', async () => {
    const direct = await postJson(`${sim.url}/v1/responses`, { model: 'm', instructions: 'Be brief.', input: [system('Answer in French.'), user('hi')] });
    assert.equal(direct.status, 400);
    assert.match(direct.text(), /System message must be at the beginning/);
    const developerDirect = await postJson(`${sim.url}/v1/responses`, { model: 'm', input: [developer('Be brief.'), user('hi')] });
    assert.equal(developerDirect.status, 400);
  });

  it("a stateless agent's opening developer messages become vLLM's instructions, in order, after its own", async () => {
    for (const tools of [undefined, [{ type: 'function', name: 'exec', parameters: { type: 'object', properties: {} } }]]) {
      const body: AnyJson = { model: 'm', store: false, instructions: 'You are a coding agent.', input: [developer('Rule one.'), developer('Rule two.'), user('<env/>'), user('say hi')] };
      if (tools !== undefined) body.tools = tools;
      const answer = await create(gw.url, body);
      assert.equal(answer.status, 200, answer.text());
      const sent = lastSent();
      assert.equal(sent.instructions, 'You are a coding agent.\n\nRule one.\n\nRule two.');
      assert.deepEqual(roles(sent.input), ['user', 'user']);
      assert.equal(answer.json().instructions, 'You are a coding agent.', 'the response echoes what the client sent');
    }
  });

  it('a system or developer message later in the conversation goes as a user message where it was', async () => {
    const answer = await createStream(gw.url, { model: 'm', input: [system('Opening rule.'), user('one'), developer('Now read-only.'), user('two')] });
    assert.equal(answer.status, 200, answer.text);
    const sent = lastSent();
    assert.equal(sent.instructions, 'Opening rule.');
    assert.deepEqual(roles(sent.input), ['user', 'user', 'user']);
    assert.deepEqual(sent.input[1].content, [{ type: 'input_text', text: 'Now read-only.' }]);
  });

  it('continued from storage: the stored opening messages stay first, the new turn brings its own instructions', async () => {
    const first = await create(gw.url, { model: 'm', instructions: 'Turn one rules.', input: [developer('Stored rule.'), user('one')] });
    assert.equal(first.status, 200, first.text());
    assert.equal(lastSent().instructions, 'Turn one rules.\n\nStored rule.');
    const second = await create(gw.url, { model: 'm', previous_response_id: first.json().id, instructions: 'Turn two rules.', input: [developer('Late rule.'), user('two')] });
    assert.equal(second.status, 200, second.text());
    const sent = lastSent();
    assert.equal(sent.instructions, 'Turn two rules.\n\nStored rule.', 'instructions are not inherited; the stored developer message is');
    assert.deepEqual(roles(sent.input), ['user', 'assistant', 'user', 'user']);
    assert.equal(sent.input[2].content[0].text, 'Late rule.');
    // Plain user turns are sent as the store's bytes, untouched.
    const third = await create(gw.url, { model: 'm', previous_response_id: second.json().id, input: 'three' });
    assert.equal(third.status, 200, third.text());
    assert.equal(lastSent().instructions, 'Stored rule.');
  });
});
