// Server-side compaction (context_management on a create request): when the plan says the
// conversation is over its threshold, vLLM summarises it (one non-streamed request, read
// whole) before the response runs; the response then shows the sealed compaction item
// first, and vLLM generates from the summary and the last user message on.
import { GatewayError } from '../errors.ts';
import type { CreatePlan } from '../responses/responses-service.ts';
import type { GatewayDeps, GatewayState } from './gateway-deps.ts';

const JSON_CONTENT_TYPE = ['content-type', 'application/json'];

/** The plan to run: `plan` itself, or, past its threshold, the plan after the summary.
 * `headers` are the request's upstream headers without a body's length. */
export async function compactIfOver(deps: GatewayDeps, state: GatewayState, tenant: string, plan: CreatePlan, headers: (extra: readonly string[]) => string[]): Promise<CreatePlan> {
  const compaction = plan.compaction;
  if (compaction === undefined) return plan;
  const answer = await deps.backend.exchange({ method: 'POST', path: '/v1/responses', headers: headers(JSON_CONTENT_TYPE), body: compaction.request });
  const upstream = answer.status >= 200 && answer.status < 300 ? responseObjectOf(answer.body) : undefined;
  if (upstream === undefined) {
    throw new GatewayError('compaction_failed', `The conversation crossed context_management's compact_threshold, and the model server could not summarise it (it answered ${answer.status}: ${answer.body.slice(0, 300)}).`);
  }
  const made = state.responses.serverCompaction(tenant, upstream);
  plan.facts.leadingItems?.push(made.item);
  const applied = compaction.apply(made.upstream);
  if ('agentRequest' in applied) return { ...plan, compaction: undefined, agent: plan.agent === undefined ? undefined : { ...plan.agent, request: applied.agentRequest } };
  return { ...plan, compaction: undefined, body: applied.body, addHeaders: applied.addHeaders };
}

/** vLLM's answer as a response object; undefined when it is not JSON describing an object. */
export function responseObjectOf(body: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
