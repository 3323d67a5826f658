// A raw HTTP client for tests: node:http with no agent reuse, raw header arrays kept,
// and bodies readable chunk by chunk so tests can see when bytes arrive.
import { connect } from 'node:net';
import { request as httpRequest, type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';

export interface RawResponse {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly rawHeaders: readonly string[];
  readonly body: Buffer;
  text(): string;
  json(): any; // eslint-disable-line @typescript-eslint/no-explicit-any -- test assertions read arbitrary JSON
}

export interface SendOptions {
  readonly method?: string;
  readonly headers?: OutgoingHttpHeaders | readonly string[];
  readonly body?: string | Buffer;
}

/** Starts a request; `request` is the client side, to destroy it mid-way. */
export function startRequest(url: string, options: SendOptions = {}): { request: ClientRequest; response: Promise<IncomingMessage> } {
  const request = httpRequest(url, {
    method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
    headers: options.headers,
    agent: false,
  });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    request.on('response', resolve);
    request.on('error', reject);
  });
  request.end(options.body);
  return { request, response };
}

export function openRequest(url: string, options: SendOptions = {}): Promise<IncomingMessage> {
  return startRequest(url, options).response;
}

export function readAll(res: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('response aborted')));
  });
}

export async function send(url: string, options: SendOptions = {}): Promise<RawResponse> {
  const res = await openRequest(url, options);
  const body = await readAll(res);
  return {
    status: res.statusCode ?? 0,
    headers: res.headers,
    rawHeaders: res.rawHeaders,
    body,
    text: () => body.toString('utf8'),
    json: () => JSON.parse(body.toString('utf8')),
  };
}

export function postJson(url: string, body: unknown, headers: OutgoingHttpHeaders = {}): Promise<RawResponse> {
  return send(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** Reads a response incrementally: each call resolves with the next chunk (null at the end). */
export class ChunkReader {
  readonly #chunks: Buffer[] = [];
  readonly #waiters: Array<(chunk: Buffer | null) => void> = [];
  #ended = false;
  #error: Error | undefined;

  constructor(res: IncomingMessage) {
    res.on('data', (chunk: Buffer) => {
      const waiter = this.#waiters.shift();
      if (waiter !== undefined) waiter(chunk);
      else this.#chunks.push(chunk);
    });
    const end = (): void => {
      this.#ended = true;
      for (const waiter of this.#waiters.splice(0)) waiter(null);
    };
    res.on('end', end);
    res.on('close', end);
    res.on('error', (error) => {
      this.#error = error;
      end();
    });
  }

  get error(): Error | undefined {
    return this.#error;
  }

  /** Bytes received and not read yet. */
  get buffered(): number {
    return this.#chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  }

  next(): Promise<Buffer | null> {
    const chunk = this.#chunks.shift();
    if (chunk !== undefined) return Promise.resolve(chunk);
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Reads until `text` has appeared in what was read so far; returns everything read. */
  async until(text: string, soFar = ''): Promise<string> {
    let seen = soFar;
    while (!seen.includes(text)) {
      const chunk = await this.next();
      if (chunk === null) throw new Error(`stream ended before ${JSON.stringify(text)}; got ${seen.slice(-300)}`);
      seen += chunk.toString('utf8');
    }
    return seen;
  }

  async rest(): Promise<string> {
    let out = '';
    for (;;) {
      const chunk = await this.next();
      if (chunk === null) return out;
      out += chunk.toString('utf8');
    }
  }
}

export interface SseEvent {
  readonly event: string | undefined;
  readonly data: string;
}

/** Parses SSE text into events (LF line ends; what the gateway sends). */
export function parseSse(text: string): SseEvent[] {
  const events: SseEvent[] = [];
  for (const block of text.split('\n\n')) {
    if (block.trim().length === 0) continue;
    let event: string | undefined;
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    events.push({ event, data: data.join('\n') });
  }
  return events;
}

export interface RawExchange {
  readonly status: number;
  readonly head: string;
  readonly body: string;
}

/** Sends hand-written HTTP/1.1 bytes and reads one response (Content-Length framed, or to close). */
export function sendRaw(port: number, requestText: string | Buffer): Promise<RawExchange> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    const finish = (): void => {
      const text = received.toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const head = split === -1 ? text : text.slice(0, split);
      const body = split === -1 ? '' : received.subarray(split + 4).toString('utf8');
      resolve({ status: Number(head.split(' ')[1]), head, body });
    };
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const text = received.toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      if (split === -1) return;
      const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, split));
      if (length !== null && received.length - split - 4 >= Number(length[1])) {
        socket.destroy();
        finish();
      }
    });
    socket.on('close', () => finish());
    socket.on('error', reject);
    socket.write(requestText);
  });
}
