// Reads a POST /v1/responses body: it must be UTF-8 JSON describing an object. The
// parsed object is kept for the fields the gateway decides on; the original bytes are
// what goes upstream whenever the gateway does not change the request.
import { isUtf8 } from 'node:buffer';
import { GatewayError } from '../errors.ts';
import { ID_PREFIX, hasIdShape } from './ids.ts';
import { countInputItems, type PlannedItem } from './items.ts';

export interface CreateResponseRequest {
  /** The bytes the client sent. */
  readonly rawBody: Buffer;
  /** The same, parsed; `input` may be left out when `planned` holds it (a parser thread's). */
  readonly body: Readonly<Record<string, unknown>>;
  readonly stream: boolean;
  /** background: true: the response runs on its own; the POST answers at once. */
  readonly background: boolean;
  /** `store` as sent, true when absent (OpenAI's default). */
  readonly store: boolean;
  readonly previousResponseId: string | null;
  readonly conversationId: string | null;
  /** How many items `input` holds (a string is one). */
  readonly inputItemCount: number;
  /** `input` planned as items, when it was planned already (see planInputItems). */
  readonly planned?: readonly PlannedItem[];
}

export interface RequestLimits {
  readonly maxJsonDepth: number;
  readonly maxInputItems: number;
}

/** 400 for an input of `count` items, or (count undefined) one that is too long with its history. */
export function tooManyInputItems(maxInputItems: number, count?: number): GatewayError {
  const what = count === undefined ? `The input and the history it continues hold more than ${maxInputItems} items` : `The input holds ${count} items`;
  return new GatewayError('too_many_input_items', `${what}; at most ${maxInputItems} are accepted (--max-input-items).`, {
    param: 'input',
  });
}

function invalidJson(message: string, cause?: unknown): GatewayError {
  return new GatewayError('invalid_json', message, { cause });
}

function invalid(message: string, param: string): GatewayError {
  return new GatewayError('invalid_request', message, { param });
}

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;

/**
 * Whether JSON text nests objects and arrays deeper than `maxDepth`. Most bodies have
 * fewer brackets than the limit, which native indexOf counts fast; only the others are
 * scanned character by character (outside strings).
 */
export function nestsDeeperThan(text: Buffer, maxDepth: number): boolean {
  let brackets = 0;
  for (const code of [OPEN_BRACE, OPEN_BRACKET]) {
    let at = text.indexOf(code);
    while (at !== -1 && brackets <= maxDepth) {
      brackets += 1;
      at = text.indexOf(code, at + 1);
    }
  }
  if (brackets <= maxDepth) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const code = text[i] as number;
    if (inString) {
      if (code === 0x5c) i += 1;
      else if (code === 0x22) inString = false;
    } else if (code === 0x22) inString = true;
    else if (code === OPEN_BRACE || code === OPEN_BRACKET) {
      depth += 1;
      if (depth > maxDepth) return true;
    } else if (code === 0x7d || code === 0x5d) depth -= 1;
  }
  return false;
}

export function parseJsonObject(rawBody: Buffer, maxDepth: number): Record<string, unknown> {
  if (rawBody.length === 0) throw invalidJson('The request body is empty; expected a JSON object.');
  if (!isUtf8(rawBody)) throw invalidJson('The request body is not valid UTF-8.');
  if (nestsDeeperThan(rawBody, maxDepth)) {
    throw invalidJson(`The request body nests objects and arrays deeper than ${maxDepth} levels.`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(rawBody.toString('utf8'));
  } catch (error) {
    throw invalidJson('The request body is not valid JSON.', error);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw invalidJson('The request body must be a JSON object.');
  }
  return parsed as Record<string, unknown>;
}

function optionalBoolean(body: Record<string, unknown>, field: string, fallback: boolean): boolean {
  const value = body[field];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'boolean') throw invalid(`Invalid type for '${field}': expected a boolean.`, field);
  return value;
}

/** An id field that must have the given prefix, e.g. previous_response_id -> resp_. */
export function checkIdShape(id: string, prefix: string, param: string): string {
  if (!hasIdShape(id, prefix)) {
    throw invalid(`Invalid '${param}': '${id.slice(0, 100)}'. Expected an ID that begins with '${prefix}'.`, param);
  }
  return id;
}

function conversationIdOf(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  const id = typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>)['id'] : value;
  if (typeof id !== 'string') throw invalid("Invalid 'conversation': expected a conversation id or {\"id\": ...}.", 'conversation');
  return checkIdShape(id, ID_PREFIX.conversation, 'conversation');
}

/** What a create request and a compaction share: the input, and the response it continues. */
function conversationFields(body: Record<string, unknown>, limits: RequestLimits): { previousResponseId: string | null; inputItemCount: number } {
  const input = body['input'];
  if (input !== undefined && input !== null && typeof input !== 'string' && !Array.isArray(input)) {
    throw invalid("Invalid 'input': expected a string or a list of items.", 'input');
  }
  const previous = body['previous_response_id'];
  if (previous !== undefined && previous !== null && typeof previous !== 'string') {
    throw invalid("Invalid type for 'previous_response_id': expected a string.", 'previous_response_id');
  }
  const inputItemCount = countInputItems(input);
  if (inputItemCount > limits.maxInputItems) throw tooManyInputItems(limits.maxInputItems, inputItemCount);
  return { previousResponseId: typeof previous === 'string' ? checkIdShape(previous, ID_PREFIX.response, 'previous_response_id') : null, inputItemCount };
}

export function parseCreateResponseRequest(rawBody: Buffer, limits: RequestLimits): CreateResponseRequest {
  const body = parseJsonObject(rawBody, limits.maxJsonDepth);
  const stream = optionalBoolean(body, 'stream', false);
  const store = optionalBoolean(body, 'store', true);
  const background = optionalBoolean(body, 'background', false);
  if (background && !store) {
    // OpenAI's rule: a background response is stored, or it could not be retrieved.
    throw invalid("'background': true requires 'store': true (a background response is retrieved from storage); remove 'store': false.", 'store');
  }
  const { previousResponseId, inputItemCount } = conversationFields(body, limits);
  const conversationId = conversationIdOf(body['conversation']);
  if (previousResponseId !== null && conversationId !== null) {
    throw invalid("'previous_response_id' and 'conversation' cannot be used together.", 'conversation');
  }
  return { rawBody, body, stream, store, background, previousResponseId, conversationId, inputItemCount };
}

/** A POST /v1/responses/compact body: a create request's conversation fields, no output ones. */
export function parseCompactRequest(rawBody: Buffer, limits: RequestLimits): CreateResponseRequest {
  const body = parseJsonObject(rawBody, limits.maxJsonDepth);
  if (typeof body['model'] !== 'string' || body['model'].length === 0) {
    throw invalid("Missing required parameter: 'model'.", 'model');
  }
  const { previousResponseId, inputItemCount } = conversationFields(body, limits);
  return { rawBody, body, stream: false, store: false, background: false, previousResponseId, conversationId: null, inputItemCount };
}
