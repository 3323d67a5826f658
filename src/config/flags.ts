// The table of every gateway setting: its flag, its environment variable, its default
// and its help line. Parsing, `--help`, the README's flag table and its test all read it,
// so a setting is added in one place.

export type FlagKind =
  | 'url'
  | 'string'
  | 'secret'
  | 'port'
  | 'positive-int'
  | 'duration'
  | 'retention'
  | 'size'
  | 'list'
  | 'log-level'
  | 'log-format'
  | 'db-url'
  | 'boolean';

export interface FlagSpec {
  /** Long flag name without the leading dashes. */
  readonly name: string;
  /** Environment variable that sets it when the flag is absent. */
  readonly env: string;
  readonly kind: FlagKind;
  /** Default as the user would type it; undefined means "unset". */
  readonly defaultValue: string | undefined;
  readonly help: string;
  readonly group: 'upstream' | 'server' | 'serve' | 'limits' | 'state' | 'security' | 'tools' | 'output';
}

export const FLAG_SPECS = [
  {
    name: 'llm-api-base',
    env: 'GATEWAY_LLM_API_BASE',
    kind: 'url',
    defaultValue: undefined,
    help: 'Base URL of a running vLLM server (standalone mode). A trailing /v1 or / is optional.',
    group: 'upstream',
  },
  {
    name: 'upstream-api',
    env: 'GATEWAY_UPSTREAM_API',
    kind: 'string',
    defaultValue: 'auto',
    help: "Which API the model server is reached through: responses (vLLM's /v1/responses), chat (/v1/chat/completions of any OpenAI-compatible server: llama.cpp, Ollama, SGLang, TGI, LM Studio; the gateway translates), or auto (asks the server at startup and after it was unreachable, and logs the choice). serve uses responses under auto.",
    group: 'upstream',
  },
  {
    name: 'openai-api-key',
    env: 'OPENAI_API_KEY',
    kind: 'secret',
    defaultValue: undefined,
    help: 'Key sent to vLLM as "Authorization: Bearer <key>" when the client sends none. Prefer the environment variable: flags are visible in ps.',
    group: 'upstream',
  },
  {
    name: 'upstream-connect-timeout',
    env: 'GATEWAY_UPSTREAM_CONNECT_TIMEOUT',
    kind: 'duration',
    defaultValue: '10',
    help: 'Seconds to establish a connection to vLLM before answering 504.',
    group: 'upstream',
  },
  {
    name: 'upstream-headers-timeout',
    env: 'GATEWAY_UPSTREAM_HEADERS_TIMEOUT',
    kind: 'duration',
    defaultValue: '600',
    help: 'Seconds to wait for vLLM\'s response headers (a non-streamed generation can take minutes).',
    group: 'upstream',
  },
  {
    name: 'upstream-idle-timeout',
    env: 'GATEWAY_UPSTREAM_IDLE_TIMEOUT',
    kind: 'duration',
    defaultValue: '300',
    help: 'Seconds allowed between two chunks of a response body before the stream is cut.',
    group: 'upstream',
  },
  {
    name: 'upstream-ready-interval',
    env: 'GATEWAY_UPSTREAM_READY_INTERVAL',
    kind: 'duration',
    defaultValue: '2',
    help: 'serve: seconds between two GET /health probes while waiting for vLLM to start.',
    group: 'serve',
  },
  {
    name: 'upstream-ready-timeout',
    env: 'GATEWAY_UPSTREAM_READY_TIMEOUT',
    kind: 'duration',
    defaultValue: '600',
    help: 'serve: seconds to wait for vLLM to become healthy before giving up (exit 1).',
    group: 'serve',
  },
  {
    name: 'vllm-bin',
    env: 'GATEWAY_VLLM_BIN',
    kind: 'string',
    defaultValue: 'vllm',
    help: 'serve: the vLLM executable to start.',
    group: 'serve',
  },
  {
    name: 'vllm-stop-timeout',
    env: 'GATEWAY_VLLM_STOP_TIMEOUT',
    kind: 'duration',
    defaultValue: '15',
    help: 'serve: seconds between SIGTERM and SIGKILL when stopping vLLM.',
    group: 'serve',
  },
  {
    name: 'gateway-host',
    env: 'GATEWAY_HOST',
    kind: 'string',
    defaultValue: '0.0.0.0',
    help: 'Address the gateway listens on.',
    group: 'server',
  },
  {
    name: 'gateway-port',
    env: 'GATEWAY_PORT',
    kind: 'port',
    defaultValue: '9000',
    help: 'Port the gateway listens on (0 picks a free one).',
    group: 'server',
  },
  {
    name: 'workers',
    env: 'GATEWAY_WORKERS',
    kind: 'positive-int',
    defaultValue: '1',
    help: 'Number of gateway processes serving the one port (node:cluster).',
    group: 'server',
  },
  {
    name: 'shutdown-timeout',
    env: 'GATEWAY_SHUTDOWN_TIMEOUT',
    kind: 'duration',
    defaultValue: '30',
    help: 'On SIGINT/SIGTERM: seconds in-flight requests and streams get to finish.',
    group: 'server',
  },
  {
    name: 'cors-origins',
    env: 'GATEWAY_CORS_ORIGINS',
    kind: 'list',
    defaultValue: '*',
    help: 'Comma list of origins allowed by CORS; * allows any origin (without credentials).',
    group: 'server',
  },
  {
    name: 'log-level',
    env: 'GATEWAY_LOG_LEVEL',
    kind: 'log-level',
    defaultValue: 'info',
    help: 'fatal, error, warn, info, debug, trace or silent.',
    group: 'server',
  },
  {
    name: 'log-format',
    env: 'GATEWAY_LOG_FORMAT',
    kind: 'log-format',
    defaultValue: 'auto',
    help: 'pretty (one readable line per event, colour unless NO_COLOR), json (one JSON object per line), or auto: pretty when stdout is a terminal, json otherwise.',
    group: 'server',
  },
  {
    name: 'access-log',
    env: 'GATEWAY_ACCESS_LOG',
    kind: 'boolean',
    defaultValue: 'on',
    help: 'One line per request (method, path, status, duration, streamed, request id); off to leave them out. /health and /ready are logged at --log-level debug only.',
    group: 'server',
  },
  {
    name: 'websocket-idle-timeout',
    env: 'GATEWAY_WEBSOCKET_IDLE_TIMEOUT',
    kind: 'duration',
    defaultValue: '900',
    help: 'Seconds a WebSocket (GET /v1/responses upgraded) may stay without a message and without a response running before the gateway closes it (code 1000). Sockets are pinged every 30 s; one that stops answering is cut.',
    group: 'server',
  },
  {
    name: 'max-body-size',
    env: 'GATEWAY_MAX_BODY_SIZE',
    kind: 'size',
    defaultValue: '10MiB',
    help: 'Largest request body accepted (bytes, or with KiB/MiB/KB/MB); larger gets 413.',
    group: 'limits',
  },
  {
    name: 'api-keys',
    env: 'GATEWAY_API_KEYS',
    kind: 'secret',
    defaultValue: undefined,
    help: 'Keys clients must send as "Authorization: Bearer <key>" on /v1/*: a comma list, or @/path/to/file with one key a line (re-read on SIGHUP). An entry "<key> <tenant>" names the tenant whose stored data the key reaches; a key without one is a tenant of its own. An entry may end with its tenant\'s rate limits: rpm=N tpm=N (or none). Empty is an error. When set, vLLM gets --openai-api-key, never the client\'s key.',
    group: 'security',
  },
  {
    name: 'state-secret',
    env: 'GATEWAY_STATE_SECRET',
    kind: 'secret',
    defaultValue: undefined,
    help: 'Secret (16 characters or more) that seals the reasoning returned as encrypted_content to clients that ask for it (include: ["reasoning.encrypted_content"], as store: false agents do): AES-256-GCM under a key derived from it, bound to the tenant. Gateways sharing it accept each other\'s items. Unset: a random secret per start, shared by the workers; items sealed before a restart are then refused.',
    group: 'security',
  },
  {
    name: 'rate-limit-rpm',
    env: 'GATEWAY_RATE_LIMIT_RPM',
    kind: 'positive-int',
    defaultValue: undefined,
    help: "Requests per minute each tenant may send to /v1/* (every tenant its own budget; without --api-keys, all clients share one). A key entry's rpm= overrides it. Over it: 429 rate_limit_exceeded with Retry-After; every answer carries OpenAI's x-ratelimit-* headers. Shared by the workers of --workers.",
    group: 'security',
  },
  {
    name: 'rate-limit-tpm',
    env: 'GATEWAY_RATE_LIMIT_TPM',
    kind: 'positive-int',
    defaultValue: undefined,
    help: "Tokens per minute (input + output, as vLLM reports them) each tenant may use; a key entry's tpm= overrides it. Counted when a response ends, so requests in flight can overshoot; new ones wait for the debt to refill.",
    group: 'security',
  },
  {
    name: 'metrics-auth',
    env: 'GATEWAY_METRICS_AUTH',
    kind: 'boolean',
    defaultValue: 'false',
    help: 'Require one of --api-keys on GET /metrics too (/health and /ready stay open).',
    group: 'security',
  },
  {
    name: 'max-concurrent',
    env: 'GATEWAY_MAX_CONCURRENT',
    kind: 'positive-int',
    defaultValue: '2048',
    help: 'Requests in flight per gateway process (streams included); more get 429 with Retry-After.',
    group: 'limits',
  },
  {
    name: 'max-header-size',
    env: 'GATEWAY_MAX_HEADER_SIZE',
    kind: 'size',
    defaultValue: '16KiB',
    help: 'Largest request head (request line and headers); larger gets 431.',
    group: 'limits',
  },
  {
    name: 'client-headers-timeout',
    env: 'GATEWAY_CLIENT_HEADERS_TIMEOUT',
    kind: 'duration',
    defaultValue: '30',
    help: 'Seconds a client has to send its request headers (against slowloris); then 408.',
    group: 'limits',
  },
  {
    name: 'client-request-timeout',
    env: 'GATEWAY_CLIENT_REQUEST_TIMEOUT',
    kind: 'duration',
    defaultValue: '120',
    help: 'Seconds a client has to send its whole request, body included; then 408.',
    group: 'limits',
  },
  {
    name: 'client-write-timeout',
    env: 'GATEWAY_CLIENT_WRITE_TIMEOUT',
    kind: 'duration',
    defaultValue: '60',
    help: "Seconds a client may leave an answer or stream unread (nothing it sent taken off the socket) before the gateway ends it, aborts vLLM's generation and frees the slot.",
    group: 'limits',
  },
  {
    name: 'max-json-depth',
    env: 'GATEWAY_MAX_JSON_DEPTH',
    kind: 'positive-int',
    defaultValue: '64',
    help: 'Deepest nesting of objects and arrays accepted in a JSON body the gateway reads.',
    group: 'limits',
  },
  {
    name: 'max-input-items',
    env: 'GATEWAY_MAX_INPUT_ITEMS',
    kind: 'positive-int',
    defaultValue: '10000',
    help: 'Most items one response may have as context: its input plus the history it continues (previous response or conversation); more gets 400 too_many_input_items.',
    group: 'limits',
  },
  {
    name: 'max-upstream-event-size',
    env: 'GATEWAY_MAX_UPSTREAM_EVENT_SIZE',
    kind: 'size',
    defaultValue: '16MiB',
    help: 'Largest single server-sent event (or non-streamed /v1/responses body) accepted from vLLM; beyond it the answer fails cleanly.',
    group: 'limits',
  },
  {
    name: 'db-url',
    env: 'DATABASE_URL',
    kind: 'db-url',
    defaultValue: 'sqlite:~/.responses-gateway/responses.db',
    help: 'Where responses and conversations are stored: sqlite:/path/file.db (one machine), sqlite::memory: (throwaway), or postgres://user:pass@host/db (several gateways sharing state).',
    group: 'state',
  },
  {
    name: 'db-pool-size',
    env: 'GATEWAY_DB_POOL_SIZE',
    kind: 'positive-int',
    defaultValue: '10',
    help: 'PostgreSQL: connections per gateway process.',
    group: 'state',
  },
  {
    name: 'db-query-timeout',
    env: 'GATEWAY_DB_QUERY_TIMEOUT',
    kind: 'duration',
    defaultValue: '10',
    help: "Deadline of one database query: a PostgreSQL server that stops answering fails the request with 503 store_unavailable after it, and the connection is dropped. With SQLite, how long a write waits for another process's write lock.",
    group: 'state',
  },
  {
    name: 'store-ttl',
    env: 'GATEWAY_STORE_TTL',
    kind: 'retention',
    defaultValue: '30d',
    help: "Delete stored responses this long after they were created (and the items only they hold), as OpenAI does after 30 days; 0 or forever keeps them. Counted from creation, so it applies to responses stored before it was set. Conversations and their items do not expire.",
    group: 'state',
  },
  {
    name: 'background-event-ttl',
    env: 'GATEWAY_BACKGROUND_EVENT_TTL',
    kind: 'retention',
    defaultValue: '10m',
    help: "Keep a background response's event log (what GET /v1/responses/{id}?stream=true replays) this long after it ended, as OpenAI keeps about 10 minutes; 0 or forever keeps logs. The response itself follows --store-ttl.",
    group: 'state',
  },
  {
    name: 'max-background-runs',
    env: 'GATEWAY_MAX_BACKGROUND_RUNS',
    kind: 'positive-int',
    defaultValue: '64',
    help: 'Background responses one gateway process runs at once; more wait in status queued and start in order (FIFO).',
    group: 'limits',
  },
  {
    name: 'detach-on-disconnect',
    env: 'GATEWAY_DETACH_ON_DISCONNECT',
    kind: 'boolean',
    defaultValue: 'false',
    help: 'A streamed store: true response whose client disconnects keeps generating as a background one, resumable with GET /v1/responses/{id}?stream=true&starting_after=N. Off by default: it spends GPU time on answers nobody may read.',
    group: 'state',
  },
  {
    name: 'unsupported-tools',
    env: 'GATEWAY_UNSUPPORTED_TOOLS',
    kind: 'string',
    defaultValue: 'drop',
    help: "Hosted tools the model server cannot run (web_search, file_search, code_interpreter, image_generation, computer_use, ...): drop leaves them out of vLLM's request (logged once per type), so that an agent's first turn does not fail on a tool it may never use; reject answers 400 naming the tool.",
    group: 'tools',
  },
  {
    name: 'mcp-servers',
    env: 'GATEWAY_MCP_SERVERS',
    kind: 'string',
    defaultValue: undefined,
    help: 'JSON file of MCP servers by label: {"github": {"url": "https://...", "headers": {"Authorization": "Bearer ..."}, "require_approval": "never"}}. Clients name them as {"type": "mcp", "server_label": "github"}; their headers stay on the gateway.',
    group: 'tools',
  },
  {
    name: 'mcp-allow',
    env: 'GATEWAY_MCP_ALLOW',
    kind: 'list',
    defaultValue: '*',
    help: 'Which server_url values clients may name, as URL patterns with * (e.g. "https://*.example.com/*,http://127.0.0.1:*"). "*" allows any http(s) URL except link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10, metadata.google.internal), which only a pattern naming that host reaches; "none" allows only --mcp-servers.',
    group: 'tools',
  },
  {
    name: 'mcp-call-timeout',
    env: 'GATEWAY_MCP_CALL_TIMEOUT',
    kind: 'duration',
    defaultValue: '60',
    help: 'Seconds one MCP request (connecting, listing tools, one tool call) may take before its item fails with a timeout error.',
    group: 'tools',
  },
  {
    name: 'mcp-max-rounds',
    env: 'GATEWAY_MCP_MAX_ROUNDS',
    kind: 'positive-int',
    defaultValue: '8',
    help: "Rounds of MCP tool calls in one response; then the model gets no more MCP tools and must answer (max_tool_calls in the request limits the calls themselves).",
    group: 'tools',
  },
  {
    name: 'mcp-max-output-size',
    env: 'GATEWAY_MCP_MAX_OUTPUT_SIZE',
    kind: 'size',
    defaultValue: '64KiB',
    help: "Largest tool output given to the model and stored; a longer one is cut, with a line saying so that the model can read.",
    group: 'tools',
  },
  {
    name: 'mcp-idle-timeout',
    env: 'GATEWAY_MCP_IDLE_TIMEOUT',
    kind: 'duration',
    defaultValue: '300',
    help: 'Seconds an MCP session is kept open for reuse by later requests after its last use.',
    group: 'tools',
  },
  {
    name: 'passthrough-raw',
    env: 'GATEWAY_PASSTHROUGH_RAW',
    kind: 'boolean',
    defaultValue: 'false',
    help: "Relay /v1/responses byte for byte: no normalization, and no state (vLLM's own store, if enabled, applies).",
    group: 'output',
  },
  {
    name: 'raw-upstream-fields',
    env: 'GATEWAY_RAW_UPSTREAM_FIELDS',
    kind: 'boolean',
    defaultValue: 'false',
    help: "Keep vLLM's private fields (input_messages, kv_transfer_params, ...) in normalized responses.",
    group: 'output',
  },
] as const satisfies readonly FlagSpec[];

export type FlagName = (typeof FLAG_SPECS)[number]['name'];

export const FLAGS_BY_NAME: ReadonlyMap<string, FlagSpec> = new Map(
  FLAG_SPECS.map((spec) => [spec.name, spec]),
);
