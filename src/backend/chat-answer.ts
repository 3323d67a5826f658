// A whole Chat Completions answer (`chat.completion`) as the Responses object vLLM would
// have answered: reasoning, the message, the function calls, the status its
// finish_reason gives, and the usage field by field.
import {
  endingOf,
  functionCallItem,
  isObject,
  logprobsOf,
  messageItem,
  reasoningItem,
  reasoningOf,
  responseObject,
  responsesUsage,
  textPart,
  upstreamId,
  type JsonObject,
} from './chat-output.ts';

/** The Responses object for a chat completion; undefined when `completion` is not one. */
export function responseFromChatCompletion(completion: unknown): JsonObject | undefined {
  if (!isObject(completion) || !Array.isArray(completion['choices'])) return undefined;
  const choice = (completion['choices'] as unknown[]).find((entry) => isObject(entry) && (entry['index'] === undefined || entry['index'] === 0));
  if (!isObject(choice) || !isObject(choice['message'])) return undefined;
  const message = choice['message'];
  const ending = endingOf(choice['finish_reason']);
  const output: JsonObject[] = [];
  const reasoning = reasoningOf(message);
  if (reasoning !== undefined) output.push(reasoningItem(upstreamId('rs_'), reasoning));
  const parts: JsonObject[] = [];
  if (typeof message['content'] === 'string' && message['content'].length > 0) parts.push(textPart(message['content'], logprobsOf(choice)));
  if (typeof message['refusal'] === 'string' && message['refusal'].length > 0) parts.push({ type: 'refusal', refusal: message['refusal'] });
  const calls = Array.isArray(message['tool_calls']) ? (message['tool_calls'] as unknown[]).filter(isObject) : [];
  // An answer with nothing at all is an empty message, as vLLM gives it.
  if (parts.length > 0 || (calls.length === 0 && reasoning === undefined)) {
    output.push(messageItem(upstreamId('msg_'), parts.length > 0 ? parts : [textPart('', undefined)], ending.status));
  }
  for (const call of calls) {
    const fn = isObject(call['function']) ? call['function'] : {};
    const args = typeof fn['arguments'] === 'string' ? fn['arguments'] : JSON.stringify(fn['arguments'] ?? {});
    const callId = typeof call['id'] === 'string' && call['id'].length > 0 ? call['id'] : upstreamId('call_');
    output.push(functionCallItem(upstreamId('fc_'), callId, typeof fn['name'] === 'string' ? fn['name'] : '', args, 'completed'));
  }
  return responseObject(
    typeof completion['id'] === 'string' ? completion['id'] : upstreamId('resp_'),
    typeof completion['created'] === 'number' ? completion['created'] : Math.floor(Date.now() / 1000),
    completion['model'] ?? null,
    ending.status,
    output,
    responsesUsage(completion['usage']),
    ending.incompleteDetails,
  );
}
