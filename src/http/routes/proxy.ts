// Every /v1/* route the gateway does not handle itself goes to vLLM as it came: method,
// path, query, filtered headers and body bytes.
import { readBody } from '../read-body.ts';
import { forward } from '../forward.ts';
import type { GatewayDeps } from '../gateway-deps.ts';
import type { RequestContext } from '../request-context.ts';

function hasBody(ctx: RequestContext): boolean {
  const headers = ctx.req.headers;
  return headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0');
}

export async function proxy(ctx: RequestContext, deps: GatewayDeps): Promise<void> {
  const body = hasBody(ctx) ? await readBody(ctx.req, deps.config.server.maxBodyBytes) : null;
  forward(ctx, deps, { body });
}
