// Reads a POST /v1/responses body: it must be UTF-8 JSON describing an object. The
// parsed object is kept for the fields the gateway decides on; the original bytes are
// what goes upstream whenever the gateway does not change the request.
import { isUtf8 } from 'node:buffer';
import { GatewayError } from '../errors.ts';

export interface CreateResponseRequest {
  /** The bytes the client sent. */
  readonly rawBody: Buffer;
  /** The same, parsed. */
  readonly body: Readonly<Record<string, unknown>>;
  readonly stream: boolean;
}

function invalidJson(message: string, cause?: unknown): GatewayError {
  return new GatewayError('invalid_json', message, { cause });
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

export function parseCreateResponseRequest(rawBody: Buffer): CreateResponseRequest {
  const body = parseJsonObject(rawBody);
  const stream = body['stream'];
  if (stream !== undefined && stream !== null && typeof stream !== 'boolean') {
    throw new GatewayError('invalid_request', "Invalid type for 'stream': expected a boolean.", { param: 'stream' });
  }
  return { rawBody, body, stream: stream === true };
}
