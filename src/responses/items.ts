// Items: what a client sends as `input`, and what vLLM produces as `output`, turned into
// the two forms the gateway stores for each item:
// - the display form, as OpenAI's API returns items (ids with OpenAI prefixes, a status
//   that is one of in_progress | completed | incomplete, content as a list of parts);
// - the upstream form, as it goes back to vLLM in a later turn's input: only the fields
//   vLLM's request model reads, no nulls, no statuses it rejects, and nothing at all for
//   an empty assistant message or an empty reasoning item (vLLM answers those with 400).
import { GatewayError } from '../errors.ts';
import type { NewItem, StoredItem } from '../store/store.ts';
import { itemIdPrefix, newId } from './ids.ts';
import { mcpCallUpstream, toolFunctionName } from './mcp-items.ts';

export type Json = Record<string, unknown>;

const ITEM_STATUSES = new Set(['in_progress', 'completed', 'incomplete']);
const MESSAGE_ROLES = new Set(['user', 'assistant', 'system', 'developer']);

/** OpenAI's input item types that the gateway stores and forwards as given. */
const PASSTHROUGH_TYPES = new Set([
  'web_search_call',
  'file_search_call',
  'computer_call',
  'computer_call_output',
  'code_interpreter_call',
  'image_generation_call',
  'local_shell_call',
  'local_shell_call_output',
]);

/** The upstream form of an item that must not go back to vLLM (the store leaves such
 * items out of a history: History.upstream). */
export const NOT_SENT_UPSTREAM = '';

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(message: string, param: string): GatewayError {
  return new GatewayError('invalid_request', message, { param });
}

function requireString(item: Json, field: string, param: string): string {
  const value = item[field];
  if (typeof value !== 'string') throw invalid(`Missing or invalid '${field}': expected a string.`, `${param}.${field}`);
  return value;
}

export function itemStatus(value: unknown, fallback: string): string {
  return typeof value === 'string' && ITEM_STATUSES.has(value) ? value : fallback;
}

function textOfParts(parts: readonly unknown[]): string {
  let text = '';
  for (const part of parts) {
    if (isObject(part) && typeof part['text'] === 'string') text += part['text'];
  }
  return text;
}

/** An assistant message as vLLM takes it back (ResponseOutputMessageParam). */
function assistantUpstream(id: string, text: string): string {
  if (text.length === 0) return NOT_SENT_UPSTREAM;
  return JSON.stringify({
    type: 'message',
    role: 'assistant',
    id,
    status: 'completed',
    content: [{ type: 'output_text', text, annotations: [] }],
  });
}

export function reasoningUpstream(id: string, item: Readonly<Json>): string {
  const summary = Array.isArray(item['summary']) ? item['summary'] : [];
  const content = Array.isArray(item['content']) ? item['content'] : [];
  if (textOfParts(summary).length === 0 && textOfParts(content).length === 0) return NOT_SENT_UPSTREAM;
  const upstream: Json = { type: 'reasoning', id, summary };
  if (content.length > 0) upstream['content'] = content;
  return JSON.stringify(upstream);
}

/** The name vLLM knew a call by: a namespaced tool's is flattened (client-tools.ts). */
function upstreamName(item: Json): unknown {
  const namespace = item['namespace'];
  return typeof namespace === 'string' && typeof item['name'] === 'string' ? toolFunctionName(namespace, item['name']) : item['name'];
}

function functionCallUpstream(id: string, item: Json): string {
  return JSON.stringify({
    type: 'function_call',
    id,
    call_id: item['call_id'],
    name: upstreamName(item),
    arguments: item['arguments'],
  });
}

/** A custom tool's call as vLLM made it: a function call whose one argument is the input. */
function customCallUpstream(id: string, item: Json): string {
  return JSON.stringify({
    type: 'function_call',
    id,
    call_id: item['call_id'],
    name: upstreamName(item),
    arguments: JSON.stringify({ input: typeof item['input'] === 'string' ? item['input'] : '' }),
  });
}

/** A tool's output as vLLM takes it: a string (a list of parts becomes its text). */
function outputUpstream(callId: string, output: unknown): string {
  const text = typeof output === 'string' ? output : Array.isArray(output) ? textOfParts(output) : '';
  return JSON.stringify({ type: 'function_call_output', call_id: callId, output: text });
}

