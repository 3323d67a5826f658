// POST /v1/responses/compact: the conversation summarised by the model (one vLLM request,
// read whole), answered as OpenAI's compacted response (responses/compaction.ts).
import { GatewayError } from '../../errors.ts';
import { readRequestBody } from '../decode-body.ts';
import { refuseWhileStarting, upstreamHeaders } from '../forward.ts';
import { responseObjectOf } from '../server-compaction.ts';
import type { GatewayDeps, GatewayState } from '../gateway-deps.ts';
import type { RequestContext } from '../request-context.ts';

export async function compactResponse(ctx: RequestContext, deps: GatewayDeps): Promise<void> {
  const state = deps.state as GatewayState;
  const rawBody = await readRequestBody(ctx.req, deps.config.server.maxBodyBytes);
  const plan = await state.responses.planCompact(ctx.tenant, rawBody);
  if (refuseWhileStarting(ctx, deps)) return;
  const headers = upstreamHeaders(ctx, deps, plan);
  const answer = await deps.backend.exchange({ method: 'POST', path: '/v1/responses', headers, body: plan.body });
  ctx.record.upstreamStatus = answer.status;
  // vLLM's own refusal (a context too long, a model it does not serve) passes through.
  if (answer.status < 200 || answer.status >= 300) {
    ctx.sendJson(answer.status, answer.body);
    return;
  }
  const upstream = responseObjectOf(answer.body);
  if (upstream === undefined) throw new GatewayError('upstream_invalid_response', 'The model server answered with something that is not a response object.');
  ctx.sendJson(200, state.responses.finishCompact(ctx.tenant, plan, upstream));
}
