// The model servers, as the rest of the gateway reaches them: one or several replicas of
// one model (--llm-api-base, repeated). With one, requests go to it as they always did.
// With several:
// - each request goes to a replica chosen by the router (replica-router.ts): the least
//   busy healthy one, or the one its chain belongs to (affinity);
// - a replica that refuses the connection or resets it before answering is marked down and
//   the request is sent once to another (nothing had reached the client); after an answer
//   began, a failure ends the response as with one replica;
// - every replica's /health is asked each --upstream-health-interval; one that fails is
//   down until it passes, then takes a growing share of requests (--upstream-slow-start);
// - /ready is ready while any replica is.
import type { Dispatcher } from 'undici';
import type { UpstreamConfig } from '../config/load-config.ts';
import type { Logger } from '../observability/logger.ts';
import type { ReplicaReading } from '../observability/metrics.ts';
import { classifyUpstreamError, type ClassifiedUpstreamError } from './classify-error.ts';
import { Replica, type ApiProbe, type ForwardRequest, type HealthResult } from './replica.ts';
import { ReplicaRouter, type AffinityOutcome } from './replica-router.ts';

export type { Affinity, ApiProbe, ForwardRequest, HealthResult } from './replica.ts';

/** Failures before an answer that say the replica is not there to take requests. */
const FAILOVER_KINDS: ReadonlySet<string> = new Set(['connect_refused', 'connect_timeout', 'unreachable', 'dns_failure', 'tls', 'reset']);

/** A request goes to at most this many replicas more when the one it went to fails before answering. */
const FAILOVER_RETRIES = 1;

export class UpstreamClient {
  /** The first replica's origin (the only one's, for most gateways). */
  readonly origin: string;
  readonly #replicas: readonly Replica[];
  readonly #router = new ReplicaRouter();
  readonly #config: UpstreamConfig;
  #log: Logger | undefined;
  #healthTimer: NodeJS.Timeout | undefined;
  /** How often affinity was kept, moved, or not asked for (metrics). */
  readonly affinity: Record<AffinityOutcome, number> = { kept: 0, moved: 0, none: 0 };

