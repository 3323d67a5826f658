// Assembles a gateway from a Config: every long-lived object (upstream pool, store,
// services, rate limiter, metrics, CORS policy) is made here once, never per request;
// the store's migrations run before the port is listened on, and the expiry sweeper runs
// while it is. The http layer gets what it serves with (GatewayDeps) and opens nothing.
import { ModelBackend } from '../backend/model-backend.ts';
import type { Config } from '../config/load-config.ts';
import { GatewayError } from '../errors.ts';
import { LocalRateLimiter, type RateLimiter } from '../limits/rate-limiter.ts';
import { createLogger, type Logger } from '../observability/logger.ts';
import { GatewayMetrics } from '../observability/metrics.ts';
import { McpSessions } from '../mcp/mcp-sessions.ts';
import { loadMcpServers, McpServersFileError } from '../mcp/operator-servers.ts';
import { McpServerPolicy } from '../mcp/server-policy.ts';
import { parseApprovalRule, parseToolFilter } from '../responses/mcp-declarations.ts';
import { ConversationsService } from '../responses/conversations-service.ts';
import { StateSeal } from '../responses/state-seal.ts';
import { ResponsesService } from '../responses/responses-service.ts';
import { BackgroundResponses } from '../runs/background-responses.ts';
import { RunRegistry } from '../runs/run-registry.ts';
import { gatewayVersion } from './version.ts';
import { ExpirySweeper } from '../store/expiry-sweeper.ts';
import { openStore } from '../store/open-store.ts';
import type { Store } from '../store/store.ts';
import { UpstreamClient } from '../upstream/upstream-client.ts';
import { UpstreamStatus } from '../upstream/upstream-status.ts';
import { ApiKeyGuard } from '../http/api-key-guard.ts';
import { CorsPolicy } from '../http/cors.ts';
import type { GatewayDeps, GatewayState, MetricsSource } from '../http/gateway-deps.ts';
import { createGateway, type Gateway } from '../http/server.ts';

/** At the end of shutdown, how long the store gets to close its connections. */
const STORE_CLOSE_MS = 1_000;
/** How often expired responses are swept, at most. */
const MAX_EXPIRY_INTERVAL_MS = 60_000;

export interface BuildOptions {
  readonly log?: Logger;
  readonly metrics?: GatewayMetrics;
  /** Overrides where /metrics reads from (a cluster aggregates all workers). */
  readonly metricsSource?: MetricsSource;
  /** A store to use instead of opening the one --db-url names. */
  readonly store?: Store;
  /** The key guard, when the caller loaded it already (to report a bad key file itself). */
  readonly apiKeys?: ApiKeyGuard;
  /** serve: vLLM is still starting (UpstreamStatus.markReady() once it is healthy). */
  readonly upstreamStatus?: UpstreamStatus;
  /** The rate limiter, when not this process's own (a cluster's worker asks the primary). */
  readonly rateLimiter?: RateLimiter;
}

export interface BuiltGateway extends Gateway {
  readonly deps: GatewayDeps;
  /** The store behind state; undefined with --passthrough-raw. */
  readonly store: Store | undefined;
}

