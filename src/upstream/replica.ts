// One model server (one --llm-api-base URL): an undici Pool for traffic, built once at
// startup, and a separate Client for health probes so that a pool busy with long
// generations never makes a healthy server look down. It also keeps what routing reads:
// whether it is up, since when (slow start), and how many requests it has in flight.
import { Client, Pool, type Dispatcher } from 'undici';
import type { UpstreamConfig } from '../config/load-config.ts';
import type { ParsedUrl } from '../config/values.ts';
import { classifyUpstreamError } from './classify-error.ts';

/** vLLM (uvicorn) closes idle keep-alive connections after 5 s; closing ours first means
 * the gateway never sends a request on a connection the server is closing. */
const KEEP_ALIVE_MS = 4_000;
const PROBE_TIMEOUT_MS = 5_000;
/** A replica back from being down starts at this share of its weight (slow start). */
const SLOW_START_FLOOR = 0.1;

export interface ForwardRequest {
  readonly method: string;
  /** Path and query as the client sent them (starting with /v1/). */
  readonly path: string;
  /** Flat [name, value, ...] list, already filtered. */
  readonly headers: readonly string[];
  /** Bytes, or bytes in parts (written one after another, with the content-length the caller sets). */
  readonly body: Buffer | readonly Buffer[] | null;
  /** Which replica this request should go to when it can (several --llm-api-base). */
  readonly affinity?: Affinity | undefined;
  /** Told which replica answered (its id), when its response headers arrive. */
  readonly onReplica?: ((replica: string) => void) | undefined;
}

/** Where a request belongs: the replica that served its chain, or a key hashed to one. */
export interface Affinity {
  /** The replica that served the previous turn (from the stored response). */
  readonly replica?: string | null | undefined;
  /** A stable key of the chain (a conversation id, a prompt_cache_key), hashed to a replica
   * when no stored replica is known: every gateway maps a key to the same replica. */
  readonly key?: string | undefined;
}

/** What a probe of the server's APIs found, and what it saw. */
export interface ApiProbe {
  readonly api: 'responses' | 'chat' | 'unknown';
  readonly reason: string;
}