function stored(id: string, type: string, display: Json, upstream: string): NewItem {
  return { id, type, payload: JSON.stringify(display), upstream };
}

function prepareMessage(item: Json, param: string): NewItem {
  const role = item['role'];
  if (typeof role !== 'string' || !MESSAGE_ROLES.has(role)) {
    throw invalid("Invalid 'role': expected one of user, assistant, system, developer.", `${param}.role`);
  }
  const content = item['content'];
  if (typeof content !== 'string' && !Array.isArray(content)) {
    throw invalid("Invalid 'content': expected a string or a list of content parts.", `${param}.content`);
  }
  const id = newId(itemIdPrefix('message'));
  if (Array.isArray(content)) {
    content.forEach((part, index) => {
      if (!isObject(part) || typeof part['type'] !== 'string') {
        throw invalid("Invalid content part: expected an object with a 'type'.", `${param}.content[${index}]`);
      }
    });
  }
  if (role === 'assistant') {
    const parts = typeof content === 'string' ? [{ type: 'output_text', text: content, annotations: [] }] : content;
    const display = { id, type: 'message', status: 'completed', content: parts, role };
    return stored(id, 'message', display, assistantUpstream(id, textOfParts(parts)));
  }
  const parts = typeof content === 'string' ? [{ type: 'input_text', text: content }] : content;
  const display = { id, type: 'message', role, content: parts, status: 'completed' };
  return stored(id, 'message', display, JSON.stringify({ type: 'message', role, content }));
}

/**
 * An MCP item a client sends back (a stateless client replays a response's output). vLLM
 * gets a call as a call and its output; a list or an approval request is not sent; an
 * approval response is sent as what was decided, once the gateway has read its request
 * (responses-service.ts), and nothing until then.
 */
function prepareMcpItem(type: string, raw: Json, param: string): NewItem {
  if (type === 'mcp_approval_response') {
    requireString(raw, 'approval_request_id', param);
    if (typeof raw['approve'] !== 'boolean') throw invalid("Invalid 'approve': expected a boolean.", `${param}.approve`);
  } else {
    requireString(raw, 'server_label', param);
  }
  if (type === 'mcp_call' || type === 'mcp_approval_request') requireString(raw, 'name', param);
  const id = type === 'mcp_approval_request' && typeof raw['id'] === 'string' ? raw['id'] : newId(itemIdPrefix(type));
  const display: Json = { ...raw, id, type };
  return stored(id, type, display, type === 'mcp_call' ? mcpCallUpstream(display) : NOT_SENT_UPSTREAM);
}

/** An input item that names a stored item (item_reference): resolved against the store. */
export interface ItemReference {
  readonly reference: string;
  readonly param: string;
}

/** An input item as planned before the store is read: ready, or a reference to resolve. */
export type PlannedItem = NewItem | ItemReference;

export function isReference(item: PlannedItem): item is ItemReference {
  return 'reference' in item;
}

