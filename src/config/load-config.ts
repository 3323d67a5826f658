// argv + environment -> one validated, frozen Config. No I/O: the caller passes argv and
// env, so tests drive it directly. A flag beats its environment variable.
import { randomBytes } from 'node:crypto';
import type { FLAG_SPECS} from './flags.ts';
import { FLAGS_BY_NAME, type FlagName, type FlagSpec } from './flags.ts';
import type { StoreLocation } from './db-url.ts';
import type { RateLimits } from './rate-limits.ts';
import { unknownFlagMessage } from './suggest-flag.ts';
import { DEFAULT_TENANT } from './tenants.ts';
import { parseConfigFile } from './config-file.ts';
import { ConfigError } from './config-error.ts';
import { parseKind, type KindValue, type LogFormat, type LogLevel, type ParsedUrl } from './values.ts';

/** The words a boolean flag takes as its value when they follow it (values.ts reads them). */
const BOOLEAN_WORDS = new Set(['true', 'false', 'on', 'off', 'yes', 'no', '1', '0']);

export { ConfigError } from './config-error.ts';

/** Where a key came from, for the startup line (never the key itself). */
export type KeyOrigin = 'flag' | 'environment' | 'config-file' | 'vllm-api-key' | 'none';

export interface UpstreamConfig {
  /** This gateway's name in the Via header of what it forwards (RFC 9110 §7.6.3): a
   * request that comes back with it is a loop. One per gateway, its workers included. */
  readonly via: string;
  /** The first replica's (the only one's, for most gateways, and serve's vLLM). */
  readonly origin: string;
  readonly basePath: string;
  /** Every replica of the model, in the order given (--llm-api-base). */
  readonly replicas: readonly ParsedUrl[];
  /** How often each replica's /health is asked (with more than one). */
  readonly healthIntervalMs: number;
  /** How long a recovered replica's share of new requests takes to grow back. */
  readonly slowStartMs: number;
  /** Continuations go to the replica that served their chain (vLLM's prefix cache). */
  readonly affinity: boolean;
  readonly apiKey: string | undefined;
  readonly apiKeyOrigin: KeyOrigin;
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** Which API the model server is reached through (auto: probed). */
  readonly api: UpstreamApiSetting;
}

/** --upstream-api: vLLM's Responses API, any server's Chat Completions, or probe. */
export type UpstreamApiSetting = 'responses' | 'chat' | 'auto';

export interface ServerConfig {
  readonly host: string;
  readonly port: number;
  readonly workers: number;
  readonly shutdownTimeoutMs: number;
  /** Allowed CORS origins; ['*'] allows any. */
  readonly corsOrigins: readonly string[];
  readonly maxBodyBytes: number;
  readonly maxHeaderBytes: number;
  readonly maxConcurrent: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  /** How long an answer may sit unread before it is ended. */
  readonly writeTimeoutMs: number;
  readonly maxJsonDepth: number;
  /** Most context items of one response (input and history). */
  readonly maxInputItems: number;
  readonly maxUpstreamEventBytes: number;
  /** A WebSocket without a message (and no response running) this long is closed. */
  readonly websocketIdleTimeoutMs: number;
}

/** Where the gateway's own API keys come from: none, a list, or a file re-read on SIGHUP. */
export type ApiKeySource =
  | { readonly kind: 'none' }
  /** Entries `<key>` or `<key> <tenant>`. */
  | { readonly kind: 'list'; readonly keys: readonly string[] }
  | { readonly kind: 'file'; readonly path: string };

export interface SecurityConfig {
  readonly apiKeys: ApiKeySource;
  /** serve: vLLM's --api-key guards the gateway too when --api-keys is not given. */
  readonly apiKeysOrigin: KeyOrigin;
  readonly metricsAuth: boolean;
  /** --state-secret, or a random one for this start (the primary hands it to its workers). */
  readonly stateSecret: string;
  readonly stateSecretOrigin: 'flag' | 'environment' | 'config-file' | 'random';
  /** --rate-limit-rpm/-tpm: every tenant's limits unless its key entry sets its own. */
  readonly rateLimits: RateLimits;
}

export interface ServeConfig {
  readonly model: string;
  readonly vllmBin: string;
  /** Everything after `serve <model>` that the gateway does not own, in order. */
  readonly vllmArgs: readonly string[];
  readonly port: number;
  readonly readyIntervalMs: number;
  readonly readyTimeoutMs: number;
  readonly stopTimeoutMs: number;
}

