// A conformance checker for what the gateway returns on /v1/responses, written from the
// rules clients rely on (OpenAI's Responses API; the list in README "What the gateway
// fixes in vLLM's output"), not from the gateway's code. It throws an AssertionError
// naming the broken rule.
import assert from 'node:assert/strict';
import { checkEventSchema, checkResponseSchema } from './openai-schema.ts';
import type { AnyJson } from './responses-api.ts';

const RESPONSE_STATUSES = new Set(['completed', 'failed', 'in_progress', 'cancelled', 'queued', 'incomplete']);
const ITEM_STATUSES = new Set(['in_progress', 'completed', 'incomplete']);
const ITEM_PREFIX: Record<string, string> = {
  message: 'msg_',
  reasoning: 'rs_',
  function_call: 'fc_',
  function_call_output: 'fco_',
  mcp_call: 'mcp_',
  mcp_list_tools: 'mcpl_',
  mcp_approval_request: 'mcpr_',
  custom_tool_call: 'ctc_',
};
/** OpenAI's statuses of an mcp_call (it may fail, unlike other items). */
const MCP_CALL_STATUSES = new Set(['in_progress', 'completed', 'incomplete', 'calling', 'failed']);
const VLLM_PRIVATE_FIELDS = ['input_messages', 'output_messages', 'kv_transfer_params', 'prompt'];
const TERMINAL_TYPES = new Set(['response.completed', 'response.incomplete', 'response.failed']);

const isObject = (value: unknown): value is AnyJson => typeof value === 'object' && value !== null && !Array.isArray(value);
const nullOr = (value: unknown, check: (v: unknown) => boolean): boolean => value === null || check(value);
const isString = (value: unknown): boolean => typeof value === 'string';
const isNumber = (value: unknown): boolean => typeof value === 'number' && Number.isFinite(value);

export function checkItem(item: AnyJson, where: string, options: { rawFields?: boolean } = {}): void {
  assert.ok(isObject(item), `${where}: an item is an object`);
  const type = item.type as string;
  assert.ok(isString(type), `${where}: item.type`);
  const prefix = ITEM_PREFIX[type];
  if (prefix !== undefined) assert.ok(String(item.id).startsWith(prefix), `${where}: a ${type} id starts with ${prefix} (got ${String(item.id)})`);
  else assert.ok(isString(item.id) && String(item.id).length > 3, `${where}: item.id`);
  const statuses = type === 'mcp_call' ? MCP_CALL_STATUSES : ITEM_STATUSES;
  if ('status' in item) assert.ok(statuses.has(item.status), `${where}: item status ${String(item.status)} is one of ${[...statuses].join('|')}`);
  if (options.rawFields !== true) {
    assert.ok(!('phase' in item), `${where}: no vLLM field phase`);
    // OpenAI names a namespaced tool's namespace; vLLM writes namespace: null everywhere.
    if ('namespace' in item) assert.ok(isString(item.namespace), `${where}: namespace is a string when present`);
  }
  if (type === 'message') {
    assert.ok(Array.isArray(item.content), `${where}: message content is a list`);
    for (const part of item.content as AnyJson[]) {
      assert.ok(isString(part.type), `${where}: content part type`);
      if (part.type === 'output_text') {
        assert.ok(isString(part.text) && Array.isArray(part.annotations), `${where}: output_text has text and annotations`);
      }
    }
  }
  if (type === 'function_call') {
    for (const field of ['call_id', 'name', 'arguments']) assert.ok(isString(item[field]), `${where}: function_call.${field}`);
  }
  if (type === 'reasoning') assert.ok(Array.isArray(item.summary), `${where}: reasoning.summary is a list`);
  if (type === 'custom_tool_call') {
    for (const field of ['call_id', 'name', 'input']) assert.ok(isString(item[field]), `${where}: custom_tool_call.${field}`);
  }
  if (type === 'mcp_call' || type === 'mcp_approval_request') {
    for (const field of ['server_label', 'name', 'arguments']) assert.ok(isString(item[field]), `${where}: ${type}.${field}`);
  }
  if (type === 'mcp_call') {
    for (const field of ['output', 'error', 'approval_request_id']) assert.ok(nullOr(item[field], isString), `${where}: mcp_call.${field} is a string or null`);
    if (item.status === 'failed') assert.ok(isString(item.error), `${where}: a failed mcp_call says why`);
    if (item.status === 'completed') assert.ok(isString(item.output) && item.error === null, `${where}: a completed mcp_call has its output`);
  }
  if (type === 'mcp_list_tools') {
    assert.ok(isString(item.server_label) && Array.isArray(item.tools), `${where}: mcp_list_tools has server_label and tools`);
    for (const tool of item.tools as AnyJson[]) assert.ok(isString(tool.name) && 'input_schema' in tool, `${where}: a listed tool has name and input_schema`);
    assert.ok(nullOr(item.error ?? null, isString), `${where}: mcp_list_tools.error`);
  }
}

