// Every object as OpenAI's published schema says (test/schema, generated from the official
// SDK's types, themselves generated from OpenAI's OpenAPI specification): the schema file
// is the one the installed SDK gives, and every combination of tool_choice, text, reasoning
// and tools, streamed or not, answers with objects that validate, as do the stored
// response, its input items and a conversation's items. (Every other test's output is
// validated too: the conformance checker runs the schema over each response and event.)
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { generateSchema, SCHEMA_FILE } from '../scripts/openai-schema.ts';
import type { SimVllm } from '../sim/vllm-sim.ts';
import { closeAll, startSimAndGateway, type TestGateway } from './helpers/gateway.ts';
import { postJson } from './helpers/http.ts';
import { checkConversationItemSchema, checkResponseSchema, checkStoredItemSchema } from './helpers/openai-schema.ts';
import { create, createStream, getJson, type AnyJson } from './helpers/responses-api.ts';

const FUNCTION = { type: 'function', name: 'get_weather', description: 'Weather in a city.', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }, strict: false };
const BARE_FUNCTION = { type: 'function', name: 'get_time', parameters: { type: 'object', properties: {} } };
const CUSTOM = { type: 'custom', name: 'apply_patch', description: 'Edit files.', format: { type: 'grammar', syntax: 'lark', definition: 'start: "x"' } };
const NAMESPACE = { type: 'namespace', name: 'shell', description: 'Commands.', tools: [{ type: 'function', name: 'exec', parameters: { type: 'object', properties: { cmd: { type: 'string' } }, required: ['cmd'] } }] };
const WEB_SEARCH = { type: 'web_search' };

const TOOL_LISTS: ReadonlyArray<readonly AnyJson[] | undefined> = [undefined, [FUNCTION], [BARE_FUNCTION, CUSTOM, NAMESPACE, WEB_SEARCH]];
const TOOL_CHOICES: readonly unknown[] = [undefined, 'auto', 'required', 'none', { type: 'function', name: 'get_weather' }, { type: 'allowed_tools', mode: 'auto', tools: [{ type: 'function', name: 'get_weather' }] }];
const TEXTS: readonly unknown[] = [
  undefined,
  { format: { type: 'text' }, verbosity: 'low' },
  { format: { type: 'json_schema', name: 'answer', schema: { type: 'object', properties: { a: { type: 'string' } } }, strict: true } },
  { format: { type: 'json_object' } },
];
const REASONINGS: readonly unknown[] = [undefined, { effort: 'low', summary: 'auto' }];

describe("OpenAI's published schema", () => {
  let sim: SimVllm;
  let gw: TestGateway;
  before(async () => ({ sim, gw } = await startSimAndGateway()));
  after(() => closeAll(gw, sim));

  it('the schema file is the one the installed openai SDK gives (npm run schema:openai)', async () => {
    const committed = JSON.parse(await readFile(SCHEMA_FILE, 'utf8')) as unknown;
    assert.deepEqual(committed, JSON.parse(JSON.stringify(generateSchema())));
  });

  it('every combination of tools, tool_choice, text and reasoning, streamed and not', async () => {
    let checked = 0;
    for (const tools of TOOL_LISTS) {
      for (const toolChoice of TOOL_CHOICES) {
        if (toolChoice !== undefined && typeof toolChoice === 'object' && tools?.includes(FUNCTION) !== true) continue;
        for (const text of TEXTS) {
          for (const reasoning of REASONINGS) {
            const body: AnyJson = { model: 'm', input: 'call get_weather for Paris, then say hi' };
            if (tools !== undefined) body.tools = tools;
            if (toolChoice !== undefined) body.tool_choice = toolChoice;
            if (text !== undefined) body.text = text;
            if (reasoning !== undefined) body.reasoning = reasoning;
            const label = JSON.stringify({ tools: tools?.map((tool) => tool.type), toolChoice, text, reasoning });
            // create() and createStream() validate every object and event against the schema.
            const json = await create(gw.url, body);
            assert.equal(json.status, 200, `${label}: ${json.text()}`);
            const stream = await createStream(gw.url, body);
            assert.equal(stream.status, 200, `${label}: ${stream.text}`);
            checked += 2;
          }
        }
      }
    }
    assert.ok(checked > 100, `${checked} responses checked`);
  });

  it('echoes prompt_cache_key, safety_identifier, service_tier, parallel_tool_calls, truncation and verbosity as OpenAI does', async () => {
    const body = { model: 'm', input: 'hi', prompt_cache_key: 'session-7', safety_identifier: 'user-42', parallel_tool_calls: false, truncation: 'auto', text: { verbosity: 'low' } };
    for (const [tier, served] of [[undefined, 'default'], ['auto', 'default'], ['flex', 'flex'], ['priority', 'priority']] as const) {
      const request = tier === undefined ? body : { ...body, service_tier: tier };
      const json = (await create(gw.url, request)).json();
      const streamed = (await createStream(gw.url, request)).terminal;
      const stored = (await getJson(`${gw.url}/v1/responses/${json.id}`)).body;
      for (const response of [json, streamed, stored]) {
        assert.deepEqual(
          [response.prompt_cache_key, response.safety_identifier, response.service_tier, response.parallel_tool_calls, response.truncation, response.text.verbosity],
          ['session-7', 'user-42', served, false, 'auto', 'low'],
        );
      }
    }
  });

  it('a stored response, its input items and a conversation\'s items', async () => {
    const created = (await create(gw.url, { model: 'm', reasoning: {}, tools: [FUNCTION], input: [{ role: 'user', content: 'call get_weather for Paris' }] })).json();
    const call = (created.output as AnyJson[]).find((item) => item.type === 'function_call');
    const next = (await create(gw.url, { model: 'm', previous_response_id: created.id, tools: [FUNCTION], input: [{ type: 'function_call_output', call_id: call.call_id, output: 'sunny' }] })).json();
    const stored = await getJson(`${gw.url}/v1/responses/${next.id}`);
    assert.equal(stored.status, 200);
    checkResponseSchema(stored.body, 'GET /v1/responses/{id}');
    for (const id of [created.id, next.id]) {
      const items = await getJson(`${gw.url}/v1/responses/${id}/input_items`);
      assert.equal(items.status, 200);
      assert.ok(items.body.data.length > 0);
      for (const [index, item] of (items.body.data as AnyJson[]).entries()) checkStoredItemSchema(item, `input_items[${index}]`);
    }
    const conversation = (await postJson(`${gw.url}/v1/conversations`, { items: [{ role: 'user', content: 'hello' }] })).json();
    await create(gw.url, { model: 'm', reasoning: {}, conversation: conversation.id, input: 'and again' });
    const items = await getJson(`${gw.url}/v1/conversations/${conversation.id}/items`);
    assert.equal(items.status, 200);
    assert.ok(items.body.data.length >= 3);
    for (const [index, item] of (items.body.data as AnyJson[]).entries()) checkConversationItemSchema(item, `conversation item ${index}`);
  });
});
