// The gateway's HTTP server: node:http with a small router. Routes the gateway answers
// itself come first; every other /v1/* path is proxied to vLLM.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { GatewayError, renderErrorBody } from '../errors.ts';
import { rateLimitError, type Admission } from '../limits/rate-limiter.ts';
import { AccessLog } from '../observability/access-log.ts';
import type { GatewayDeps } from './gateway-deps.ts';
import { declaredLength, tooLargeError } from './read-body.ts';
import { WebSocketEndpoint } from './websocket/endpoint.ts';
import { WriteWatchdog } from './write-watchdog.ts';
import { SlotTable } from '../collections/slot-table.ts';
import { RequestContext } from './request-context.ts';
import { Router, type Params } from './router.ts';
import { createResponse } from './routes/create-response.ts';
import { health, metrics, ready } from './routes/gateway-endpoints.ts';
import { compactResponse } from './routes/compact-response.ts';
import {
  addConversationItems,
  createConversation,
  deleteConversation,
  deleteConversationItem,
  getConversation,
  getConversationItem,
  listConversationItems,
  updateConversation,
} from './routes/conversations.ts';
import { proxy } from './routes/proxy.ts';
import { cancelResponse, deleteResponse, getResponse, listInputItems } from './routes/stored-responses.ts';

type Handler = (ctx: RequestContext, deps: GatewayDeps, params: Params) => void | Promise<void>;

/** OpenAI paths that get their own metrics label; any other proxied path counts as /v1/*. */
const KNOWN_PROXY_ROUTES = new Set([
  '/v1/models',
  '/v1/chat/completions',
  '/v1/completions',
  '/v1/embeddings',
  '/v1/audio/transcriptions',
  '/v1/audio/translations',
  '/v1/rerank',
  '/v1/score',
  '/v1/tokenize',
  '/v1/detokenize',
]);

/** Methods of the APIs vLLM serves; anything else (TRACE, WebDAV's, ...) is the gateway's 405. */
const FORWARDED_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

/** How long a connection answered with an error keeps draining the client's bytes. */
const LINGER_MS = 2_000;
/** The metrics' route label of responses made on a WebSocket. */
const WEBSOCKET_ROUTE = 'websocket /v1/responses';

/** At the end of the grace period, how long ended streams get to flush their last events
 * (at most a quarter of the grace period). */
const SHUTDOWN_FLUSH_MS = 1_000;

export interface Gateway {
  readonly server: Server;
  listen(): Promise<AddressInfo>;
  /** Stops accepting, lets requests in flight finish within `graceMs`, then cuts the rest. */
  shutdown(graceMs: number): Promise<void>;
  /** Requests being served now. */
  inFlight(): number;
  /** Requests being served now, and how many of them are streams already under way. */
  load(): GatewayLoad;
}

export interface GatewayLoad {
  readonly requests: number;
  readonly streams: number;
}

function buildRouter(withState: boolean): Router<Handler> {
  const router = new Router<Handler>()
    .add('POST', '/v1/responses', createResponse)
    .add('GET', '/health', health)
    .add('HEAD', '/health', health)
    .add('GET', '/ready', ready)
    .add('HEAD', '/ready', ready)
    .add('GET', '/metrics', metrics);
  if (withState) {
    router
      .add('POST', '/v1/responses/compact', compactResponse)
      .add('GET', '/v1/responses/:id', getResponse)
      .add('DELETE', '/v1/responses/:id', deleteResponse)
      .add('POST', '/v1/responses/:id/cancel', cancelResponse)
      .add('GET', '/v1/responses/:id/input_items', listInputItems)
      .add('POST', '/v1/conversations', createConversation)
      .add('GET', '/v1/conversations/:id', getConversation)
      .add('POST', '/v1/conversations/:id', updateConversation)
      .add('DELETE', '/v1/conversations/:id', deleteConversation)
      .add('GET', '/v1/conversations/:id/items', listConversationItems)
      .add('POST', '/v1/conversations/:id/items', addConversationItems)
      .add('GET', '/v1/conversations/:id/items/:item_id', getConversationItem)
      .add('DELETE', '/v1/conversations/:id/items/:item_id', deleteConversationItem);
  }
  return router;
}

/** With state on, these paths are the gateway's: never forwarded to vLLM. */
function isStatePath(pathname: string): boolean {
  return pathname.startsWith('/v1/responses') || pathname.startsWith('/v1/conversations');
}

