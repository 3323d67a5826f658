// Instructions, system and developer messages in the one form every chat template takes.
// vLLM renders `instructions` as a first system message and passes input messages with
// their roles; Qwen3's templates refuse a system message anywhere but first (and the
// original one silently drops `developer` messages), so a coding agent's prompt (Codex
// sends its instructions as developer messages) would fail or vanish. The gateway sends
// vLLM at most one system text: the instructions, then every system or developer message
// that opens the input, in order, as `instructions`; a system or developer message later
// in the conversation goes as a user message at its place (the model still reads it
// where it was said, and the cached prefix before it stays the same).

/** The upstream form's opening for each role this file rewrites (items.ts writes them so). */
const SYSTEM_OPENINGS = ['{"type":"message","role":"system"', '{"type":"message","role":"developer"'];

type Json = Record<string, unknown>;

/** Whether an upstream item (or a history of them) may hold a system or developer message. */
export function mayHoldSystemMessage(upstream: string | Buffer): boolean {
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
 * Cheap when there are none: the history's bytes are searched, not parsed.
 */
export function foldSystemMessages(instructions: unknown, history: Buffer, newItems: readonly string[]): FoldedInput {
  const historyHolds = history.length > 0 && mayHoldSystemMessage(history);
  let newHolds = false;
  for (const item of newItems) if (mayHoldSystemMessage(item)) newHolds = true;
  if (!historyHolds && !newHolds) return { history, newItems, instructions: undefined };

  const historyItems = historyHolds ? (JSON.parse(`[${history.toString('utf8')}]`) as Json[]) : [];
  const leading: string[] = typeof instructions === 'string' && instructions.length > 0 ? [instructions] : [];
  // Leading messages are folded only while nothing else came before them (an untouched
  // history that is not empty comes first).
  let opening = historyHolds || history.length === 0;
  const rewrite = (item: Json): Json | undefined => {
    if (!isSystemMessage(item)) {
      opening = false;
      return item;
    }
    if (opening) {
      leading.push(textOf(item['content']));
      return undefined;
    }
    return { type: 'message', role: 'user', content: item['content'] };
  };
  const keptHistory: string[] = [];
  for (const item of historyItems) {
    const kept = rewrite(item);
    if (kept !== undefined) keptHistory.push(JSON.stringify(kept));
  }
  const kept: string[] = [];
  for (const upstream of newItems) {
    if (!mayHoldSystemMessage(upstream)) {
      opening = false;
      kept.push(upstream);
      continue;
    }
    const item = rewrite(JSON.parse(upstream) as Json);
    if (item !== undefined) kept.push(JSON.stringify(item));
  }
  return {
    history: historyHolds ? Buffer.from(keptHistory.join(',')) : history,
    newItems: kept,
    instructions: leading.length > 0 ? leading.join('\n\n') : undefined,
  };
}
