// The Chat Completions side of the simulated server: a chat request read as the
// Responses-shaped body the simulated model plans from (wire.ts), and its answer written
// as a chat completion or a chat stream, in the dialect of one of the servers people run:
// vLLM (the default), llama.cpp, Ollama or SGLang, each with the differences their
// servers are documented and reported to have (the reasoning field's name, how tool calls
// are chunked, where the usage goes). The same differences, as bytes, are in
// test/fixtures/chat/ for the gateway's replay tests.
import { hex, joined, plannedTokens, type GenerationPlan, type JsonObject } from './wire.ts';

export const CHAT_DIALECTS = ['vllm', 'llama.cpp', 'ollama', 'sglang'] as const;
export type ChatDialect = (typeof CHAT_DIALECTS)[number];

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((part: unknown) => (isObject(part) && typeof part['text'] === 'string' ? part['text'] : '')).join('');
}

/** The chat request as the body wire.ts plans from: messages as input items, tools flat. */
export function planBodyOfChat(body: JsonObject): JsonObject {
  const input: JsonObject[] = [];
  const messages = Array.isArray(body['messages']) ? (body['messages'] as unknown[]) : [];
  for (const message of messages) {
    if (!isObject(message)) continue;
    if (message['role'] === 'tool') {
      input.push({ type: 'function_call_output', call_id: message['tool_call_id'], output: textOf(message['content']) });
      continue;
    }
    if (message['role'] === 'assistant' && Array.isArray(message['tool_calls'])) {
      const text = textOf(message['content']);
      if (text.length > 0) input.push({ type: 'message', role: 'assistant', content: text });
      for (const call of message['tool_calls'] as unknown[]) {
        const fn = isObject(call) && isObject(call['function']) ? call['function'] : {};
        input.push({ type: 'function_call', call_id: isObject(call) ? call['id'] : undefined, name: fn['name'], arguments: fn['arguments'] });
      }
      continue;
    }
    input.push({ type: 'message', role: message['role'], content: typeof message['content'] === 'string' ? message['content'] : message['content'] ?? '' });
  }
  const tools = Array.isArray(body['tools'])
    ? (body['tools'] as unknown[]).map((tool) => (isObject(tool) && isObject(tool['function']) ? { type: 'function', ...tool['function'] } : {}))
    : [];
  const toolChoice = body['tool_choice'];
  const plan: JsonObject = { model: body['model'], input, tools, parallel_tool_calls: body['parallel_tool_calls'] };
  if (toolChoice === 'none') plan['tool_choice'] = 'none';
  if (isObject(toolChoice) && isObject(toolChoice['function'])) plan['tool_choice'] = { type: 'function', name: toolChoice['function']['name'] };
  const maxTokens = body['max_completion_tokens'] ?? body['max_tokens'];
  if (typeof maxTokens === 'number') plan['max_output_tokens'] = maxTokens;
  if (typeof body['reasoning_effort'] === 'string') plan['reasoning'] = { effort: body['reasoning_effort'] };
  return plan;
}

/**
 * What chat templates and servers refuse in a chat request: a system message that is not
 * first, a developer message (Qwen3's templates), and a tool message that answers no call
 * of the assistant message before it (the templates pair them by id). The error text, or
 * undefined when the request would be accepted.
 */
export function chatRequestProblem(body: JsonObject): string | undefined {
  const messages = Array.isArray(body['messages']) ? (body['messages'] as unknown[]) : [];
  if (messages.length === 0) return "'messages' must be a non-empty list";
  const calls = new Set<unknown>();
  for (const [index, message] of messages.entries()) {
    if (!isObject(message)) return `messages[${index}] is not an object`;
    const role = message['role'];
    if (role === 'developer') return 'Unexpected message role.';
    if (role === 'system' && index > 0) return 'System message must be at the beginning.';
    if (role === 'assistant' && Array.isArray(message['tool_calls'])) {
      for (const call of message['tool_calls'] as unknown[]) if (isObject(call)) calls.add(call['id']);
    }
    if (role === 'tool' && !calls.has(message['tool_call_id'])) return `messages[${index}]: tool_call_id ${String(message['tool_call_id'])} answers no call`;
    if (!['system', 'user', 'assistant', 'tool'].includes(String(role))) return `messages[${index}]: unknown role ${String(role)}`;
  }
  return undefined;
}

interface Usage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly total_tokens: number;
  readonly completion_tokens_details?: JsonObject;
}

function usageOf(plan: GenerationPlan): Usage {
  const { output, reasoning } = plannedTokens(plan);
  const usage: Usage = { prompt_tokens: plan.inputTokens, completion_tokens: output, total_tokens: plan.inputTokens + output };
  return reasoning > 0 ? { ...usage, completion_tokens_details: { reasoning_tokens: reasoning } } : usage;
}