export interface StateConfig {
  readonly location: StoreLocation;
  readonly poolSize: number;
  /** Deadline of one database query (PostgreSQL) or write-lock wait (SQLite). */
  readonly queryTimeoutMs: number;
  /** How long stored responses live; null keeps them. */
  readonly ttlMs: number | null;
  /** Bytes of response contexts kept per process for continuations (0: none). */
  readonly contextCacheBytes: number;
  /** How long an ended background response's event log is kept; null keeps it. */
  readonly backgroundEventTtlMs: number | null;
  /** Background responses run at once by this process; more wait in `queued`. */
  readonly maxBackgroundRuns: number;
  /** A streamed stored response whose client left goes on in the background. */
  readonly detachOnDisconnect: boolean;
}

export interface OutputConfig {
  /** Relay /v1/responses byte for byte, without normalization or state. */
  readonly passthroughRaw: boolean;
  /** Keep vLLM's private fields in normalized responses. */
  readonly keepRawFields: boolean;
}

export interface ToolsConfig {
  /** --mcp-servers: the operator's servers file, read when the gateway is assembled. */
  readonly mcpServersFile: string | undefined;
  /** URL patterns clients may name; ['*'] any (link-local excepted), [] none. */
  readonly mcpAllow: readonly string[];
  readonly mcpCallTimeoutMs: number;
  readonly mcpMaxRounds: number;
  readonly mcpMaxOutputBytes: number;
  readonly mcpIdleTimeoutMs: number;
  /** Hosted tools vLLM cannot run: dropped from its requests, or refused. */
  readonly unsupportedTools: 'drop' | 'reject';
}

export interface Config {
  readonly mode: 'standalone' | 'serve';
  readonly upstream: UpstreamConfig;
  readonly server: ServerConfig;
  readonly serve: ServeConfig | undefined;
  readonly state: StateConfig;
  readonly output: OutputConfig;
  readonly tools: ToolsConfig;
  readonly security: SecurityConfig;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
  readonly accessLog: boolean;
}

export type CliCommand =
  | { readonly kind: 'help' }
  | { readonly kind: 'version' }
  | { readonly kind: 'run'; readonly config: Config };

const VLLM_DEFAULT_PORT = 8000;

interface SplitArgv {
  mode: 'standalone' | 'serve';
  model: string | undefined;
  /** Values from the --config file, by flag name (under flags and the environment). */
  fileValues: Map<string, string>;
  /** The --config file's path, for messages. */
  configFile: string | undefined;
  /** Values given as gateway flags, by flag name. */
  flagValues: Map<string, string>;
  vllmArgs: string[];
  vllmPort: string | undefined;
  vllmHost: string | undefined;
  vllmApiKey: string | undefined;
  wantsHelp: boolean;
  wantsVersion: boolean;
}

function takeValue(argv: readonly string[], index: number, inline: string | undefined, flag: string) {
  if (inline !== undefined) return { value: inline, next: index + 1 };
  const value = argv[index + 1];
  if (value === undefined || (value.startsWith('--') && value.length > 2)) {
    throw new ConfigError(`${flag} needs a value`);
  }
  return { value, next: index + 2 };
}

