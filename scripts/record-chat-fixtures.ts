// `npm run fixtures:chat`: records what the simulated vLLM's /v1/chat/completions answers
// (vLLM's chat dialect) to the chat requests the gateway makes of three Responses
// requests, into test/fixtures/chat/vllm-*.json, beside the fixtures written from other
// servers' documented behaviour. The expectations are filled from the recording.
import { writeFileSync } from 'node:fs';
import { request } from 'undici';
import { toChatRequest } from '../src/backend/chat-request.ts';
import { startSimVllm } from '../sim/vllm-sim.ts';

type Json = Record<string, unknown>;
const DIR = new URL('../test/fixtures/chat/', import.meta.url).pathname;
const tools = [{ type: 'function', name: 'add', description: 'Adds two numbers', parameters: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } }, required: ['a', 'b'] } }];

const cases: { name: string; request: Json }[] = [
  { name: 'vllm-text', request: { model: 'sim-model', input: 'hello from the recorder', stream: true } },
  { name: 'vllm-reasoning-tool-call', request: { model: 'sim-model', input: 'use add with 2 and 3', tools, reasoning: { effort: 'low' }, stream: true } },
  { name: 'vllm-completion', request: { model: 'sim-model', input: 'hello without a stream', reasoning: { effort: 'low' } } },
];

const sim = await startSimVllm({ chatOnly: true });
try {
  for (const { name, request: responsesRequest } of cases) {
    const chat = toChatRequest(responsesRequest);
    const answer = await request(`${sim.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(chat.body) });
    const text = await answer.body.text();
    const { stream: _stream, ...asked } = responsesRequest;
    const fixture: Json = {
      server: 'the simulated vLLM (sim/), vLLM chat dialect',
      written_from: `recorded by scripts/record-chat-fixtures.ts from the simulated vLLM's /v1/chat/completions (${new Date().toISOString().slice(0, 10)})`,
      request: asked,
    };
    if (chat.stream) fixture['stream'] = text.split(/(?<=\n\n)/);
    else fixture['completion'] = JSON.parse(text) as Json;
    writeFileSync(`${DIR}${name}.json`, `${JSON.stringify(fixture, null, 1)}\n`);
    process.stdout.write(`recorded ${name}\n`);
  }
} finally {
  await sim.close();
}
