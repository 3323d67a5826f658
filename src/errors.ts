// The gateway's one error family. Every error a client can see is rendered from a
// GatewayError in OpenAI's shape: {"error":{"message","type","param","code"}}.
// Codes are never renamed or reused once released; docs/errors.md lists them all and
// a test keeps the two in step.

/** OpenAI's error `type` values that the gateway uses. */
export type OpenAIErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'not_found_error'
  | 'rate_limit_error'
  // OpenAI's own 429s for a rate limit say which limit: requests or tokens.
  | 'requests'
  | 'tokens'
  | 'server_error';

interface ErrorCodeEntry {
  readonly status: number;
  readonly type: OpenAIErrorType;
  readonly description: string;
}

/** Each code the gateway itself produces, with its HTTP status and OpenAI error type. */
export const ERROR_CODES = {
  invalid_json: {
    status: 400,
    type: 'invalid_request_error',
    description: 'The request body is not valid JSON, or not a JSON object.',
  },
  invalid_request: {
    status: 400,
    type: 'invalid_request_error',
    description: 'A field of the request has the wrong type or an unsupported value.',
  },
  invalid_encrypted_content: {
    status: 400,
    type: 'invalid_request_error',
    description: "A reasoning item's encrypted_content does not open: altered, sealed for another tenant, or by a server that does not share this gateway's --state-secret.",
  },
  unsupported_parameter: {
    status: 400,
    type: 'invalid_request_error',
    description: 'The model server is reached through Chat Completions (--upstream-api chat) and the named parameter or input part has no Chat Completions form.',
  },
  compaction_failed: {
    status: 502,
    type: 'server_error',
    description: "The conversation crossed context_management's compact_threshold and the model server could not summarise it (its answer is quoted).",
  },
  unsupported_content_encoding: {
    status: 415,
    type: 'invalid_request_error',
    description: 'The request body has a Content-Encoding the gateway cannot decode (gzip, deflate, br and zstd are read; zstd needs Node.js 22.15 or later).',
  },
  too_many_input_items: {
    status: 400,
    type: 'invalid_request_error',
    description: 'The input, counted with the history it continues, has more items than --max-input-items.',
  },
  invalid_api_key: {
    status: 401,
    type: 'invalid_request_error',
    description: 'Gateway keys are configured and the request carries none of them.',
  },
  not_found: {
    status: 404,
    type: 'invalid_request_error',
    description: 'No such route on the gateway.',
  },
  response_not_found: {
    status: 404,
    type: 'invalid_request_error',
    description: 'No stored response has this id (never stored, store: false, deleted or expired).',
  },
  previous_response_not_found: {
    status: 404,
    type: 'invalid_request_error',
    description: 'previous_response_id names no stored response.',
  },
  conversation_not_found: {
    status: 404,
    type: 'invalid_request_error',
    description: 'No conversation has this id.',
  },
  item_not_found: {
    status: 404,
    type: 'invalid_request_error',
    description: 'No item has this id (in this conversation, or for item_reference).',
  },
  response_not_cancellable: {
    status: 400,
    type: 'invalid_request_error',
    description:
      'POST /v1/responses/{id}/cancel on a response that was not created with background: true, or that already ended otherwise than cancelled.',
  },
  method_not_allowed: {
    status: 405,
    type: 'invalid_request_error',
    description: 'The route exists but not for this HTTP method.',
  },
  request_timeout: {
    status: 408,
    type: 'invalid_request_error',
    description: 'The client took too long to send its request.',
  },
  expectation_failed: {
    status: 417,
    type: 'invalid_request_error',
    description: 'The request carries an Expect header other than 100-continue.',
  },
  request_too_large: {
    status: 413,
    type: 'invalid_request_error',
    description: 'The request body is larger than --max-body-size.',
  },
  headers_too_large: {
    status: 431,
    type: 'invalid_request_error',
    description: 'The request headers are larger than --max-header-size.',
  },
  too_many_requests: {
    status: 429,
    type: 'rate_limit_error',
    description: 'More requests are in flight than --max-concurrent allows.',
  },
  rate_limit_exceeded: {
    status: 429,
    type: 'requests',
    description:
      "The tenant used its requests per minute (type `requests`) or tokens per minute (type `tokens`): --rate-limit-rpm/--rate-limit-tpm or its key entry's rpm=/tpm=. Retry-After says when to retry.",
  },
  internal_error: {
    status: 500,
    type: 'server_error',
    description: 'An unexpected failure inside the gateway; details are in its log.',
  },
  loop_detected: {
    status: 508,
    type: 'server_error',
    description: 'The request came back to the gateway that forwarded it: --llm-api-base points at this gateway, or at one that points back.',
  },
  upstream_unavailable: {
    status: 502,
    type: 'server_error',
    description: 'vLLM closed the connection before sending response headers, or failed in another way not listed here.',
  },
  upstream_connection_refused: {
    status: 502,
    type: 'server_error',
    description: "Nothing listens on --llm-api-base's port: vLLM is not running there (or has stopped).",
  },
  upstream_dns_failure: {
    status: 502,
    type: 'server_error',
    description: "--llm-api-base's host name does not resolve.",
  },
  upstream_unreachable: {
    status: 502,
    type: 'server_error',
    description: "No network route to --llm-api-base's host.",
  },
  upstream_tls_error: {
    status: 502,
    type: 'server_error',
    description:
      "The TLS handshake with vLLM failed: https:// to a plain HTTP port, or a certificate the gateway does not trust (NODE_EXTRA_CA_CERTS adds a CA).",
  },
  upstream_invalid_response: {
    status: 502,
    type: 'server_error',
    description: 'vLLM answered with something that is not a valid Responses API reply.',
  },
  upstream_not_ready: {
    status: 503,
    type: 'server_error',
    description: 'GET /ready: vLLM does not answer its /health endpoint with 200.',
  },
  upstream_starting: {
    status: 503,
    type: 'server_error',
    description: 'serve: vLLM is still starting (loading its model); retry once GET /ready answers 200.',
  },
  store_unavailable: {
    status: 503,
    type: 'server_error',
    description: 'The database behind stored responses and conversations failed or is unreachable.',
  },
  upstream_timeout: {
    status: 504,
    type: 'server_error',
    description:
      'vLLM did not connect, send headers, or send the next stream chunk within its timeout.',
  },
  upstream_stream_interrupted: {
    status: 502,
    type: 'server_error',
    description: 'vLLM broke off a streamed response (reset or truncated stream).',
  },
  run_interrupted: {
    status: 500,
    type: 'server_error',
    description:
      "In a background response's `error`: the gateway process running it stopped (killed, crashed, or its shutdown grace period ran out) before it finished; the output so far is kept.",
  },
  background_runs_full: {
    status: 429,
    type: 'rate_limit_error',
    description: 'More background responses are waiting than the queue behind --max-background-runs holds; retry later.',
  },
  server_shutting_down: {
    status: 503,
    type: 'server_error',
    description: 'The gateway is shutting down and the grace period ran out.',
  },
} as const satisfies Record<string, ErrorCodeEntry>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface GatewayErrorOptions {
  readonly param?: string | null;
  readonly cause?: unknown;
  /** Overrides the table's status where one code covers several (e.g. 404 vs 400). */
  readonly status?: number;
  /** Extra response headers (Retry-After, Allow, ...). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Overrides the table's type where one code covers several (a rate limit's kind). */
  readonly type?: OpenAIErrorType;
}

