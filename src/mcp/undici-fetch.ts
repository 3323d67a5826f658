// The fetch the MCP SDK's transports are given: undici's request() on one keep-alive
// Agent, answered as a WHATWG Response. Node's global fetch would do, but it ties a
// listener to the transport's long-lived AbortSignal on every request and lets it go only
// when the request is garbage-collected (a busy session piles them up, and Node warns);
// request() removes its listener when the exchange ends, and costs less per call:
// `npm run bench:mcp-client` measured the SDK client's CPU per listTools at 507 µs against
// 744 with the global fetch, per callTool 417 µs against 831 (medians of 7 alternating
// rounds, Node 20; bench/README.md "Tools").
import type { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';

/** Status codes whose answers carry no body (a Response refuses one). */
const NO_BODY = new Set([101, 204, 205, 304]);

function headerList(init: RequestInit | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  new Headers(init?.headers).forEach((value, name) => {
    headers[name] = value;
  });
  return headers;
}

function responseHeaders(raw: Dispatcher.ResponseData['headers']): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(raw)) {
    if (Array.isArray(value)) for (const one of value) headers.append(name, one);
    else if (value !== undefined) headers.append(name, value);
  }
  return headers;
}

export type Fetch = (url: string | URL, init?: RequestInit) => Promise<Response>;

/** A fetch over its own keep-alive Agent, and the way to close the Agent's connections. */
export function undiciFetcher(): { readonly fetch: Fetch; close(): Promise<void> } {
  const agent = new Agent({ keepAliveTimeout: 30_000 });
  return { fetch: (url, init) => fetchWith(agent, url, init), close: () => agent.close() };
}

async function fetchWith(agent: Agent, url: string | URL, init?: RequestInit): Promise<Response> {
  const method = (init?.method ?? 'GET').toUpperCase();
  const body = init?.body;
  if (body !== undefined && body !== null && typeof body !== 'string') throw new TypeError('MCP requests carry string bodies');
  const answer = await request(url, {
    method,
    headers: headerList(init),
    body: body ?? undefined,
    signal: init?.signal ?? undefined,
    dispatcher: agent,
  });
  const empty = NO_BODY.has(answer.statusCode) || method === 'HEAD';
  if (empty) answer.body.resume();
  return new Response(empty ? null : webStream(answer.body), { status: answer.statusCode, headers: responseHeaders(answer.headers) });
}

/**
 * The body as a web stream, paused while the reader is behind. Not Readable.toWeb: a
 * reader that cancels (the SDK does, closing an SSE stream or abandoning a call) leaves it
 * writing to a closed controller, which throws outside any caller: an uncaught exception.
 */
function webStream(body: Readable): ReadableStream<Uint8Array> {
  let done = false;
  const finish = (end: () => void): void => {
    if (done) return;
    done = true;
    end();
  };
  return new ReadableStream<Uint8Array>({
    start(controller) {
      body.on('data', (chunk: Buffer) => {
        if (done) return;
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if ((controller.desiredSize ?? 0) <= 0) body.pause();
      });
      body.once('end', () => finish(() => controller.close()));
      // Kept for good (not once): an error after the first must not go unhandled.
      body.on('error', (error) => finish(() => controller.error(error)));
    },
    pull() {
      body.resume();
    },
    cancel() {
      done = true;
      body.destroy();
    },
  });
}
