// What the http layer is given to serve requests: built once at startup by the caller
// (the CLI, a test, the benchmark), so nothing here is constructed per request.
import type { ResponsesBackend } from '../backend/model-backend.ts';
import type { Config } from '../config/load-config.ts';
import type { RateLimiter } from '../limits/rate-limiter.ts';
import type { McpSessions } from '../mcp/mcp-sessions.ts';
import type { Logger } from '../observability/logger.ts';
import type { ConversationsService } from '../responses/conversations-service.ts';
import type { ResponsesService } from '../responses/responses-service.ts';
import type { BackgroundResponses } from '../runs/background-responses.ts';
import type { RunRegistry } from '../runs/run-registry.ts';
import type { GatewayMetrics } from '../observability/metrics.ts';
import type { UpstreamClient } from '../upstream/upstream-client.ts';
import type { UpstreamStatus } from '../upstream/upstream-status.ts';
import type { ApiKeyGuard } from './api-key-guard.ts';
import type { CorsPolicy } from './cors.ts';

export interface MetricsSource {
  render(): Promise<{ contentType: string; body: string }>;
}

/** The stateful services; absent with --passthrough-raw. */
export interface GatewayState {
  readonly responses: ResponsesService;
  readonly conversations: ConversationsService;
  /** This process's background (and detached) runs. */
  readonly runs: RunRegistry;
  /** Retrieve, stream, cancel and delete for runs of any process. */
  readonly background: BackgroundResponses;
  /** Sessions with MCP servers, reused across requests. */
  readonly tools: McpSessions;
}

export interface GatewayDeps {
  readonly config: Config;
  readonly log: Logger;
  readonly metrics: GatewayMetrics;
  /** Where GET /metrics reads from: this process, or all workers of a cluster. */
  readonly metricsSource: MetricsSource;
  /** The model server, raw: the proxied routes, health probes. */
  readonly upstream: UpstreamClient;
  /** The model server as Responses requests reach it (vLLM's API, or a chat server's, translated). */
  readonly backend: ResponsesBackend;
  /** serve: whether vLLM is still starting. */
  readonly upstreamStatus: UpstreamStatus;
  readonly cors: CorsPolicy;
  /** The gateway's own API keys (--api-keys); disabled when none are set. */
  readonly apiKeys: ApiKeyGuard;
  /** Per-tenant requests and tokens per minute (the cluster's primary keeps them in --workers mode). */
  readonly rateLimiter: RateLimiter;
  readonly state: GatewayState | undefined;
}
