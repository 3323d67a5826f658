// Codex's real traffic (test/fixtures/codex: one turn recorded from the Codex CLI, over
// HTTP and in WebSocket mode) replayed through the gateway in front of the simulated vLLM:
// every answer conformant, the custom and function tool calls as Codex expects them, and
// the reasoning the recording gateway sealed opened by this one (they share the secret).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { ResponsesWS } from 'openai/resources/responses/ws';
import { startSimVllm, type SimVllm } from '../sim/vllm-sim.ts';
import { checkStream } from './helpers/conformance.ts';
import { closeAll, startGateway, type TestGateway } from './helpers/gateway.ts';
import { createStream, type AnyJson } from './helpers/responses-api.ts';

const FIXTURES = new URL('./fixtures/codex/', import.meta.url);
const SECRET = 'codex cassette secret (test fixture)';

async function fixture(name: string): Promise<AnyJson> {
  return JSON.parse(await readFile(new URL(name, FIXTURES), 'utf8'));
}

const outputTypes = (response: AnyJson): string[] => (response.output as AnyJson[]).map((item) => item.type);

/** What vLLM answered each recorded turn with: the patch, the command, the answer. */
function checkTurn(index: number, response: AnyJson): void {
  assert.equal(response.status, 'completed');
  const last = outputTypes(response).at(-1);
  if (index === 0) {
    assert.equal(last, 'custom_tool_call');
    const call = (response.output as AnyJson[]).at(-1);
    assert.equal(call.name, 'apply_patch');
    assert.match(call.input, /^\*\*\* Begin Patch\n\*\*\* Add File: hello.txt/);
  } else if (index === 1) {
    assert.equal(last, 'function_call');
    assert.deepEqual(JSON.parse((response.output as AnyJson[]).at(-1).arguments), { cmd: 'cat hello.txt' });
  } else {
    assert.equal(last, 'message');
  }
  const reasoning = (response.output as AnyJson[]).find((item) => item.type === 'reasoning');
  assert.equal(typeof reasoning?.encrypted_content, 'string', 'Codex asked for its reasoning sealed');
}

describe('recorded Codex traffic, replayed', () => {
  let sim: SimVllm;
  let gw: TestGateway;
  before(async () => {
    sim = await startSimVllm();
    gw = await startGateway(sim.url, { 'state-secret': SECRET });
  });
  after(() => closeAll(gw, sim));

  it('over HTTP: three streamed turns, store: false, the whole history each time', async () => {
    const recorded = await fixture('http-turn.json');
    for (const [index, request] of (recorded.requests as AnyJson[]).entries()) {
      const from = sim.requests.length;
      const answer = await createStream(gw.url, request.body, request.headers);
      assert.equal(answer.status, 200, answer.text);
      checkTurn(index, answer.terminal);
      const sent = sim.requests[from]?.json as AnyJson;
      const reasoning = (sent.input as AnyJson[]).filter((item) => item.type === 'reasoning');
      assert.equal(reasoning.length, index, 'each earlier turn brought back its reasoning');
      for (const item of reasoning) assert.match(item.content[0].text, /^The user wrote/, 'unsealed for vLLM');
    }
  });

  it('in WebSocket mode: a warm-up, then turns that send only their new items', async () => {
    const recorded = await fixture('websocket-turn.json');
    const ws = new ResponsesWS(new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', maxRetries: 0 }));
    try {
      let previous: string | undefined;
      for (const [index, message] of (recorded.messages as AnyJson[]).entries()) {
        // A real client chains to the response it just got; the recording names the recorder's.
        const body = { ...message, ...(message.previous_response_id === undefined ? {} : { previous_response_id: previous }) };
        const events = await new Promise<AnyJson[]>((resolve) => {
          const seen: AnyJson[] = [];
          const onEvent = (event: AnyJson): void => {
            seen.push(event);
            if (['response.completed', 'response.failed', 'response.incomplete', 'error'].includes(event.type)) {
              ws.off('event', onEvent);
              resolve(seen);
            }
          };
          ws.on('event', onEvent);
          ws.send(body);
        });
        const sse = events.map((event) => `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`).join('') + 'data: [DONE]\n\n';
        const response = checkStream(sse).terminal;
        previous = response.id;
        if (index === 0) assert.deepEqual([message.generate, response.output], [false, []]);
        else checkTurn(index - 1, response);
      }
    } finally {
      ws.close();
    }
  });
});
