// The model server as the run sees it: a Responses request in, a Responses answer (a
// stream of vLLM's events, or vLLM's response object) out. Two implementations behind
// one `dispatch`: vLLM's /v1/responses, reached as it is, and any server's
// /v1/chat/completions, reached through a translation both ways (chat-request.ts,
// chat-stream.ts). Everything above (state, normalizers, runs, tool
// loops, background, WebSocket) is the same for both.
//
// --upstream-api auto asks the server which it has (UpstreamClient.probeResponsesApi) at
// startup, and again after the server was unreachable or answered /v1/responses with 404
// (it may have been replaced by another), and logs each choice.
import type { Dispatcher } from 'undici';
import type { UpstreamApiSetting } from '../config/load-config.ts';
import { GatewayError, renderErrorBody } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { classifyUpstreamError } from '../upstream/classify-error.ts';
import type { ForwardRequest, UpstreamClient } from '../upstream/upstream-client.ts';
import { toChatRequest, type ChatRequest } from './chat-request.ts';
import { ChatStreamTranslator, translateCompletion } from './chat-stream.ts';

export type BackendApi = 'responses' | 'chat';

/** The model server's answer to a request whose whole answer is read (compaction). */
export interface Exchange {
  readonly status: number;
  readonly body: string;
}

/** The one interface the run reaches the model through (see the file's comment). */
export interface ResponsesBackend {
  /** The API in use now; undefined while --upstream-api auto has not found out. */
  readonly api: BackendApi | undefined;
  /** Sends a Responses request (path /v1/responses); the handler gets a Responses answer. */
  dispatch(request: ForwardRequest, handler: Dispatcher.DispatchHandler): void;
  /** The same, read whole. */
  exchange(request: ForwardRequest): Promise<Exchange>;
  /** Why this request body cannot go to the backend (a 400), found before a run starts
   * (a background response is refused at once rather than failed later). */
  refusal(body: ForwardRequest['body']): GatewayError | undefined;
}

const CHAT_PATH = '/v1/chat/completions';
/** Request headers that describe the body the client sent, not the one translated. */
const BODY_HEADERS: ReadonlySet<string> = new Set(['content-type', 'content-encoding', 'accept-encoding', 'content-length']);

export interface ModelBackendOptions {
  readonly upstream: UpstreamClient;
  readonly setting: UpstreamApiSetting;
  readonly log: Logger;
  /** The largest whole (non-streamed) answer read for translation. */
  readonly maxAnswerBytes: number;
}

export class ModelBackend implements ResponsesBackend {
  readonly #upstream: UpstreamClient;
  readonly #setting: UpstreamApiSetting;
  readonly #log: Logger;
  readonly #maxAnswerBytes: number;
  #api: BackendApi | undefined;
  /** auto: ask the server again before the next request. */
  #stale: boolean;
  #probe: Promise<void> | undefined;

  constructor(options: ModelBackendOptions) {
    this.#upstream = options.upstream;
    this.#setting = options.setting;
    this.#log = options.log;
    this.#maxAnswerBytes = options.maxAnswerBytes;
    this.#api = options.setting === 'auto' ? undefined : options.setting;
    this.#stale = options.setting === 'auto';
  }

  get api(): BackendApi | undefined {
    return this.#api;
  }

  /** auto: finds out which API the server has (at startup; bounded by the probe's timeout). */
  start(): Promise<void> {
    return this.#stale ? this.#ask() : Promise.resolve();
  }

  dispatch(request: ForwardRequest, handler: Dispatcher.DispatchHandler): void {
    if (this.#stale) {
      this.#ask()
        .then(() => this.#send(request, handler))
        .catch((error: unknown) => handler.onResponseError?.(new ControllerView(undefined), error instanceof Error ? error : new Error(String(error))));
      return;
    }
    this.#send(request, handler);
  }

  async exchange(request: ForwardRequest): Promise<Exchange> {
    if (this.#stale) await this.#ask();
    if (this.#api !== 'chat') return this.#upstream.exchange(request);
    let chat: ChatRequest;
    try {
      chat = toChatRequest(parseBody(request.body));
    } catch (error) {
      if (error instanceof GatewayError) return { status: error.status, body: renderErrorBody(error) };
      throw error;
    }
    const answer = await this.#upstream.exchange(chatRequest(request, chat));
    if (answer.status < 200 || answer.status >= 300) return answer;
    return translatedAnswer(answer.body) ?? { status: 502, body: unreadableAnswer() };
  }

  refusal(body: ForwardRequest['body']): GatewayError | undefined {
    if (this.#api !== 'chat') return undefined;
    try {
      toChatRequest(parseBody(body));
      return undefined;
    } catch (error) {
      if (error instanceof GatewayError) return error;
      throw error;
    }
  }

  #send(request: ForwardRequest, handler: Dispatcher.DispatchHandler): void {
    if (this.#api === 'chat') {
      let chat: ChatRequest;
      try {
        chat = toChatRequest(parseBody(request.body));
      } catch (error) {
        answerLocally(handler, error instanceof GatewayError ? error : new GatewayError('invalid_request', 'The request could not be translated for the chat backend.'));
        return;
      }
      this.#upstream.dispatch(chatRequest(request, chat), new ChatAnswerHandler(handler, chat.stream, this.#maxAnswerBytes, this.#watch()));
      return;
    }
    if (this.#setting !== 'auto') {
      this.#upstream.dispatch(request, handler);
      return;
    }
    // auto: a 404 may mean the server was replaced by a chat-only one. The answer is held
    // while the server is asked again; the request goes through chat if it now should.
    const watched = new WatchedHandler(handler, this.#watch(), () =>
      this.#recheck().then((api) => {
        if (api !== 'chat') return false;
        this.#send(request, handler);
        return true;
      }),
    );
    this.#upstream.dispatch(request, watched);
  }

  #recheck(): Promise<BackendApi | undefined> {
    this.#stale = true;
    return this.#ask().then(() => this.#api);
  }

