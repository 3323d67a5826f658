// Where, in a history's bytes, the items planning looks for are: system and developer
// messages (system-messages.ts folds them) and the latest server-side compaction summary
// (compaction.ts sends nothing before it). A history is the items' upstream forms joined
// with commas (store.ts, History.upstream), and can be megabytes long; parsing it to find
// a few items cost about 11 ms a megabyte at every turn. Found here instead by one pass
// over the bytes that steps over strings and counts brackets, only when a byte search says
// such an item may be there, and remembered per Buffer: a continuation of a kept context
// (the store's ContextCache) is the context it continued plus this turn's items, so only
// the new items are searched (noteAppended).

/** How the upstream forms of system and developer messages open (items.ts writes them so). */
export const SYSTEM_OPENINGS: readonly string[] = ['{"type":"message","role":"system"', '{"type":"message","role":"developer"'];

/** How a server-side compaction's summary opens its message (compaction.ts gives the model
 * this text before the summary; the upstream form is written by JSON.stringify). */
export const SERVER_SUMMARY_TEXT = 'Summary of the conversation so far (compacted; it replaces every earlier message):\n';
export const SERVER_SUMMARY_OPENING = JSON.stringify({ type: 'message', role: 'user', content: SERVER_SUMMARY_TEXT }).slice(0, -2);

/** One item's bytes in a history: [start, end). */
export interface ItemSpan {
  readonly start: number;
  readonly end: number;
}

export interface HistoryMarks {
  /** The system and developer messages, in order. */
  readonly systemMessages: readonly ItemSpan[];
  /** Where the latest server-side compaction summary begins; -1 for none. */
  readonly latestSummaryAt: number;
}

const NO_MARKS: HistoryMarks = Object.freeze({ systemMessages: Object.freeze([]), latestSummaryAt: -1 });

const SYSTEM_OPENING_BYTES = SYSTEM_OPENINGS.map((opening) => Buffer.from(opening));
const SUMMARY_OPENING_BYTES = Buffer.from(SERVER_SUMMARY_OPENING);

/** Marks by the Buffer they describe: what a Buffer holds never changes here (histories
 * are read, kept and sliced, never written to). */
const marksByHistory = new WeakMap<Buffer, HistoryMarks>();

/** Where the items of a history are that planning looks for. */
export function marksOf(history: Buffer): HistoryMarks {
  const known = marksByHistory.get(history);
  if (known !== undefined) return known;
  const marks = search(history, 0, NO_MARKS);
  marksByHistory.set(history, marks);
  return marks;
}

/**
 * Tells that `extended` is `base` followed by more items (a comma between, unless `base` is
 * empty): its marks are then `base`'s and those of the items after it, found without
 * searching `base` again. Nothing is learnt when `base`'s marks were never asked for.
 */
export function noteAppended(base: Buffer, extended: Buffer): void {
  const baseMarks = marksByHistory.get(base);
  if (baseMarks === undefined || extended === base || marksByHistory.has(extended)) return;
  marksByHistory.set(extended, search(extended, base.length === 0 ? 0 : base.length + 1, baseMarks));
}

/** The history from the item at `at` on, its marks carried over. */
export function historyFrom(history: Buffer, at: number): Buffer {
  const rest = history.subarray(at);
  const marks = marksOf(history);
  const systemMessages: ItemSpan[] = [];
  for (const span of marks.systemMessages) if (span.start >= at) systemMessages.push({ start: span.start - at, end: span.end - at });
  marksByHistory.set(rest, { systemMessages, latestSummaryAt: marks.latestSummaryAt >= at ? marks.latestSummaryAt - at : -1 });
  return rest;
}

/** `items` (upstream forms) then `history`, as one history, its marks carried over. */
export function historyAfterItems(items: readonly string[], history: Buffer): Buffer {
  if (items.length === 0) return history;
  const head = Buffer.from(history.length === 0 ? items.join(',') : `${items.join(',')},`);
  const joined = Buffer.concat([head, history]);
  const headMarks = search(head, 0, NO_MARKS);
  const marks = marksOf(history);
  const systemMessages = [...headMarks.systemMessages];
  for (const span of marks.systemMessages) systemMessages.push({ start: span.start + head.length, end: span.end + head.length });
  const latestSummaryAt = marks.latestSummaryAt >= 0 ? marks.latestSummaryAt + head.length : headMarks.latestSummaryAt;
  marksByHistory.set(joined, { systemMessages, latestSummaryAt });
  return joined;
}

function opensWith(history: Buffer, at: number, opening: Buffer): boolean {
  if (at + opening.length > history.length) return false;
  for (let i = 0; i < opening.length; i++) if (history[at + i] !== opening[i]) return false;
  return true;
}

function mayHoldMarked(history: Buffer, from: number): boolean {
  if (history.includes(SUMMARY_OPENING_BYTES, from)) return true;
  for (const opening of SYSTEM_OPENING_BYTES) if (history.includes(opening, from)) return true;
  return false;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;

/**
 * `base`'s marks and those of the items from `from` on (`from`: an item's first byte, or
 * the end). Only items at the top level count: an item's own fields may hold an object
 * that opens the same way (a tool output is the client's JSON).
 */
function search(history: Buffer, from: number, base: HistoryMarks): HistoryMarks {
  if (from >= history.length || !mayHoldMarked(history, from)) return base;
  const systemMessages = [...base.systemMessages];
  let latestSummaryAt = base.latestSummaryAt;
  let itemStart = from;
  let depth = 0;
  const endItem = (end: number): void => {
    for (const opening of SYSTEM_OPENING_BYTES) {
      if (opensWith(history, itemStart, opening)) {
        systemMessages.push({ start: itemStart, end });
        return;
      }
    }
    if (opensWith(history, itemStart, SUMMARY_OPENING_BYTES)) latestSummaryAt = itemStart;
  };
  for (let i = from; i < history.length; i++) {
    const byte = history[i] as number;
    if (byte === QUOTE) {
      // To the closing quote: one not escaped (an even run of backslashes before it).
      let close = i;
      for (;;) {
        close = history.indexOf(QUOTE, close + 1);
        if (close === -1) return { systemMessages, latestSummaryAt }; // cut short: nothing more to find
        let backslashes = 0;
        while (history[close - 1 - backslashes] === BACKSLASH) backslashes++;
        if (backslashes % 2 === 0) break;
      }
      i = close;
    } else if (byte === 0x7b || byte === 0x5b) {
      depth++;
    } else if (byte === 0x7d || byte === 0x5d) {
      depth--;
    } else if (byte === COMMA && depth === 0) {
      endItem(i);
      itemStart = i + 1;
    }
  }
  endItem(history.length);
  return { systemMessages, latestSummaryAt };
}
