// Reading vLLM's event stream: the text of whole SSE events from the chunks they arrived
// in, an event block's name and data, and the cheap test of an event's type that lets
// the normalizer leave delta events unparsed. No state: the normalizer tracks items and
// parts, and renders what the client gets.

/**
 * The text of whole events, from the chunks they arrived in. A chunk that ends with a
 * line feed cannot end inside a UTF-8 character, so it is decoded on its own (no copy
 * into one buffer); chunks cut elsewhere are joined as bytes first.
 */
export function decodeParts(parts: readonly Buffer[]): string {
  if (parts.length === 1) return (parts[0] as Buffer).toString('utf8');
  let text = '';
  let held: Buffer[] | undefined;
  for (const part of parts) {
    if (part[part.length - 1] !== 0x0a) {
      (held ??= []).push(part);
      continue;
    }
    if (held === undefined) text += part.toString('utf8');
    else {
      held.push(part);
      text += Buffer.concat(held).toString('utf8');
      held = undefined;
    }
  }
  if (held !== undefined) text += Buffer.concat(held).toString('utf8');
  return text;
}

/** Whether `data` ends with `"<type>"}` (vLLM writes type last), compared in place. */
export function endsWithType(data: string, type: string): boolean {
  return endsWithTypeAt(data, data.length, type);
}

/** Whether the text before `end` ends with `"<type>"}`. */
function endsWithTypeAt(text: string, end: number, type: string): boolean {
  const quote = end - 2;
  return text.charCodeAt(quote + 1) === 0x7d && text.charCodeAt(quote) === 0x22 && text.endsWith(type, quote) && text.charCodeAt(quote - type.length - 1) === 0x22;
}

/**
 * The type of the event block text[start, end) when it is one of `types` in vLLM's shape
 * ("event: T\ndata: {...,"type":"T"}" on one data line), read where it lies: no copy of
 * the block, its name or its data. Undefined for any other block. The data starts at
 * start + 14 + type.length.
 */
export function eventTypeAt(text: string, start: number, end: number, types: readonly string[]): string | undefined {
  if (!text.startsWith('event: ', start)) return undefined;
  for (const type of types) {
    const newline = start + 7 + type.length;
    if (text.charCodeAt(newline) !== 0x0a || !text.startsWith(type, start + 7)) continue;
    if (!text.startsWith('data: ', newline + 1) || !endsWithTypeAt(text, end, type)) return undefined;
    const nextLine = text.indexOf('\n', newline + 1);
    return nextLine === -1 || nextLine >= end ? type : undefined;
  }
  return undefined;
}

/**
 * The event name and data of one SSE event block. vLLM's shape ("event: X\ndata: {...}")
 * is read with two indexOf calls; anything else (several data lines, comments, ids, CR)
 * goes the general way.
 */
export function parseEventLines(raw: string): { name: string | undefined; data: string | undefined } {
  if (raw.startsWith('event: ')) {
    const newline = raw.indexOf('\n');
    if (newline !== -1 && raw.startsWith('data: ', newline + 1) && raw.indexOf('\n', newline + 1) === -1) {
      return { name: raw.slice(7, newline), data: raw.slice(newline + 7) };
    }
  } else if (raw.startsWith('data: ') && raw.indexOf('\n') === -1) {
    return { name: undefined, data: raw.slice(6) };
  }
  let name: string | undefined;
  let data: string | undefined;
  for (const line of raw.split('\n')) {
    if (line.startsWith('data:')) {
      const value = line.charCodeAt(5) === 0x20 ? line.slice(6) : line.slice(5);
      data = data === undefined ? value : `${data}\n${value}`;
    } else if (line.startsWith('event:')) {
      name = line.slice(line.charCodeAt(6) === 0x20 ? 7 : 6);
    }
  }
  return { name, data };
}
