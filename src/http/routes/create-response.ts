// POST /v1/responses, as one pipeline: receive -> decide -> forward -> relay.
import { parseCreateResponseRequest } from '../../responses/create-request.ts';
import { forward } from '../forward.ts';
import type { GatewayDeps } from '../gateway-deps.ts';
import { readBody } from '../read-body.ts';
import type { RequestContext } from '../request-context.ts';

export async function createResponse(ctx: RequestContext, deps: GatewayDeps): Promise<void> {
  // receive: the whole body, bounded, before anything goes upstream
  const rawBody = await readBody(ctx.req, deps.config.server.maxBodyBytes);
  // decide: a body that is not a JSON object never reaches vLLM
  const request = parseCreateResponseRequest(rawBody);
  // forward + relay: the client's bytes, unchanged
  forward(ctx, deps, { body: request.rawBody });
}