  /** What an answer tells auto mode: unreachable, or no Responses API (any more). */
  #watch(): Watch | undefined {
    if (this.#setting !== 'auto') return undefined;
    return {
      unreachable: () => {
        this.#stale = true;
      },
      status: (status) => {
        if (status === 404 && this.#api === 'chat') this.#stale = true;
      },
    };
  }

  #ask(): Promise<void> {
    this.#probe ??= this.#upstream
      .probeResponsesApi()
      .then((probe) => {
        if (probe.api === 'unknown') {
          // Requests go on with the last choice (Responses at first) and fail as the server does.
          this.#api ??= 'responses';
          this.#log.warn({ api: this.#api, reason: probe.reason }, 'the model server did not answer which API it has; asking again before the next request');
          return;
        }
        this.#stale = false;
        if (probe.api !== this.#api) {
          this.#log.info({ api: probe.api, reason: probe.reason }, probe.api === 'chat' ? 'model server API: Chat Completions (the gateway translates)' : 'model server API: Responses');
        }
        this.#api = probe.api;
      })
      .finally(() => {
        this.#probe = undefined;
      });
    return this.#probe;
  }
}

interface Watch {
  unreachable(): void;
  status(status: number): void;
}

/** Failures that say the server is not there (not a client gone, not a slow answer). */
const UNREACHABLE_KINDS: ReadonlySet<string> = new Set(['connect_refused', 'dns_failure', 'unreachable', 'connect_timeout']);

function tellUnreachable(watch: Watch | undefined, error: Error): void {
  if (watch !== undefined && UNREACHABLE_KINDS.has(classifyUpstreamError(error, 'before-headers').kind)) watch.unreachable();
}

function parseBody(body: ForwardRequest['body']): Record<string, unknown> {
  const bytes = body === null ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.concat(body);
  const parsed: unknown = JSON.parse(bytes.toString('utf8'));
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new GatewayError('invalid_json', 'The request body is not a JSON object.');
  return parsed as Record<string, unknown>;
}

function chatRequest(request: ForwardRequest, chat: ChatRequest): ForwardRequest {
  const headers: string[] = [];
  for (let i = 0; i < request.headers.length; i += 2) {
    const name = request.headers[i] as string;
    if (!BODY_HEADERS.has(name.toLowerCase())) headers.push(name, request.headers[i + 1] as string);
  }
  // The translation reads the answer: it must come uncompressed.
  headers.push('content-type', 'application/json', 'accept-encoding', 'identity');
  return { method: 'POST', path: CHAT_PATH, headers, body: Buffer.from(JSON.stringify(chat.body)), affinity: request.affinity, onReplica: request.onReplica };
}

function unreadableAnswer(): string {
  return renderErrorBody(new GatewayError('upstream_invalid_response', "The model server's chat completion could not be read as one."));
}

function parseOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function translatedAnswer(text: string): Exchange | undefined {
  const response = translateCompletion(parseOrUndefined(text))?.response;
  return response === undefined ? undefined : { status: 200, body: JSON.stringify(response) };
}

// --- the answer, as the handler above the backend expects it -------------------------------

/** A controller that shows the handler above headers of the translated answer. */
class ControllerView implements Dispatcher.DispatchController {
  rawHeaders: string[] | null = null;
  readonly #real: Dispatcher.DispatchController | undefined;
  #aborted = false;
  #reason: Error | null = null;
  /** A local answer's abort: the handler hears of it as undici would tell it. */
  readonly #onLocalAbort: ((reason: Error) => void) | undefined;

