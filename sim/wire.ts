// vLLM's Responses API wire format, as recorded in test/fixtures/cassettes (vLLM with Qwen3
// and gpt-oss): the response object's field set, the streamed event sequence, and vLLM's
// quirks (streamed item ids that differ from the ids in response.completed, status null
// on reasoning and function_call items, per-turn usage lists, private fields).
import { randomBytes } from 'node:crypto';

export type JsonObject = Record<string, unknown>;

export interface PlannedReasoning {
  readonly type: 'reasoning';
  readonly deltas: readonly string[];
}
export interface PlannedMessage {
  readonly type: 'message';
  readonly deltas: readonly string[];
}
export interface PlannedFunctionCall {
  readonly type: 'function_call';
  readonly name: string;
  readonly argumentDeltas: readonly string[];
}

export type PlannedItem = PlannedReasoning | PlannedMessage | PlannedFunctionCall;

export interface GenerationPlan {
  readonly items: readonly PlannedItem[];
  readonly status: 'completed' | 'incomplete';
  readonly inputTokens: number;
}

/** Switches for vLLM's known deviations, each testable on its own. */
export interface Quirks {
  /** Streamed items carry bare hex ids; response.completed carries other, prefixed ids. */
  readonly streamIdsDiffer: boolean;
  /** Function calls: call_id in the stream differs from the one in response.completed. */
  readonly callIdsDiffer: boolean;
}

export const REAL_VLLM_QUIRKS: Quirks = { streamIdsDiffer: true, callIdsDiffer: true };

export function hex(bytes = 8): string {
  return randomBytes(bytes).toString('hex');
}

export function joined(deltas: readonly string[]): string {
  return deltas.join('');
}

/** Text of the last user message in a Responses `input` (string or item list). */
export function lastUserText(input: unknown): string {
  if (typeof input === 'string') return input;
  if (!Array.isArray(input)) return '';
  for (let i = input.length - 1; i >= 0; i--) {
    const item = input[i] as JsonObject | undefined;
    if (item === undefined || item === null || typeof item !== 'object') continue;
    if (item['role'] !== 'user') continue;
    const content = item['content'];
    if (typeof content === 'string') return content;
    if (Array.isArray(content)) {
      return content
        .map((part) => {
          const text = typeof part === 'object' && part !== null ? (part as JsonObject)['text'] : undefined;
          return typeof text === 'string' ? text : '';
        })
        .join('');
    }
  }
  return '';
}

/** Splits text into word-sized deltas the way a tokenizer roughly would. */
export function toDeltas(text: string): string[] {
  const parts = text.match(/\s*\S+|\s+$/g);
  return parts === null ? [text] : parts;
}

export interface PlanOptions {
  /** Exactly this many text deltas ("t0 t1 ..."), as the benchmark asks for. */
  readonly deltas?: number | undefined;
  readonly reasoning?: boolean | undefined;
  /** Force a call of this tool (if declared). */
  readonly toolName?: string | undefined;
}

/** The input items after the last user message: what the model did since it was asked. */
function itemsSinceUser(input: unknown): JsonObject[] {
  if (!Array.isArray(input)) return [];
  let last = -1;
  input.forEach((item: unknown, index) => {
    if (typeof item === 'object' && item !== null && (item as JsonObject)['role'] === 'user') last = index;
  });
  return (input.slice(last + 1) as unknown[]).filter((item): item is JsonObject => typeof item === 'object' && item !== null);
}

/** Where a tool is named in `text`: its full name, or (a gateway's `label__tool`) the part
 * after the last `__`, as a whole word; -1 when it is not. */
function mentionAt(text: string, name: string): number {
  const short = name.includes('__') ? name.slice(name.lastIndexOf('__') + 2) : name;
  for (const candidate of [name, short]) {
    const match = new RegExp(`(^|[^A-Za-z0-9_])${candidate.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^A-Za-z0-9_])`).exec(text);
    if (match !== null) return match.index;
  }
  return -1;
}