  constructor(config: UpstreamConfig) {
    this.#config = config;
    this.#replicas = config.replicas.map((base) => new Replica(base, config));
    this.origin = (this.#replicas[0] as Replica).origin;
  }

  /** More than one replica: routing, health checks and failover are on. */
  get replicated(): boolean {
    return this.#replicas.length > 1;
  }

  /** The replicas as /metrics reads them (each holds its own counts). */
  states(): readonly ReplicaReading[] {
    return this.#replicas;
  }

  /** Starts asking every replica's /health on the interval (with several; once at once). */
  startHealthChecks(log: Logger): void {
    this.#log = log;
    if (!this.replicated || this.#healthTimer !== undefined) return;
    void this.checkHealth();
    this.#healthTimer = setInterval(() => void this.checkHealth(), this.#config.healthIntervalMs);
    this.#healthTimer.unref();
  }

  /** Sends the request to a replica; the handler receives the response. */
  dispatch(request: ForwardRequest, handler: Dispatcher.DispatchHandler): void {
    if (!this.replicated) {
      // One server: nothing to choose or fail over to, and nothing in the way of the hot path.
      (this.#replicas[0] as Replica).dispatch(request, handler);
      return;
    }
    const index = this.#choose(request, undefined);
    new FailoverHandler(this, request, handler, this.#replicas[index] as Replica, FAILOVER_RETRIES).send();
  }

  /**
   * One request whose whole answer the gateway reads (a compaction's summary): the status
   * and the body as text. Failures to reach vLLM come back as the gateway's errors; with
   * several replicas, a replica that cannot be reached is marked down and another asked once.
   */
  async exchange(request: ForwardRequest): Promise<{ readonly status: number; readonly body: string }> {
    const tried = new Set<number>();
    for (;;) {
      const index = this.replicated ? this.#choose(request, tried) : 0;
      const replica = this.#replicas[index] as Replica;
      tried.add(index);
      replica.began();
      let answer: { readonly status: number; readonly body: string };
      try {
        answer = await replica.exchange(request);
      } catch (error) {
        replica.ended(true);
        const classified = classifyUpstreamError(error, 'before-headers');
        if (tried.size > FAILOVER_RETRIES || !this.failedOver(replica, classified)) throw classified.error;
        continue;
      }
      replica.ended(false);
      if (this.replicated) request.onReplica?.(replica.id);
      return answer;
    }
  }

  /** The replica for a request (indices in `tried` excluded). */
  #choose(request: ForwardRequest, tried: ReadonlySet<number> | undefined): number {
    const now = Date.now();
    const slowStartMs = this.#config.slowStartMs;
    const candidates = this.#replicas.map((replica) => ({ id: replica.id, up: replica.up, inFlight: replica.inFlight, weight: replica.weight(now, slowStartMs) }));
    const affinity = this.#config.affinity ? request.affinity : undefined;
    const choice = this.#router.choose(candidates, affinity?.replica ?? undefined, affinity?.key, tried) ?? { index: 0, outcome: 'none' };
    if (tried === undefined || tried.size === 0) this.affinity[choice.outcome] += 1;
    return choice.index;
  }

  /** The replica to try next, none of `tried`: undefined when none is left. */
  nextAfter(request: ForwardRequest, tried: ReadonlySet<number>): Replica | undefined {
    if (tried.size >= this.#replicas.length) return undefined;
    return this.#replicas[this.#choose(request, tried)];
  }

  indexOf(replica: Replica): number {
    return this.#replicas.indexOf(replica);
  }

  /** A failure before any answer: whether it marks the replica down and allows another try. */
  failedOver(replica: Replica, classified: ClassifiedUpstreamError): boolean {
    if (!this.replicated || !FAILOVER_KINDS.has(classified.kind)) return false;
    this.#markDown(replica, classified.kind);
    return true;
  }

  #markDown(replica: Replica, reason: string): void {
    if (replica.markDown()) this.#log?.warn({ replica: replica.id, reason }, 'replica marked down; its requests go to the others until /health passes');
  }

  /** Whether any replica is ready: each one's /health (shared with calls in flight). */
  async checkHealth(): Promise<HealthResult> {
    if (!this.replicated) return (this.#replicas[0] as Replica).checkHealth();
    const results = await Promise.all(this.#replicas.map((replica) => replica.checkHealth()));
    const now = Date.now();
    results.forEach((result, i) => {
      const replica = this.#replicas[i] as Replica;
      if (result.ok) {
        if (replica.markUp(now)) this.#log?.info({ replica: replica.id, slow_start_ms: this.#config.slowStartMs }, 'replica is up again; its share of requests grows back over the slow start');
      } else this.#markDown(replica, result.reason);
    });
    if (results.some((result) => result.ok)) return { ok: true };
    const reasons = results.map((result, i) => `${(this.#replicas[i] as Replica).id}: ${result.ok ? 'ok' : result.reason}`);
    return { ok: false, reason: `no replica is ready (${reasons.join('; ')})` };
  }

  /** Which API the servers have: asked of the replicas in turn (those up first) until one answers. */
  async probeResponsesApi(): Promise<ApiProbe> {
    const order = [...this.#replicas.filter((replica) => replica.up), ...this.#replicas.filter((replica) => !replica.up)];
    let probe: ApiProbe = { api: 'unknown', reason: 'no replica' };
    for (const replica of order) {
      probe = await replica.probeResponsesApi();
      if (probe.api !== 'unknown') return probe;
    }
    return probe;
  }

  async close(): Promise<void> {
    clearInterval(this.#healthTimer);
    await Promise.all(this.#replicas.map((replica) => replica.close()));
  }

  /** Closes at once, failing requests in flight (after the shutdown grace period). */
  async destroy(): Promise<void> {
    clearInterval(this.#healthTimer);
    await Promise.all(this.#replicas.map((replica) => replica.destroy()));
  }
}

/**
 * One request's handler while it is with a replica: counts it in flight, tells which
 * replica answered, and, when the replica fails before answering, sends the request to the
 * next replica (`tries` left) instead of telling the client. The client's handler sees one
 * controller throughout (a view onto whichever attempt is current).
 */
class FailoverHandler implements Dispatcher.DispatchHandler {
  readonly #set: UpstreamClient;
  readonly #request: ForwardRequest;
  readonly #inner: Dispatcher.DispatchHandler;
  readonly #view = new SwitchingController();
  readonly #tried = new Set<number>();
  #replica: Replica;
  #triesLeft: number;
  #started = false;
  #answered = false;

  constructor(set: UpstreamClient, request: ForwardRequest, inner: Dispatcher.DispatchHandler, replica: Replica, tries: number) {
    this.#set = set;
    this.#request = request;
    this.#inner = inner;
    this.#replica = replica;
    this.#triesLeft = tries;
    this.#begin(replica);
  }

  #begin(replica: Replica): void {
    this.#replica = replica;
    this.#tried.add(this.#set.indexOf(replica));
    replica.began();
  }

  send(): void {
    this.#replica.dispatch(this.#request, this);
  }

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.#view.use(controller);
    if (this.#started) return;
    this.#started = true;
    this.#inner.onRequestStart?.(this.#view, context);
  }

  onRequestUpgrade(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>, socket: unknown): void {
    this.#inner.onRequestUpgrade?.(this.#view, statusCode, headers, socket as never);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    this.#answered = true;
    this.#view.rawHeaders = controller.rawHeaders ?? null;
    this.#request.onReplica?.(this.#replica.id);
    this.#inner.onResponseStart?.(this.#view, statusCode, headers, statusMessage);
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#inner.onResponseData?.(this.#view, chunk);
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    this.#replica.ended(false);
    this.#inner.onResponseEnd?.(this.#view, trailers);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.#replica.ended(!this.#answered);
    if (!this.#answered && !this.#view.aborted && this.#triesLeft > 0) {
      if (this.#set.failedOver(this.#replica, classifyUpstreamError(error, 'before-headers'))) {
        const next = this.#set.nextAfter(this.#request, this.#tried);
        if (next !== undefined) {
          this.#triesLeft -= 1;
          this.#begin(next);
          this.send();
          return;
        }
      }
    }
    this.#inner.onResponseError?.(this.#view, error);
  }
}

/** The controller a handler keeps across attempts: it acts on the current attempt's, and
 * an abort or pause asked between attempts carries over to the next. */
class SwitchingController implements Dispatcher.DispatchController {
  rawHeaders: Dispatcher.DispatchController['rawHeaders'] = null;
  #current: Dispatcher.DispatchController | undefined;
  #aborted = false;
  #reason: Error | null = null;
  #paused = false;

  use(controller: Dispatcher.DispatchController): void {
    this.#current = controller;
    if (this.#aborted) controller.abort(this.#reason ?? new Error('aborted'));
    else if (this.#paused) controller.pause();
  }

  get aborted(): boolean {
    return this.#aborted || (this.#current?.aborted ?? false);
  }

  get paused(): boolean {
    return this.#current?.paused ?? this.#paused;
  }

  get reason(): Error | null {
    return this.#reason ?? this.#current?.reason ?? null;
  }

  abort(reason: Error): void {
    this.#aborted = true;
    this.#reason = reason;
    this.#current?.abort(reason);
  }

  pause(): void {
    this.#paused = true;
    this.#current?.pause();
  }

  resume(): void {
    this.#paused = false;
    this.#current?.resume();
  }
}
