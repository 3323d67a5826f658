// The gateway's own endpoints: liveness, readiness and metrics.
import { GatewayError } from '../../errors.ts';
import type { GatewayDeps } from '../gateway-deps.ts';
import type { RequestContext } from '../request-context.ts';

const HEALTHY_BODY = JSON.stringify({ status: 'ok' });
const READY_BODY = JSON.stringify({ status: 'ready' });

/** GET /health: the process is up. Never touches vLLM. */
export function health(ctx: RequestContext): void {
  ctx.sendJson(200, HEALTHY_BODY);
}

/** GET /ready: 200 only while vLLM answers its /health with 200 (with several replicas, any one of them). */
export async function ready(ctx: RequestContext, deps: GatewayDeps): Promise<void> {
  if (deps.upstreamStatus.starting) {
    ctx.sendError(new GatewayError('upstream_starting', 'vLLM is starting: it is loading its model.'));
    return;
  }
  const result = await deps.upstream.checkHealth();
  if (result.ok) {
    ctx.sendJson(200, READY_BODY);
    return;
  }
  ctx.sendError(new GatewayError('upstream_not_ready', `vLLM is not ready: ${result.reason}.`));
}

/** GET /metrics: Prometheus text format. */
export async function metrics(ctx: RequestContext, deps: GatewayDeps): Promise<void> {
  const { contentType, body } = await deps.metricsSource.render();
  if (ctx.res.headersSent) return;
  const out = ['content-type', contentType, 'content-length', String(Buffer.byteLength(body))];
  for (const part of ctx.extraHeaders) out.push(part);
  ctx.res.writeHead(200, out);
  ctx.res.end(body);
}
