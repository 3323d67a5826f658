// A simulated vLLM server for tests, the demo and the benchmark. It speaks vLLM's wire
// format (see wire.ts) on /v1/responses, /v1/chat/completions, /v1/completions,
// /v1/embeddings, /v1/models and /health, records what it receives, and misbehaves on
// request: the `x-sim` header carries `key=value;key=value` switches (see SimDirectives).
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setImmediate as setImmediatePromise } from 'node:timers/promises';
import {
  REAL_VLLM_QUIRKS,
  applyQuirks,
  eventChunks,
  hex,
  makeIds,
  planGeneration,
  responseObject,
  streamEvents,
  vllmError,
  vllmInputProblem,
  chatTemplateProblem,
  type JsonObject,
  type Quirks,
  type WireEvent,
} from './wire.ts';
import { CHAT_DIALECTS, chatChunks, chatCompletion, chatRequestProblem, planBodyOfChat, type ChatDialect } from './chat-wire.ts';
import { PrefixCache } from './prefix-cache.ts';

/** How many events a stream without a delay writes before letting other streams run. */
const YIELD_EVERY_EVENTS = 64;

/** vLLM's flat error event: {type, code, message, param} without a sequence_number. */
function flatErrorChunks(event: JsonObject): [string, string, string] {
  return ['event: error\n', `data: ${JSON.stringify(event)}\n`, '\n'];
}

export interface SimOptions {
  readonly port?: number;
  readonly host?: string;
  readonly model?: string;
  /** Delay between streamed events (ms); 0 writes them back to back. */
  readonly chunkDelayMs?: number;
  /** Prefill time per input token not found in the prefix cache (µs), before a
   * /v1/responses answer starts: what affinity saves on a real vLLM. 0: none. */
  readonly prefillUsPerToken?: number;
  readonly quirks?: Partial<Quirks>;
  /** Like `vllm serve --api-key`: /v1/* requires this bearer key. */
  readonly apiKey?: string;
  /** Write each SSE event in one chunk instead of vLLM's three (cheaper, for load tests). */
  readonly coalesceEvents?: boolean;
  /** Keep a record of every request (off for long load runs). */
  readonly record?: boolean;
  /** How long an idle keep-alive connection stays open (vLLM/uvicorn: 5 s). */
  readonly keepAliveTimeoutMs?: number;
  /** A server without a /health route (Ollama, LM Studio): 404 there. */
  readonly noHealthRoute?: boolean;
  /** A server that speaks only Chat Completions: /v1/responses answers 404. */
  readonly chatOnly?: boolean;
  /** Whose chat format /v1/chat/completions writes (default vllm); x-sim dialect=... per request. */
  readonly chatDialect?: ChatDialect;
  /** For benchmarks: /v1/responses answers are built once per shape (stream, deltas) and
   * reused; bodies are not parsed, only searched for "stream": true. Costs next to nothing. */
  readonly fast?: boolean;
}

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: readonly string[];
  readonly body: Buffer;
  readonly json: JsonObject | undefined;
  aborted: boolean;
  finished: boolean;
}

/** Switches read from the x-sim request header. */
export interface SimDirectives {
  status?: number;
  delayHeadersMs?: number;
  hangAfterHeaders?: boolean;
  resetBeforeHeaders?: boolean;
  resetAfterEvents?: number;
  truncateAfterEvents?: number;
  endMidEventAfter?: number;
  stallAfterEvents?: number;
  garbage?: boolean;
  wrongContentType?: boolean;
  noBody?: boolean;
  slowMs?: number;
  deltas?: number;
  reasoning?: boolean;
  tool?: string;
  /** The chat format of this answer (vllm, llama.cpp, ollama, sglang). */
  dialect?: ChatDialect;
  /** vLLM stream quirks to reproduce (see StreamQuirk in wire.ts). */
  quirks?: Set<string>;
}

export type CustomHandler = (req: IncomingMessage, res: ServerResponse, recorded: RecordedRequest) => void;

