// Instructions, system and developer messages in the one form every chat template takes.
// vLLM renders `instructions` as a first system message and passes input messages with
// their roles; Qwen3's templates refuse a system message anywhere but first (and the
// original one silently drops `developer` messages), so a coding agent's prompt (Codex
// sends its instructions as developer messages) would fail or vanish. The gateway sends
// vLLM at most one system text: the instructions, then every system or developer message
// that opens the input, in order, as `instructions`; a system or developer message later
// in the conversation goes as a user message at its place (the model still reads it
// where it was said, and the cached prefix before it stays the same).
import { marksOf, SYSTEM_OPENINGS } from './history-marks.ts';

type Json = Record<string, unknown>;

/** Whether an upstream item may hold a system or developer message (a history's are found
 * by history-marks.ts). */
function mayHoldSystemMessage(upstream: string): boolean {
  for (const opening of SYSTEM_OPENINGS) if (upstream.includes(opening)) return true;
  return false;
}

/** Whether an upstream item is a system or developer message (as items.ts writes them). */
export function isSystemUpstream(upstream: string): boolean {
  for (const opening of SYSTEM_OPENINGS) if (upstream.startsWith(opening)) return true;
  return false;
}

export function isSystemMessage(item: Json): boolean {
  return (item['type'] === undefined || item['type'] === 'message') && (item['role'] === 'system' || item['role'] === 'developer');
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  const texts: string[] = [];
  for (const part of content) {
    if (typeof part === 'object' && part !== null && typeof (part as Json)['text'] === 'string') texts.push((part as Json)['text'] as string);
  }
  return texts.join('\n');
}

export interface FoldedInput {
  /** The history's items, rewritten, or the history's bytes when it held nothing to rewrite. */
  readonly history: Buffer;
  readonly newItems: readonly string[];
  /** What vLLM gets as `instructions`; undefined: the request's own, unchanged. */
  readonly instructions: string | undefined;
}

/**
 * The input with its system and developer messages folded (see the top of this file).
 * The history's other items go on as the bytes they are; its system and developer messages
 * are found by history-marks.ts (remembered for a kept context), and only they are parsed.
 */
export function foldSystemMessages(instructions: unknown, history: Buffer, newItems: readonly string[]): FoldedInput {
  const spans = history.length > 0 ? marksOf(history).systemMessages : [];
  let newHolds = false;
  for (const item of newItems) if (mayHoldSystemMessage(item)) newHolds = true;
  if (spans.length === 0 && !newHolds) return { history, newItems, instructions: undefined };

  const leading: string[] = typeof instructions === 'string' && instructions.length > 0 ? [instructions] : [];
  // Leading messages are folded only while nothing else came before them.
  let opening = true;
  const parts: Buffer[] = [];
  // Where the history's bytes not yet taken begin: after the leading messages, the byte
  // after each one's comma; after a message rewritten, its own end.
  let taken = 0;
  for (const span of spans) {
    const item = JSON.parse(history.toString('utf8', span.start, span.end)) as Json;
    if (opening && span.start === taken) {
      leading.push(textOf(item['content']));
      taken = span.end + 1;
      continue;
    }
    opening = false;
    parts.push(history.subarray(taken, span.start), Buffer.from(JSON.stringify({ type: 'message', role: 'user', content: item['content'] })));
    taken = span.end;
  }
  if (taken < history.length) {
    opening = false;
    parts.push(history.subarray(taken));
  }
  const kept: string[] = [];
  for (const upstream of newItems) {
    const item = mayHoldSystemMessage(upstream) ? (JSON.parse(upstream) as Json) : undefined;
    if (item === undefined || !isSystemMessage(item)) {
      opening = false;
      kept.push(upstream);
    } else if (opening) {
      leading.push(textOf(item['content']));
    } else {
      kept.push(JSON.stringify({ type: 'message', role: 'user', content: item['content'] }));
    }
  }
  return {
    history: spans.length === 0 ? history : Buffer.concat(parts),
    newItems: kept,
    instructions: leading.length > 0 ? leading.join('\n\n') : undefined,
  };
}