/**
 * The tools the model calls now. The user's text says which, in rounds separated by
 * "then": "use add and echo, then multiply" calls add and echo together (parallel calls),
 * and multiply once their outputs are in. A round whose tools were all called since the
 * user spoke is done; with every round done the model answers.
 */
function toolsToCall(tools: readonly JsonObject[], userText: string, since: readonly JsonObject[], forced: string | undefined): JsonObject[] {
  const named = tools.filter((tool) => typeof tool['name'] === 'string' && tool['name'] !== '');
  const called = new Set(since.filter((item) => item['type'] === 'function_call').map((item) => String(item['name'])));
  if (forced !== undefined) {
    const tool = named.find((candidate) => candidate['name'] === forced);
    return tool !== undefined && !called.has(forced) ? [tool] : [];
  }
  for (const round of userText.split(/\bthen\b/)) {
    const mentioned = named
      .map((tool) => ({ tool, at: mentionAt(round, String(tool['name'])) }))
      .filter((entry) => entry.at !== -1)
      .sort((a, b) => a.at - b.at)
      .map((entry) => entry.tool);
    const pending = mentioned.filter((tool) => !called.has(String(tool['name'])));
    if (pending.length > 0) return pending;
  }
  return [];
}

/** Decides, deterministically, what the simulated model answers to a request body. */
export function planGeneration(body: JsonObject, options: PlanOptions = {}): GenerationPlan {
  const userText = lastUserText(body['input']);
  const items: PlannedItem[] = [];
  const inputTokens = Math.max(1, Math.ceil(JSON.stringify(body['input'] ?? '').length / 4));
  if (options.reasoning === true || (typeof body['reasoning'] === 'object' && body['reasoning'] !== null)) {
    items.push({ type: 'reasoning', deltas: toDeltas(`The user wrote: ${userText}. I will answer briefly.`) });
  }
  const tools = Array.isArray(body['tools']) ? (body['tools'] as JsonObject[]) : [];
  const since = itemsSinceUser(body['input']);
  // A named tool_choice ({"type": "function", "name"}) forces that tool, as vLLM's guided decoding does.
  const choice = body['tool_choice'];
  const named = typeof choice === 'object' && choice !== null && typeof (choice as JsonObject)['name'] === 'string' ? String((choice as JsonObject)['name']) : undefined;
  const calls = choice === 'none' ? [] : toolsToCall(tools, userText, since, options.toolName ?? named);
  const parallel = body['parallel_tool_calls'] !== false;
  for (const tool of parallel ? calls : calls.slice(0, 1)) {
    const args = JSON.stringify(argumentsFor(tool, userText));
    items.push({ type: 'function_call', name: String(tool['name']), argumentDeltas: splitEvery(args, 7) });
  }
  if (calls.length === 0) {
    const outputs = since.filter((item) => item['type'] === 'function_call_output').map((item) => String(item['output']));
    const deltas =
      options.deltas !== undefined
        ? Array.from({ length: options.deltas }, (_, i) => `t${i} `)
        : toDeltas(outputs.length > 0 ? `Tool results: ${outputs.join(' | ')}` : userText.length > 0 ? `You said: ${userText}` : 'Hello!');
    items.push({ type: 'message', deltas });
  }
  const maxOutput = body['max_output_tokens'];
  if (typeof maxOutput === 'number' && maxOutput > 0) {
    const last = items[items.length - 1];
    if (last?.type === 'message' && last.deltas.length > maxOutput) {
      items[items.length - 1] = { type: 'message', deltas: last.deltas.slice(0, maxOutput) };
      return { items, status: 'incomplete', inputTokens };
    }
  }
  return { items, status: 'completed', inputTokens };
}

/** The text the user wrote for a tool in a block of its own ("~~~<tool>", lines, "~~~"):
 * what a scripted client (the Codex test) makes the model pass, a patch or a command. */
function scriptedText(userText: string, toolName: string): string | undefined {
  const opening = `~~~${toolName}\n`;
  const start = userText.indexOf(opening);
  if (start === -1) return undefined;
  const end = userText.indexOf('\n~~~', start + opening.length);
  return end === -1 ? undefined : userText.slice(start + opening.length, end);
}

