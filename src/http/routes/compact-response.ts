// POST /v1/responses/compact: the conversation summarised by the model (one vLLM request,
// read whole), answered as OpenAI's compacted response (responses/compaction.ts).
import { GatewayError } from '../../errors.ts';
import { readRequestBody } from '../decode-body.ts';
import { refuseWhileStarting, upstreamHeaders } from '../forward.ts';
import type { GatewayDeps, GatewayState } from '../gateway-deps.ts';
import type { RequestContext } from '../request-context.ts';

const DROP_HEADERS: ReadonlySet<string> = new Set(['accept-encoding', 'content-encoding', 'content-type']);
const ADD_HEADERS = ['content-type', 'application/json'];

export async function compactResponse(ctx: RequestContext, deps: GatewayDeps): Promise<void> {
  const state = deps.state as GatewayState;
  const rawBody = await readRequestBody(ctx.req, deps.config.server.maxBodyBytes);
  const plan = await state.responses.planCompact(ctx.tenant, rawBody);
  if (refuseWhileStarting(ctx, deps)) return;
  const headers = upstreamHeaders(ctx, deps, { dropHeaders: DROP_HEADERS, addHeaders: ADD_HEADERS });
  const answer = await deps.upstream.exchange({ method: 'POST', path: '/v1/responses', headers, body: plan.body });
  ctx.record.upstreamStatus = answer.status;
  // vLLM's own refusal (a context too long, a model it does not serve) passes through.
  if (answer.status < 200 || answer.status >= 300) {
    ctx.sendJson(answer.status, answer.body);
    return;
  }
  let upstream: unknown;
  try {
    upstream = JSON.parse(answer.body);
  } catch (error) {
    throw new GatewayError('upstream_invalid_response', 'The model server answered with something that is not JSON.', { cause: error });
  }
  if (typeof upstream !== 'object' || upstream === null || Array.isArray(upstream)) {
    throw new GatewayError('upstream_invalid_response', 'The model server answered with JSON that is not a response object.');
  }
  ctx.sendJson(200, state.responses.finishCompact(ctx.tenant, plan, upstream as Record<string, unknown>));
}