function splitArgv(argv: readonly string[]): SplitArgv {
  const split: SplitArgv = {
    mode: argv[0] === 'serve' ? 'serve' : 'standalone',
    model: undefined,
    fileValues: new Map(),
    configFile: undefined,
    flagValues: new Map(),
    vllmArgs: [],
    vllmPort: undefined,
    vllmHost: undefined,
    vllmApiKey: undefined,
    wantsHelp: false,
    wantsVersion: false,
  };
  let index = split.mode === 'serve' ? 1 : 0;
  while (index < argv.length) {
    const token = argv[index] as string;
    if (token === '--help' || token === '-h') {
      split.wantsHelp = true;
      index += 1;
      continue;
    }
    if (token === '--version' || token === '-v') {
      split.wantsVersion = true;
      index += 1;
      continue;
    }
    if (!token.startsWith('--') || token === '--') {
      if (split.mode === 'serve' && split.model === undefined && !token.startsWith('-')) {
        split.model = token;
      } else if (split.mode === 'serve') {
        split.vllmArgs.push(token);
      } else {
        throw new ConfigError(`unexpected argument "${token}" (did you mean: serve ${token}?)`);
      }
      index += 1;
      continue;
    }
    const eq = token.indexOf('=');
    const name = token.slice(2, eq === -1 ? undefined : eq);
    const inline = eq === -1 ? undefined : token.slice(eq + 1);
    const spec = FLAGS_BY_NAME.get(name);
    if (spec !== undefined) {
      if (spec.kind === 'boolean' && inline === undefined) {
        // `--access-log off` as well as `--access-log=off` and a bare `--access-log`.
        const next = argv[index + 1];
        const word = next === undefined ? undefined : BOOLEAN_WORDS.has(next.toLowerCase()) ? next : undefined;
        split.flagValues.set(name, word ?? 'true');
        index += word === undefined ? 1 : 2;
        continue;
      }
      const { value, next } = takeValue(argv, index, inline, `--${name}`);
      // A list of URLs may be given one flag per URL.
      const earlier = spec.kind === 'urls' ? split.flagValues.get(name) : undefined;
      split.flagValues.set(name, earlier === undefined ? value : `${earlier},${value}`);
      index = next;
      continue;
    }
    if (split.mode !== 'serve') {
      throw new ConfigError(unknownFlagMessage(name));
    }
    // vLLM flags the gateway needs to know about, still passed on to vLLM.
    if (name === 'port' || name === 'host' || name === 'api-key') {
      const { value, next } = takeValue(argv, index, inline, `--${name}`);
      if (name === 'port') split.vllmPort = value;
      else {
        if (name === 'host') split.vllmHost = value;
        else split.vllmApiKey = value;
        split.vllmArgs.push(`--${name}`, value);
      }
      index = next;
      continue;
    }
    split.vllmArgs.push(token);
    index += 1;
  }
  return split;
}

function resolveFlag<N extends FlagName>(
  name: N,
  split: SplitArgv,
  env: Readonly<Record<string, string | undefined>>,
): KindValue<Extract<(typeof FLAG_SPECS)[number], { name: N }>['kind']> | undefined {
  const spec = FLAGS_BY_NAME.get(name) as FlagSpec;
  const fromFlag = split.flagValues.get(name);
  const fromEnv = env[spec.env];
  const fromFile = split.fileValues.get(name);
  const raw = fromFlag ?? fromEnv ?? fromFile ?? spec.defaultValue;
  if (raw === undefined) return undefined;
  const parsed = parseKind(spec.kind, raw);
  if (!parsed.ok) {
    const source = fromFlag !== undefined ? '' : fromEnv !== undefined ? ` (from ${spec.env})` : fromFile !== undefined ? ` (from ${split.configFile ?? 'the config file'})` : '';
    throw new ConfigError(`invalid --${name}${source}: ${parsed.problem}`);
  }
  return parsed.value as never;
}

/** Where a setting that was given came from: the flag wins over the environment, which wins over the file. */
function originOf(name: FlagName, split: SplitArgv, env: Readonly<Record<string, string | undefined>>): 'flag' | 'environment' | 'config-file' {
  if (split.flagValues.has(name)) return 'flag';
  return env[(FLAGS_BY_NAME.get(name) as FlagSpec).env] !== undefined ? 'environment' : 'config-file';
}

function required<T>(value: T | undefined, name: FlagName): T {
  if (value === undefined) throw new ConfigError(`--${name} has no default and was not set`);
  return value;
}

