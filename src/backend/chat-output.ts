// What a Chat Completions answer means in Responses terms (chat-stream.ts reads streams
// and whole completions with them): the status a finish_reason gives, the usage field by
// field, the reasoning text under either of its names, and the output items.
import { randomBytes } from 'node:crypto';

export type JsonObject = Record<string, unknown>;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An id of the kind vLLM gives (the gateway's normalizers replace it with its own). */
export function upstreamId(prefix: string): string {
  return prefix + randomBytes(12).toString('hex');
}

export interface Ending {
  readonly status: 'completed' | 'incomplete';
  readonly incompleteDetails: JsonObject | null;
}

/** `length` is the token limit (max_output_tokens); `content_filter` a filter; the others
 * (stop, tool_calls, eos, ...) a completed answer. */
export function endingOf(finishReason: unknown): Ending {
  if (finishReason === 'length') return { status: 'incomplete', incompleteDetails: { reason: 'max_output_tokens' } };
  if (finishReason === 'content_filter') return { status: 'incomplete', incompleteDetails: { reason: 'content_filter' } };
  return { status: 'completed', incompleteDetails: null };
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

/** Chat's usage as Responses' usage; null when the server reported none. */
export function responsesUsage(usage: unknown): JsonObject | null {
  if (!isObject(usage)) return null;
  const input = count(usage['prompt_tokens']);
  const output = count(usage['completion_tokens']);
  const promptDetails = isObject(usage['prompt_tokens_details']) ? usage['prompt_tokens_details'] : {};
  const completionDetails = isObject(usage['completion_tokens_details']) ? usage['completion_tokens_details'] : {};
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: count(promptDetails['cached_tokens']) },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: count(completionDetails['reasoning_tokens']) },
    total_tokens: typeof usage['total_tokens'] === 'number' ? usage['total_tokens'] : input + output,
  };
}

/** The reasoning text of a delta or message: `reasoning` (vLLM since 0.11, Ollama) or
 * `reasoning_content` (llama.cpp, SGLang, older vLLM). */
export function reasoningOf(message: JsonObject): string | undefined {
  const text = message['reasoning'] ?? message['reasoning_content'];
  return typeof text === 'string' && text.length > 0 ? text : undefined;
}

/** Chat's logprobs entries ({token, logprob, bytes, top_logprobs}) are Responses' too. */
export function logprobsOf(choice: JsonObject): unknown[] | undefined {
  const logprobs = choice['logprobs'];
  return isObject(logprobs) && Array.isArray(logprobs['content']) ? logprobs['content'] : undefined;
}

export function reasoningItem(id: string, text: string): JsonObject {
  return { id, type: 'reasoning', summary: [], content: [{ type: 'reasoning_text', text }], status: 'completed' };
}

export function messageItem(id: string, parts: readonly JsonObject[], status: string): JsonObject {
  return { id, type: 'message', role: 'assistant', status, content: parts };
}

export function textPart(text: string, logprobs: unknown[] | undefined): JsonObject {
  return { type: 'output_text', text, annotations: [], logprobs: logprobs ?? [] };
}

export function functionCallItem(id: string, callId: string, name: string, args: string, status: string): JsonObject {
  return { id, type: 'function_call', call_id: callId, name, arguments: args, status };
}

/** The response object around translated output (the normalizers take it from here). */
export function responseObject(
  id: string,
  createdAt: number,
  model: unknown,
  status: string,
  output: readonly JsonObject[],
  usage: JsonObject | null,
  incompleteDetails: JsonObject | null,
): JsonObject {
  return { id, object: 'response', created_at: createdAt, model, status, incomplete_details: incompleteDetails, output, usage };
}
