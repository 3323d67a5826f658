// POST /v1/responses, as one pipeline: receive -> decide -> (state) -> forward -> relay.
import { forward } from '../forward.ts';
import type { GatewayDeps } from '../gateway-deps.ts';
import { readBody } from '../read-body.ts';
import type { RequestContext } from '../request-context.ts';

export async function createResponse(ctx: RequestContext, deps: GatewayDeps): Promise<void> {
  // receive: the whole body, bounded, before anything goes upstream
  const rawBody = await readBody(ctx.req, deps.config.server.maxBodyBytes);
  if (deps.state === undefined) {
    // --passthrough-raw: vLLM's bytes both ways, no state
    forward(ctx, deps, { body: rawBody });
    return;
  }
  // decide: a body that is not a valid request never reaches vLLM
  const request = await deps.state.responses.parseCreate(rawBody);
  // state: load the history, build the one stateless request vLLM gets, and the relay
  // that normalizes the answer and stores it before its last event
  const plan = await deps.state.responses.planCreate(ctx.tenant, request, () => ctx.log);
  // forward + relay
  forward(ctx, deps, plan);
}