function planItem(raw: unknown, index: number): PlannedItem {
  const param = `input[${index}]`;
  if (!isObject(raw)) throw invalid('Invalid input item: expected an object.', param);
  const type = raw['type'] ?? (raw['role'] !== undefined ? 'message' : undefined);
  if (typeof type !== 'string') throw invalid("Missing 'type' on an input item.", `${param}.type`);
  switch (type) {
    case 'message':
      return prepareMessage(raw, param);
    case 'function_call_output': {
      const callId = requireString(raw, 'call_id', param);
      const output = raw['output'];
      if (typeof output !== 'string' && !Array.isArray(output)) {
        throw invalid("Invalid 'output': expected a string or a list.", `${param}.output`);
      }
      const id = newId(itemIdPrefix(type));
      const display = { id, type, call_id: callId, output, status: 'completed' };
      return stored(id, type, display, JSON.stringify({ type, call_id: callId, output }));
    }
    case 'function_call': {
      requireString(raw, 'call_id', param);
      requireString(raw, 'name', param);
      requireString(raw, 'arguments', param);
      const id = newId(itemIdPrefix(type));
      const display: Json = { id, type, status: 'completed', arguments: raw['arguments'], call_id: raw['call_id'], name: raw['name'] };
      if (typeof raw['namespace'] === 'string') display['namespace'] = raw['namespace'];
      return stored(id, type, display, functionCallUpstream(id, raw));
    }
    case 'custom_tool_call': {
      requireString(raw, 'call_id', param);
      requireString(raw, 'name', param);
      requireString(raw, 'input', param);
      const id = newId(itemIdPrefix(type));
      const display: Json = { id, type, call_id: raw['call_id'], input: raw['input'], name: raw['name'] };
      if (typeof raw['namespace'] === 'string') display['namespace'] = raw['namespace'];
      return stored(id, type, display, customCallUpstream(id, raw));
    }
    case 'custom_tool_call_output': {
      const callId = requireString(raw, 'call_id', param);
      const output = raw['output'];
      if (typeof output !== 'string' && !Array.isArray(output)) {
        throw invalid("Invalid 'output': expected a string or a list.", `${param}.output`);
      }
      const id = newId(itemIdPrefix(type));
      return stored(id, type, { id, type, call_id: callId, output }, outputUpstream(callId, output));
    }
    case 'reasoning': {
      const id = newId(itemIdPrefix(type));
      const display: Json = { id, type, summary: Array.isArray(raw['summary']) ? raw['summary'] : [] };
      if (Array.isArray(raw['content'])) display['content'] = raw['content'];
      if (typeof raw['encrypted_content'] === 'string') display['encrypted_content'] = raw['encrypted_content'];
      display['status'] = 'completed';
      return stored(id, type, display, reasoningUpstream(id, raw));
    }
    case 'compaction': {
      // What it seals reaches vLLM once the service has opened it (compaction.ts).
      const id = newId(itemIdPrefix(type));
      return stored(id, type, { id, type, encrypted_content: requireString(raw, 'encrypted_content', param) }, NOT_SENT_UPSTREAM);
    }
    case 'item_reference':
      return { reference: requireString(raw, 'id', param), param: `${param}.id` };
    case 'mcp_list_tools':
    case 'mcp_call':
    case 'mcp_approval_request':
    case 'mcp_approval_response':
      return prepareMcpItem(type, raw, param);
    default: {
      if (!PASSTHROUGH_TYPES.has(type)) {
        throw invalid(`Invalid input item type '${type}'.`, `${param}.type`);
      }
      const id = newId(itemIdPrefix(type));
      const { id: _clientId, ...rest } = raw;
      return stored(id, type, { ...rest, id }, JSON.stringify(rest));
    }
  }
}

/** A referenced item, copied into this turn under a new id: each response owns what it holds. */
function copyReferenced(referenced: StoredItem): NewItem {
  const id = newId(itemIdPrefix(referenced.type));
  const display = { ...(JSON.parse(referenced.payload) as Json), id };
  let upstream = referenced.upstream;
  // A call's upstream form is two items (the call and its output), made again under the new id.
  if (referenced.type === 'mcp_call') upstream = mcpCallUpstream(display);
  else if (upstream !== NOT_SENT_UPSTREAM) {
    const parsed = JSON.parse(upstream) as Json;
    if ('id' in parsed) parsed['id'] = id;
    upstream = JSON.stringify(parsed);
  }
  return stored(id, referenced.type, display, upstream);
}

/** How many items an `input` holds (a string is one message), without reading them. */
export function countInputItems(input: unknown): number {
  if (Array.isArray(input)) return input.length;
  return input === undefined || input === null ? 0 : 1;
}

/**
 * A request's `input` as items with fresh ids, item_reference entries left to resolve;
 * 400 for anything OpenAI's API refuses. Pure (no store): it may run on a parser thread.
 */
export function planInputItems(input: unknown): PlannedItem[] {
  if (typeof input === 'string') {
    const id = newId(itemIdPrefix('message'));
    const display = { id, type: 'message', role: 'user', content: [{ type: 'input_text', text: input }], status: 'completed' };
    return [stored(id, 'message', display, JSON.stringify({ type: 'message', role: 'user', content: input }))];
  }
  if (input === undefined || input === null) return [];
  if (!Array.isArray(input)) throw invalid("Invalid 'input': expected a string or a list of items.", 'input');
  return input.map((raw, index) => planItem(raw, index));
}