/** The response object has OpenAI's fields and types, and none of vLLM's private ones. */
export function checkResponseObject(response: AnyJson, where = 'response', options: { rawFields?: boolean } = {}): void {
  assert.ok(isObject(response), `${where}: is an object`);
  assert.match(String(response.id), /^resp_/, `${where}.id`);
  assert.equal(response.object, 'response', `${where}.object`);
  assert.ok(isNumber(response.created_at), `${where}.created_at`);
  assert.ok(RESPONSE_STATUSES.has(response.status), `${where}.status ${String(response.status)}`);
  assert.equal(typeof response.background, 'boolean', `${where}.background`);
  assert.ok('completed_at' in response, `${where}.completed_at present`);
  if (response.status === 'completed') assert.ok(isNumber(response.completed_at), `${where}.completed_at set when completed`);
  else assert.equal(response.completed_at, null, `${where}.completed_at null unless completed`);
  assert.ok('error' in response, `${where}.error present`);
  if (response.status === 'failed') {
    assert.ok(isObject(response.error) && isString(response.error.code) && isString(response.error.message), `${where}.error {code, message} when failed`);
  } else {
    assert.equal(response.error, null, `${where}.error null unless failed`);
  }
  assert.ok(nullOr(response.incomplete_details, isObject), `${where}.incomplete_details`);
  assert.ok('instructions' in response, `${where}.instructions present`);
  assert.ok(nullOr(response.max_output_tokens, isNumber), `${where}.max_output_tokens`);
  assert.ok(isString(response.model), `${where}.model`);
  assert.ok(Array.isArray(response.output), `${where}.output`);
  assert.equal(typeof response.parallel_tool_calls, 'boolean', `${where}.parallel_tool_calls`);
  assert.ok(nullOr(response.previous_response_id, isString), `${where}.previous_response_id`);
  assert.ok(isObject(response.reasoning) && 'effort' in response.reasoning && 'summary' in response.reasoning, `${where}.reasoning`);
  assert.equal(typeof response.store, 'boolean', `${where}.store`);
  assert.ok(isNumber(response.temperature), `${where}.temperature`);
  assert.ok(isObject(response.text) && isObject(response.text.format), `${where}.text is a format object`);
  assert.ok('tool_choice' in response, `${where}.tool_choice present`);
  assert.ok(Array.isArray(response.tools), `${where}.tools`);
  assert.ok(isNumber(response.top_p), `${where}.top_p`);
  assert.ok(isString(response.truncation), `${where}.truncation`);
  assert.ok(isObject(response.metadata), `${where}.metadata is an object`);
  for (const field of ['safety_identifier', 'prompt_cache_key', 'service_tier', 'top_logprobs', 'max_tool_calls']) {
    assert.ok(field in response, `${where}.${field} present`);
  }
  // OpenAI's schema has usage and user optional, never null: absent until known.
  assert.ok(response.usage !== null && response.user !== null, `${where}: usage and user are absent rather than null`);
  if (response.usage !== undefined) {
    const usage = response.usage;
    assert.ok(isNumber(usage.input_tokens) && isNumber(usage.output_tokens) && isNumber(usage.total_tokens), `${where}.usage counts`);
    assert.ok(isObject(usage.input_tokens_details) && isNumber(usage.input_tokens_details.cached_tokens), `${where}.usage.input_tokens_details`);
    assert.ok(isObject(usage.output_tokens_details) && isNumber(usage.output_tokens_details.reasoning_tokens), `${where}.usage.output_tokens_details`);
    if (options.rawFields !== true) {
      assert.deepEqual(Object.keys(usage.input_tokens_details), ['cached_tokens', 'cache_write_tokens'], `${where}.usage has no per-turn lists`);
    }
  }
  if (options.rawFields !== true) {
    for (const field of VLLM_PRIVATE_FIELDS) assert.ok(!(field in response), `${where}: no vLLM field ${field}`);
  }
  (response.output as AnyJson[]).forEach((item, index) => checkItem(item, `${where}.output[${index}]`, options));
  // And field by field as OpenAI's published schema says (vLLM's private fields aside).
  if (options.rawFields !== true) checkResponseSchema(response, where);
}

interface ItemTrack {
  readonly id: string;
  readonly type: string;
  readonly callId: unknown;
  readonly parts: Map<number, { text: string; done: boolean; doneText: string | undefined }>;
  args: string;
  doneArgs: string | undefined;
  /** mcp_call / mcp_list_tools: the completed or failed event seen. */
  ended?: string;
  /** The item as sent in output_item.done, once done. */
  done?: AnyJson;
}