export type HealthResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export class Replica {
  /** The replica's name in metrics, logs and stored responses: its URL. */
  readonly id: string;
  readonly origin: string;
  readonly #basePath: string;
  readonly #via: string;
  readonly #apiKey: string | undefined;
  readonly #pool: Pool;
  readonly #probeClient: Client;
  #probeInFlight: Promise<HealthResult> | undefined;
  /** Requests sent and not yet ended (what least-outstanding routing compares). */
  inFlight = 0;
  /** Requests sent, and those that failed before an answer (metrics). */
  requests = 0;
  errors = 0;
  /** False from a failed probe or a refused connection until a probe passes. */
  up = true;
  /** When it came back (slow start), if it did. */
  #upSince: number | undefined;

  constructor(base: ParsedUrl, config: UpstreamConfig) {
    this.origin = base.origin;
    this.#basePath = base.basePath;
    this.id = base.origin + base.basePath;
    this.#via = config.via;
    this.#apiKey = config.apiKey;
    this.#pool = new Pool(base.origin, {
      // No connection cap: a stream holds its connection for minutes, and a cap would
      // queue short requests behind long generations.
      connections: null,
      pipelining: 1,
      keepAliveTimeout: KEEP_ALIVE_MS,
      keepAliveMaxTimeout: KEEP_ALIVE_MS,
      headersTimeout: config.headersTimeoutMs,
      bodyTimeout: config.idleTimeoutMs,
      connect: { timeout: config.connectTimeoutMs },
    });
    this.#probeClient = new Client(base.origin, {
      pipelining: 1,
      keepAliveTimeout: KEEP_ALIVE_MS,
      keepAliveMaxTimeout: KEEP_ALIVE_MS,
      headersTimeout: PROBE_TIMEOUT_MS,
      bodyTimeout: PROBE_TIMEOUT_MS,
      connect: { timeout: Math.min(config.connectTimeoutMs, PROBE_TIMEOUT_MS) },
    });
  }

  /** A request was sent to it. */
  began(): void {
    this.inFlight += 1;
    this.requests += 1;
  }

  /** A request sent to it ended; `failed`: before any answer. */
  ended(failed: boolean): void {
    this.inFlight -= 1;
    if (failed) this.errors += 1;
  }

  /** Marks it down (a failed probe, a refused connection); true if it was up. */
  markDown(): boolean {
    if (!this.up) return false;
    this.up = false;
    this.#upSince = undefined;
    return true;
  }

  /** Marks it up after a passing probe; true if it was down (its slow start begins). */
  markUp(now: number): boolean {
    if (this.up) return false;
    this.up = true;
    this.#upSince = now;
    return true;
  }

  /** Its share of new requests, from SLOW_START_FLOOR to 1 over `slowStartMs` after it came back. */
  weight(now: number, slowStartMs: number): number {
    if (this.#upSince === undefined) return 1;
    const elapsed = now - this.#upSince;
    if (elapsed >= slowStartMs) {
      this.#upSince = undefined;
      return 1;
    }
    return SLOW_START_FLOOR + ((1 - SLOW_START_FLOOR) * elapsed) / slowStartMs;
  }

  /** Sends the request to this server; the handler receives the response. */
  dispatch(request: ForwardRequest, handler: Dispatcher.DispatchHandler): void {
    this.#pool.dispatch(
      {
        method: request.method,
        path: this.#basePath + request.path,
        headers: request.headers as string[],
        // undici writes an iterable body chunk by chunk (lib/core/request.js accepts any
        // iterable; its types list only the single-chunk kinds).
        body: request.body as Buffer | null,
      },
      handler,
    );
  }

  /** One request whose whole answer is read: the status and the body as text. */
  async exchange(request: ForwardRequest): Promise<{ readonly status: number; readonly body: string }> {
    const response = await this.#pool.request({
      method: request.method,
      path: this.#basePath + request.path,
      headers: request.headers as string[],
      body: request.body as Buffer | null,
    });
    return { status: response.statusCode, body: await response.body.text() };
  }

  /** GET /health on the server. Concurrent callers share the probe in flight. */
  checkHealth(): Promise<HealthResult> {
    this.#probeInFlight ??= this.#probe().finally(() => {
      this.#probeInFlight = undefined;
    });
    return this.#probeInFlight;
  }

  async #probe(): Promise<HealthResult> {
    try {
      const response = await this.#probeClient.request({
        method: 'GET',
        path: `${this.#basePath}/health`,
        // A gateway pointed at itself answers its own probe with 508: not ready.
        headers: { via: `1.1 ${this.#via}` },
      });
      await response.body.dump();
      if (response.statusCode === 508) return { ok: false, reason: 'the upstream is this gateway (a request comes back to it: a loop)' };
      // A server with no /health route (Ollama, LM Studio) is ready when it lists its models.
      if (response.statusCode === 404) return await this.#modelsListed();
      return response.statusCode === 200 ? { ok: true } : { ok: false, reason: `vLLM /health answered ${response.statusCode}` };
    } catch (error) {
      const { error: said } = classifyUpstreamError(error, 'before-headers');
      return { ok: false, reason: `vLLM /health failed: ${said.message.replace(/\.$/, '')} (${said.code})` };
    }
  }

  async #modelsListed(): Promise<HealthResult> {
    const headers: Record<string, string> = { via: `1.1 ${this.#via}` };
    if (this.#apiKey !== undefined) headers['authorization'] = `Bearer ${this.#apiKey}`;
    const response = await this.#probeClient.request({ method: 'GET', path: `${this.#basePath}/v1/models`, headers });
    await response.body.dump();
    return response.statusCode === 200 ? { ok: true } : { ok: false, reason: `the model server has no /health, and GET /v1/models answered ${response.statusCode}` };
  }

  /**
   * Whether the server has a Responses API: POST /v1/responses with an empty object, which
   * a server that has it refuses as invalid (vLLM: 400) and one that has not answers 404
   * (llama.cpp, Ollama, SGLang, TGI) or 405. Nothing is generated either way. `unknown`:
   * the server did not answer (asked again later).
   */
  async probeResponsesApi(): Promise<ApiProbe> {
    try {
      const headers: Record<string, string> = { 'content-type': 'application/json', via: `1.1 ${this.#via}` };
      if (this.#apiKey !== undefined) headers['authorization'] = `Bearer ${this.#apiKey}`;
      const response = await this.#probeClient.request({ method: 'POST', path: `${this.#basePath}/v1/responses`, headers, body: '{}' });
      await response.body.dump();
      const status = response.statusCode;
      if (status === 404 || status === 405 || status === 501) return { api: 'chat', reason: `POST /v1/responses answered ${status}` };
      // 401/403: the server guards every route, so the answer does not tell; 508: the
      // upstream is a gateway (this one). Responses, as before --upstream-api existed.
      if (status === 401 || status === 403 || status === 508) {
        return { api: 'responses', reason: `POST /v1/responses answered ${status}, which does not tell: assuming Responses (--upstream-api chat for a chat-only server)` };
      }
      return { api: 'responses', reason: `POST /v1/responses answered ${status}` };
    } catch (error) {
      const { error: said } = classifyUpstreamError(error, 'before-headers');
      return { api: 'unknown', reason: `the model server did not answer: ${said.message.replace(/\.$/, '')} (${said.code})` };
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.#pool.close(), this.#probeClient.close()]);
  }

  async destroy(): Promise<void> {
    await Promise.all([this.#pool.destroy(), this.#probeClient.destroy()]);
  }
}
