// The recorded multi-turn sessions of test/fixtures/cassettes, replayed through the stateful
// gateway: the client sends each recorded turn (with the gateway's ids in place of the
// recorded ones), the simulated vLLM answers with the recorded answer, and checks that
// every turn reached it with the whole history, in a form vLLM accepts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SimVllm } from '../sim/vllm-sim.ts';
import { loadCassettes, type Cassette } from './helpers/cassettes.ts';
import { closeAll, startSimAndGateway, type TestGateway } from './helpers/gateway.ts';
import { parseSse, postJson } from './helpers/http.ts';
import { replayTurn } from './helpers/replay.ts';
import { getJson, messageText, type AnyJson } from './helpers/responses-api.ts';


let sim: SimVllm;
let gw: TestGateway;
before(async () => ({ sim, gw } = await startSimAndGateway()));
after(() => closeAll(gw, sim));

/** One line per item, comparable between what was sent, recorded and forwarded. */
function describeItem(item: AnyJson): string {
  switch (item.type ?? 'message') {
    case 'message':
      return `${String(item.role)}: ${messageText(item).trim()}`;
    case 'reasoning':
      return `reasoning: ${((item.content ?? []) as AnyJson[]).map((part) => part.text).join('').trim()}`;
    case 'function_call':
      return `function_call ${String(item.name)} ${String(item.call_id)} ${String(item.arguments)}`;
    case 'function_call_output':
      return `function_call_output ${String(item.call_id)}`;
    default:
      return String(item.type);
  }
}

function inputItems(input: unknown): AnyJson[] {
  return typeof input === 'string' ? [{ type: 'message', role: 'user', content: input }] : (input as AnyJson[]);
}

function terminalOf(sse: string): AnyJson {
  const terminal = parseSse(sse).find((event) => event.event === 'response.completed');
  assert.ok(terminal !== undefined, 'the stream completed');
  return JSON.parse(terminal.data).response;
}

function recordedOutputOf(response: { body?: Record<string, unknown>; sse?: readonly string[] }): AnyJson[] {
  if (response.sse !== undefined) return terminalOf(response.sse.join('')).output as AnyJson[];
  return (response.body?.['output'] ?? []) as AnyJson[];
}

const MULTI_TURN = loadCassettes().filter(
  (cassette: Cassette) => cassette.turns.filter((turn) => turn.request.path === '/v1/responses').length > 1,
);

describe('recorded multi-turn sessions through the stateful gateway', () => {
  assert.ok(MULTI_TURN.length >= 3, 'the two-turn, conversation and tool-call sessions are there');
  for (const cassette of MULTI_TURN) {
    it(cassette.name, async () => {
      const history: string[] = [];
      let outputsAnswered = 0;
      let previousId: string | undefined;
      let conversationId: string | undefined;
      for (const turn of cassette.turns) {
        const body = { ...turn.request.body };
        if (turn.request.path === '/v1/conversations') {
          const created = await postJson(`${gw.url}/v1/conversations`, body);
          conversationId = created.json().id;
          continue;
        }
        const continues = 'previous_response_id' in body || 'conversation' in body;
        if ('previous_response_id' in body) body['previous_response_id'] = previousId;
        if ('conversation' in body) body['conversation'] = conversationId;
        if (!continues) history.length = 0;

        sim.enqueue(replayTurn(turn));
        const arrived = sim.nextRequest();
        const res = await postJson(`${gw.url}/v1/responses`, body);
        assert.equal(res.status, 200, res.text());
        const upstream: AnyJson = (await arrived).json;

        const newInput = inputItems(turn.request.body['input']).map(describeItem);
        assert.deepEqual(inputItems(upstream.input).map(describeItem), [...history, ...newInput], `${turn.filename}: the whole history, in order`);
        assert.equal(upstream.store, false);
        assert.equal('previous_response_id' in upstream, false);
        assert.equal('conversation' in upstream, false);
        const calledIds = new Set<string>();
        for (const item of inputItems(upstream.input)) {
          if (item.type === 'function_call') calledIds.add(String(item.call_id));
          // vLLM pairs an output with the call before it: the client's call_id must name one.
          if (item.type === 'function_call_output') {
            assert.ok(calledIds.has(String(item.call_id)), `${turn.filename}: output ${String(item.call_id)} follows its call`);
            outputsAnswered += 1;
          }
          assert.notEqual(item.status, null, 'no null status goes back to vLLM');
          if (item.role === 'assistant') assert.ok(messageText(item).length > 0, 'no empty assistant message goes back to vLLM');
        }

        const response = body['stream'] === true ? terminalOf(res.text()) : res.json();
        const stored = await getJson(`${gw.url}/v1/responses/${String(response.id)}`);
        if (body['store'] === false) assert.equal(stored.status, 404);
        else assert.deepEqual(stored.body, response);
        const recordedOutput = recordedOutputOf(turn.response);
        assert.deepEqual((response.output as AnyJson[]).map(describeItem), recordedOutput.map(describeItem));
        history.push(...newInput, ...recordedOutput.map(describeItem));
        previousId = response.id;
      }
      if (cassette.name.includes('tool_calls/multi_turn')) assert.ok(outputsAnswered > 0, 'the tool session sent a function call output back');
    });
  }
});