/** Arguments for the tool's required parameters, typed by its schema: numbers from the
 * numbers in the user's text (in order), booleans true, strings the tool's scripted text
 * (scriptedText) or the text's start. */
function argumentsFor(tool: JsonObject, userText: string): JsonObject {
  const parameters = tool['parameters'] as JsonObject | undefined;
  const required = Array.isArray(parameters?.['required']) ? (parameters['required'] as string[]) : [];
  const properties = (parameters?.['properties'] ?? {}) as Record<string, JsonObject | undefined>;
  const numbers = (userText.match(/-?\d+(?:\.\d+)?/g) ?? []).map(Number);
  const scripted = scriptedText(userText, String(tool['name']));
  const args: JsonObject = {};
  for (const name of required) {
    const type = properties[name]?.['type'];
    if (type === 'number' || type === 'integer') args[name] = numbers.shift() ?? 1;
    else if (type === 'boolean') args[name] = true;
    else args[name] = scripted ?? (userText.slice(0, 40) || name);
  }
  return args;
}

function splitEvery(text: string, size: number): string[] {
  const parts: string[] = [];
  for (let i = 0; i < text.length; i += size) parts.push(text.slice(i, i + size));
  return parts.length > 0 ? parts : [''];
}

/** Output tokens of a plan (one per delta), and how many of them are reasoning. */
export function plannedTokens(plan: GenerationPlan): { output: number; reasoning: number } {
  let output = 0;
  let reasoning = 0;
  for (const item of plan.items) {
    const n = item.type === 'function_call' ? item.argumentDeltas.length : item.deltas.length;
    output += n;
    if (item.type === 'reasoning') reasoning += n;
  }
  return { output, reasoning };
}

/** The ids one response uses: what streams, and what response.completed says. */
export interface ResponseIds {
  readonly responseId: string;
  readonly streamItemIds: readonly string[];
  readonly finalItemIds: readonly string[];
  readonly streamCallIds: readonly string[];
  readonly finalCallIds: readonly string[];
}

const FINAL_PREFIX = { reasoning: 'rs_', message: 'msg_', function_call: 'fc_' } as const;

export function makeIds(plan: GenerationPlan, quirks: Quirks): ResponseIds {
  const finalItemIds = plan.items.map((item) => FINAL_PREFIX[item.type] + hex());
  const streamItemIds = quirks.streamIdsDiffer ? plan.items.map(() => hex()) : finalItemIds;
  const finalCallIds = plan.items.map(() => `chatcmpl-tool-${hex()}`);
  const streamCallIds = quirks.callIdsDiffer ? plan.items.map(() => `call_${hex()}`) : finalCallIds;
  return { responseId: `resp_${hex()}`, streamItemIds, finalItemIds, streamCallIds, finalCallIds };
}

export function outputItem(item: PlannedItem, id: string, callId: string, done: boolean): JsonObject {
  switch (item.type) {
    case 'reasoning':
      return {
        id,
        summary: [],
        type: 'reasoning',
        content: done ? [{ text: joined(item.deltas), type: 'reasoning_text' }] : null,
        encrypted_content: null,
        status: done ? null : 'in_progress',
      };
    case 'message':
      return {
        id,
        content: done ? [{ annotations: [], text: joined(item.deltas), type: 'output_text', logprobs: null }] : [],
        role: 'assistant',
        status: done ? 'completed' : 'in_progress',
        type: 'message',
        phase: null,
      };
    case 'function_call':
      return {
        arguments: done ? joined(item.argumentDeltas) : '',
        call_id: callId,
        name: item.name,
        type: 'function_call',
        id,
        namespace: null,
        status: done ? null : 'in_progress',
      };
  }
}

