// One WebSocket of the Responses API's WebSocket mode (GET /v1/responses, upgraded): the
// client sends `response.create` messages (a create request's fields; streaming is
// implied) and gets each response's events as JSON text messages, the same normalized
// events as over HTTP, errors included. Responses run one after another, in the order
// asked. The socket keeps what its last `store: false` responses held (their history,
// input and output, as vLLM got them), so that `previous_response_id` with only the new
// input continues one without storage; another socket does not know them (OpenAI's 404).
import { randomUUID } from 'node:crypto';
import type { WebSocket, RawData } from 'ws';
import { errorEventPayload, GatewayError } from '../../errors.ts';
import type { Logger } from '../../observability/logger.ts';
import { isReference, NOT_SENT_UPSTREAM, planInputItems, type Json } from '../../responses/items.ts';
import { normalizeResponse } from '../../responses/response-object.ts';
import type { CreateResponseRequest } from '../../responses/create-request.ts';
import type { CreatePlan } from '../../responses/responses-service.ts';
import type { Run } from '../../runs/run.ts';
import type { ExchangeRecord } from '../../upstream/relay.ts';
import { UsageScanner } from '../../upstream/usage-scanner.ts';
import { upstreamHeadersOf } from '../forward.ts';
import type { GatewayDeps, GatewayState } from '../gateway-deps.ts';
import { newRun } from '../response-run.ts';
import { compactIfOver } from '../server-compaction.ts';
import { SocketSink } from './socket-sink.ts';

const ZERO_USAGE = { input_tokens: 0, output_tokens: 0, total_tokens: 0 };

/** How many `store: false` responses a socket keeps to continue from (the last ones). */
const HELD_RESPONSES = 8;

/** What a streamed response's end needs to know of it. */
interface EndedResponse {
  /** Ends its count in flight (SocketHooks.begin). */
  readonly done: () => void;
  readonly request: CreateResponseRequest;
  readonly plan: CreatePlan;
  readonly record: ExchangeRecord;
  readonly requestId: string;
  readonly startedAt: number;
}

/** What the gateway around the socket provides: accounting, the access log, shutdown. */
export interface SocketHooks {
  /** A response starts: counted in flight until `done` is called; `stop` ends it at shutdown. */
  begin(stop: (error: GatewayError) => void): () => void;
  /** One access-log line per response. */
  logResponse(record: ExchangeRecord, requestId: string, startedAt: number, status: number): void;
  /** Admission of one response for the tenant (rate limits); a GatewayError refuses it. */
  admit(tenant: string): Promise<void>;
}

export class ResponsesSocket {
  readonly #ws: WebSocket;
  readonly #deps: GatewayDeps;
  readonly #state: GatewayState;
  readonly #tenant: string;
  readonly #rawHeaders: readonly string[];
  readonly #hooks: SocketHooks;
  readonly #log: Logger;
  /** Messages waiting for the response before them to end. */
  readonly #queue: RawData[] = [];
  #busy = false;
  #run: Run | undefined;
  #closed = false;
  /** Close with this code once the running response has ended (a shutdown). */
  #closeCode: number | undefined;
  /** Held histories of this socket's `store: false` responses, oldest first. */
  readonly #held = new Map<string, Buffer>();