  constructor(real: Dispatcher.DispatchController | undefined, onLocalAbort?: (reason: Error) => void) {
    this.#real = real;
    this.#onLocalAbort = onLocalAbort;
  }

  get aborted(): boolean {
    return this.#real?.aborted ?? this.#aborted;
  }

  get paused(): boolean {
    return this.#real?.paused ?? false;
  }

  get reason(): Error | null {
    return this.#real?.reason ?? this.#reason;
  }

  abort(reason: Error): void {
    if (this.#real !== undefined) {
      this.#real.abort(reason);
      return;
    }
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#onLocalAbort?.(reason);
  }

  pause(): void {
    this.#real?.pause();
  }

  resume(): void {
    this.#real?.resume();
  }
}

/** Headers of the server's answer, without those the translation makes untrue. */
function keptHeaders(raw: unknown, contentType: string): string[] {
  const out: string[] = [];
  const list = Array.isArray(raw) ? (raw as Array<Buffer | string>) : [];
  for (let i = 0; i + 1 < list.length; i += 2) {
    const name = String(list[i]);
    const lower = name.toLowerCase();
    if (lower === 'content-length' || lower === 'content-type' || lower === 'content-encoding') continue;
    out.push(name, String(list[i + 1]));
  }
  out.push('content-type', contentType);
  return out;
}

/** A refusal the gateway makes itself (a parameter with no chat form), delivered to the
 * handler as the server's error answer would be, so every caller handles it one way. */
function answerLocally(handler: Dispatcher.DispatchHandler, error: GatewayError): void {
  let over = false;
  const view = new ControllerView(undefined, (reason) => {
    if (over) return;
    over = true;
    handler.onResponseError?.(view, reason);
  });
  const body = Buffer.from(renderErrorBody(error));
  view.rawHeaders = ['content-type', 'application/json', 'content-length', String(body.length)];
  // Asynchronously, as undici answers: the caller finishes setting up first.
  setImmediate(() => {
    handler.onRequestStart?.(view, {});
    if (over || view.aborted) return;
    handler.onResponseStart?.(view, error.status, { 'content-type': 'application/json' }, 'Bad Request');
    if (over || view.aborted) return;
    handler.onResponseData?.(view, body);
    if (over || view.aborted) return;
    over = true;
    handler.onResponseEnd?.(view, {});
  });
}

/** Passes an answer through, telling auto mode what it shows; a 404 is held while the
 * server is asked again (`retry`: true when the request was sent another way). */
class WatchedHandler implements Dispatcher.DispatchHandler {
  readonly #inner: Dispatcher.DispatchHandler;
  readonly #watch: Watch | undefined;
  readonly #retry: () => Promise<boolean>;
  #started = false;
  /** A 404 being held: its head and body, delivered if the retry does not happen. */
  #held: { status: number; headers: Record<string, string | string[] | undefined>; message: string | undefined; body: Buffer[] } | undefined;

  constructor(inner: Dispatcher.DispatchHandler, watch: Watch | undefined, retry: () => Promise<boolean>) {
    this.#inner = inner;
    this.#watch = watch;
    this.#retry = retry;
  }

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.#inner.onRequestStart?.(controller, context);
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>, message?: string): void {
    this.#started = true;
    this.#watch?.status(status);
    if (status === 404) {
      this.#held = { status, headers, message, body: [] };
      return;
    }
    this.#inner.onResponseStart?.(controller, status, headers, message);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#held !== undefined) this.#held.body.push(chunk);
    else this.#inner.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    const held = this.#held;
    if (held === undefined) {
      this.#inner.onResponseEnd?.(controller, trailers);
      return;
    }
    const deliver = (): void => {
      this.#inner.onResponseStart?.(controller, held.status, held.headers, held.message);
      for (const chunk of held.body) this.#inner.onResponseData?.(controller, chunk);
      this.#inner.onResponseEnd?.(controller, trailers);
    };
    this.#retry().then(
      (retried) => {
        if (!retried) deliver();
      },
      () => deliver(),
    );
  }

  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    if (!this.#started) tellUnreachable(this.#watch, error);
    this.#inner.onResponseError?.(controller, error);
  }
}

type AnswerMode = 'pass' | 'stream' | 'whole';

/** Reads a chat server's answer and hands the handler above the Responses answer:
 * a stream event by event, a whole completion at its end; error answers as they are. */
class ChatAnswerHandler implements Dispatcher.DispatchHandler {
  readonly #inner: Dispatcher.DispatchHandler;
  /** The client asked for a stream (a whole answer to it is made one). */
  readonly #streamAsked: boolean;
  readonly #maxAnswerBytes: number;
  readonly #watch: Watch | undefined;
  #view: ControllerView | undefined;
  #mode: AnswerMode = 'pass';
  #translator: ChatStreamTranslator | undefined;
  #status = 0;
  #message: string | undefined;
  #whole: Buffer[] = [];
  #wholeBytes = 0;
  #started = false;

