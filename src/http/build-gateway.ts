// Builds a gateway from a Config: every long-lived object (upstream pool, metrics, CORS
// policy) is made here once, never per request.
import type { Config } from '../config/load-config.ts';
import { createLogger, type Logger } from '../observability/logger.ts';
import { GatewayMetrics } from '../observability/metrics.ts';
import { UpstreamClient } from '../upstream/upstream-client.ts';
import { CorsPolicy } from './cors.ts';
import type { GatewayDeps, MetricsSource } from './gateway-deps.ts';
import { createGateway, type Gateway } from './server.ts';

/** Largest SSE event or non-streamed body accepted from vLLM (a whole response with a
 * long reasoning trace is well under this). */
const MAX_UPSTREAM_EVENT_BYTES = 64 * 1024 * 1024;

export interface BuildOptions {
  readonly log?: Logger;
  readonly metrics?: GatewayMetrics;
  /** Overrides where /metrics reads from (a cluster aggregates all workers). */
  readonly metricsSource?: MetricsSource;
}

export interface BuiltGateway extends Gateway {
  readonly deps: GatewayDeps;
}

export function buildGateway(config: Config, options: BuildOptions = {}): BuiltGateway {
  const log = options.log ?? createLogger({ level: config.logLevel });
  const metrics = options.metrics ?? new GatewayMetrics();
  const deps: GatewayDeps = {
    config,
    log,
    metrics,
    metricsSource: options.metricsSource ?? {
      render: async () => ({ contentType: metrics.contentType(), body: await metrics.render() }),
    },
    upstream: new UpstreamClient(config.upstream),
    cors: new CorsPolicy(config.server.corsOrigins),
    limits: { maxUpstreamEventBytes: MAX_UPSTREAM_EVENT_BYTES },
  };
  return { ...createGateway(deps), deps };
}
