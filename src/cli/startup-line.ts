// What the "gateway listening" line says about the running gateway: where it listens,
// what it forwards to, where it stores and for how long, which keys guard what (where
// each key came from, never the key), the rate limits and MCP settings, if any.
import type { Config, KeyOrigin } from '../config/load-config.ts';
import { describeLocation } from '../config/db-url.ts';
import type { ApiKeyGuard } from '../http/api-key-guard.ts';

const ORIGIN: Record<Exclude<KeyOrigin, 'none'>, string> = {
  flag: 'a command-line flag',
  environment: 'the environment',
  'config-file': 'the --config file',
  'vllm-api-key': "vLLM's --api-key",
};

function clientKeys(config: Config, guard: ApiKeyGuard): string {
  const origin = config.security.apiKeysOrigin;
  if (!guard.enabled || origin === 'none') return 'none: /v1/* is open to anyone who reaches the port (see --api-keys)';
  const where = origin === 'environment' ? 'GATEWAY_API_KEYS' : origin === 'flag' ? '--api-keys' : ORIGIN[origin];
  const keys = guard.size === 1 ? '1 key' : `${guard.size} keys`;
  const tenants = guard.tenants === 1 ? '1 tenant' : `${guard.tenants} tenants`;
  return `${keys} from ${where} (${tenants}) guard /v1/*${config.security.metricsAuth ? ' and /metrics' : ''}`;
}

function upstreamKey(config: Config): string {
  const origin = config.upstream.apiKeyOrigin;
  if (origin === 'none') return "none (clients' Authorization goes to vLLM)";
  const where = origin === 'environment' ? 'OPENAI_API_KEY in the environment' : origin === 'flag' ? '--openai-api-key' : ORIGIN[origin];
  return `from ${where}`;
}

function retention(config: Config): string {
  const ms = config.state.ttlMs;
  if (ms === null) return 'forever (--store-ttl 0)';
  const days = ms / 86_400_000;
  return Number.isInteger(days) ? `${days} days (--store-ttl)` : `${ms / 1000} s (--store-ttl)`;
}

function rateLimits(config: Config, guard: ApiKeyGuard): string | undefined {
  const { requestsPerMinute, tokensPerMinute } = config.security.rateLimits;
  const own = guard.tenantsWithOwnLimits;
  if (requestsPerMinute === undefined && tokensPerMinute === undefined && own === 0) return undefined;
  const each = [
    requestsPerMinute === undefined ? undefined : `${requestsPerMinute} requests/min`,
    tokensPerMinute === undefined ? undefined : `${tokensPerMinute} tokens/min`,
  ].filter((part) => part !== undefined);
  const flags = each.length === 0 ? 'none by default' : `${each.join(' and ')} per tenant`;
  return own === 0 ? flags : `${flags}; ${own} ${own === 1 ? 'tenant sets its' : 'tenants set their'} own in the key entries`;
}

/** Where MCP tools may reach, when set otherwise than the default (any URL but link-local). */
function mcp(config: Config): string | undefined {
  const { mcpServersFile, mcpAllow } = config.tools;
  const allow = mcpAllow.includes('*') ? undefined : mcpAllow.length === 0 ? 'no client URL (--mcp-allow none)' : `client URLs matching ${mcpAllow.join(', ')}`;
  if (mcpServersFile === undefined) return allow;
  return `servers of ${mcpServersFile}${allow === undefined ? '' : `; ${allow}`}`;
}

export function startupFields(config: Config, guard: ApiKeyGuard, port: number): Record<string, unknown> {
  const limits = rateLimits(config, guard);
  const tools = mcp(config);
  return {
    url: `http://${config.server.host}:${port}`,
    upstream: config.upstream.origin + config.upstream.basePath,
    upstream_api:
      config.upstream.api === 'auto' && !config.output.passthroughRaw
        ? 'auto (asked at startup: the choice is logged)'
        : config.upstream.api === 'chat'
          ? 'chat (/v1/chat/completions, translated)'
          : 'responses',
    workers: config.server.workers,
    store: config.output.passthroughRaw ? 'none (--passthrough-raw)' : describeLocation(config.state.location),
    ...(config.output.passthroughRaw ? {} : { retention: retention(config) }),
    client_keys: clientKeys(config, guard),
    upstream_key: upstreamKey(config),
    // Only where it came from: the secret itself is never logged.
    state_secret:
      config.security.stateSecretOrigin === 'random'
        ? 'random for this start (set --state-secret to keep encrypted reasoning valid across restarts and gateways)'
        : `from ${config.security.stateSecretOrigin === 'flag' ? '--state-secret' : config.security.stateSecretOrigin === 'config-file' ? 'the --config file' : 'GATEWAY_STATE_SECRET'}`,
    ...(limits === undefined ? {} : { rate_limits: limits }),
    ...(tools === undefined ? {} : { mcp: tools }),
  };
}