/** The response object as vLLM sends it (non-streamed body, or inside lifecycle events). */
export function responseObject(
  body: JsonObject,
  plan: GenerationPlan,
  ids: ResponseIds,
  state: 'in_progress' | 'final',
  createdAt: number,
): JsonObject {
  const final = state === 'final';
  const tokens = plannedTokens(plan);
  return {
    id: ids.responseId,
    created_at: createdAt,
    incomplete_details: final && plan.status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: body['instructions'] ?? null,
    metadata: null,
    model: body['model'] ?? 'sim-model',
    object: 'response',
    output: final
      ? plan.items.map((item, i) => outputItem(item, ids.finalItemIds[i] as string, ids.finalCallIds[i] as string, true))
      : [],
    parallel_tool_calls: body['parallel_tool_calls'] ?? true,
    temperature: body['temperature'] ?? 0.6,
    tool_choice: body['tool_choice'] ?? (Array.isArray(body['tools']) && body['tools'].length > 0 ? 'auto' : 'none'),
    tools: body['tools'] ?? [],
    top_p: body['top_p'] ?? 0.95,
    background: false,
    max_output_tokens: body['max_output_tokens'] ?? 40944,
    max_tool_calls: null,
    previous_response_id: body['previous_response_id'] ?? null,
    prompt: null,
    reasoning: null,
    service_tier: 'auto',
    status: final ? plan.status : 'in_progress',
    text: null,
    top_logprobs: null,
    truncation: 'disabled',
    usage: final
      ? {
          input_tokens: plan.inputTokens,
          input_tokens_details: { cached_tokens: 0, input_tokens_per_turn: [], cached_tokens_per_turn: [] },
          output_tokens: tokens.output,
          output_tokens_details: {
            reasoning_tokens: tokens.reasoning,
            tool_output_tokens: 0,
            output_tokens_per_turn: [],
            tool_output_tokens_per_turn: [],
          },
          total_tokens: plan.inputTokens + tokens.output,
        }
      : null,
    user: null,
    presence_penalty: 0.0,
    frequency_penalty: 0.0,
    kv_transfer_params: null,
    input_messages: null,
    output_messages: null,
  };
}

/** The streamed events of one response, in vLLM's order, as JSON objects (without
 * sequence numbers, which the sender assigns). */
export function streamEvents(body: JsonObject, plan: GenerationPlan, ids: ResponseIds, createdAt: number): JsonObject[] {
  const events: JsonObject[] = [];
  const inProgress = responseObject(body, plan, ids, 'in_progress', createdAt);
  events.push({ response: inProgress, type: 'response.created' });
  events.push({ response: inProgress, type: 'response.in_progress' });
  plan.items.forEach((item, outputIndex) => {
    const itemId = ids.streamItemIds[outputIndex] as string;
    const callId = ids.streamCallIds[outputIndex] as string;
    events.push({ item: outputItem(item, itemId, callId, false), output_index: outputIndex, type: 'response.output_item.added' });
    if (item.type === 'reasoning') {
      const text = joined(item.deltas);
      events.push({ content_index: 0, item_id: itemId, output_index: outputIndex, part: { text: '', type: 'reasoning_text' }, type: 'response.reasoning_part.added' });
      for (const delta of item.deltas) {
        events.push({ content_index: 0, delta, item_id: itemId, output_index: outputIndex, type: 'response.reasoning_text.delta' });
      }
      events.push({ content_index: 0, item_id: itemId, output_index: outputIndex, text, type: 'response.reasoning_text.done' });
      events.push({ content_index: 0, item_id: itemId, output_index: outputIndex, part: { text, type: 'reasoning_text' }, type: 'response.reasoning_part.done' });
    } else if (item.type === 'message') {
      const text = joined(item.deltas);
      events.push({ content_index: 0, item_id: itemId, output_index: outputIndex, part: { annotations: [], text: '', type: 'output_text', logprobs: [] }, type: 'response.content_part.added' });
      for (const delta of item.deltas) {
        events.push({ content_index: 0, delta, item_id: itemId, logprobs: [], output_index: outputIndex, type: 'response.output_text.delta' });
      }
      events.push({ content_index: 0, item_id: itemId, logprobs: [], output_index: outputIndex, text, type: 'response.output_text.done' });
      events.push({ content_index: 0, item_id: itemId, output_index: outputIndex, part: { annotations: [], text, type: 'output_text', logprobs: null }, type: 'response.content_part.done' });
    } else {
      for (const delta of item.argumentDeltas) {
        events.push({ delta, item_id: itemId, output_index: outputIndex, type: 'response.function_call_arguments.delta' });
      }
      events.push({ arguments: joined(item.argumentDeltas), item_id: itemId, name: item.name, output_index: outputIndex, type: 'response.function_call_arguments.done' });
    }
    const doneItem = outputItem(item, itemId, callId, true);
    if (item.type !== 'message') doneItem['status'] = 'completed';
    events.push({ item: doneItem, output_index: outputIndex, type: 'response.output_item.done' });
  });
  const terminal = plan.status === 'completed' ? 'response.completed' : 'response.incomplete';
  events.push({ response: responseObject(body, plan, ids, 'final', createdAt), type: terminal });
  return events;
}