export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly type: OpenAIErrorType;
  readonly param: string | null;
  readonly headers: Readonly<Record<string, string>> | undefined;

  constructor(code: ErrorCode, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    const entry = ERROR_CODES[code];
    this.code = code;
    this.status = options.status ?? entry.status;
    this.type = options.type ?? entry.type;
    this.param = options.param ?? null;
    this.headers = options.headers;
  }
}

export function isGatewayError(value: unknown): value is GatewayError {
  return value instanceof GatewayError;
}

/** The client-safe OpenAI error object for any thrown value (unknown failures become internal_error). */
export function toErrorObject(error: unknown): {
  message: string;
  type: OpenAIErrorType;
  param: string | null;
  code: string;
} {
  if (isGatewayError(error)) {
    return { message: error.message, type: error.type, param: error.param, code: error.code };
  }
  return {
    message: 'The gateway failed to process the request.',
    type: 'server_error',
    param: null,
    code: 'internal_error',
  };
}

export function renderErrorBody(error: unknown): string {
  return JSON.stringify({ error: toErrorObject(error) });
}

/** An error as OpenAI's error object carries it (also what vLLM sends in its own). */
export interface ErrorObject {
  readonly message: string;
  readonly type: string;
  readonly param: unknown;
  readonly code: string | null;
}

/**
 * An `error` event's data: OpenAI's published schema has the error's fields on the event
 * itself ({type, code, message, param}), while OpenAI's servers send them nested under
 * `error` (and the SDKs read either): the event carries both, so that a client reading
 * either form, or validating against the schema, gets what it expects.
 */
export function errorEventPayload(error: ErrorObject, sequenceNumber: number | undefined): Record<string, unknown> {
  const payload: Record<string, unknown> = { type: 'error', code: error.code, message: error.message, param: error.param ?? null, error };
  if (sequenceNumber !== undefined) payload['sequence_number'] = sequenceNumber;
  return payload;
}

/**
 * The SSE `error` event (see errorEventPayload). Every error event the gateway writes is
 * rendered here; `sequenceNumber` is left out where a stream has none (a stream relayed as
 * vLLM sent it).
 */
export function renderSseError(error: unknown, sequenceNumber: number | undefined): string {
  return renderSseErrorObject(toErrorObject(error), sequenceNumber);
}

export function renderSseErrorObject(error: ErrorObject, sequenceNumber: number | undefined): string {
  return `event: error\ndata: ${JSON.stringify(errorEventPayload(error, sequenceNumber))}\n\n`;
}

export function statusOf(error: unknown): number {
  return isGatewayError(error) ? error.status : 500;
}