const REASONING_FIELD: Record<ChatDialect, string> = { vllm: 'reasoning', 'llama.cpp': 'reasoning_content', ollama: 'reasoning', sglang: 'reasoning_content' };

function callIdOf(dialect: ChatDialect): string {
  if (dialect === 'vllm') return `chatcmpl-tool-${hex()}`;
  if (dialect === 'llama.cpp') return hex(16);
  return `call_${hex(6)}`;
}

function finishReasonOf(plan: GenerationPlan): string {
  if (plan.status === 'incomplete') return 'length';
  return plan.items.some((item) => item.type === 'function_call') ? 'tool_calls' : 'stop';
}

/** The whole answer (stream: false). */
export function chatCompletion(plan: GenerationPlan, model: string, dialect: ChatDialect): JsonObject {
  const message: JsonObject = { role: 'assistant', content: null };
  const calls: JsonObject[] = [];
  for (const item of plan.items) {
    if (item.type === 'reasoning') message[REASONING_FIELD[dialect]] = joined(item.deltas);
    else if (item.type === 'message') message['content'] = joined(item.deltas);
    else calls.push({ id: callIdOf(dialect), type: 'function', function: { name: item.name, arguments: joined(item.argumentDeltas) } });
  }
  if (calls.length > 0) message['tool_calls'] = calls;
  const completion: JsonObject = {
    id: `chatcmpl-${hex()}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finishReasonOf(plan) }],
    usage: usageOf(plan),
  };
  if (dialect === 'ollama') completion['system_fingerprint'] = 'fp_ollama';
  return completion;
}

/** The streamed answer's chunks (without `data: [DONE]`), in the dialect's shape. */
export function chatChunks(plan: GenerationPlan, model: string, dialect: ChatDialect, includeUsage: boolean): JsonObject[] {
  const id = `chatcmpl-${hex()}`;
  const created = Math.floor(Date.now() / 1000);
  const chunk = (delta: JsonObject, finish: string | null, extra: JsonObject = {}): JsonObject => {
    const choice: JsonObject = { index: 0, delta, logprobs: null, finish_reason: finish };
    if (dialect === 'sglang') choice['matched_stop'] = null;
    const made: JsonObject = { id, object: 'chat.completion.chunk', created, model, choices: [choice], ...extra };
    if (dialect === 'ollama') made['system_fingerprint'] = 'fp_ollama';
    return made;
  };
  // llama.cpp opens with a null content, the others with an empty one.
  const chunks: JsonObject[] = [chunk({ role: 'assistant', content: dialect === 'llama.cpp' ? null : '' }, null)];
  const calls = plan.items.filter((item) => item.type === 'function_call');
  plan.items.forEach((item) => {
    if (item.type === 'reasoning') for (const delta of item.deltas) chunks.push(chunk({ [REASONING_FIELD[dialect]]: delta }, null));
    else if (item.type === 'message') for (const delta of item.deltas) chunks.push(chunk({ content: delta }, null));
  });
  if (dialect === 'ollama' && calls.length > 0) {
    // Ollama: every call whole, in one chunk.
    chunks.push(
      chunk({
        tool_calls: calls.map((call, index) => ({ id: callIdOf(dialect), index, type: 'function', function: { name: call.name, arguments: joined(call.argumentDeltas) } })),
      }, null),
    );
  } else {
    calls.forEach((call, index) => {
      const callId = callIdOf(dialect);
      // The name first, with empty arguments; then the arguments in pieces. SGLang repeats the id.
      chunks.push(chunk({ tool_calls: [{ index, id: callId, type: 'function', function: { name: call.name, arguments: '' } }] }, null));
      for (const piece of call.argumentDeltas) {
        const delta: JsonObject = { index, function: { arguments: piece } };
        if (dialect === 'sglang') delta['id'] = callId;
        chunks.push(chunk({ tool_calls: [delta] }, null));
      }
    });
  }
  const usage = usageOf(plan);
  if (dialect === 'llama.cpp') {
    // llama.cpp: the usage (and its timings) on the finishing chunk itself.
    chunks.push(chunk({}, finishReasonOf(plan), { usage, timings: { prompt_n: usage.prompt_tokens, predicted_n: usage.completion_tokens } }));
  } else {
    chunks.push(chunk({}, finishReasonOf(plan)));
    if (includeUsage) chunks.push({ id, object: 'chat.completion.chunk', created, model, choices: [], usage });
  }
  return chunks;
}