/** One event on the wire, as vLLM writes it: three separate chunks. */
export function eventChunks(event: JsonObject, sequenceNumber: number): [string, string, string] {
  // vLLM (pydantic) puts sequence_number, then `type`, last, as in the recordings.
  const { type, ...rest } = event;
  const data = JSON.stringify({ ...rest, sequence_number: sequenceNumber, type });
  return [`event: ${String(type)}\n`, `data: ${data}\n`, '\n'];
}

/** vLLM's error body: {"error":{"message","type","param","code"}} with a numeric code. */
export function vllmError(status: number, message: string): JsonObject {
  const type = status === 404 ? 'NotFoundError' : status >= 500 ? 'InternalServerError' : 'BadRequestError';
  return { error: { message, type, param: null, code: status } };
}

const VLLM_INPUT_TYPES = new Set(['message', 'reasoning', 'function_call', 'function_call_output', 'item_reference']);
const VLLM_ROLES = new Set(['user', 'assistant', 'system', 'developer']);

function partsText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((part) => (typeof part === 'object' && part !== null && typeof (part as JsonObject)['text'] === 'string' ? (part as JsonObject)['text'] : '')).join('');
}

/**
 * What vLLM's request model refuses in `input` (and what users saw it refuse): unknown
 * item types, malformed function items, reasoning without `summary`, and assistant
 * messages with empty content. Returns the problem, or undefined when vLLM would accept it.
 */
export function vllmInputProblem(input: unknown): string | undefined {
  if (input === undefined || typeof input === 'string') return undefined;
  if (!Array.isArray(input)) return "'input' must be a string or a list";
  for (const [index, raw] of input.entries()) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return `input[${index}] is not an object`;
    const item = raw as JsonObject;
    const type = item['type'] ?? (item['role'] !== undefined ? 'message' : undefined);
    if (typeof type !== 'string' || !VLLM_INPUT_TYPES.has(type)) return `input[${index}]: unsupported item type ${typeof type === 'string' ? type : typeof type}`;
    if (type === 'message') {
      if (typeof item['role'] !== 'string' || !VLLM_ROLES.has(item['role'])) return `input[${index}]: bad role`;
      if (typeof item['content'] !== 'string' && !Array.isArray(item['content'])) return `input[${index}]: bad content`;
      if (item['role'] === 'assistant' && partsText(item['content']).length === 0) return `input[${index}]: empty assistant content`;
    } else if (type === 'reasoning') {
      if (!Array.isArray(item['summary'])) return `input[${index}]: reasoning needs a summary list`;
    } else if (type === 'function_call') {
      for (const field of ['call_id', 'name', 'arguments']) {
        if (typeof item[field] !== 'string') return `input[${index}]: function_call needs ${field}`;
      }
    } else if (type === 'function_call_output') {
      if (typeof item['call_id'] !== 'string') return `input[${index}]: function_call_output needs call_id`;
    }
    const status = item['status'];
    if (status !== undefined && status !== null && (typeof status !== 'string' || !['in_progress', 'completed', 'incomplete'].includes(status))) {
      return `input[${index}]: bad status`;
    }
  }
  return undefined;
}

/**
 * What Qwen3's chat templates refuse once vLLM has made messages of the request
 * (`instructions` first, as a system message, then the input's messages with their roles):
 * a system message anywhere but first, and (the stricter templates; the original one drops
 * it without a word) a `developer` message. vLLM answers 400 with the template's words.
 */