export interface CheckedStream {
  readonly terminal: AnyJson;
  readonly events: { event: string; data: AnyJson }[];
}

/** Checks a whole SSE body against the stream rules; returns the terminal response. */
export function checkStream(text: string, options: { rawFields?: boolean } = {}): CheckedStream {
  assert.ok(text.endsWith('data: [DONE]\n\n'), 'the stream ends with data: [DONE]');
  const blocks = text.split('\n\n').filter((block) => block.length > 0);
  assert.equal(blocks.at(-1), 'data: [DONE]', 'data: [DONE] comes last');
  const events: { event: string; data: AnyJson }[] = [];
  for (const block of blocks.slice(0, -1)) {
    const lines = block.split('\n');
    const eventLine = lines.find((line) => line.startsWith('event: '));
    const dataLine = lines.find((line) => line.startsWith('data: '));
    assert.ok(eventLine !== undefined && dataLine !== undefined, `every event has event: and data: lines (${block.slice(0, 80)})`);
    const data = JSON.parse(dataLine.slice(6));
    assert.equal(eventLine.slice(7), data.type, 'the event: line equals the type');
    events.push({ event: eventLine.slice(7), data });
  }
  events.forEach(({ data }, index) => assert.equal(data.sequence_number, index, `sequence_number ${String(data.sequence_number)} at position ${index}`));
  if (options.rawFields !== true) events.forEach(({ data }, index) => checkEventSchema(data, `event ${index}`));
  assert.equal(events[0]?.data.type, 'response.created', 'the stream opens with response.created');

  const items = new Map<number, ItemTrack>();
  let terminal: AnyJson;
  let terminalCount = 0;
  let sawError = false;
  for (const { data } of events) {
    assert.equal(terminalCount, 0, `nothing after the terminal event (got ${String(data.type)})`);
    const type = data.type as string;
    const item = items.get(data.output_index as number);
    const belongs = (): ItemTrack => {
      assert.ok(item !== undefined, `${type}: output_index ${String(data.output_index)} was announced`);
      assert.equal(item.done, undefined, `${type}: item ${item.id} is not done yet`);
      if ('item_id' in data) assert.equal(data.item_id, item.id, `${type}: item_id matches output_item.added`);
      return item;
    };
    const part = (track: ItemTrack) => {
      const found = track.parts.get(data.content_index as number);
      assert.ok(found !== undefined, `${type}: content_index ${String(data.content_index)} was announced`);
      assert.equal(found.done, false, `${type}: part ${String(data.content_index)} is not done yet`);
      return found;
    };
    switch (type) {
      case 'response.created':
      case 'response.in_progress':
      case 'response.queued':
        checkResponseObject(data.response, type, options);
        break;
      case 'response.output_item.added': {
        assert.equal(items.has(data.output_index), false, 'each output_index is announced once');
        assert.equal(data.output_index, items.size, 'output indices count up from 0');
        checkItem(data.item, type, options);
        items.set(data.output_index, { id: data.item.id, type: data.item.type, callId: data.item.call_id, parts: new Map(), args: '', doneArgs: undefined });
        break;
      }
      case 'response.content_part.added': {
        const track = belongs();
        assert.equal(track.parts.has(data.content_index), false, 'each part is announced once');
        assert.equal(data.content_index, track.parts.size, 'content indices count up from 0 within an item');
        track.parts.set(data.content_index, { text: '', done: false, doneText: undefined });
        break;
      }
      case 'response.output_text.delta':
      case 'response.reasoning_text.delta':
      case 'response.refusal.delta':
        part(belongs()).text += data.delta;
        break;
      case 'response.output_text.done':
      case 'response.reasoning_text.done': {
        const found = part(belongs());
        assert.equal(data.text, found.text, `${type}: the joined deltas equal the done text`);
        found.doneText = data.text;
        break;
      }
      case 'response.content_part.done': {
        const found = part(belongs());
        const partText = data.part?.text ?? data.part?.refusal;
        assert.equal(partText, found.text, 'content_part.done carries the joined text');
        found.done = true;
        break;
      }
      case 'response.function_call_arguments.delta':
      case 'response.mcp_call_arguments.delta':
      case 'response.custom_tool_call_input.delta':
        belongs().args += data.delta;
        break;
      case 'response.custom_tool_call_input.done': {
        const track = belongs();
        assert.equal(track.type, 'custom_tool_call', `${type} is about a custom_tool_call`);
        assert.equal(data.input, track.args, 'the joined input deltas equal the final input');
        track.doneArgs = data.input;
        break;
      }
      case 'response.mcp_call_arguments.done': {
        const track = belongs();
        assert.equal(track.type, 'mcp_call', `${type} is about an mcp_call`);
        assert.equal(data.arguments, track.args, 'the joined MCP argument deltas equal the final arguments');
        track.doneArgs = data.arguments;
        break;
      }
      case 'response.mcp_call.in_progress':
      case 'response.mcp_call.completed':
      case 'response.mcp_call.failed': {
        const track = belongs();
        assert.equal(track.type, 'mcp_call', `${type} is about an mcp_call`);
        if (type !== 'response.mcp_call.in_progress') {
          assert.equal(track.ended, undefined, 'an mcp_call completes or fails once');
          if (track.args.length > 0) assert.equal(track.doneArgs, track.args, 'its arguments were done before it ran');
          track.ended = type;
        }
        break;
      }
      case 'response.mcp_list_tools.in_progress':
      case 'response.mcp_list_tools.completed':
      case 'response.mcp_list_tools.failed': {
        const track = belongs();
        assert.equal(track.type, 'mcp_list_tools', `${type} is about an mcp_list_tools`);
        if (type !== 'response.mcp_list_tools.in_progress') track.ended = type;
        break;
      }
      case 'response.function_call_arguments.done': {
        const track = belongs();
        assert.equal(data.arguments, track.args, 'the joined argument deltas equal the final arguments');
        track.doneArgs = data.arguments;
        break;
      }
      case 'response.output_item.done': {
        const track = belongs();
        checkItem(data.item, type, options);
        assert.equal(data.item.id, track.id, 'output_item.done keeps the item id');
        for (const [index, found] of track.parts) assert.ok(found.done, `part ${index} of ${track.id} closed before its item`);
        if (track.type === 'function_call') {
          assert.equal(data.item.arguments, track.args, 'the done item carries the streamed arguments');
          assert.equal(data.item.call_id, track.callId, 'call_id is stable');
        }
        if (track.type === 'custom_tool_call') {
          assert.equal(data.item.input, track.args, 'the done custom_tool_call carries the streamed input');
          assert.equal(track.doneArgs, track.args, 'its input was done before the item');
          assert.equal(data.item.call_id, track.callId, 'call_id is stable');
        }
        // An mcp_call the response ended before (incomplete) never ran: no completed or failed event.
        if ((track.type === 'mcp_call' && data.item.status !== 'incomplete') || track.type === 'mcp_list_tools') {
          assert.ok(track.ended !== undefined, `${track.type} ${track.id} completed or failed before its output_item.done`);
          const failed = (track.ended).endsWith('.failed');
          if (track.type === 'mcp_call') {
            assert.equal(data.item.status, failed ? 'failed' : 'completed', 'the mcp_call ends as its event said');
            if (track.args.length > 0) assert.equal(data.item.arguments, track.args, 'the done mcp_call carries the streamed arguments');
          } else {
            assert.equal(isString(data.item.error), failed, 'a failed tool list says why, a listed one has no error');
          }
        }
        if (track.type === 'message') {
          const texts = (data.item.content as AnyJson[]).map((contentPart) => contentPart.text);
          assert.deepEqual(texts, [...track.parts.values()].map((found) => found.text), 'the done message carries the streamed text');
        }
        track.done = data.item;
        break;
      }
      case 'error':
        assert.ok(isObject(data.error), 'error events nest their error');
        for (const field of ['type', 'code', 'message']) assert.ok(isString(data.error[field]), `error.${field}`);
        assert.ok('param' in data.error, 'error.param present');
        sawError = true;
        break;
      default:
        if (TERMINAL_TYPES.has(type)) {
          terminalCount += 1;
          terminal = data.response;
          checkResponseObject(terminal, type, options);
          assert.equal(terminal.status, type.slice('response.'.length), `${type} carries status ${type.slice(9)}`);
          for (const [index, track] of items) {
            const output = (terminal.output as AnyJson[])[index];
            assert.ok(output !== undefined, `the terminal output has item ${index}`);
            assert.equal(output.id, track.id, `terminal output[${index}] keeps the streamed id`);
            assert.ok(track.done !== undefined, `item ${track.id} was done before the terminal event`);
            assert.deepEqual(output, track.done, `terminal output[${index}] equals output_item.done`);
          }
          assert.equal((terminal.output as AnyJson[]).length, items.size, 'the terminal output has exactly the streamed items');
          if (sawError) assert.equal(type, 'response.failed', 'an error event is followed by response.failed');
        }
    }
  }
  assert.equal(terminalCount, 1, 'exactly one terminal event');
  return { terminal, events };
}

/** A failed response's error: OpenAI's code (server_error for the gateway's own), the
 * gateway's code said at the end of the message. */
export function assertFailedWith(response: AnyJson, gatewayCode: string): void {
  assert.equal(response?.error?.code, 'server_error', `error.code of ${JSON.stringify(response?.error)}`);
  assert.ok(String(response.error.message).endsWith(`(${gatewayCode})`), `the message names ${gatewayCode}: ${String(response.error.message)}`);
}
