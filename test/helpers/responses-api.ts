// Small clients for the Responses API as tests use it: create (JSON or streamed), and
// the events of a stream parsed.
import type { OutgoingHttpHeaders } from 'node:http';
import { checkResponseObject, checkStream } from './conformance.ts';
import { parseSse, postJson, send, type RawResponse } from './http.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- responses are arbitrary JSON in assertions
export type AnyJson = any;

export interface StreamResult {
  readonly status: number;
  readonly text: string;
  /** Parsed `data:` payloads, [DONE] excluded, with their `event:` names. */
  readonly events: { readonly event: string | undefined; readonly data: AnyJson }[];
  readonly endedWithDone: boolean;
  /** The response object of the terminal event, if any. */
  readonly terminal: AnyJson;
}

/** Every successful answer is held to the conformance rules (test/helpers/conformance.ts). */
export async function create(baseUrl: string, body: object, headers: OutgoingHttpHeaders = {}): Promise<RawResponse> {
  const res = await postJson(`${baseUrl}/v1/responses`, body, headers);
  if (res.status === 200) checkResponseObject(res.json(), 'POST /v1/responses');
  return res;
}

export async function createStream(baseUrl: string, body: object, headers: OutgoingHttpHeaders = {}): Promise<StreamResult> {
  const res = await postJson(`${baseUrl}/v1/responses`, { ...body, stream: true }, headers);
  if (res.status === 200) checkStream(res.text());
  // A refusal is a JSON body, not a stream: no events.
  const parsed = res.status === 200 ? parseSse(res.text()) : [];
  const endedWithDone = parsed.at(-1)?.data === '[DONE]';
  const events = parsed.filter((event) => event.data !== '[DONE]').map((event) => ({ event: event.event, data: JSON.parse(event.data) }));
  const terminal = events.find((event) => ['response.completed', 'response.incomplete', 'response.failed'].includes(event.data.type))?.data.response;
  return { status: res.status, text: res.text(), events, endedWithDone, terminal };
}

export async function getJson(url: string): Promise<{ status: number; body: AnyJson; text: string }> {
  const res = await send(url);
  return { status: res.status, body: res.json(), text: res.text() };
}

export async function deleteJson(url: string): Promise<{ status: number; body: AnyJson }> {
  const res = await send(url, { method: 'DELETE' });
  return { status: res.status, body: res.json() };
}

/** The text of a user or assistant message item, whatever its content shape. */
export function messageText(item: AnyJson): string {
  if (typeof item.content === 'string') return item.content;
  return (item.content as AnyJson[]).map((part) => part.text ?? '').join('');
}