function vllmUpstreamHost(host: string | undefined): string {
  // vLLM bound to every interface (or default) is reached on loopback; a specific
  // address is used as given.
  if (host === undefined || host === '' || host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** Reads a --config file's text (the command's I/O, handed in: this module does none). */
export type ReadConfigFile = (path: string) => string;

export function parseCommandLine(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  readFile: ReadConfigFile = () => {
    throw new Error('no file reader was given');
  },
): CliCommand {
  const split = splitArgv(argv);
  if (split.wantsHelp) return { kind: 'help' };
  if (split.wantsVersion) return { kind: 'version' };
  const configFile = resolveFlag('config', split, env);
  if (configFile !== undefined) {
    split.configFile = configFile;
    let text: string;
    try {
      text = readFile(configFile);
    } catch (error) {
      throw new ConfigError(`cannot read --config ${configFile}: ${error instanceof Error ? error.message : String(error)}`);
    }
    split.fileValues = parseConfigFile(configFile, text);
  }

  const upstreamTimeouts = {
    connectTimeoutMs: required(resolveFlag('upstream-connect-timeout', split, env), 'upstream-connect-timeout'),
    headersTimeoutMs: required(resolveFlag('upstream-headers-timeout', split, env), 'upstream-headers-timeout'),
    idleTimeoutMs: required(resolveFlag('upstream-idle-timeout', split, env), 'upstream-idle-timeout'),
  };
  let apiKey = resolveFlag('openai-api-key', split, env);
  let apiKeyOrigin: KeyOrigin = apiKey === undefined ? 'none' : originOf('openai-api-key', split, env);

  let replicas: readonly ParsedUrl[];
  let serve: ServeConfig | undefined;
  if (split.mode === 'serve') {
    if (split.model === undefined) {
      throw new ConfigError('serve needs a model: responses-gateway serve <model> [options]');
    }
    if (split.flagValues.has('llm-api-base') || split.fileValues.has('llm-api-base')) {
      throw new ConfigError(`--llm-api-base${split.flagValues.has('llm-api-base') ? '' : ` (in ${split.configFile ?? 'the config file'})`} cannot be combined with serve (serve starts its own vLLM)`);
    }
    const portRaw = split.vllmPort ?? String(VLLM_DEFAULT_PORT);
    const port = /^\d+$/.test(portRaw) ? Number(portRaw) : Number.NaN;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new ConfigError(`invalid --port: "${portRaw}" is not a port number (1-65535)`);
    }
    replicas = [{ origin: `http://${vllmUpstreamHost(split.vllmHost)}:${port}`, basePath: '' }];
    // vLLM started with --api-key requires it: use it unless a key was given explicitly.
    if (apiKey === undefined && split.vllmApiKey !== undefined) {
      apiKey = split.vllmApiKey;
      apiKeyOrigin = 'vllm-api-key';
    }
    serve = {
      model: split.model,
      vllmBin: required(resolveFlag('vllm-bin', split, env), 'vllm-bin'),
      vllmArgs: split.vllmArgs,
      port,
      readyIntervalMs: required(resolveFlag('upstream-ready-interval', split, env), 'upstream-ready-interval'),
      readyTimeoutMs: required(resolveFlag('upstream-ready-timeout', split, env), 'upstream-ready-timeout'),
      stopTimeoutMs: required(resolveFlag('vllm-stop-timeout', split, env), 'vllm-stop-timeout'),
    };
  } else {
    const resolved = resolveFlag('llm-api-base', split, env);
    if (resolved === undefined) {
      throw new ConfigError(
        'no upstream: pass --llm-api-base URL (a running vLLM) or use: serve <model> (see --help)',
      );
    }
    replicas = resolved;
  }
  const base = replicas[0] as ParsedUrl;

  const config: Config = {
    mode: split.mode,
    upstream: {
      via: viaName(env),
      origin: base.origin,
      basePath: base.basePath,
      replicas,
      healthIntervalMs: required(resolveFlag('upstream-health-interval', split, env), 'upstream-health-interval'),
      slowStartMs: required(resolveFlag('upstream-slow-start', split, env), 'upstream-slow-start'),
      affinity: required(resolveFlag('upstream-affinity', split, env), 'upstream-affinity'),
      apiKey,
      apiKeyOrigin,
      ...upstreamTimeouts,
      api: upstreamApi(required(resolveFlag('upstream-api', split, env), 'upstream-api'), split.mode),
    },
    server: {
      host: required(resolveFlag('gateway-host', split, env), 'gateway-host'),
      port: required(resolveFlag('gateway-port', split, env), 'gateway-port'),
      workers: required(resolveFlag('workers', split, env), 'workers'),
      shutdownTimeoutMs: required(resolveFlag('shutdown-timeout', split, env), 'shutdown-timeout'),
      corsOrigins: required(resolveFlag('cors-origins', split, env), 'cors-origins'),
      maxBodyBytes: required(resolveFlag('max-body-size', split, env), 'max-body-size'),
      maxHeaderBytes: required(resolveFlag('max-header-size', split, env), 'max-header-size'),
      maxConcurrent: required(resolveFlag('max-concurrent', split, env), 'max-concurrent'),
      headersTimeoutMs: required(resolveFlag('client-headers-timeout', split, env), 'client-headers-timeout'),
      requestTimeoutMs: required(resolveFlag('client-request-timeout', split, env), 'client-request-timeout'),
      writeTimeoutMs: required(resolveFlag('client-write-timeout', split, env), 'client-write-timeout'),
      maxJsonDepth: required(resolveFlag('max-json-depth', split, env), 'max-json-depth'),
      maxInputItems: required(resolveFlag('max-input-items', split, env), 'max-input-items'),
      maxUpstreamEventBytes: required(resolveFlag('max-upstream-event-size', split, env), 'max-upstream-event-size'),
      websocketIdleTimeoutMs: required(resolveFlag('websocket-idle-timeout', split, env), 'websocket-idle-timeout'),
    },
    serve,
    state: {
      location: required(resolveFlag('db-url', split, env), 'db-url'),
      poolSize: required(resolveFlag('db-pool-size', split, env), 'db-pool-size'),
      queryTimeoutMs: required(resolveFlag('db-query-timeout', split, env), 'db-query-timeout'),
      ttlMs: resolveFlag('store-ttl', split, env) ?? null,
      contextCacheBytes: required(resolveFlag('context-cache-size', split, env), 'context-cache-size'),
      backgroundEventTtlMs: resolveFlag('background-event-ttl', split, env) ?? null,
      maxBackgroundRuns: required(resolveFlag('max-background-runs', split, env), 'max-background-runs'),
      detachOnDisconnect: required(resolveFlag('detach-on-disconnect', split, env), 'detach-on-disconnect'),
    },
    output: {
      passthroughRaw: required(resolveFlag('passthrough-raw', split, env), 'passthrough-raw'),
      keepRawFields: required(resolveFlag('raw-upstream-fields', split, env), 'raw-upstream-fields'),
    },
    tools: {
      mcpServersFile: resolveFlag('mcp-servers', split, env),
      mcpAllow: mcpAllowList(required(resolveFlag('mcp-allow', split, env), 'mcp-allow')),
      mcpCallTimeoutMs: required(resolveFlag('mcp-call-timeout', split, env), 'mcp-call-timeout'),
      mcpMaxRounds: required(resolveFlag('mcp-max-rounds', split, env), 'mcp-max-rounds'),
      mcpMaxOutputBytes: required(resolveFlag('mcp-max-output-size', split, env), 'mcp-max-output-size'),
      mcpIdleTimeoutMs: required(resolveFlag('mcp-idle-timeout', split, env), 'mcp-idle-timeout'),
      unsupportedTools: unsupportedTools(required(resolveFlag('unsupported-tools', split, env), 'unsupported-tools')),
    },
    security: {
      ...clientKeys(split, env),
      ...stateSecret(split, env),
      metricsAuth: required(resolveFlag('metrics-auth', split, env), 'metrics-auth'),
      rateLimits: {
        requestsPerMinute: resolveFlag('rate-limit-rpm', split, env),
        tokensPerMinute: resolveFlag('rate-limit-tpm', split, env),
      },
    },
    logLevel: required(resolveFlag('log-level', split, env), 'log-level'),
    logFormat: required(resolveFlag('log-format', split, env), 'log-format'),
    accessLog: required(resolveFlag('access-log', split, env), 'access-log'),
  };
  if (config.server.headersTimeoutMs > config.server.requestTimeoutMs) {
    throw new ConfigError('invalid --client-headers-timeout: must not be longer than --client-request-timeout');
  }
  if (config.server.workers > 1 && config.state.location.kind === 'sqlite' && config.state.location.path === ':memory:') {
    throw new ConfigError(
      `--db-url sqlite::memory: cannot be shared by --workers ${config.server.workers}: use a file or PostgreSQL`,
    );
  }
  if (config.output.passthroughRaw && config.upstream.api === 'chat') {
    throw new ConfigError("--passthrough-raw relays vLLM's /v1/responses as it is; --upstream-api chat needs the gateway to translate: use one or the other");
  }
  return { kind: 'run', config: deepFreeze(config) };
}