  constructor(ws: WebSocket, deps: GatewayDeps, state: GatewayState, tenant: string, rawHeaders: readonly string[], hooks: SocketHooks) {
    this.#ws = ws;
    this.#deps = deps;
    this.#state = state;
    this.#tenant = tenant;
    this.#rawHeaders = stripSocketHeaders(rawHeaders);
    this.#hooks = hooks;
    this.#log = deps.log;
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        this.#sendError(new GatewayError('invalid_request', 'Send response.create events as JSON text messages.', { param: 'type' }));
        return;
      }
      this.#queue.push(data);
      this.#next();
    });
    ws.on('close', () => {
      this.#closed = true;
      this.#queue.length = 0;
      this.#run?.clientGone(undefined);
    });
  }

  /** Whether a response is running (a shutdown closes idle sockets at once). */
  get busy(): boolean {
    return this.#busy;
  }

  #next(): void {
    if (this.#busy || this.#closed) return;
    const data = this.#queue.shift();
    if (data === undefined) return;
    this.#busy = true;
    const startedAt = performance.now();
    this.#create(data, startedAt).catch((error: unknown) => {
      this.#sendError(error);
      const record: ExchangeRecord = { upstreamStatus: undefined, streamed: true, bytesOut: 0, errorCode: error instanceof GatewayError ? error.code : 'internal_error' };
      this.#hooks.logResponse(record, randomUUID(), startedAt, error instanceof GatewayError ? error.status : 500);
      this.#done();
    });
  }

  /** Closes the socket once its running response has ended (a shutdown). */
  closeWhenIdle(code: number): void {
    this.#closeCode = code;
    this.#queue.length = 0;
  }

  #done(): void {
    this.#busy = false;
    this.#run = undefined;
    if (this.#closeCode !== undefined) {
      this.#ws.close(this.#closeCode, 'server shutting down');
      return;
    }
    this.#next();
  }

  async #create(data: RawData, startedAt: number): Promise<void> {
    const requestId = randomUUID();
    const message = parseMessage(data);
    const state = this.#state;
    await this.#hooks.admit(this.#tenant);
    const request = await state.responses.parseCreate(Buffer.from(JSON.stringify({ ...message, stream: true })));
    if (request.background) {
      throw new GatewayError('invalid_request', 'Background responses are created over HTTP (POST /v1/responses); on a WebSocket, responses stream.', {
        param: 'background',
      });
    }
    const planned = await state.responses.planCreate(this.#tenant, request, () => this.#log, { local: (id) => this.#held.get(id) });
    if (this.#deps.upstreamStatus.starting) {
      throw new GatewayError('upstream_starting', 'vLLM is still starting (loading its model); retry once GET /ready answers 200.');
    }
    const record: ExchangeRecord = { upstreamStatus: undefined, streamed: true, bytesOut: 0, errorCode: undefined };
    if (request.body['generate'] === false) {
      // Nothing is generated: nothing needs compacting either.
      await this.#warmUp(planned, request.body['input'], record);
      this.#hooks.logResponse(record, requestId, startedAt, 200);
      this.#done();
      return;
    }
    const plan = await compactIfOver(this.#deps, state, this.#tenant, planned, (addHeaders) =>
      upstreamHeadersOf(this.#rawHeaders, requestId, false, this.#deps, { dropHeaders: planned.dropHeaders, addHeaders }),
    );
    const headers = upstreamHeadersOf(this.#rawHeaders, requestId, false, this.#deps, plan);
    const sink = new SocketSink(this.#ws, record);
    const run = newRun(this.#deps, state, {
      tenant: this.#tenant,
      plan,
      path: '/v1/responses',
      headers,
      record,
      extraHeaders: [],
      route: 'POST /v1/responses',
      startedAt,
      log: () => this.#log,
      keepEvents: false,
      usage: new UsageScanner(),
    });
    // Bound methods, not arrows over this scope: an arrow kept where it outlives the call
    // (the sink, the server's table of runs) kept the run and its response alive past the
    // scavenges after it, as it did on the HTTP path (bench/README.md, "Garbage").
    const done = this.#hooks.begin(run.failFromGateway.bind(run));
    sink.onEnd = this.#ended.bind(this, { done, request, plan, record, requestId, startedAt });
    this.#run = run;
    run.attachClient(sink, sink.sendError.bind(sink));
    run.start();
  }

  /** A streamed response's end: accounted for, held for a `store: false` continuation, logged. */
  #ended(response: EndedResponse): void {
    const { record } = response;
    response.done();
    if (!response.request.store) this.#hold(response.plan, response.request.body['input']);
    const refused = record.upstreamStatus !== undefined && record.upstreamStatus >= 300;
    this.#hooks.logResponse(record, response.requestId, response.startedAt, refused ? (record.upstreamStatus as number) : record.errorCode === undefined ? 200 : 502);
    this.#done();
  }

  /**
   * `generate: false`: the response is prepared, not generated. It is created and completed
   * with no output and no vLLM call, kept (stored, or held for `store: false`) so that the
   * next `response.create` continues it with `previous_response_id` and only its new input:
   * a client warms the socket up with its tools and instructions before the user speaks.
   */
  async #warmUp(plan: CreatePlan, input: unknown, record: ExchangeRecord): Promise<void> {
    const facts = plan.facts;
    const created = normalizeResponse({}, facts, { status: 'in_progress', output: [], usage: null });
    const response = normalizeResponse({}, facts, { status: 'completed', output: [], usage: ZERO_USAGE });
    const json = JSON.stringify(response);
    await plan.transformer.finish(response, json);
    const events = [
      { type: 'response.created', response: created, sequence_number: 0 },
      { type: 'response.completed', response, sequence_number: 1 },
    ];
    for (const event of events) {
      const message = JSON.stringify(event);
      record.bytesOut += Buffer.byteLength(message);
      if (this.#ws.readyState === this.#ws.OPEN) this.#ws.send(message);
    }
    if (!facts.store) this.#hold(plan, input);
  }

  /** Keeps a `store: false` response's whole context, to continue it on this socket. */
  #hold(plan: CreatePlan, input: unknown): void {
    const response = plan.transformer.stored?.response;
    if (response === undefined || response['status'] === 'failed') return;
    const parts: string[] = [];
    if (plan.historyUpstream.length > 0) parts.push(plan.historyUpstream.toString());
    // A request sent as it came (no history, nothing to rewrite) was not planned item by item.
    const inputItems = plan.pending.inputItems.length > 0 ? plan.pending.inputItems : planInputItems(input).filter((item) => !isReference(item));
    for (const item of inputItems) if ('upstream' in item && item.upstream !== NOT_SENT_UPSTREAM) parts.push(item.upstream);
    for (const item of Array.isArray(response['output']) ? (response['output'] as Json[]) : []) {
      const upstream = this.#state.responses.storedOutput(this.#tenant, item).upstream;
      if (upstream !== NOT_SENT_UPSTREAM) parts.push(upstream);
    }
    this.#held.set(String(response['id']), Buffer.from(parts.join(',')));
    while (this.#held.size > HELD_RESPONSES) this.#held.delete(this.#held.keys().next().value as string);
  }

  #sendError(error: unknown): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    const gatewayError = error instanceof GatewayError ? error : undefined;
    if (gatewayError === undefined) this.#log.error({ err: error }, 'a WebSocket response failed');
    const object = gatewayError === undefined ? { type: 'server_error', code: 'internal_error', message: 'The gateway failed to process the request.', param: null } : errorFields(gatewayError);
    this.#ws.send(JSON.stringify(errorEventPayload(object, undefined)));
  }
}

function errorFields(error: GatewayError): { type: string; code: string; message: string; param: string | null } {
  return { type: error.type, code: error.code, message: error.message, param: error.param };
}

/** A client message: a JSON object of type response.create; its other fields are the request. */
function parseMessage(data: RawData): Json {
  const text = Array.isArray(data) ? Buffer.concat(data).toString() : Buffer.from(data as ArrayBuffer).toString();
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    throw new GatewayError('invalid_json', 'The message is not valid JSON.');
  }
  if (typeof message !== 'object' || message === null || Array.isArray(message)) {
    throw new GatewayError('invalid_json', 'The message must be a JSON object.');
  }
  const { type, ...fields } = message as Json;
  if (type !== 'response.create') {
    throw new GatewayError('invalid_request', `Unknown message type '${String(type).slice(0, 64)}': send 'response.create'.`, { param: 'type' });
  }
  return fields;
}

/** The upgrade's head without what belongs to the WebSocket handshake (never for vLLM). */
function stripSocketHeaders(rawHeaders: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    if (name.startsWith('sec-websocket-') || name === 'upgrade' || name === 'connection') continue;
    kept.push(rawHeaders[i] as string, rawHeaders[i + 1] as string);
  }
  return kept;
}
