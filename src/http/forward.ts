// The forward step shared by every proxied route: filter the client's headers, dispatch
// to vLLM, and let the relay write the answer. A client that goes away aborts vLLM's work.
import { filterRequestHeaders } from '../upstream/hop-by-hop.ts';
import { UpstreamRelay, type ResponseTransformer } from '../upstream/relay.ts';
import type { GatewayDeps } from './gateway-deps.ts';
import type { RequestContext } from './request-context.ts';

export interface ForwardOptions {
  readonly body: Buffer | string | null;
  readonly transformer?: ResponseTransformer | undefined;
  /** Lowercase request header names not to forward. */
  readonly dropHeaders?: ReadonlySet<string> | undefined;
  /** Extra request headers (flat), e.g. content-type for a body the gateway rewrote. */
  readonly addHeaders?: readonly string[] | undefined;
}

export function forward(ctx: RequestContext, deps: GatewayDeps, options: ForwardOptions): void {
  const headers = filterRequestHeaders(ctx.req.rawHeaders, {
    apiKey: deps.config.upstream.apiKey,
    requestId: ctx.requestId,
    replaceRequestId: !ctx.requestIdFromClient,
    drop: options.dropHeaders,
  });
  if (options.addHeaders !== undefined) for (const part of options.addHeaders) headers.push(part);
  const relay = new UpstreamRelay(
    {
      res: ctx.res,
      extraHeaders: ctx.extraHeaders,
      route: ctx.route,
      startedAt: ctx.startedAt,
      metrics: deps.metrics,
      log: ctx.log,
      maxEventBytes: deps.limits.maxUpstreamEventBytes,
      record: ctx.record,
      sendError: (error) => ctx.sendError(error),
    },
    options.transformer,
  );
  ctx.onClientGone = () => relay.clientClosed();
  ctx.onFinished = () => relay.responseClosed();
  deps.upstream.dispatch({ method: ctx.method, path: ctx.url, headers, body: options.body }, relay);
}
