// The response object in OpenAI's shape, built from vLLM's and the request: every field
// OpenAI returns, in OpenAI's order, with OpenAI's types and defaults; the gateway's ids;
// what the client sent echoed back (store, previous_response_id, instructions, tools,
// metadata); none of vLLM's private fields unless --raw-upstream-fields is set.
import type { Json } from './items.ts';

/** What the gateway knows about the request a response answers. */
export interface ResponseFacts {
  readonly id: string;
  /** The client's request body. */
  readonly request: Readonly<Json>;
  readonly store: boolean;
  readonly background: boolean;
  readonly previousResponseId: string | null;
  readonly conversationId: string | null;
  readonly keepRawFields: boolean;
  /** Set when the client asked for reasoning.encrypted_content: seals a reasoning item. */
  readonly sealReasoning?: ((item: Readonly<Json>) => string) | undefined;
  /** Items the gateway made before vLLM answers (a server-side compaction), output first. */
  readonly leadingItems?: Json[];
}

const RESPONSE_STATUSES = new Set(['completed', 'failed', 'in_progress', 'cancelled', 'queued', 'incomplete']);

function pick(...values: unknown[]): unknown {
  for (const value of values) if (value !== undefined && value !== null) return value;
  return null;
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function numberOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

/** usage with OpenAI's detail objects and nothing else (vLLM adds per-turn lists). */
export function normalizeUsage(raw: unknown): Json | null {
  if (!isObject(raw)) return null;
  const inputDetails = isObject(raw['input_tokens_details']) ? raw['input_tokens_details'] : {};
  const outputDetails = isObject(raw['output_tokens_details']) ? raw['output_tokens_details'] : {};
  const input = numberOr(raw['input_tokens'], 0);
  const output = numberOr(raw['output_tokens'], 0);
  return {
    input_tokens: input,
    // vLLM reports no cache writes (its prefix cache is not billed): 0, as the schema needs a number.
    input_tokens_details: { cached_tokens: numberOr(inputDetails['cached_tokens'], 0), cache_write_tokens: numberOr(inputDetails['cache_write_tokens'], 0) },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: numberOr(outputDetails['reasoning_tokens'], 0) },
    total_tokens: numberOr(raw['total_tokens'], input + output),
  };
}

function normalizeReasoning(value: unknown): Json {
  const reasoning = isObject(value) ? value : {};
  return { effort: pick(reasoning['effort']), summary: pick(reasoning['summary']) };
}

function normalizeText(requested: unknown, upstream: unknown): Json {
  const text = isObject(requested) ? requested : isObject(upstream) ? upstream : {};
  return { ...text, format: isObject(text['format']) ? text['format'] : { type: 'text' } };
}

/** Whether a tool is echoed as sent: not an MCP tool with secrets, not a function
 * missing a field OpenAI fills. */
function echoedAsSent(tool: unknown): boolean {
  if (!isObject(tool)) return true;
  if (tool['type'] === 'mcp') return !('headers' in tool || 'authorization' in tool);
  if (tool['type'] === 'function') return 'strict' in tool && 'parameters' in tool;
  return true;
}

/** The request's tools as the response shows them: an MCP tool's headers and
 * authorization are secrets, never returned (nor stored: the stored body is this); a
 * function tool has `strict` and `parameters` as OpenAI fills them (true, null). */
function echoedTools(tools: readonly unknown[]): readonly unknown[] {
  if (tools.every(echoedAsSent)) return tools;
  return tools.map((tool) => {
    if (echoedAsSent(tool) || !isObject(tool)) return tool;
    if (tool['type'] === 'function') return { ...tool, parameters: tool['parameters'] ?? null, strict: tool['strict'] ?? true };
    const { headers: _headers, authorization: _authorization, ...shown } = tool;
    return shown;
  });
}

/** The codes a response's `error` may have (OpenAI's ResponseError); the gateway's own
 * codes (upstream_timeout, store_unavailable, ...) are said in the stream's `error` event. */
const RESPONSE_ERROR_CODES = new Set([
  'server_error',
  'rate_limit_exceeded',
  'invalid_prompt',
  'vector_store_timeout',
  'invalid_image',
  'invalid_image_format',
  'invalid_base64_image',
  'invalid_image_url',
  'image_too_large',
  'image_too_small',
  'image_parse_error',
  'image_content_policy_violation',
  'invalid_image_mode',
  'image_file_too_large',
  'unsupported_image_media_type',
  'empty_image_file',
  'failed_to_download_image',
  'image_file_not_found',
]);

/** A failed response's `error` as OpenAI's schema has it: {code, message}, the code one of OpenAI's. */
export function responseError(code: unknown, message: unknown): Json {
  const text = typeof message === 'string' ? message : 'The response failed.';
  if (typeof code === 'string' && RESPONSE_ERROR_CODES.has(code)) return { code, message: text };
  // The gateway's own code stays readable where the schema has no room for it.
  return { code: 'server_error', message: typeof code === 'string' && code.length > 0 && !text.includes(`(${code})`) ? `${text} (${code})` : text };
}

function errorOf(value: unknown): Json | null {
  return isObject(value) ? responseError(value['code'], value['message']) : null;
}

const NAMED_TIERS = new Set(['default', 'flex', 'scale', 'priority']);

