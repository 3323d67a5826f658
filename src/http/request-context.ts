// Everything the gateway knows about one request while it is being served, and the
// helpers that answer it. Made once per request; what is not always needed (a child
// logger) is made on first use.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DEFAULT_TENANT } from '../config/tenants.ts';
import { GatewayError, renderErrorBody, statusOf } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { ExchangeRecord } from '../upstream/relay.ts';
import { normalizeTarget } from './request-target.ts';

/** A client's request id is used when it is short and printable; otherwise the gateway makes one. */
const USABLE_REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

export interface ScannedHeaders {
  requestId: string | undefined;
  origin: string | undefined;
  /** The Via headers, joined (undefined when none). */
  via: string | undefined;
}

/** One pass over the raw headers for the few the gateway itself reads. */
function scanHeaders(raw: readonly string[]): ScannedHeaders {
  const found: ScannedHeaders = { requestId: undefined, origin: undefined, via: undefined };
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 12 && found.requestId === undefined && name.toLowerCase() === 'x-request-id') {
      found.requestId = raw[i + 1];
    } else if (name.length === 6 && found.origin === undefined && name.toLowerCase() === 'origin') {
      found.origin = raw[i + 1];
    } else if (name.length === 3 && name.toLowerCase() === 'via') {
      found.via = found.via === undefined ? raw[i + 1] : `${found.via}, ${raw[i + 1] as string}`;
    }
  }
  return found;
}

export class RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly method: string;
  /** Path and query, normalized (request-target.ts): what is routed and what vLLM gets. */
  readonly url: string;
  readonly pathname: string;
  /** Why the request target cannot be served, when it cannot. */
  readonly badTarget: string | undefined;
  readonly startedAt: number;
  readonly requestId: string;
  /** False when the client sent no x-request-id or one the gateway would not use. */
  readonly requestIdFromClient: boolean;
  readonly origin: string | undefined;
  /** The request's Via headers, joined (a loop shows there: see UpstreamConfig.via). */
  readonly via: string | undefined;
  /** Headers added to every response: x-request-id and CORS. */
  readonly extraHeaders: string[];
  readonly record: ExchangeRecord = {
    upstreamStatus: undefined,
    streamed: false,
    bytesOut: 0,
    errorCode: undefined,
  };
  /** Metrics label: the route template, never the raw path. */
  route = 'unmatched';
  /** Whose stored data this request reaches (set by the key check). */
  tenant: string = DEFAULT_TENANT;
  /** Whether this request counts against --max-concurrent. */
  countedBusy = false;
  /** Its slot in the server's table of requests in flight; -1 when not in it. */
  inFlightSlot = -1;
  /** Set by the forward step: called when the client leaves before the response is done. */
  onClientGone: (() => void) | undefined;
  /** Set by the forward step: called once the response is finished or the socket closed. */
  onFinished: (() => void) | undefined;
  /** Set by the forward step: ends the exchange cleanly when shutdown's grace period is over. */
  onShutdown: ((error: GatewayError) => void) | undefined;
  readonly #baseLog: Logger;
  #log: Logger | undefined;

  constructor(req: IncomingMessage, res: ServerResponse, baseLog: Logger) {
    this.req = req;
    this.res = res;
    this.startedAt = performance.now();
    this.method = req.method ?? 'GET';
    const target = normalizeTarget(req.url ?? '/');
    if (target.ok) {
      this.pathname = target.pathname;
      this.url = target.search.length === 0 ? target.pathname : target.pathname + target.search;
    } else {
      this.pathname = '/';
      this.url = '/';
      this.badTarget = target.reason;
    }
    const scanned = scanHeaders(req.rawHeaders);
    const clientId = scanned.requestId;
    this.requestIdFromClient = clientId !== undefined && USABLE_REQUEST_ID.test(clientId);
    this.requestId = this.requestIdFromClient ? (clientId as string) : randomUUID();
    this.origin = scanned.origin;
    this.via = scanned.via;
    this.extraHeaders = ['x-request-id', this.requestId];
    this.#baseLog = baseLog;
  }

  /** A logger whose every line carries this request's id. */
  get log(): Logger {
    this.#log ??= this.#baseLog.child({ req_id: this.requestId });
    return this.#log;
  }

  sendJson(status: number, body: string, headers?: Readonly<Record<string, string>>): void {
    const res = this.res;
    if (res.headersSent || res.destroyed) return;
    const out = ['content-type', 'application/json', 'content-length', String(Buffer.byteLength(body))];
    if (headers !== undefined) for (const [name, value] of Object.entries(headers)) out.push(name, value);
    for (const part of this.extraHeaders) out.push(part);
    res.writeHead(status, out);
    this.record.bytesOut += Buffer.byteLength(body);
    res.end(body);
  }

  sendError(error: unknown): void {
    if (this.res.headersSent) {
      // Too late for a status: cutting the connection is the only honest signal left.
      this.res.destroy();
      return;
    }
    const status = statusOf(error);
    if (error instanceof GatewayError) this.record.errorCode = error.code;
    else {
      this.record.errorCode = 'internal_error';
      this.log.error({ err: error }, 'request failed inside the gateway');
    }
    this.sendJson(status, renderErrorBody(error), error instanceof GatewayError ? error.headers : undefined);
  }

  /** Sends a body-less answer (204, 304). */
  sendEmpty(status: number, headers: readonly string[]): void {
    const out = [...headers];
    for (const part of this.extraHeaders) out.push(part);
    this.res.writeHead(status, out);
    this.res.end();
  }
}
