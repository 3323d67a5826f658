// Remote compaction (POST /v1/responses/compact): the model summarises the conversation,
// and the client gets back its user messages followed by one `compaction` item holding the
// summary, sealed (state-seal.ts). Sent back as input, the compaction item reaches vLLM as
// a message that gives the model the summary, so a long conversation continues in a
// fraction of its tokens. The prompt below is what the model is asked.
import { GatewayError } from '../errors.ts';
import { ID_PREFIX, itemIdPrefix, newId } from './ids.ts';
import type { Json } from './items.ts';
import { normalizeUsage } from './response-object.ts';

/** The request vLLM gets after the conversation, asking for the summary. */
export const COMPACTION_PROMPT =
  'Write a summary of the conversation above from which it can be continued without it: ' +
  "the user's goals and requests, the decisions made, what was done (files, commands and their results), " +
  'what is left to do, and every fact that will be needed later. Answer with the summary only.';

/** How a compaction item's summary opens, as vLLM reads it (and how it is told from a user message). */
export const SUMMARY_OPENING = 'Summary of the earlier conversation (compacted):\n';

/** The upstream form of an opened compaction item: a message giving the model the summary. */
export function compactionUpstream(summary: string): string {
  return JSON.stringify({ type: 'message', role: 'user', content: SUMMARY_OPENING + summary });
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const part of content) if (isObject(part) && typeof part['text'] === 'string') text += part['text'];
  return text;
}

/**
 * The user messages of a conversation (its upstream items, in order), as the compacted
 * output lists them; a summary from an earlier compaction is not one (the new summary
 * holds it).
 */
export function userMessagesOf(upstreamItems: readonly Json[]): Json[] {
  const messages: Json[] = [];
  for (const item of upstreamItems) {
    if (item['role'] !== 'user' || (item['type'] !== undefined && item['type'] !== 'message')) continue;
    if (textOf(item['content']).startsWith(SUMMARY_OPENING)) continue;
    const content = typeof item['content'] === 'string' ? [{ type: 'input_text', text: item['content'] }] : item['content'];
    messages.push({ id: newId(ID_PREFIX.message), type: 'message', status: 'completed', role: 'user', content });
  }
  return messages;
}

/** The summary in vLLM's answer: the text of its messages (reasoning left out). */
export function summaryOf(upstream: Json): string {
  const output = Array.isArray(upstream['output']) ? upstream['output'] : [];
  let summary = '';
  for (const item of output) if (isObject(item) && item['type'] === 'message') summary += textOf(item['content']);
  if (summary.trim().length === 0) {
    throw new GatewayError('upstream_invalid_response', 'The model answered the compaction request without a summary.');
  }
  return summary.trim();
}

/** The compacted response, as OpenAI's API returns it. */
export function compactedResponse(userMessages: readonly Json[], sealedSummary: string, upstream: Json): Json {
  return {
    id: newId(ID_PREFIX.response),
    object: 'response.compaction',
    created_at: Math.floor(Date.now() / 1000),
    output: [...userMessages, { id: newId(itemIdPrefix('compaction')), type: 'compaction', encrypted_content: sealedSummary }],
    usage: normalizeUsage(upstream['usage']) ?? normalizeUsage({}),
  };
}
