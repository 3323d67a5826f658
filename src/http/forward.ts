// The forward step shared by every proxied route: filter the client's headers, dispatch
// to vLLM, and let the relay write the answer. A client that goes away aborts vLLM's work.
import { GatewayError } from '../errors.ts';
import { filterRequestHeaders } from '../upstream/hop-by-hop.ts';
import { ResponseSink, UpstreamRelay, type ResponseTransformer } from '../upstream/relay.ts';
import { UsageScanner } from '../upstream/usage-scanner.ts';
import type { GatewayDeps } from './gateway-deps.ts';
import type { RequestContext } from './request-context.ts';

export interface ForwardOptions {
  /** Bytes, or bytes in parts (written one after another, with the content-length the caller sets). */
  readonly body: Buffer | readonly Buffer[] | null;
  readonly transformer?: ResponseTransformer | undefined;
  /** Lowercase request header names not to forward. */
  readonly dropHeaders?: ReadonlySet<string> | undefined;
  /** Extra request headers (flat), e.g. content-type for a body the gateway rewrote. */
  readonly addHeaders?: readonly string[] | undefined;
}

/** A connection vLLM resets before answering (a pooled keep-alive it had just closed) is
 * retried once on a fresh one: the request never reached vLLM's handler. */
const RETRIES_ON_RESET = 1;

/** Routes whose answers carry token usage: counted in gateway_tokens_total and the tenant's TPM. */
const METERED_PATHS: ReadonlySet<string> = new Set(['/v1/responses', '/v1/chat/completions', '/v1/completions', '/v1/embeddings']);

/** The headers vLLM gets: the client's, filtered, with the upstream key and our Via. */
export function upstreamHeaders(ctx: RequestContext, deps: GatewayDeps, options: Pick<ForwardOptions, 'dropHeaders' | 'addHeaders'>): string[] {
  return upstreamHeadersOf(ctx.req.rawHeaders, ctx.requestId, ctx.requestIdFromClient, deps, options);
}

/** The same for any client request's head (a WebSocket's upgrade, say). */
export function upstreamHeadersOf(
  rawHeaders: readonly string[],
  requestId: string,
  requestIdFromClient: boolean,
  deps: GatewayDeps,
  options: Pick<ForwardOptions, 'dropHeaders' | 'addHeaders'>,
): string[] {
  const headers = filterRequestHeaders(rawHeaders, {
    apiKey: deps.config.upstream.apiKey,
    requestId,
    replaceRequestId: !requestIdFromClient,
    // With gateway keys on, the client's key is the gateway's, never vLLM's.
    replaceAuthorization: deps.apiKeys.enabled,
    drop: options.dropHeaders,
  });
  if (options.addHeaders !== undefined) for (const part of options.addHeaders) headers.push(part);
  // RFC 9110 §7.6.3: each intermediary adds itself; a request that comes back shows a loop.
  headers.push('via', `1.1 ${deps.config.upstream.via}`);
  return headers;
}

/** Answers 503 while `serve`'s vLLM is still loading; true when it did. */
export function refuseWhileStarting(ctx: RequestContext, deps: GatewayDeps): boolean {
  if (!deps.upstreamStatus.starting) return false;
  ctx.sendError(
    new GatewayError('upstream_starting', 'vLLM is still starting (loading its model); retry once GET /ready answers 200.', {
      headers: { 'retry-after': '5' },
    }),
  );
  return true;
}

/** A scanner for the usage of this request's answer, when its route is metered. */
export function usageScannerFor(ctx: RequestContext): UsageScanner | undefined {
  return ctx.method === 'POST' && METERED_PATHS.has(ctx.pathname) ? new UsageScanner() : undefined;
}

export function forward(ctx: RequestContext, deps: GatewayDeps, options: ForwardOptions): void {
  if (refuseWhileStarting(ctx, deps)) return;
  const headers = upstreamHeaders(ctx, deps, options);
  let retriesLeft = RETRIES_ON_RESET;
  const usage = usageScannerFor(ctx);
  const dispatch = (): void => {
    const relay = new UpstreamRelay(
      {
        sink: new ResponseSink(ctx.res, ctx.record),
        extraHeaders: ctx.extraHeaders,
        route: ctx.route,
        startedAt: ctx.startedAt,
        metrics: deps.metrics,
        log: () => ctx.log,
        maxEventBytes: deps.config.server.maxUpstreamEventBytes,
        record: ctx.record,
        usage,
        sendError: (error) => ctx.sendError(error),
        retryAfterReset: () => {
          if (retriesLeft === 0 || ctx.res.destroyed) return false;
          retriesLeft -= 1;
          ctx.log.debug('vLLM reset the connection before answering; retrying once');
          dispatch();
          return true;
        },
      },
      options.transformer,
    );
    // Bound, not arrows over this scope (see create-response.ts: an arrow here kept every
    // exchange's relay and body alive past the next scavenge).
    ctx.onClientGone = relay.clientClosed.bind(relay);
    ctx.onFinished = exchangeFinished.bind(undefined, relay, usage, deps, ctx.tenant);
    ctx.onShutdown = relay.failFromGateway.bind(relay);
    deps.upstream.dispatch({ method: ctx.method, path: ctx.url, headers, body: options.body }, relay);
  };
  dispatch();
}

/** The client's answer is over: the relay is told, the tokens counted. */
function exchangeFinished(relay: UpstreamRelay, usage: UsageScanner | undefined, deps: GatewayDeps, tenant: string): void {
  relay.responseClosed();
  if (usage !== undefined) accountUsage(deps, tenant, usage);
}

/**
 * The tokens of a finished exchange, as vLLM reported them. A client that left before the
 * usage arrived is not charged (vLLM stopped; what it spent is not known).
 */
export function accountUsage(deps: GatewayDeps, tenant: string, scanner: UsageScanner): void {
  const usage = scanner.usage;
  if (usage === undefined) return;
  deps.metrics.countTokens(scanner.model ?? 'unknown', tenant, usage);
  deps.rateLimiter.recordTokens(tenant, usage.input + usage.output);
}
