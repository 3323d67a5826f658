// A Run for a planned create request, wherever it came from (POST /v1/responses, or a
// response.create message on a WebSocket): its vLLM requests, its tool loop when it has
// MCP tools, and what the relay records. The caller attaches its delivery and starts it.
import type { LogSource } from '../observability/logger.ts';
import type { CreatePlan } from '../responses/responses-service.ts';
import { AgentLoop } from '../runs/agent-loop.ts';
import { Run } from '../runs/run.ts';
import type { ExchangeRecord } from '../upstream/relay.ts';
import type { UsageScanner } from '../upstream/usage-scanner.ts';
import { accountUsage } from './forward.ts';
import type { GatewayDeps, GatewayState } from './gateway-deps.ts';

export interface RunRequest {
  readonly tenant: string;
  readonly plan: CreatePlan;
  /** The path vLLM is sent (the client's, normally /v1/responses). */
  readonly path: string;
  /** vLLM's request headers (upstreamHeaders). */
  readonly headers: readonly string[];
  readonly record: ExchangeRecord;
  /** Headers the gateway adds to what the client gets (CORS, x-request-id). */
  readonly extraHeaders: readonly string[];
  readonly route: string;
  readonly startedAt: number;
  readonly log: LogSource;
  /** Keep every event (background runs, and those that may detach). */
  readonly keepEvents: boolean;
  readonly usage: UsageScanner | undefined;
}

export function newRun(deps: GatewayDeps, state: GatewayState, request: RunRequest): Run {
  const { plan, usage, tenant } = request;
  // A response with MCP tools: the gateway runs its tool loop (several vLLM calls).
  const agent =
    plan.agent === undefined
      ? undefined
      : new AgentLoop({ plan: plan.agent, transform: plan.transformer, sessions: state.tools, maxRounds: deps.config.tools.mcpMaxRounds });
  return new Run({
    plan,
    tenant,
    keepEvents: request.keepEvents,
    agent,
    dispatch: (relay, body) =>
      deps.backend.dispatch(
        {
          method: 'POST',
          path: request.path,
          headers: request.headers,
          body: body ?? plan.body,
          affinity: plan.affinity,
          // Several replicas: the one that answers is stored with the response (affinity).
          onReplica: deps.upstream.replicated ? (replica) => (plan.transformer.servedBy = replica) : undefined,
        },
        relay,
      ),
    relay: {
      extraHeaders: request.extraHeaders,
      route: request.route,
      startedAt: request.startedAt,
      metrics: deps.metrics,
      log: request.log,
      maxEventBytes: deps.config.server.maxUpstreamEventBytes,
      record: request.record,
      usage,
    },
    log: request.log,
    onEnded: (ended) => {
      state.runs.ended(ended);
      if (usage !== undefined) accountUsage(deps, tenant, usage);
    },
  });
}
