// Reading and replacing single top-level fields of a compact JSON object without parsing
// it: the hot path of a stream is the delta event, and all the gateway needs from one is
// its item_id, indices, sequence_number and the raw delta text.
//
// Safe because a key like "item_id": cannot occur inside a JSON string value: the quotes
// there are escaped (\"), and a top-level field is found before any nested one when the
// object has no nested objects ahead of it (delta events have none).

export interface Span {
  /** Index of the value's first character (after the opening quote, for strings). */
  readonly start: number;
  /** Index just past the value (the closing quote, for strings). */
  readonly end: number;
}

/** A field to look for: its key as it appears in JSON text, quotes and colon included.
 * Made once (see field()), not per lookup. */
export type Field = string & { readonly __field: true };

export function field(key: string): Field {
  return `"${key}":` as Field;
}

function valueStart(json: string, needle: Field, from: number | undefined): number {
  const at = json.indexOf(needle, from ?? 0);
  if (at === -1) return -1;
  let index = at + needle.length;
  while (json.charCodeAt(index) === 0x20) index += 1;
  return index;
}

/** The raw (still escaped) characters of a string field. */
export function stringSpan(json: string, needle: Field, from: number | undefined = 0): Span | undefined {
  const index = valueStart(json, needle, from);
  if (index === -1 || json.charCodeAt(index) !== 0x22) return undefined;
  const start = index + 1;
  let quote = json.indexOf('"', start);
  while (quote !== -1) {
    let backslashes = 0;
    while (json.charCodeAt(quote - 1 - backslashes) === 0x5c) backslashes += 1;
    if (backslashes % 2 === 0) return { start, end: quote };
    quote = json.indexOf('"', quote + 1);
  }
  return undefined;
}

/** A non-negative integer field. */
export function integerSpan(json: string, needle: Field, from: number | undefined = 0): (Span & { readonly value: number }) | undefined {
  const start = valueStart(json, needle, from);
  if (start === -1) return undefined;
  let end = start;
  let value = 0;
  for (;;) {
    const code = json.charCodeAt(end);
    if (code < 0x30 || code > 0x39) break;
    value = value * 10 + (code - 0x30);
    end += 1;
  }
  return end === start ? undefined : { start, end, value };
}

export interface Replacement {
  readonly span: Span;
  readonly text: string;
}

/** Applies replacements (any order, not overlapping) to the text. */
export function splice(json: string, replacements: Replacement[]): string {
  if (replacements.length === 0) return json;
  replacements.sort((a, b) => a.span.start - b.span.start);
  let out = '';
  let cursor = 0;
  for (const { span, text } of replacements) {
    out += json.slice(cursor, span.start) + text;
    cursor = span.end;
  }
  return out + json.slice(cursor);
}

/** Decodes the raw characters of a JSON string value. */
export function decodeJsonString(raw: string): string {
  return raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
}
