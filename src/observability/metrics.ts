// Prometheus metrics of one gateway process. Label values are bounded (route templates,
// status codes, error kinds) so a client cannot grow the series count.
import {
  AggregatorRegistry,
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
} from 'prom-client';

/** Tokens of one response, as vLLM reported them (cached is part of input, reasoning part of output). */
export interface TokenUsage {
  readonly input: number;
  readonly output: number;
  readonly cached: number;
  readonly reasoning: number;
}

interface TokenTotals {
  readonly model: string;
  readonly tenant: string;
  input: number;
  output: number;
  cached: number;
  reasoning: number;
}

/** Distinct model label values kept; more are counted as "other" (a series per name). */
const MAX_MODEL_LABELS = 64;

/** Why a request to vLLM failed, as counted in gateway_upstream_errors_total. */
export type UpstreamErrorKind =
  | 'connect_refused'
  | 'dns_failure'
  | 'unreachable'
  | 'tls'
  | 'connect_timeout'
  | 'headers_timeout'
  | 'idle_timeout'
  | 'reset'
  | 'truncated'
  | 'invalid_response'
  | 'other';

/** What /metrics shows of one model server replica (several --llm-api-base). */
export interface ReplicaReading {
  readonly id: string;
  readonly up: boolean;
  readonly inFlight: number;
  readonly requests: number;
  readonly errors: number;
}

/** How requests with a chain were placed: on its replica (kept), elsewhere (moved), none asked. */
export type AffinityReading = Readonly<Record<'kept' | 'moved' | 'none', number>>;

const LATENCY_BUCKETS_S = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
];

/**
 * Keeps a metric's child for its label values, made on the first miss only
 * (`children.get(key) ?? remember(children, key, metric.labels(...))`: no closure a call):
 * prom-client's labels() validates the labels and makes closures, and a metric's own
 * inc()/observe() hash them, on every call.
 */
function remember<Child>(children: Map<string, Child>, key: string, child: Child): Child {
  children.set(key, child);
  return child;
}

export class GatewayMetrics {
  readonly registry: Registry;
  readonly #requests: Counter<'route' | 'method' | 'status'>;
  readonly #duration: Histogram<'route'>;
  readonly #upstreamErrors: Counter<'kind'>;
  readonly #openStreams: Gauge;
  readonly #clientWriteTimeouts: Counter;
  #inFlight: () => number = () => 0;
  readonly #streamTtfb: Histogram<'route'>;
  // Children cached by label values (remember).
  readonly #requestChildren = new Map<string, { inc(): void }>();
  /** Token totals by model and tenant, added up here and handed to the counter when it is
   * read: prom-client hashes the labels on every inc(), four times per response. */
  readonly #tokenTotals = new Map<string, TokenTotals>();
  readonly #models = new Set<string>();
  readonly #durationChildren = new Map<string, { observe(value: number): void }>();
  readonly #ttfbChildren = new Map<string, { observe(value: number): void }>();