/** `given`: the flag or its variable was set, even to nothing. An empty key list never
 * means "no authentication": leaving the flag out does. */
/**
 * Who may call: --api-keys; else, in serve mode, vLLM's own --api-key (whoever moves from
 * `vllm serve --api-key X` expects the endpoint they call to require X), as the default
 * tenant's key; else nobody is asked for a key.
 */
/** Shorter secrets are refused: the key derived from a secret is as strong as the secret. */
const MIN_STATE_SECRET_CHARS = 16;

function stateSecret(split: SplitArgv, env: Readonly<Record<string, string | undefined>>): Pick<SecurityConfig, 'stateSecret' | 'stateSecretOrigin'> {
  const given = resolveFlag('state-secret', split, env);
  if (given === undefined) return { stateSecret: randomBytes(32).toString('base64url'), stateSecretOrigin: 'random' };
  if (given.length < MIN_STATE_SECRET_CHARS) {
    throw new ConfigError(`invalid --state-secret: use ${MIN_STATE_SECRET_CHARS} characters or more (e.g. openssl rand -base64 32)`);
  }
  return { stateSecret: given, stateSecretOrigin: originOf('state-secret', split, env) };
}

function clientKeys(split: SplitArgv, env: Readonly<Record<string, string | undefined>>): Pick<SecurityConfig, 'apiKeys' | 'apiKeysOrigin'> {
  const given = split.flagValues.has('api-keys') || env['GATEWAY_API_KEYS'] !== undefined || split.fileValues.has('api-keys');
  const apiKeys = apiKeySource(resolveFlag('api-keys', split, env), given);
  if (apiKeys.kind !== 'none') return { apiKeys, apiKeysOrigin: originOf('api-keys', split, env) };
  if (split.mode === 'serve' && split.vllmApiKey !== undefined) {
    return { apiKeys: { kind: 'list', keys: [`${split.vllmApiKey} ${DEFAULT_TENANT}`] }, apiKeysOrigin: 'vllm-api-key' };
  }
  return { apiKeys, apiKeysOrigin: 'none' };
}