  constructor(inner: Dispatcher.DispatchHandler, streamAsked: boolean, maxAnswerBytes: number, watch: Watch | undefined) {
    this.#inner = inner;
    this.#streamAsked = streamAsked;
    this.#maxAnswerBytes = maxAnswerBytes;
    this.#watch = watch;
  }

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.#view = new ControllerView(controller);
    this.#inner.onRequestStart?.(this.#view, context);
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>, message?: string): void {
    const view = (this.#view ??= new ControllerView(controller));
    this.#started = true;
    this.#watch?.status(status);
    const contentType = String(headers['content-type'] ?? '');
    if (status < 200 || status >= 300) {
      this.#mode = 'pass';
      view.rawHeaders = (controller.rawHeaders as string[] | null | undefined) ?? null;
      this.#inner.onResponseStart?.(view, status, headers, message);
      return;
    }
    if (contentType.startsWith('text/event-stream')) {
      this.#mode = 'stream';
      this.#translator = new ChatStreamTranslator();
      view.rawHeaders = keptHeaders(controller.rawHeaders, 'text/event-stream; charset=utf-8');
      this.#inner.onResponseStart?.(view, status, { ...headers, 'content-type': 'text/event-stream; charset=utf-8' }, message);
      return;
    }
    // A whole completion: translated at its end, when its length is known.
    this.#mode = 'whole';
    this.#status = status;
    this.#message = message;
    view.rawHeaders = keptHeaders(controller.rawHeaders, 'application/json');
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const view = this.#view as ControllerView;
    switch (this.#mode) {
      case 'pass':
        this.#inner.onResponseData?.(view, chunk);
        return;
      case 'stream': {
        const translator = this.#translator as ChatStreamTranslator;
        const events = translator.push(chunk);
        if (events.length > 0) this.#inner.onResponseData?.(view, Buffer.from(events));
        // A chunk that never ends would grow without bound before the relay sees it.
        if (translator.pending > this.#maxAnswerBytes) {
          controller.abort(new GatewayError('upstream_invalid_response', 'A chat chunk from the model server is larger than the gateway accepts (--max-upstream-event-size).'));
        }
        return;
      }
      case 'whole':
        this.#wholeBytes += chunk.length;
        if (this.#wholeBytes > this.#maxAnswerBytes) {
          controller.abort(new GatewayError('upstream_invalid_response', "The model server's answer is larger than the gateway accepts (--max-upstream-event-size)."));
          return;
        }
        this.#whole.push(chunk);
    }
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    const view = this.#view as ControllerView;
    if (this.#mode === 'stream') {
      const events = (this.#translator as ChatStreamTranslator).end();
      if (events.length > 0) this.#inner.onResponseData?.(view, Buffer.from(events));
    } else if (this.#mode === 'whole' && this.#streamAsked) {
      // Some servers answer a streamed request whole (Ollama with tools, once): as a stream.
      const translated = translateCompletion(parseOrUndefined(Buffer.concat(this.#whole).toString('utf8')));
      this.#whole = [];
      if (translated === undefined) {
        const body = Buffer.from(unreadableAnswer());
        view.rawHeaders = ['content-type', 'application/json', 'content-length', String(body.length)];
        this.#inner.onResponseStart?.(view, 502, { 'content-type': 'application/json' }, 'Bad Gateway');
        this.#inner.onResponseData?.(view, body);
      } else {
        view.rawHeaders = keptHeaders(view.rawHeaders, 'text/event-stream; charset=utf-8');
        this.#inner.onResponseStart?.(view, this.#status, { 'content-type': 'text/event-stream; charset=utf-8' }, this.#message);
        this.#inner.onResponseData?.(view, Buffer.from(translated.events));
      }
    } else if (this.#mode === 'whole') {
      const translated = translatedAnswer(Buffer.concat(this.#whole).toString('utf8'));
      const status = translated === undefined ? 502 : this.#status;
      const body = Buffer.from(translated === undefined ? unreadableAnswer() : translated.body);
      this.#whole = [];
      this.#inner.onResponseStart?.(view, status, { 'content-type': 'application/json' }, translated === undefined ? 'Bad Gateway' : this.#message);
      this.#inner.onResponseData?.(view, body);
    }
    this.#inner.onResponseEnd?.(view, trailers);
  }

  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    if (!this.#started) tellUnreachable(this.#watch, error);
    this.#inner.onResponseError?.(this.#view ?? new ControllerView(controller), error);
  }
}