/** The ids the planned items reference, for loading them before resolving. */
export function referencedItemIds(planned: readonly PlannedItem[]): string[] {
  const ids: string[] = [];
  for (const item of planned) if (isReference(item)) ids.push(item.reference);
  return ids;
}

/** The planned items with their references resolved; 404 for a reference to nothing (or to another tenant's item). */
export function resolveInputItems(planned: readonly PlannedItem[], references: ReadonlyMap<string, StoredItem>): NewItem[] {
  return planned.map((item) => {
    if (!isReference(item)) return item;
    const referenced = references.get(item.reference);
    if (referenced === undefined) {
      throw new GatewayError('item_not_found', `Item with id '${item.reference.slice(0, 100)}' not found.`, { param: item.param });
    }
    return copyReferenced(referenced);
  });
}

function normalizeOutputText(part: Json): Json {
  if (part['type'] !== 'output_text') return part;
  return {
    type: 'output_text',
    annotations: Array.isArray(part['annotations']) ? part['annotations'] : [],
    logprobs: Array.isArray(part['logprobs']) ? part['logprobs'] : [],
    text: typeof part['text'] === 'string' ? part['text'] : '',
  };
}

/**
 * One of vLLM's output items in OpenAI's shape, under the gateway's id: a status from
 * OpenAI's set, content as a list, and none of vLLM's private fields (unless kept).
 */
export function normalizeOutputItem(raw: Json, id: string, fallbackStatus: string, keepRawFields: boolean): Json {
  const type = typeof raw['type'] === 'string' ? raw['type'] : 'message';
  const status = itemStatus(raw['status'], fallbackStatus);
  if (keepRawFields) return { ...raw, id, status };
  switch (type) {
    case 'message': {
      const content = Array.isArray(raw['content']) ? raw['content'] : [];
      return {
        id,
        type,
        status,
        content: content.map((part: unknown) => (isObject(part) ? normalizeOutputText(part) : part)),
        role: 'assistant',
      };
    }
    case 'reasoning': {
      const item: Json = { id, type, summary: Array.isArray(raw['summary']) ? raw['summary'] : [] };
      item['content'] = Array.isArray(raw['content']) ? raw['content'] : [];
      if (typeof raw['encrypted_content'] === 'string') item['encrypted_content'] = raw['encrypted_content'];
      item['status'] = status;
      return item;
    }
    case 'function_call':
      return {
        id,
        type,
        status,
        arguments: typeof raw['arguments'] === 'string' ? raw['arguments'] : '',
        call_id: raw['call_id'],
        name: raw['name'],
      };
    default: {
      const item: Json = {};
      for (const [key, value] of Object.entries(raw)) {
        if (value === null && (key === 'namespace' || key === 'phase')) continue;
        item[key] = value;
      }
      item['id'] = id;
      if ('status' in raw) item['status'] = status;
      return item;
    }
  }
}

/** The stored forms of an output item (already normalized). */
export function storedOutputItem(item: Json): NewItem {
  const id = item['id'] as string;
  const type = item['type'] as string;
  let upstream: string;
  switch (type) {
    case 'message':
      upstream = assistantUpstream(id, textOfParts(Array.isArray(item['content']) ? item['content'] : []));
      break;
    case 'reasoning':
      upstream = reasoningUpstream(id, item);
      break;
    case 'function_call':
      upstream = functionCallUpstream(id, item);
      break;
    case 'custom_tool_call':
      upstream = customCallUpstream(id, item);
      break;
    case 'mcp_call':
      upstream = mcpCallUpstream(item);
      break;
    // A compaction's summary is sealed: the service that opens it gives its upstream form.
    case 'compaction':
    case 'mcp_list_tools':
    case 'mcp_approval_request':
      upstream = NOT_SENT_UPSTREAM;
      break;
    default: {
      const { status: _status, ...rest } = item;
      upstream = JSON.stringify(rest);
    }
  }
  return { id, type, payload: JSON.stringify(item), upstream };
}