export function buildGateway(config: Config, options: BuildOptions = {}): BuiltGateway {
  const log = options.log ?? createLogger({ level: config.logLevel, format: config.logFormat });
  const metrics = options.metrics ?? new GatewayMetrics();
  const store = config.output.passthroughRaw
    ? undefined
    : (options.store ??
      openStore(config.state.location, {
        poolSize: config.state.poolSize,
        queryTimeoutMs: config.state.queryTimeoutMs,
        retentionMs: config.state.ttlMs,
        contextCacheBytes: config.state.contextCacheBytes,
      }));
  const state = store === undefined ? undefined : buildState(config, store, log);
  const apiKeys = options.apiKeys ?? new ApiKeyGuard(config.security.apiKeys, config.security.rateLimits);
  const upstream = new UpstreamClient(config.upstream);
  if (upstream.replicated) {
    metrics.watchReplicas(() => upstream.states(), () => upstream.affinity);
    upstream.startHealthChecks(log);
  }
  const backend = new ModelBackend({
    upstream,
    // --passthrough-raw relays /v1/responses as it is: there is nothing to choose.
    setting: config.output.passthroughRaw ? 'responses' : config.upstream.api,
    log,
    maxAnswerBytes: config.server.maxUpstreamEventBytes,
  });
  const deps: GatewayDeps = {
    config,
    log,
    metrics,
    metricsSource: options.metricsSource ?? {
      render: async () => ({ contentType: metrics.contentType(), body: await metrics.render() }),
    },
    upstream,
    backend,
    upstreamStatus: options.upstreamStatus ?? new UpstreamStatus(false),
    cors: new CorsPolicy(config.server.corsOrigins),
    apiKeys,
    rateLimiter: options.rateLimiter ?? new LocalRateLimiter((tenant) => apiKeys.limitsOf(tenant)),
    state,
  };
  const gateway = createGateway(deps);
  const ttlMs = config.state.ttlMs;
  const sweeper =
    store === undefined || ttlMs === null
      ? undefined
      : new ExpirySweeper(store, {
          intervalMs: Math.min(ttlMs, MAX_EXPIRY_INTERVAL_MS),
          onSwept: (removed) => log.info({ removed }, 'expired stored responses'),
          onError: (error) => log.warn({ err: error }, 'expiring stored responses failed'),
        });

  return {
    ...gateway,
    deps,
    store,
    async listen() {
      // The schema is ready before the first request; several processes may race here.
      await store?.migrate();
      // Runs a dead process left are ended before new ones start.
      await state?.runs.open();
      sweeper?.start();
      const address = await gateway.listen();
      // --upstream-api auto: which API the server has is asked now, not waited for (the
      // server may start later); requests wait for the answer in flight.
      void backend.start();
      return address;
    },
    async shutdown(graceMs) {
      // Everything ends within graceMs: requests and background runs get most of it, the
      // store the rest.
      const storeCloseMs = Math.min(STORE_CLOSE_MS, graceMs / 4);
      sweeper?.stop();
      await Promise.all([gateway.shutdown(graceMs - storeCloseMs), state?.runs.shutdown(graceMs - storeCloseMs)]);
      await Promise.all([store?.close(storeCloseMs), state?.responses.close(), state?.tools.close()]);
    },
  };
}

/** The MCP servers clients may reach: the operator's file (its filters checked now, so a
 * mistake stops the start rather than every request) and --mcp-allow. */
function mcpPolicy(config: Config): McpServerPolicy {
  const path = config.tools.mcpServersFile;
  const servers = loadMcpServers(path, process.env);
  for (const [label, server] of servers) {
    try {
      if (server.allowedTools !== undefined) parseToolFilter(server.allowedTools, `${label}.allowed_tools`, true);
      if (server.requireApproval !== undefined) parseApprovalRule(server.requireApproval, `${label}.require_approval`);
    } catch (error) {
      const where = error instanceof GatewayError && error.param !== null ? `${error.param}: ` : '';
      throw new McpServersFileError(`--mcp-servers ${String(path)}: ${where}${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return new McpServerPolicy(servers, config.tools.mcpAllow);
}

function buildState(config: Config, store: Store, log: Logger): GatewayState {
  const policy = mcpPolicy(config);
  const responses = new ResponsesService({
    store,
    keepRawFields: config.output.keepRawFields,
    limits: { maxJsonDepth: config.server.maxJsonDepth, maxInputItems: config.server.maxInputItems },
    mcp: policy,
    unsupportedTools: config.tools.unsupportedTools,
    seal: new StateSeal(config.security.stateSecret),
  });
  const tools = new McpSessions({
    policy,
    callTimeoutMs: config.tools.mcpCallTimeoutMs,
    idleTimeoutMs: config.tools.mcpIdleTimeoutMs,
    maxOutputBytes: config.tools.mcpMaxOutputBytes,
    clientVersion: gatewayVersion(),
    log: () => log,
  });
  const runs = new RunRegistry({
    store,
    responses,
    log,
    maxBackgroundRuns: config.state.maxBackgroundRuns,
    eventTtlMs: config.state.backgroundEventTtlMs,
  });
  return {
    responses,
    conversations: new ConversationsService(store),
    runs,
    background: new BackgroundResponses(store, runs, responses),
    tools,
  };
}