  constructor(options: { collectProcessMetrics?: boolean } = {}) {
    this.registry = new Registry();
    if (options.collectProcessMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry, prefix: 'gateway_' });
    }
    this.#requests = new Counter({
      name: 'gateway_http_requests_total',
      help: 'HTTP requests answered by the gateway, by route, method and status.',
      labelNames: ['route', 'method', 'status'],
      registers: [this.registry],
    });
    this.#duration = new Histogram({
      name: 'gateway_http_request_duration_seconds',
      help: 'Time from request received to response finished, by route.',
      labelNames: ['route'],
      buckets: LATENCY_BUCKETS_S,
      registers: [this.registry],
    });
    this.#upstreamErrors = new Counter({
      name: 'gateway_upstream_errors_total',
      help: 'Failed exchanges with vLLM, by kind.',
      labelNames: ['kind'],
      registers: [this.registry],
    });
    this.#clientWriteTimeouts = new Counter({
      name: 'gateway_client_write_timeouts_total',
      help: 'Answers ended because the client did not read them for --client-write-timeout.',
      registers: [this.registry],
    });
    this.#openStreams = new Gauge({
      name: 'gateway_open_streams',
      help: 'Server-sent event streams currently being relayed to clients.',
      registers: [this.registry],
    });
    const readInFlight = (): number => this.#inFlight();
    new Gauge({
      name: 'gateway_http_requests_in_flight',
      help: 'API requests (/v1/*) being served, streams included: what --max-concurrent limits.',
      registers: [this.registry],
      // Read when scraped: nothing to do per request.
      collect() {
        this.set(readInFlight());
      },
    });
    const tokenTotals = this.#tokenTotals;
    new Counter({
      name: 'gateway_tokens_total',
      help: 'Tokens of finished responses as vLLM reported them, by model, tenant and kind (input, output; cached is part of input, reasoning part of output).',
      labelNames: ['model', 'tenant', 'kind'],
      registers: [this.registry],
      collect(this: Counter<'model' | 'tenant' | 'kind'>) {
        this.reset();
        for (const totals of tokenTotals.values()) {
          const { model, tenant } = totals;
          this.inc({ model, tenant, kind: 'input' }, totals.input);
          this.inc({ model, tenant, kind: 'output' }, totals.output);
          this.inc({ model, tenant, kind: 'cached' }, totals.cached);
          this.inc({ model, tenant, kind: 'reasoning' }, totals.reasoning);
        }
      },
    });
    this.#streamTtfb = new Histogram({
      name: 'gateway_stream_time_to_first_byte_seconds',
      help: 'Time from request received to the first streamed body byte sent to the client.',
      labelNames: ['route'],
      buckets: LATENCY_BUCKETS_S,
      registers: [this.registry],
    });
  }

  observeRequest(route: string, method: string, status: number, durationSeconds: number): void {
    const key = `${route}\u0000${method}\u0000${status}`;
    (this.#requestChildren.get(key) ?? remember(this.#requestChildren, key, this.#requests.labels(route, method, String(status)))).inc();
    (this.#durationChildren.get(route) ?? remember(this.#durationChildren, route, this.#duration.labels(route))).observe(durationSeconds);
  }

  /** Where the in-flight gauge reads its value when scraped. */
  readInFlightFrom(source: () => number): void {
    this.#inFlight = source;
  }

  /**
   * Per-replica series, read when scraped (several --llm-api-base). Label values are the
   * replicas' URLs, a fixed set the operator gave. In a cluster, workers' figures add up,
   * but `up` is the lowest of them: 0 once any worker has marked the replica down.
   */
  watchReplicas(read: () => readonly ReplicaReading[], affinity: () => AffinityReading): void {
    const gauge = (name: string, help: string, aggregator: 'min' | 'sum', value: (replica: ReplicaReading) => number): void => {
      new Gauge({
        name,
        help,
        aggregator,
        labelNames: ['replica'],
        registers: [this.registry],
        collect(this: Gauge<'replica'>) {
          for (const replica of read()) this.set({ replica: replica.id }, value(replica));
        },
      });
    };
    gauge('gateway_upstream_replica_up', 'Whether the replica takes requests (1) or is marked down (0): by its /health, or a refused connection.', 'min', (r) => (r.up ? 1 : 0));
    gauge('gateway_upstream_replica_in_flight', 'Requests sent to the replica and not yet ended.', 'sum', (r) => r.inFlight);
    const counter = (name: string, help: string, value: (replica: ReplicaReading) => number): void => {
      new Counter({
        name,
        help,
        labelNames: ['replica'],
        registers: [this.registry],
        collect(this: Counter<'replica'>) {
          this.reset();
          for (const replica of read()) this.inc({ replica: replica.id }, value(replica));
        },
      });
    };
    counter('gateway_upstream_replica_requests_total', 'Requests sent to the replica (a failover counts on both).', (r) => r.requests);
    counter('gateway_upstream_replica_errors_total', 'Requests the replica failed before answering (refused, reset, timed out).', (r) => r.errors);
    new Counter({
      name: 'gateway_upstream_affinity_total',
      help: "Requests by where their chain's affinity put them: kept (the chain's replica), moved (it was down or over the load bound), none (no chain).",
      labelNames: ['outcome'],
      registers: [this.registry],
      collect(this: Counter<'outcome'>) {
        this.reset();
        const counts = affinity();
        for (const outcome of ['kept', 'moved', 'none'] as const) this.inc({ outcome }, counts[outcome]);
      },
    });
  }

  countUpstreamError(kind: UpstreamErrorKind): void {
    this.#upstreamErrors.labels(kind).inc();
  }

  /** Model names come from vLLM's answers (it refuses unknown ones); tenants from the key file. */
  countTokens(model: string, tenant: string, usage: TokenUsage): void {
    let name = model;
    if (!this.#models.has(name)) {
      if (this.#models.size >= MAX_MODEL_LABELS) name = 'other';
      else this.#models.add(name);
    }
    const key = `${name}\u0000${tenant}`;
    let totals = this.#tokenTotals.get(key);
    if (totals === undefined) {
      totals = { model: name, tenant, input: 0, output: 0, cached: 0, reasoning: 0 };
      this.#tokenTotals.set(key, totals);
    }
    totals.input += usage.input;
    totals.output += usage.output;
    totals.cached += usage.cached;
    totals.reasoning += usage.reasoning;
  }

  countClientWriteTimeout(): void {
    this.#clientWriteTimeouts.inc();
  }

  streamOpened(): void {
    this.#openStreams.inc();
  }

  streamClosed(): void {
    this.#openStreams.dec();
  }

  observeStreamTtfb(route: string, seconds: number): void {
    (this.#ttfbChildren.get(route) ?? remember(this.#ttfbChildren, route, this.#streamTtfb.labels(route))).observe(seconds);
  }

  contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}

export { AggregatorRegistry };