/** The tier that served the request, as OpenAI reports it: `auto` (or none) is served by
 * `default`; a named tier is echoed (vLLM has one queue, and says `auto` whatever was asked). */
function servedTier(requested: unknown): string {
  return typeof requested === 'string' && NAMED_TIERS.has(requested) ? requested : 'default';
}

export interface ResponseOverrides {
  readonly status?: string;
  readonly output: readonly Json[];
  readonly error?: Json | null;
  readonly usage?: unknown;
}

/** vLLM's response object (or {} when there is none) in OpenAI's shape. */
export function normalizeResponse(upstream: Readonly<Json>, facts: ResponseFacts, overrides: ResponseOverrides): Json {
  const request = facts.request;
  const nowSeconds = Math.floor(Date.now() / 1000);
  const rawStatus = overrides.status ?? upstream['status'];
  const status = typeof rawStatus === 'string' && RESPONSE_STATUSES.has(rawStatus) ? rawStatus : 'completed';
  const createdAt = numberOr(upstream['created_at'], nowSeconds);
  // Built field by field, in OpenAI's order, with the optional ones left out rather than
  // added and deleted: a delete turns the object into a dictionary, which JSON.stringify
  // (every answer and stream end) serializes slower (bench/README.md, "What was changed").
  const response: Json = {};
  response['id'] = facts.id;
  response['object'] = 'response';
  response['created_at'] = createdAt;
  response['status'] = status;
  response['background'] = facts.background;
  response['completed_at'] = status === 'completed' ? Math.max(numberOr(upstream['completed_at'], nowSeconds), createdAt) : null;
  if (facts.conversationId !== null) response['conversation'] = { id: facts.conversationId };
  response['error'] = errorOf(overrides.error !== undefined ? overrides.error : upstream['error']);
  response['frequency_penalty'] = numberOr(pick(upstream['frequency_penalty'], request['frequency_penalty']), 0);
  response['incomplete_details'] = pick(upstream['incomplete_details']);
  response['instructions'] = pick(request['instructions']);
  response['max_output_tokens'] = pick(request['max_output_tokens']);
  response['max_tool_calls'] = pick(request['max_tool_calls']);
  response['model'] = pick(upstream['model'], request['model']);
  response['output'] = overrides.output;
  response['parallel_tool_calls'] = pick(request['parallel_tool_calls'], upstream['parallel_tool_calls'], true);
  response['presence_penalty'] = numberOr(pick(upstream['presence_penalty'], request['presence_penalty']), 0);
  response['previous_response_id'] = facts.previousResponseId;
  response['prompt_cache_key'] = pick(request['prompt_cache_key']);
  response['reasoning'] = normalizeReasoning(request['reasoning']);
  response['safety_identifier'] = pick(request['safety_identifier']);
  response['service_tier'] = servedTier(request['service_tier']);
  response['store'] = facts.store;
  response['temperature'] = numberOr(pick(upstream['temperature'], request['temperature']), 1);
  response['text'] = normalizeText(request['text'], upstream['text']);
  response['tool_choice'] = pick(request['tool_choice'], upstream['tool_choice'], 'auto');
  response['tools'] = Array.isArray(request['tools']) ? echoedTools(request['tools']) : [];
  response['top_logprobs'] = numberOr(pick(request['top_logprobs'], upstream['top_logprobs']), 0);
  response['top_p'] = numberOr(pick(upstream['top_p'], request['top_p']), 1);
  response['truncation'] = pick(request['truncation'], upstream['truncation'], 'disabled');
  // Fields the schema has as optional but never null are left out rather than null.
  const usage = normalizeUsage(overrides.usage !== undefined ? overrides.usage : upstream['usage']);
  if (usage !== null) response['usage'] = usage;
  const user = pick(request['user']);
  if (user !== null) response['user'] = user;
  response['metadata'] = isObject(request['metadata']) ? request['metadata'] : {};
  if (facts.keepRawFields) {
    // usage and user are the gateway's even when left out (null is not theirs to fill).
    for (const [key, value] of Object.entries(upstream)) if (!(key in response) && key !== 'usage' && key !== 'user') response[key] = value;
  }
  return response;
}

/** Two usage objects added field by field (a tool loop's vLLM calls); either may be absent. */
export function addUsage(sum: unknown, next: unknown): Json | null {
  const a = normalizeUsage(sum);
  const b = normalizeUsage(next);
  if (a === null || b === null) return a ?? b;
  const detail = (usage: Json, object: string, field: string): number => numberOr((usage[object] as Json)[field], 0);
  return {
    input_tokens: numberOr(a['input_tokens'], 0) + numberOr(b['input_tokens'], 0),
    input_tokens_details: {
      cached_tokens: detail(a, 'input_tokens_details', 'cached_tokens') + detail(b, 'input_tokens_details', 'cached_tokens'),
      cache_write_tokens: detail(a, 'input_tokens_details', 'cache_write_tokens') + detail(b, 'input_tokens_details', 'cache_write_tokens'),
    },
    output_tokens: numberOr(a['output_tokens'], 0) + numberOr(b['output_tokens'], 0),
    output_tokens_details: {
      reasoning_tokens: detail(a, 'output_tokens_details', 'reasoning_tokens') + detail(b, 'output_tokens_details', 'reasoning_tokens'),
    },
    total_tokens: numberOr(a['total_tokens'], 0) + numberOr(b['total_tokens'], 0),
  };
}