export function chatTemplateProblem(body: JsonObject): string | undefined {
  const roles: unknown[] = typeof body['instructions'] === 'string' ? ['system'] : [];
  const input = body['input'];
  if (Array.isArray(input)) {
    for (const item of input) {
      if (typeof item === 'object' && item !== null && ((item as JsonObject)['type'] ?? 'message') === 'message') roles.push((item as JsonObject)['role']);
    }
  }
  if (roles.includes('developer')) return 'Unexpected message role.';
  return roles.lastIndexOf('system') > 0 ? 'System message must be at the beginning.' : undefined;
}

/** vLLM's stream quirks, each on its own switch (x-sim: quirk=a,b). */
export const STREAM_QUIRKS = [
  'unannounced-reasoning-part',
  'fc-args-mismatch',
  'seq-out-of-order',
  'seq-duplicate',
  'no-terminal',
  'end-after-item-added',
  'content-index-not-reset',
  'text-done-extends',
  'text-done-differs',
  'error-event',
  'vllm-done',
  'chat-error-chunk',
] as const;
export type StreamQuirk = (typeof STREAM_QUIRKS)[number];

export interface WireEvent {
  readonly event: JsonObject;
  /** The sequence_number to send; the list position when absent. */
  sequenceNumber?: number;
}

/** Applies quirks to a well-formed event list (the simulator's default is vLLM's usual output). */
export function applyQuirks(events: readonly JsonObject[], quirks: ReadonlySet<string>): { events: WireEvent[]; trailer: string } {
  let list: JsonObject[] = events.map((event) => structuredClone(event));
  const typeOf = (event: JsonObject): string => String(event['type']);
  if (quirks.has('unannounced-reasoning-part')) {
    list = list.filter((event) => typeOf(event) !== 'response.reasoning_part.added');
  }
  if (quirks.has('fc-args-mismatch')) {
    // The deltas spell the arguments with spaces the final arguments do not have.
    const first = list.find((event) => typeOf(event) === 'response.function_call_arguments.delta');
    if (first !== undefined) first['delta'] = ` ${String(first['delta'])}`;
  }
  if (quirks.has('content-index-not-reset')) {
    // vLLM's bug: the second item's parts continue the first item's content_index.
    for (const event of list) {
      if (event['output_index'] === 1 && typeof event['content_index'] === 'number') event['content_index'] = 1;
    }
  }
  if (quirks.has('text-done-extends') || quirks.has('text-done-differs')) {
    for (const event of list) {
      if (typeOf(event) !== 'response.output_text.done') continue;
      event['text'] = quirks.has('text-done-extends') ? `${String(event['text'])} (and more)` : 'something else entirely';
    }
  }
  if (quirks.has('end-after-item-added')) {
    const at = list.findIndex((event) => typeOf(event) === 'response.output_item.added');
    if (at !== -1) list = list.slice(0, at + 1);
  }
  if (quirks.has('no-terminal')) {
    list = list.filter((event) => !['response.completed', 'response.incomplete', 'response.failed'].includes(typeOf(event)));
  }
  if (quirks.has('error-event')) {
    const at = list.findIndex((event) => typeOf(event).endsWith('.delta'));
    list = [...list.slice(0, at + 1), { type: 'error', code: 'engine_dead', message: 'the engine died', param: null }];
  }
  const wire: WireEvent[] = list.map((event, index) => ({ event, sequenceNumber: index }));
  if (quirks.has('seq-out-of-order') && wire.length > 6) {
    const [a, b] = [wire[4] as WireEvent, wire[5] as WireEvent];
    [a.sequenceNumber, b.sequenceNumber] = [b.sequenceNumber, a.sequenceNumber];
  }
  if (quirks.has('seq-duplicate') && wire.length > 6) (wire[5] as WireEvent).sequenceNumber = 4;
  return { events: wire, trailer: quirks.has('vllm-done') ? 'data: [DONE]\n\n' : '' };
}