/** Answers malformed HTTP (which never becomes a request) in JSON, then closes. */
function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const [status, reason, gatewayError] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', new GatewayError('headers_too_large', 'The request headers are too large.')]
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', new GatewayError('request_timeout', 'The request was not received in time.')]
        : [400, 'Bad Request', new GatewayError('invalid_request', 'The request is not valid HTTP/1.1.', { status: 400 })];
  answerOnSocket(socket, status, reason, gatewayError, []);
}

/** Writes one JSON error answer on a raw socket, then closes it lingering (see below). */
function answerOnSocket(socket: Socket, status: number, reason: string, error: GatewayError, extraHeaderLines: readonly string[]): void {
  const body = renderErrorBody(error);
  const extra = extraHeaderLines.map((line) => `${line}\r\n`).join('');
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\n${extra}` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
  // Lingering close (as nginx does): closing while the client's bytes are still
  // unread makes the kernel send RST, and the client then loses the answer it was
  // sent. Read and discard what keeps coming, for a bounded time.
  socket.on('data', discard);
  socket.resume();
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}

/** Whether a Via header value lists this gateway (`1.1 rg-…`, among other entries). */
function isOwnVia(via: string, own: string): boolean {
  const at = via.indexOf(own);
  if (at === -1) return false;
  const after = via.charCodeAt(at + own.length);
  return Number.isNaN(after) || after === 0x2c /* , */ || after === 0x20 /* space: a comment follows */;
}

function discard(): void {}

/** Resolves after `ms`, without keeping the process alive for it. */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)).unref());
}

export function createGateway(deps: GatewayDeps): Gateway {
  const router = buildRouter(deps.state !== undefined);
  const log = deps.log;
  const accessLog = new AccessLog(log, { enabled: deps.config.accessLog });
  let inFlight = 0;
  /** Requests counted against --max-concurrent: all but the gateway's own endpoints. */
  let busy = 0;
  deps.metrics.readInFlightFrom(() => busy);
  const maxConcurrent = deps.config.server.maxConcurrent;
  const ownVia = deps.config.upstream.via;
  const rateLimiter = deps.rateLimiter;
  // Not a Set: see SlotTable (a Set of requests kept every request alive past its scavenge).
  const active = new SlotTable<RequestContext>();
  let draining = false;
  let drained: (() => void) | undefined;

  const watchdog = new WriteWatchdog(
    deps.config.server.writeTimeoutMs,
    active,
    (ctx) => {
      ctx.record.errorCode = 'client_write_timeout';
      deps.metrics.countClientWriteTimeout();
      ctx.log.warn(
        { timeout_s: deps.config.server.writeTimeoutMs / 1000 },
        'the client stopped reading: answer ended, generation aborted (--client-write-timeout)',
      );
      ctx.res.destroy();
    },
  );

  const finish = (ctx: RequestContext): void => {
    inFlight -= 1;
    active.take(ctx.inFlightSlot);
    if (ctx.countedBusy) busy -= 1;
    const res = ctx.res;
    if (!res.writableFinished) ctx.onClientGone?.();
    ctx.onFinished?.();
    // 499: the client closed the connection before a response was sent (nginx's code).
    const status = res.headersSent ? res.statusCode : 499;
    const durationMs = performance.now() - ctx.startedAt;
    deps.metrics.observeRequest(ctx.route, ctx.method, status, durationMs / 1000);
    const record = ctx.record;
    accessLog.write({
      requestId: ctx.requestId,
      method: ctx.method,
      path: ctx.pathname,
      status,
      durationMs,
      bytesOut: record.bytesOut,
      streamed: record.streamed,
      upstreamStatus: record.upstreamStatus,
      errorCode: record.errorCode,
    });
    if (draining && inFlight === 0) drained?.();
  };

  const run = (ctx: RequestContext, handler: Handler, params: Params): void => {
    try {
      const result = handler(ctx, deps, params);
      if (result instanceof Promise) result.catch((error: unknown) => ctx.sendError(error));
    } catch (error) {
      ctx.sendError(error);
    }
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const ctx = new RequestContext(req, res, log);
    inFlight += 1;
    ctx.inFlightSlot = active.add(ctx);
    // While draining, answer and close: keep-alive connections must not carry new work.
    if (draining) ctx.extraHeaders.push('connection', 'close');
    res.on('close', () => finish(ctx));

    const method = ctx.method;
    if (method === 'OPTIONS' && ctx.origin !== undefined) {
      const requestedMethod = req.headers['access-control-request-method'];
      if (requestedMethod !== undefined) {
        ctx.route = 'preflight';
        const headers = deps.cors.preflightHeaders(ctx.origin, req.headers['access-control-request-headers']);
        ctx.sendEmpty(204, headers);
        return;
      }
    }
    deps.cors.addResponseHeaders(ctx.origin, ctx.extraHeaders);
    if (ctx.via !== undefined && isOwnVia(ctx.via, ownVia)) {
      ctx.route = 'loop';
      ctx.sendError(
        new GatewayError(
          'loop_detected',
          'This request came back to the gateway that forwarded it: its --llm-api-base points at itself, or at a gateway that points back.',
        ),
      );
      return;
    }
    if (ctx.badTarget !== undefined) {
      ctx.route = 'rejected';
      ctx.sendError(new GatewayError('invalid_request', ctx.badTarget, { status: 400 }));
      return;
    }

    const isApi = ctx.pathname.startsWith('/v1/');
    if (deps.apiKeys.enabled && (isApi || (deps.config.security.metricsAuth && ctx.pathname === '/metrics'))) {
      try {
        ctx.tenant = deps.apiKeys.check(req.rawHeaders);
      } catch (error) {
        ctx.route = 'unauthorized';
        ctx.sendError(error);
        return;
      }
    }
    if (isApi && rateLimiter.isLimited(ctx.tenant)) {
      const admission = rateLimiter.admit(ctx.tenant);
      if (admission instanceof Promise) {
        admission.then(
          (answer) => {
            // The client may have left while the cluster's primary answered.
            if (!ctx.res.destroyed) afterAdmission(ctx, answer);
          },
          (error: unknown) => ctx.sendError(error),
        );
      } else {
        afterAdmission(ctx, admission);
      }
      return;
    }
    serve(ctx, isApi);
  };

  /** Every answer to a limited tenant carries its limits; a refusal is a 429. */
  const afterAdmission = (ctx: RequestContext, admission: Admission): void => {
    for (const part of admission.headers) ctx.extraHeaders.push(part);
    if (admission.refusal !== undefined) {
      ctx.route = 'rate_limited';
      ctx.sendError(rateLimitError(ctx.tenant, admission.refusal));
      return;
    }
    serve(ctx, true);
  };

  /** From here on the request is admitted: routed to its handler or forwarded to vLLM. */
  const serve = (ctx: RequestContext, isApi: boolean): void => {
    const method = ctx.method;
    if (isApi) {
      if (busy >= maxConcurrent) {
        ctx.route = 'overloaded';
        ctx.sendError(
          new GatewayError('too_many_requests', `The gateway is serving its limit of ${maxConcurrent} requests; retry shortly.`, {
            headers: { 'retry-after': '1' },
          }),
        );
        return;
      }
      busy += 1;
      ctx.countedBusy = true;
    }

    const lookup = router.find(method, ctx.pathname);
    if (lookup.kind === 'match') {
      ctx.route = lookup.match.label;
      run(ctx, lookup.match.handler, lookup.match.params);
      return;
    }
    if (ctx.pathname.startsWith('/v1/') && !(deps.state !== undefined && isStatePath(ctx.pathname))) {
      if (!FORWARDED_METHODS.has(method)) {
        ctx.route = 'method_not_allowed';
        ctx.sendError(
          new GatewayError('method_not_allowed', `Method ${method} is not allowed on ${ctx.pathname}.`, {
            headers: { allow: [...FORWARDED_METHODS].join(', ') },
          }),
        );
        return;
      }
      ctx.route = KNOWN_PROXY_ROUTES.has(ctx.pathname) ? ctx.pathname : '/v1/*';
      run(ctx, proxy, []);
      return;
    }
    if (lookup.kind === 'method-not-allowed') {
      ctx.route = 'method_not_allowed';
      ctx.sendError(
        new GatewayError('method_not_allowed', `Method ${method} is not allowed on ${ctx.pathname}.`, {
          headers: { allow: lookup.allow.join(', ') },
        }),
      );
      return;
    }
    ctx.sendError(new GatewayError('not_found', `Invalid URL (${method} ${ctx.pathname}).`));
  };

  const { maxHeaderBytes, headersTimeoutMs, requestTimeoutMs } = deps.config.server;
  const server = createServer(
    {
      noDelay: true,
      maxHeaderSize: maxHeaderBytes,
      // Slow clients (slowloris): the head, then the whole request, must arrive in time.
      headersTimeout: headersTimeoutMs,
      requestTimeout: requestTimeoutMs,
      // How often those timeouts are checked; node's default (30 s) is too coarse for them.
      connectionsCheckingInterval: Math.min(1_000, headersTimeoutMs),
    },
    onRequest,
  );
  // Expect: 100-continue is answered with 413 when the declared body is too large, so
  // the client never sends it.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const length = declaredLength(req);
    if (length !== undefined && length > deps.config.server.maxBodyBytes) {
      const ctx = new RequestContext(req, res, log);
      inFlight += 1;
      ctx.route = 'rejected';
      ctx.extraHeaders.push('connection', 'close');
      res.on('close', () => finish(ctx));
      ctx.sendError(tooLargeError(deps.config.server.maxBodyBytes));
      return;
    }
    res.writeContinue();
    onRequest(req, res);
  });
  // Expect with anything but 100-continue: 417, in JSON (node's own answer is plain text).
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    const ctx = new RequestContext(req, res, log);
    inFlight += 1;
    ctx.route = 'rejected';
    ctx.extraHeaders.push('connection', 'close');
    res.on('close', () => finish(ctx));
    ctx.sendError(new GatewayError('expectation_failed', 'Only "Expect: 100-continue" is supported.'));
  });
  server.on('clientError', answerClientError);
  // The Responses API's WebSocket mode (GET /v1/responses, upgraded): each response on a
  // socket counts in flight, is logged and admitted as a POST would be.
  const socketRuns = new SlotTable<(error: GatewayError) => void>();
  const websockets = new WebSocketEndpoint(deps, {
    begin(stop) {
      inFlight += 1;
      const slot = socketRuns.add(stop);
      return () => {
        socketRuns.take(slot);
        inFlight -= 1;
        if (draining && inFlight === 0) drained?.();
      };
    },
    logResponse(record, requestId, startedAt, status) {
      const durationMs = performance.now() - startedAt;
      deps.metrics.observeRequest(WEBSOCKET_ROUTE, 'GET', status, durationMs / 1000);
      accessLog.write({
        requestId,
        method: 'WS',
        path: '/v1/responses',
        status,
        durationMs,
        bytesOut: record.bytesOut,
        streamed: true,
        upstreamStatus: record.upstreamStatus,
        errorCode: record.errorCode,
      });
    },
    async admit(tenant) {
      if (!rateLimiter.isLimited(tenant)) return;
      const admission = await rateLimiter.admit(tenant);
      if (admission.refusal !== undefined) throw rateLimitError(tenant, admission.refusal);
    },
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => websockets.upgrade(req, socket, head));
  // CONNECT (a tunnel request) never becomes a 'request': node closes the connection
  // without a word unless someone answers. The gateway is no tunnel: 405, in JSON.
  server.on('connect', (_req: IncomingMessage, socket: Socket) => {
    answerOnSocket(
      socket,
      405,
      'Method Not Allowed',
      new GatewayError('method_not_allowed', 'Method CONNECT is not allowed: the gateway is not a tunnelling proxy.'),
      ['allow: GET, POST, DELETE, OPTIONS'],
    );
  });

  return {
    server,
    inFlight: () => inFlight,
    load() {
      let streams = 0;
      for (const ctx of active.values()) if (ctx.record.streamed) streams += 1;
      return { requests: inFlight, streams };
    },
    listen() {
      const { host, port } = deps.config.server;
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    async shutdown(graceMs) {
      if (!draining) {
        draining = true;
        server.close();
        server.closeIdleConnections();
        websockets.drain();
      }
      if (inFlight > 0) {
        // The last part of the grace period is for streams to end properly, not cut.
        const flushMs = Math.min(SHUTDOWN_FLUSH_MS, graceMs / 4);
        const allDone = new Promise<void>((resolve) => {
          drained = resolve;
        });
        const expired = await Promise.race([allDone.then(() => false), delay(graceMs - flushMs).then(() => true)]);
        if (expired) {
          log.warn({ in_flight: inFlight }, 'shutdown grace period over; ending what is still running');
          // Streams end as OpenAI's do (error event, response.failed, stored as failed)
          // rather than being cut mid-event; a moment for that, then every socket closes.
          const ending = new GatewayError('server_shutting_down', 'The gateway is shutting down.');
          for (const ctx of active.values()) ctx.onShutdown?.(ending);
          for (const stop of socketRuns.values()) stop(ending);
          await Promise.race([allDone, delay(flushMs)]);
          websockets.close();
          server.closeAllConnections();
          watchdog.stop();
          await deps.upstream.destroy();
          return;
        }
      }
      websockets.close();
      server.closeAllConnections();
      watchdog.stop();
      await deps.upstream.close();
    },
  };
}