function apiKeySource(raw: string | undefined, given: boolean): ApiKeySource {
  if (raw === undefined) {
    if (given) throw new ConfigError('invalid --api-keys: it is empty; give at least one key, or leave it out to run without keys');
    return { kind: 'none' };
  }
  if (raw.startsWith('@')) {
    const path = raw.slice(1).trim();
    if (path.length === 0) throw new ConfigError('invalid --api-keys: @ must be followed by a file path');
    return { kind: 'file', path };
  }
  const keys = raw.split(',').map((key) => key.trim()).filter((key) => key.length > 0);
  if (keys.length === 0) throw new ConfigError('invalid --api-keys: no key given (only separators)');
  return { kind: 'list', keys };
}

/** --upstream-api; `serve` starts vLLM, whose Responses API needs no probe. */
function upstreamApi(value: string, mode: 'standalone' | 'serve'): UpstreamApiSetting {
  const lower = value.toLowerCase();
  if (lower !== 'responses' && lower !== 'chat' && lower !== 'auto') {
    throw new ConfigError(`invalid --upstream-api: "${value}" is not responses, chat or auto`);
  }
  return lower === 'auto' && mode === 'serve' ? 'responses' : lower;
}

function unsupportedTools(value: string): 'drop' | 'reject' {
  const lower = value.toLowerCase();
  if (lower !== 'drop' && lower !== 'reject') throw new ConfigError(`invalid --unsupported-tools: "${value}" is not drop or reject`);
  return lower;
}

/** --mcp-allow: "none" is the empty list; each other entry an http(s) URL pattern or "*". */
function mcpAllowList(entries: readonly string[]): readonly string[] {
  if (entries.length === 1 && entries[0]?.toLowerCase() === 'none') return [];
  for (const entry of entries) {
    if (entry !== '*' && !/^https?:\/\/[^/]+/i.test(entry)) {
      throw new ConfigError(`invalid --mcp-allow: "${entry}" is not "*", "none" or an http(s) URL pattern (e.g. https://*.example.com/*)`);
    }
  }
  return entries;
}

/** Set by a gateway's primary for its workers, so that they share its Via name. */
export const VIA_NAME_ENV = 'RG_VIA_NAME';

function viaName(env: Readonly<Record<string, string | undefined>>): string {
  const inherited = env[VIA_NAME_ENV];
  return inherited !== undefined && /^rg-[0-9a-f]{12}$/.test(inherited) ? inherited : `rg-${randomBytes(6).toString('hex')}`;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** Defaults for embedding and tests: standalone mode in front of `llmApiBase`. */
export function configForUpstream(
  llmApiBase: string,
  overrides: Readonly<Record<string, string>> = {},
): Config {
  const argv = ['--llm-api-base', llmApiBase, '--gateway-port', '0', '--log-level', 'silent', '--db-url', 'sqlite::memory:'];
  for (const [name, value] of Object.entries(overrides)) argv.push(`--${name}=${value}`);
  const command = parseCommandLine(argv, {});
  if (command.kind !== 'run') throw new Error('unreachable: no help flag given');
  return command.config;
}