export interface SimVllm {
  readonly url: string;
  readonly port: number;
  readonly requests: RecordedRequest[];
  /** Resolves with the next request to arrive after this call. */
  nextRequest(): Promise<RecordedRequest>;
  /** Resolves once this request's connection was closed by the client before the response ended. */
  whenAborted(request: RecordedRequest): Promise<void>;
  /** The next /v1 request is answered by `handler` instead of the simulation. */
  enqueue(handler: CustomHandler): void;
  setHealthy(healthy: boolean): void;
  /** GET /health probes received so far. */
  readonly healthProbes: number;
  /** API probes (POST /v1/responses with {}) received so far; they are not in `requests`. */
  readonly apiProbes: number;
  /** Holds /health answers until the returned function is called. */
  holdHealth(): () => void;
  /** Input tokens of /v1/responses requests looked up in the prefix cache, and found. */
  readonly prefixCache: { readonly queries: number; readonly hits: number };
  close(): Promise<void>;
}

/** Each x-sim switch and what it sets (value: the text after `=`, n: it as a number). */
export const DIRECTIVES: Readonly<Record<string, (d: SimDirectives, value: string | undefined, n: number) => void>> = {
  status: (d, _v, n) => (d.status = n),
  'delay-headers': (d, _v, n) => (d.delayHeadersMs = n),
  'hang-after-headers': (d) => (d.hangAfterHeaders = true),
  'reset-before-headers': (d) => (d.resetBeforeHeaders = true),
  'reset-after': (d, _v, n) => (d.resetAfterEvents = n), // cut after n events
  'truncate-after': (d, _v, n) => (d.truncateAfterEvents = n),
  'end-mid-event-after': (d, _v, n) => (d.endMidEventAfter = n),
  'stall-after': (d, _v, n) => (d.stallAfterEvents = n),
  garbage: (d) => (d.garbage = true),
  'wrong-content-type': (d) => (d.wrongContentType = true),
  'no-body': (d) => (d.noBody = true),
  slow: (d, _v, n) => (d.slowMs = n),
  deltas: (d, _v, n) => (d.deltas = n),
  reasoning: (d, value) => (d.reasoning = value !== '0'),
  tool: (d, value) => (d.tool = value),
  dialect: (d, value) => {
    if ((CHAT_DIALECTS as readonly string[]).includes(value ?? '')) d.dialect = value as ChatDialect;
  },
  quirk: (d, value) => (d.quirks = new Set((value ?? '').split(',').map((quirk) => quirk.trim()))),
};

export function parseDirectives(header: string | string[] | undefined): SimDirectives {
  const directives: SimDirectives = {};
  const text = Array.isArray(header) ? header.join(';') : (header ?? '');
  for (const part of text.split(';')) {
    const [rawKey, rawValue] = part.split('=');
    const value = rawValue?.trim();
    DIRECTIVES[rawKey?.trim() ?? '']?.(directives, value, value === undefined ? Number.NaN : Number(value));
  }
  return directives;
}

function sleep(ms: number, res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0) {
      resolve();
      return;
    }
    const onClose = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      res.off('close', onClose);
      resolve();
    }, ms);
    res.once('close', onClose);
  });
}

