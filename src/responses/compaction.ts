// Remote compaction (POST /v1/responses/compact): the model summarises the conversation,
// and the client gets back its user messages followed by one `compaction` item holding the
// summary, sealed (state-seal.ts). Sent back as input, the compaction item reaches vLLM as
// a message that gives the model the summary, so a long conversation continues in a
// fraction of its tokens. The prompt below is what the model is asked.
import { GatewayError } from '../errors.ts';
import { ID_PREFIX, itemIdPrefix, newId } from './ids.ts';
import type { Json } from './items.ts';
import { normalizeUsage } from './response-object.ts';
import { historyAfterItems, historyFrom, marksOf, SERVER_SUMMARY_OPENING, SERVER_SUMMARY_TEXT } from './history-marks.ts';
import { isSystemUpstream } from './system-messages.ts';

/** The request vLLM gets after the conversation, asking for the summary. */
export const COMPACTION_PROMPT =
  'Write a summary of the conversation above from which it can be continued without it: ' +
  "the user's goals and requests, the decisions made, what was done (files, commands and their results), " +
  'what is left to do, and every fact that will be needed later. Answer with the summary only.';

/** How a compaction item's summary opens, as vLLM reads it (and how it is told from a user
 * message): `earlier` (POST /v1/responses/compact) keeps the user messages beside it,
 * `all` (server-side) replaces everything before it. */
const SUMMARY_OPENINGS = {
  earlier: 'Summary of the earlier conversation (compacted):\n',
  all: SERVER_SUMMARY_TEXT,
} as const;

/** What a sealed compaction holds (see SUMMARY_OPENINGS). */
export type CompactionScope = keyof typeof SUMMARY_OPENINGS;

/** The upstream form of an opened compaction item: a message giving the model the summary. */
export function compactionUpstreamOf(summary: string, scope: CompactionScope): string {
  return JSON.stringify({ type: 'message', role: 'user', content: SUMMARY_OPENINGS[scope] + summary });
}

/** Whether a message's text is a summary a compaction made. */
function isSummary(text: string): boolean {
  return text.startsWith(SUMMARY_OPENINGS.earlier) || text.startsWith(SUMMARY_OPENINGS.all);
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
    if (isSummary(textOf(item['content']))) continue;
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

// --- server-side compaction (context_management on a create request) --------------------

/** context_management's compaction threshold (rendered tokens), or undefined; 400 for a bad entry. */
export function compactionThreshold(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw new GatewayError('invalid_request', "Invalid 'context_management': expected a list.", { param: 'context_management' });
  let threshold: number | undefined;
  value.forEach((entry: unknown, index) => {
    const param = `context_management[${index}]`;
    if (!isObject(entry) || entry['type'] !== 'compaction') {
      throw new GatewayError('invalid_request', "Invalid context management entry: the supported type is 'compaction'.", { param: `${param}.type` });
    }
    const given = entry['compact_threshold'];
    if (!Number.isSafeInteger(given) || (given as number) < 1) {
      throw new GatewayError(
        'invalid_request',
        "Invalid 'compact_threshold': expected a whole number of tokens >= 1 (the gateway does not know the model's context window, so it needs the threshold).",
        { param: `${param}.compact_threshold` },
      );
    }
    threshold = given as number;
  });
  return threshold;
}

/** What the rendered input is estimated to weigh, in tokens: about four bytes a token. */
export function estimatedTokens(history: Buffer, newItems: readonly string[], instructions: unknown): number {
  let bytes = history.length + (typeof instructions === 'string' ? Buffer.byteLength(instructions) : 0);
  for (const item of newItems) bytes += Buffer.byteLength(item);
  return Math.ceil(bytes / 4);
}

/**
 * The conversation from its latest server-side compaction on: what came before it is in its
 * summary, except system and developer messages (instructions), which are kept in front.
 * The history's summary and messages are found by history-marks.ts, not parsed.
 */
export function fromLatestCompaction(history: Buffer, newItems: readonly string[]): { history: Buffer; newItems: readonly string[] } {
  for (let index = newItems.length - 1; index >= 0; index--) {
    if (!(newItems[index] as string).startsWith(SERVER_SUMMARY_OPENING)) continue;
    const kept = keptSystemMessages(history, history.length);
    for (const item of newItems.slice(0, index)) if (isSystemUpstream(item)) kept.push(item);
    return { history: Buffer.alloc(0), newItems: [...kept, ...newItems.slice(index)] };
  }
  if (history.length === 0) return { history, newItems };
  const at = marksOf(history).latestSummaryAt;
  if (at === -1) return { history, newItems };
  return { history: historyAfterItems(keptSystemMessages(history, at), historyFrom(history, at)), newItems };
}

/** The system and developer messages of a history that end before `end`, in their upstream form. */
function keptSystemMessages(history: Buffer, end: number): string[] {
  if (history.length === 0) return [];
  const kept: string[] = [];
  for (const span of marksOf(history).systemMessages) if (span.end <= end) kept.push(history.toString('utf8', span.start, span.end));
  return kept;
}

/** What a compacted request keeps verbatim after the summary: the new items from the last
 * user message on (the question being answered, and what followed it). */
export function compactionTail(newItems: readonly string[]): readonly string[] {
  for (let index = newItems.length - 1; index >= 0; index--) {
    if ((newItems[index] as string).startsWith('{"type":"message","role":"user"')) return newItems.slice(index);
  }
  return newItems;
}

/** vLLM's request for a summary of the conversation (history, then new items). */
export function summaryRequestBody(model: unknown, instructions: unknown, history: Buffer, newItems: readonly string[]): Buffer {
  const fields: Json = { model, store: false, stream: false };
  if (typeof instructions === 'string') fields['instructions'] = instructions;
  const separator = history.length > 0 ? ',' : '';
  const items = [...newItems, JSON.stringify({ type: 'message', role: 'user', content: COMPACTION_PROMPT })].join(',');
  return Buffer.concat([Buffer.from('{"input":['), history, Buffer.from(`${separator}${items}],${JSON.stringify(fields).slice(1)}`)]);
}
