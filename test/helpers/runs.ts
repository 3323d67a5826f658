// Reading background responses in tests: a stream read up to an event and dropped, the
// rest read again with starting_after, and the two joined for the conformance checker.
import { checkStream, type CheckedStream } from './conformance.ts';
import { ChunkReader, openRequest, parseSse, send } from './http.ts';

/** The events of an SSE text, [DONE] left out, as whole blocks (each with its blank line). */
export function eventBlocks(text: string): string[] {
  return text
    .split('\n\n')
    .filter((block) => block.length > 0 && block !== 'data: [DONE]')
    .map((block) => `${block}\n\n`);
}

export function sequenceOf(block: string): number {
  const data = parseSse(block)[0]?.data ?? '{}';
  return Number((JSON.parse(data)).sequence_number);
}

/**
 * Opens a stream (POST or GET), reads until the event with `sequence` has arrived, then
 * drops the connection. Returns the events up to and including it.
 */
export async function readUntilThenLeave(
  url: string,
  sequence: number,
  options: { method?: string; body?: object; headers?: Record<string, string> } = {},
): Promise<{ blocks: string[]; responseId: string; requestId: string | undefined }> {
  const res = await openRequest(url, {
    method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
    headers: { ...(options.body === undefined ? {} : { 'content-type': 'application/json' }), ...options.headers },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  if (res.statusCode !== 200) throw new Error(`status ${String(res.statusCode)}`);
  const reader = new ChunkReader(res);
  let text = '';
  for (;;) {
    const chunk = await reader.next();
    if (chunk === null) throw new Error(`the stream ended before event ${sequence}: ${text.slice(-300)}`);
    text += chunk.toString();
    const complete = text.slice(0, text.lastIndexOf('\n\n') + 2);
    const blocks = eventBlocks(complete);
    if (blocks.some((block) => sequenceOf(block) >= sequence)) {
      res.destroy();
      const kept = blocks.filter((block) => sequenceOf(block) <= sequence);
      const created = JSON.parse(parseSse(kept[0] as string)[0]?.data ?? '{}');
      const requestId = res.headers['x-request-id'];
      return { blocks: kept, responseId: String(created.response.id), requestId: typeof requestId === 'string' ? requestId : undefined };
    }
  }
}

/** GET ?stream=true&starting_after=N, read to its end. */
export async function resume(baseUrl: string, responseId: string, after: number, headers: Record<string, string> = {}): Promise<{ status: number; text: string; requestId: string }> {
  const from = after < 0 ? '' : `&starting_after=${after}`;
  const res = await send(`${baseUrl}/v1/responses/${responseId}?stream=true${from}`, { headers });
  return { status: res.status, text: res.text(), requestId: String(res.headers['x-request-id']) };
}

/** The first events and the resumed rest, joined and held to the stream rules (gap-free
 * sequence numbers from 0, one terminal event, joined deltas equal to the final text). */
export function checkJoined(first: readonly string[], resumedText: string): CheckedStream {
  return checkStream(`${first.join('')}${resumedText}`);
}

/** The text of every output_text delta, joined. */
export function joinedDeltas(checked: CheckedStream): string {
  return checked.events
    .filter((event) => event.data.type === 'response.output_text.delta')
    .map((event) => String(event.data.delta))
    .join('');
}
