// Reads a POST /v1/responses body: it must be UTF-8 JSON describing an object. The
// parsed object is kept for the fields the gateway decides on; the original bytes are
// what goes upstream whenever the gateway does not change the request.
import { isUtf8 } from 'node:buffer';
import { GatewayError } from '../errors.ts';
import { ID_PREFIX, hasIdShape } from './ids.ts';

export interface CreateResponseRequest {
  /** The bytes the client sent. */
  readonly rawBody: Buffer;
  /** The same, parsed. */
  readonly body: Readonly<Record<string, unknown>>;
  readonly stream: boolean;
  /** `store` as sent, true when absent (OpenAI's default). */
  readonly store: boolean;
  readonly previousResponseId: string | null;
  readonly conversationId: string | null;
}

function invalidJson(message: string, cause?: unknown): GatewayError {
  return new GatewayError('invalid_json', message, { cause });
}

function invalid(message: string, param: string): GatewayError {
  return new GatewayError('invalid_request', message, { param });
}

export function parseJsonObject(rawBody: Buffer): Record<string, unknown> {
  if (rawBody.length === 0) throw invalidJson('The request body is empty; expected a JSON object.');
  if (!isUtf8(rawBody)) throw invalidJson('The request body is not valid UTF-8.');
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

export function parseCreateResponseRequest(rawBody: Buffer): CreateResponseRequest {
  const body = parseJsonObject(rawBody);
  const stream = optionalBoolean(body, 'stream', false);
  const store = optionalBoolean(body, 'store', true);
  if (optionalBoolean(body, 'background', false)) {
    throw invalid('Background responses are not supported by this gateway yet; send background: false.', 'background');
  }
  const input = body['input'];
  if (input !== undefined && input !== null && typeof input !== 'string' && !Array.isArray(input)) {
    throw invalid("Invalid 'input': expected a string or a list of items.", 'input');
  }
  const previous = body['previous_response_id'];
  if (previous !== undefined && previous !== null && typeof previous !== 'string') {
    throw invalid("Invalid type for 'previous_response_id': expected a string.", 'previous_response_id');
  }
  const previousResponseId =
    typeof previous === 'string' ? checkIdShape(previous, ID_PREFIX.response, 'previous_response_id') : null;
  const conversationId = conversationIdOf(body['conversation']);
  if (previousResponseId !== null && conversationId !== null) {
    throw invalid("'previous_response_id' and 'conversation' cannot be used together.", 'conversation');
  }
  return { rawBody, body, stream, store, previousResponseId, conversationId };
}