/** Resolves when the response can take more, or is gone. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export async function startSimVllm(options: SimOptions = {}): Promise<SimVllm> {
  const model = options.model ?? 'sim-model';
  const quirks: Quirks = { ...REAL_VLLM_QUIRKS, ...options.quirks };
  const record = options.record ?? true;
  const requests: RecordedRequest[] = [];
  const waiters: Array<(request: RecordedRequest) => void> = [];
  const abortWaiters = new Map<RecordedRequest, Array<() => void>>();
  const custom: CustomHandler[] = [];
  let healthy = true;
  let healthProbes = 0;
  let probes = 0;
  let healthGate: Promise<void> | undefined;
  const prefixCache = new PrefixCache();

  const noteArrival = (recorded: RecordedRequest): void => {
    if (!record) return;
    requests.push(recorded);
    for (const waiter of waiters.splice(0)) waiter(recorded);
  };

  /** Writes one event; false when the connection is full (the caller waits for drain). */
  const writeEvent = (res: ServerResponse, event: JsonObject, seq: number): boolean => {
    const [eventLine, dataLine, blank] = event['type'] === 'error' ? flatErrorChunks(event) : eventChunks(event, seq);
    if (options.coalesceEvents === true) return res.write(eventLine + dataLine + blank);
    res.write(eventLine);
    res.write(dataLine);
    return res.write(blank);
  };

  async function streamResponses(res: ServerResponse, body: JsonObject, d: SimDirectives): Promise<void> {
    const plan = planGeneration(body, { deltas: d.deltas, reasoning: d.reasoning, toolName: d.tool });
    const ids = makeIds(plan, quirks);
    const { events, trailer } = applyQuirks(streamEvents(body, plan, ids, Math.floor(Date.now() / 1000)), d.quirks ?? new Set());
    res.writeHead(200, { 'content-type': d.wrongContentType === true ? 'text/plain' : 'text/event-stream; charset=utf-8' });
    res.flushHeaders();
    const delay = d.slowMs ?? options.chunkDelayMs ?? 0;
    for (let seq = 0; seq < events.length; seq++) {
      if (res.destroyed) return;
      if (d.resetAfterEvents === seq) {
        // The connection closes with the chunked body unfinished, as when vLLM dies:
        // everything written so far still arrives, then the stream breaks.
        res.socket?.end();
        return;
      }
      const wire = events[seq] as WireEvent;
      if (d.truncateAfterEvents === seq || d.endMidEventAfter === seq) {
        const [eventLine, dataLine] = eventChunks(wire.event, seq);
        res.write(eventLine + dataLine.slice(0, Math.floor(dataLine.length / 2)));
        if (d.endMidEventAfter === seq) res.end();
        else res.socket?.end();
        return;
      }
      if (d.stallAfterEvents === seq) return; // never writes again; the client gives up
      // Like vLLM (uvicorn awaits the transport's flow control): a reader that does not
      // keep up holds the generation back rather than filling memory.
      if (!writeEvent(res, wire.event, wire.sequenceNumber ?? seq)) await drained(res);
      if (delay > 0) await sleep(delay, res);
      // Without a delay, a long stream into a reader that keeps up would hold the event
      // loop until it ends; vLLM's server yields between writes, and so does this.
      else if (seq % YIELD_EVERY_EVENTS === YIELD_EVERY_EVENTS - 1) await setImmediatePromise();
    }
    // reset-after=<every event>: the whole stream arrives, then the connection breaks
    // where its end would have been.
    if (d.resetAfterEvents === events.length) {
      res.socket?.end();
      return;
    }
    res.end(trailer);
  }

  async function handleResponses(req: IncomingMessage, res: ServerResponse, recorded: RecordedRequest, d: SimDirectives): Promise<void> {
    const body = recorded.json;
    if (body === undefined) {
      sendJson(res, 400, vllmError(400, 'Request body is not valid JSON'));
      return;
    }
    if (body['stream'] === true) {
      await streamResponses(res, body, d);
      return;
    }
    const plan = planGeneration(body, { deltas: d.deltas, reasoning: d.reasoning, toolName: d.tool });
    const ids = makeIds(plan, quirks);
    const response = responseObject(body, plan, ids, 'final', Math.floor(Date.now() / 1000));
    await sleep(d.slowMs ?? 0, res);
    sendJson(res, 200, response, d.wrongContentType === true ? 'text/plain' : 'application/json');
  }

  async function handleChat(res: ServerResponse, recorded: RecordedRequest, d: SimDirectives): Promise<void> {
    const body = recorded.json;
    const problem = body === undefined ? 'Request body is not valid JSON' : chatRequestProblem(body);
    if (body === undefined || problem !== undefined) {
      sendJson(res, 400, vllmError(400, problem ?? 'Request body is not valid JSON'));
      return;
    }
    const dialect = d.dialect ?? options.chatDialect ?? 'vllm';
    const planBody = planBodyOfChat(body);
    const plan = planGeneration(planBody, { deltas: d.deltas, reasoning: d.reasoning, toolName: d.tool });
    const chatModel = typeof body['model'] === 'string' ? body['model'] : model;
    if (body['stream'] !== true) {
      await sleep(d.slowMs ?? 0, res);
      sendJson(res, 200, chatCompletion(plan, chatModel, dialect));
      return;
    }
    // Like vLLM: stream_options.include_usage adds a last chunk with no choices and the
    // usage; continuous_usage_stats puts the usage so far on every chunk as well.
    const streamOptions = typeof body['stream_options'] === 'object' && body['stream_options'] !== null ? (body['stream_options'] as JsonObject) : {};
    const chunks = chatChunks(plan, chatModel, dialect, streamOptions['include_usage'] === true);
    if (streamOptions['include_usage'] === true && streamOptions['continuous_usage_stats'] === true) {
      let completion = 0;
      for (const chunk of chunks) {
        if (chunk['usage'] !== undefined) continue;
        chunk['usage'] = { prompt_tokens: plan.inputTokens, total_tokens: plan.inputTokens + completion, completion_tokens: completion };
        completion += 1;
      }
    }
    res.writeHead(200, { 'content-type': d.wrongContentType === true ? 'text/plain' : 'text/event-stream; charset=utf-8' });
    res.flushHeaders();
    const delay = d.slowMs ?? options.chunkDelayMs ?? 0;
    for (let i = 0; i < chunks.length; i++) {
      if (res.destroyed) return;
      if (d.resetAfterEvents === i) {
        res.socket?.end();
        return;
      }
      if (d.stallAfterEvents === i) return;
      const line = `data: ${JSON.stringify(chunks[i])}\n\n`;
      if (d.truncateAfterEvents === i) {
        res.write(line.slice(0, Math.floor(line.length / 2)));
        res.socket?.end();
        return;
      }
      if (!res.write(line)) await drained(res);
      if (delay > 0) await sleep(delay, res);
      else if (i % YIELD_EVERY_EVENTS === YIELD_EVERY_EVENTS - 1) await setImmediatePromise();
    }
    if (d.quirks?.has('chat-error-chunk') === true) {
      // A server that fails mid-stream (llama.cpp, vLLM) sends its error as a chunk.
      res.end(`data: ${JSON.stringify({ error: { message: 'the engine died', type: 'InternalServerError', code: 500 } })}\n\n`);
      return;
    }
    res.end('data: [DONE]\n\n');
  }

  async function handleV1(req: IncomingMessage, res: ServerResponse, recorded: RecordedRequest): Promise<void> {
    const d = parseDirectives(req.headers['x-sim']);
    if (d.resetBeforeHeaders === true) {
      req.socket.resetAndDestroy();
      return;
    }
    if (d.noBody === true) {
      // A status line and nothing else: no headers, no length, no body.
      req.socket.end('HTTP/1.1 200 OK\r\n\r\n');
      return;
    }
    if (d.delayHeadersMs !== undefined) await sleep(d.delayHeadersMs, res);
    if (res.destroyed) return;
    if (d.hangAfterHeaders === true) {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
      res.flushHeaders();
      return; // nothing more, ever
    }
    if (d.status !== undefined && Number.isInteger(d.status)) {
      sendJson(res, d.status, vllmError(d.status, `simulated error ${d.status}`));
      return;
    }
    if (d.garbage === true) {
      sendJson(res, 200, '<html>not json</html>');
      return;
    }
    const path = recorded.url.split('?')[0];
    switch (`${req.method} ${path}`) {
      case 'POST /v1/responses':
        // llama.cpp, Ollama, SGLang: a chat-only server has no such route.
        if (options.chatOnly === true) {
          sendJson(res, 404, { detail: 'Not Found' });
          return;
        }
        if (recorded.json !== undefined) {
          const uncached = prefixCache.serve(recorded.json['input'], planGeneration(recorded.json, { deltas: d.deltas, reasoning: d.reasoning, toolName: d.tool }).items);
          if ((options.prefillUsPerToken ?? 0) > 0) await sleep((uncached * (options.prefillUsPerToken as number)) / 1000, res);
          if (res.destroyed) return;
        }
        return handleResponses(req, res, recorded, d);
      case 'GET /metrics':
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
        res.end(prefixCache.metrics(model));
        return;
      case 'POST /v1/chat/completions':
        return handleChat(res, recorded, d);
      case 'POST /v1/completions': {
        const prompt = typeof recorded.json?.['prompt'] === 'string' ? recorded.json['prompt'] : '';
        sendJson(res, 200, {
          id: `cmpl-${hex()}`,
          object: 'text_completion',
          created: Math.floor(Date.now() / 1000),
          model,
          choices: [{ index: 0, text: ` ${prompt}`, logprobs: null, finish_reason: 'stop' }],
          usage: { prompt_tokens: 1, total_tokens: 2, completion_tokens: 1 },
        });
        return;
      }
      case 'POST /v1/embeddings':
        sendJson(res, 200, {
          id: `embd-${hex()}`,
          object: 'list',
          created: Math.floor(Date.now() / 1000),
          model,
          data: [{ index: 0, object: 'embedding', embedding: [0.1, 0.2, 0.3] }],
          usage: { prompt_tokens: 1, total_tokens: 1 },
        });
        return;
      case 'GET /v1/models':
        sendJson(res, 200, {
          object: 'list',
          data: [{ id: model, object: 'model', created: 0, owned_by: 'vllm', root: model, parent: null, max_model_len: 32768 }],
        });
        return;
      default:
        sendJson(res, 404, vllmError(404, `Not Found: ${req.method} ${path}`));
    }
  }

  /** fast mode: prepared answers, by `${stream}:${deltas}`. */
  const prepared = new Map<string, { json?: Buffer; events?: Buffer[] }>();
  const prepare = (stream: boolean, deltas: number | undefined): { json?: Buffer; events?: Buffer[] } => {
    const key = `${String(stream)}:${String(deltas)}`;
    let answer = prepared.get(key);
    if (answer === undefined) {
      const body = { model, input: 'benchmark', stream };
      const plan = planGeneration(body, { deltas });
      const ids = makeIds(plan, quirks);
      const createdAt = Math.floor(Date.now() / 1000);
      answer = stream
        ? { events: streamEvents(body, plan, ids, createdAt).map((event, seq) => Buffer.from(eventChunks(event, seq).join(''))) }
        : { json: Buffer.from(JSON.stringify(responseObject(body, plan, ids, 'final', createdAt))) };
      prepared.set(key, answer);
    }
    return answer;
  };
  const fastResponses = (req: IncomingMessage, res: ServerResponse, body: Buffer): void => {
    const directives = parseDirectives(req.headers['x-sim']);
    // delay-headers=N: a model that takes N ms to answer (its prefill), for benchmarks of
    // what the gateway does meanwhile.
    if (directives.delayHeadersMs !== undefined) {
      setTimeout(answerFast, directives.delayHeadersMs, res, body, directives.deltas);
      return;
    }
    answerFast(res, body, directives.deltas);
  };
  const answerFast = (res: ServerResponse, body: Buffer, deltas: number | undefined): void => {
    if (res.destroyed) return;
    const stream = body.includes('"stream":true') || body.includes('"stream": true');
    const answer = prepare(stream, deltas);
    if (answer.json !== undefined) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.json.length });
      res.end(answer.json);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
    const delay = options.chunkDelayMs ?? 0;
    const events = answer.events ?? [];
    if (delay === 0) {
      for (const event of events) res.write(event);
      res.end();
      return;
    }
    let next = 0;
    const timer = setInterval(() => {
      if (res.destroyed || next >= events.length) {
        clearInterval(timer);
        res.end();
        return;
      }
      res.write(events[next++]);
    }, delay);
    res.once('close', () => clearInterval(timer));
  };

  /** fast mode, chat: the chunks of a `deltas=N` stream, made once per N (vLLM's dialect). */
  const preparedChat = new Map<string, Buffer>();
  const fastChat = (req: IncomingMessage, res: ServerResponse, body: Buffer): void => {
    const stream = body.includes('"stream":true') || body.includes('"stream": true');
    const deltas = parseDirectives(req.headers['x-sim']).deltas;
    const key = `${String(stream)}:${String(deltas)}`;
    let answer = preparedChat.get(key);
    if (answer === undefined) {
      const plan = planGeneration({ model, input: 'benchmark' }, { deltas });
      answer = stream
        ? Buffer.from(`${chatChunks(plan, model, 'vllm', true).map((chunk) => `data: ${JSON.stringify(chunk)}\n\n`).join('')}data: [DONE]\n\n`)
        : Buffer.from(JSON.stringify(chatCompletion(plan, model, 'vllm')));
      preparedChat.set(key, answer);
    }
    res.writeHead(200, stream ? { 'content-type': 'text/event-stream; charset=utf-8' } : { 'content-type': 'application/json', 'content-length': answer.length });
    res.end(answer);
  };

  const server = createServer({ noDelay: true }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (options.fast === true && req.method === 'POST' && req.url === '/v1/responses' && options.chatOnly !== true) {
        fastResponses(req, res, body);
        return;
      }
      if (options.fast === true && req.method === 'POST' && req.url === '/v1/chat/completions') {
        fastChat(req, res, body);
        return;
      }
      let json: JsonObject | undefined;
      try {
        const parsed: unknown = body.length > 0 ? JSON.parse(body.toString('utf8')) : undefined;
        if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) json = parsed as JsonObject;
      } catch {
        json = undefined;
      }
      const recorded: RecordedRequest = {
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body,
        json,
        aborted: false,
        finished: false,
      };
      res.on('close', () => {
        recorded.finished = res.writableFinished;
        if (!res.writableFinished) {
          recorded.aborted = true;
          for (const notify of abortWaiters.get(recorded) ?? []) notify();
          abortWaiters.delete(recorded);
        }
      });
      if (recorded.url === '/_sim/stats') {
        // For load tests: how many connections are open (this one included).
        server.getConnections((_error, count) => sendJson(res, 200, { connections: count }));
        return;
      }
      if (options.noHealthRoute === true && recorded.url === '/health') {
        sendJson(res, 404, '404 page not found', 'text/plain');
        return;
      }
      if (recorded.url === '/health' || recorded.url === '/ping') {
        healthProbes += 1;
        const answer = (): void => {
          if (res.destroyed) return;
          res.writeHead(healthy ? 200 : 503, { 'content-length': 0 });
          res.end();
        };
        if (healthGate === undefined) answer();
        else void healthGate.then(answer);
        return;
      }
      if (req.method === 'POST' && recorded.url === '/v1/responses' && body.length === 2 && body.toString() === '{}') {
        // A gateway asking which API this server has (--upstream-api auto): answered as
        // vLLM (400: no input) or a chat-only server (404) answers it, counted, not recorded.
        probes += 1;
        if (options.chatOnly === true) sendJson(res, 404, { detail: 'Not Found' });
        else sendJson(res, 400, vllmError(400, "1 validation error for ResponsesRequest\ninput\n  Field required [type=missing, input_value={}, input_type=dict]"));
        return;
      }
      noteArrival(recorded);
      if (options.apiKey !== undefined && recorded.url.startsWith('/v1') && req.headers.authorization !== `Bearer ${options.apiKey}`) {
        sendJson(res, 401, { error: 'Unauthorized' });
        return;
      }
      // vLLM refuses some inputs whoever answers: check them before a scripted reply too.
      if (options.chatOnly !== true && req.method === 'POST' && recorded.url.split('?')[0] === '/v1/responses' && recorded.json !== undefined) {
        const problem = vllmInputProblem(recorded.json['input']) ?? chatTemplateProblem(recorded.json);
        if (problem !== undefined) {
          sendJson(res, 400, vllmError(400, problem));
          return;
        }
      }
      const handler = custom.shift();
      if (handler !== undefined) {
        handler(req, res, recorded);
        return;
      }
      handleV1(req, res, recorded).catch(() => res.destroy());
    });
  });

  server.keepAliveTimeout = options.keepAliveTimeoutMs ?? 5_000;
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    nextRequest() {
      return new Promise((resolve) => waiters.push(resolve));
    },
    whenAborted(request) {
      if (request.aborted) return Promise.resolve();
      return new Promise((resolve) => {
        const list = abortWaiters.get(request) ?? [];
        list.push(resolve);
        abortWaiters.set(request, list);
      });
    },
    enqueue(handler) {
      custom.push(handler);
    },
    setHealthy(value) {
      healthy = value;
    },
    get healthProbes() {
      return healthProbes;
    },
    get apiProbes() {
      return probes;
    },
    prefixCache,
    holdHealth() {
      let release: () => void = () => {};
      healthGate = new Promise((resolve) => {
        release = () => {
          healthGate = undefined;
          resolve();
        };
      });
      return release;
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
