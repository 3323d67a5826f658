// A run owns one response from its start to its terminal state: the call to vLLM (through
// an UpstreamRelay, which only moves bytes), the normalizer the plan chose, the response's
// ids and sequence numbers, its status, and its persistence. It never touches an HTTP
// response: deliveries do.
//
// - The client that created a foreground run is its sink: the relay's output goes straight
//   to it, and its backpressure slows reading from vLLM, as a plain proxy's would.
// - A background run (or a foreground one detached from its client) keeps its events: in
//   memory for subscribers of this process, and in the store's log (RunLogWriter) for
//   those of every other. It never waits on a subscriber: a slow one catches up from the
//   events kept.
import type { GatewayError } from '../errors.ts';
import type { LogSource } from '../observability/logger.ts';
import type { Json } from '../responses/items.ts';
import { normalizeResponse } from '../responses/response-object.ts';
import type { CreatePlan } from '../responses/responses-service.ts';
import { asGatewayError, UpstreamRelay, type RelaySink, type RelayTarget } from '../upstream/relay.ts';
import { upstreamErrorOf } from '../upstream/upstream-error.ts';
import type { AgentLoop } from './agent-loop.ts';
import type { RunLogWriter } from './run-log-writer.ts';

/** Reads the events of a run: a live SSE stream (http), later a WebSocket. */
export interface RunSubscriber {
  /** Events in sequence order, each one SSE event; false: wait for the drain listener. */
  write(events: readonly string[]): boolean;
  onceDrain(listener: () => void): void;
  /** The run ended and every event was written; or, with `error`, the events could not
   * be read on (the store failed): the reader may resume after its last event. */
  end(error?: GatewayError): void;
}

/** How a run reaches vLLM: its request (the plan's body, or a tool loop's turn), sent
 * with the given relay as the handler. */
export type Dispatch = (relay: UpstreamRelay, body: Buffer | undefined) => void;

export interface RunOptions {
  readonly plan: CreatePlan;
  readonly tenant: string;
  /** Keep every event (background runs, and foreground runs that may detach). */
  readonly keepEvents: boolean;
  readonly dispatch: Dispatch;
  /** What the relay needs besides its sink (metrics, limits, the exchange record). */
  readonly relay: Omit<RelayTarget, 'sink' | 'sendError' | 'retryAfterReset'>;
  readonly log: LogSource;
  /** Called once when the run has ended (its response stored, its log complete). */
  readonly onEnded?: ((run: Run) => void) | undefined;
  /** A response with MCP tools: several vLLM calls, one stream the run opens itself. */
  readonly agent?: AgentLoop | undefined;
}

/** How a run failed, for a client that waits for its end (a tool loop's JSON answer). */
export type RunFailure = { readonly error: GatewayError } | { readonly status: number; readonly body: string };

/** The head of a stream the run opens itself (a tool loop's, before vLLM is called). */
const STREAM_HEADERS = ['content-type', 'text/event-stream; charset=utf-8', 'cache-control', 'no-cache', 'x-accel-buffering', 'no'];

/** The foreground client: the sink the relay writes to while it is attached. */
interface Client {
  readonly sink: RelaySink;
  sendError(error: GatewayError): void;
}

/** The lone `[DONE]` line that ends a stream: not an event, never logged. */
const DONE_PREFIX = 'data: [DONE]';
/** A vLLM connection reset before answering is retried once (see http/forward.ts). */
const RETRIES_ON_RESET = 1;
/** vLLM's error answers are short; a longer one is cut (chunks of up to 64 KiB). */
const MAX_ERROR_PARTS = 4;

export class Run implements RelaySink {
  readonly id: string;
  readonly tenant: string;
  readonly plan: CreatePlan;
  /** queued -> in_progress -> completed | incomplete | failed | cancelled */
  status: string;
  readonly #options: RunOptions;
  #relay: UpstreamRelay | undefined;
  #client: Client | undefined;
  /** Every event so far, when kept: index = sequence_number. */
  readonly #events: string[] | undefined;
  /** Made on first use: most runs (foreground) never have one. */
  #subscribers: Set<Subscription> | undefined;
  #logWriter: RunLogWriter | undefined;
  #drainListener: (() => void) | undefined;
  /** The relay's output is an event stream (what is kept as events). */
  #streaming = false;
  /** vLLM's error answer to a run without a client, being read. */
  #upstreamError: Buffer[] | undefined;
  #retriesLeft = RETRIES_ON_RESET;
  #ended = false;
  /** #finish has run to its end (whenEnded resolves at once). */
  #settled = false;
  /** Made on first use (cancel, shutdown); resolved by #finish. */
  #whenEnded: Promise<void> | undefined;
  #resolveEnded: (() => void) | undefined;
  /** The relay's target without its per-dispatch parts, made once. */
  readonly #relayTarget: RelayTarget;
  readonly #agent: AgentLoop | undefined;
  /** The request of the vLLM call in progress, when not the plan's (a tool loop's turn). */
  #body: Buffer | undefined;
  #clientEnded = false;
  /** Why the run failed, when it did before its response was complete. */
  failure: RunFailure | undefined;

  constructor(options: RunOptions) {
    this.#options = options;
    this.plan = options.plan;
    this.id = options.plan.facts.id;
    this.tenant = options.tenant;
    this.status = 'queued';
    this.#events = options.keepEvents ? [] : undefined;
    this.#agent = options.agent;
    const relay = options.relay;
    // Listed, not spread: a spread copy costs about a microsecond per run.
    this.#relayTarget = {
      sink: this,
      extraHeaders: relay.extraHeaders,
      route: relay.route,
      startedAt: relay.startedAt,
      metrics: relay.metrics,
      log: relay.log,
      maxEventBytes: relay.maxEventBytes,
      record: relay.record,
      usage: relay.usage,
      sendError: (error) => this.#sendError(error),
      retryAfterReset: () => this.#retryAfterReset(),
    };
  }

  /** The response object as the run begins (what a background POST answers). */
  initialResponse(status: string): Json {
    return normalizeResponse({}, this.plan.facts, { status, output: [], usage: null, error: null });
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Resolves once the run has ended (its log written, when it has one). */
  whenEnded(): Promise<void> {
    if (this.#whenEnded === undefined) {
      this.#whenEnded = this.#settled ? Promise.resolve() : new Promise((resolve) => (this.#resolveEnded = resolve));
    }
    return this.#whenEnded;
  }

  /** The events kept so far (background and detachable runs). */
  events(): readonly string[] {
    return this.#events ?? [];
  }

  /** The foreground client: the relay writes to it until it goes. */
  attachClient(sink: RelaySink, sendError: (error: GatewayError) => void): void {
    this.#client = { sink, sendError };
  }

  /** From now on the events also go to the store's log (the writer has those so far). */
  persistTo(writer: RunLogWriter): void {
    this.#logWriter = writer;
    // Bound, not an arrow: an arrow stored here kept every background run, its events
    // and its response, alive past the scavenges after it (1.8 MB promoted a scavenge at
    // c=1, 16 KB bound; bench/README.md, "Garbage").
    writer.onWritten = this.#pumpSubscribers.bind(this);
    if (this.#events !== undefined && this.#events.length > 0) writer.add(this.#events);
  }

  /**
   * How many of the kept events a subscriber may be given: those already in the store's
   * log, when the run has one. A reader then never sees an event that a crash of this
   * process would lose, so a resume (here or on another process) joins what it saw; all
   * of them when there is no log, or it was given up.
   */
  deliverable(): number {
    const kept = this.#events?.length ?? 0;
    const writer = this.#logWriter;
    return writer === undefined || writer.abandoned ? kept : Math.min(kept, writer.written);
  }

  #pumpSubscribers(): void {
    if (this.#subscribers !== undefined) for (const subscription of this.#subscribers) subscription.pump();
  }

  /** Sends the request to vLLM. */
  start(): void {
    if (this.#ended || this.#relay !== undefined || this.status !== 'queued') return;
    this.status = 'in_progress';
    const agent = this.#agent;
    if (agent === undefined) {
      this.#dispatch(undefined);
      return;
    }
    // A tool loop's stream is the run's: it opens now (tools are listed before vLLM is
    // called), and vLLM's answers add to it.
    this.#streaming = true;
    this.#client?.sink.head(200, [...STREAM_HEADERS, ...this.#relayTarget.extraHeaders], undefined, true);
    agent.begin((output) => this.#emit(output)).then(
      (body) => {
        if (!this.#ended) this.#dispatch(body);
      },
      (error: unknown) => this.#failWithEvents(asGatewayError(error)),
    );
  }

  #dispatch(body: Buffer | undefined): void {
    this.#body = body;
    const relay = new UpstreamRelay(this.#relayTarget, this.plan.transformer);
    // Planned on a kept context not yet confirmed: vLLM is called now, its answer held.
    const confirmation = this.plan.confirmation;
    if (confirmation !== undefined) relay.holdUntil(confirmation);
    this.#relay = relay;
    this.#options.dispatch(relay, body);
  }

  #retryAfterReset(): boolean {
    if (this.#retriesLeft === 0 || this.#ended) return false;
    this.#retriesLeft -= 1;
    this.#options.log().debug('vLLM reset the connection before answering; retrying once');
    this.#dispatch(this.#body);
    return true;
  }

  // --- the relay's sink ------------------------------------------------------------------

  head(status: number, headers: readonly string[], statusMessage: string | undefined, flush: boolean): void {
    if (this.#agent !== undefined) {
      // The run's stream is open already; vLLM's refusal is told in it, as a failure.
      if (status >= 300) this.#upstreamError = [];
      return;
    }
    // Only an event stream is kept as events (not vLLM's error answers, nor JSON).
    this.#streaming = flush && status < 300;
    const client = this.#client;
    if (client !== undefined) client.sink.head(status, headers, statusMessage, flush);
    // Without a client, vLLM's error answer is read whole, then told as the run's failure.
    else if (status >= 300) this.#upstreamError = [];
  }

  write(parts: readonly (string | Buffer)[]): boolean {
    // A tool loop that failed between vLLM calls may still see its tools answer: too late.
    if (this.#ended) return true;
    if (this.#upstreamError !== undefined) {
      for (const part of parts) if (this.#upstreamError.length < MAX_ERROR_PARTS) this.#upstreamError.push(Buffer.from(part));
      return true;
    }
    if (this.#events !== undefined && this.#streaming) this.#keep(parts);
    const client = this.#client;
    // A foreground client's backpressure reaches vLLM; a run without one never waits.
    return client === undefined ? true : client.sink.write(parts);
  }

  onceDrain(listener: () => void): void {
    if (this.#client === undefined) {
      listener();
      return;
    }
    this.#drainListener = listener;
    this.#client.sink.onceDrain(() => this.#drained());
  }

  end(body?: string | Buffer): void {
    const upstreamError = this.#upstreamError;
    if (upstreamError !== undefined) {
      this.#upstreamError = undefined;
      this.#failWithUpstreamError(Buffer.concat(upstreamError).toString());
      return;
    }
    const next = this.#ended ? undefined : this.#agent?.takeNextBody();
    if (next !== undefined) {
      // A tool loop's turn ended with calls answered: the next vLLM call goes on the same stream.
      this.#relay?.responseClosed();
      this.#relayTarget.usage?.nextBody();
      this.plan.transformer.streamNormalizer().beginTurn();
      this.#retriesLeft = RETRIES_ON_RESET;
      this.#dispatch(next);
      return;
    }
    this.#endClient(body);
    this.#finish();
  }

  /** Ends the client's answer once (a tool loop's may end from a failure path too). */
  #endClient(body?: string | Buffer): void {
    if (this.#clientEnded) return;
    this.#clientEnded = true;
    this.#client?.sink.end(body);
  }

  destroy(): void {
    this.#client?.sink.destroy();
    this.#finish();
  }

  // --- ending ------------------------------------------------------------------------------

  /** A failure before vLLM's stream began (no answer, an error status, a bad body). */
  #sendError(error: GatewayError): void {
    const client = this.#client;
    this.failure = { error };
    if (client !== undefined && this.#agent === undefined) {
      // The client gets the error as JSON, as before runs existed.
      client.sendError(error);
      this.#finish();
      return;
    }
    // Without a client the failure is told in the events, and stored.
    this.#failWithEvents(error);
  }

  /** vLLM refused the request (an error status): the normalizer reads its error body as it
   * reads an error event, so the run fails with vLLM's message, stored like any failure. */
  #failWithUpstreamError(body: string): void {
    const error = upstreamErrorOf(body);
    this.failure = { status: this.#relayTarget.record.upstreamStatus ?? 502, body };
    const event = Buffer.from(`event: error\ndata: ${JSON.stringify({ type: 'error', error })}\n\n`);
    const normalizer = this.plan.transformer.streamNormalizer();
    const done = normalizer.onEvents([event], (output) => this.#emit(output));
    Promise.resolve(done).then(
      () => this.#finish(),
      () => this.#finish(),
    );
  }

  #emit(output: string | Buffer | readonly (string | Buffer)[] | null | undefined): void {
    if (output === null || output === undefined) return;
    this.#streaming = true;
    this.write(typeof output === 'string' || Buffer.isBuffer(output) ? [output] : output);
  }

  /** Emits error + response.failed through the normalizer (which stores the failed response). */
  #failWithEvents(error: GatewayError): void {
    const normalizer = this.plan.transformer.streamNormalizer();
    // An ended stream may still be waiting for the store before its last lines: onFailure
    // then waits for them too.
    const done = normalizer.onFailure(error, (output) => this.#emit(output));
    Promise.resolve(done).then(
      () => this.#finish(),
      () => this.#finish(),
    );
  }

  /** The gateway ends the run (shutdown): the client or the log is told, vLLM stops. */
  failFromGateway(error: GatewayError): void {
    // A failure already under way ends the run itself, once its failed response is stored
    // and its last events are out: the failure stored is the one the run reports.
    if (this.#ended || this.failure !== undefined) return;
    this.failure = { error };
    const agent = this.#agent;
    agent?.abort();
    // Between a tool loop's vLLM calls no relay is reading: the run fails itself.
    if (this.#relay === undefined || agent?.busy === true) this.#failWithEvents(error);
    else this.#relay.failFromGateway(error);
  }

  /**
   * Stops the run as cancelled: vLLM's request is aborted, the response is stored with what
   * was generated, and the stream ends without a terminal event (OpenAI's have none for
   * cancellation). Resolves once the run has ended (a run that was already ending ends as
   * it was going to).
   */
  async cancel(): Promise<void> {
    const normalizer = this.plan.transformer.streamNormalizer();
    if (this.#ended || normalizer.ended) return this.whenEnded();
    this.#relay?.clientClosed();
    this.#agent?.abort();
    const response = normalizer.cancelledResponse();
    this.status = 'cancelled';
    try {
      await this.plan.transformer.finish(response, JSON.stringify(response));
    } catch (error) {
      this.#options.log().error({ err: error }, 'storing the cancelled response failed');
    }
    this.#finish();
    return this.whenEnded();
  }

  /**
   * The plan's kept context was not confirmed (CreatePlan.confirmation): the relay dropped
   * vLLM's answer, so nothing of this run reached its client, which is left to the caller
   * (it plans the request again). The run ends as if it had never begun.
   */
  abandon(): void {
    if (this.#ended) return;
    this.#client = undefined;
    this.#relay?.clientClosed();
    this.#finish();
  }

  /**
   * The foreground client went away. A run that may detach goes on as a background one
   * (`detach` registers it); any other stops vLLM, as a proxy does.
   */
  clientGone(detach: ((run: Run) => void) | undefined): void {
    if (this.#client === undefined || this.#ended) return;
    this.#client = undefined;
    if (detach === undefined || this.#events === undefined) {
      this.#relay?.clientClosed();
      this.#agent?.abort();
      this.#finish();
      return;
    }
    detach(this);
    // The relay may be waiting for the gone client's drain.
    this.#drained();
  }

  #drained(): void {
    const listener = this.#drainListener;
    this.#drainListener = undefined;
    listener?.();
  }

  #finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#relay?.responseClosed();
    // A tool loop's client may still wait (it failed between vLLM calls).
    if (this.#agent !== undefined) this.#endClient();
    // What was stored says how it ended; nothing stored (a client's error answer) is a failure.
    this.status = this.status === 'cancelled' ? 'cancelled' : (this.plan.transformer.finalStatus ?? 'failed');
    this.#pumpSubscribers();
    const writer = this.#logWriter;
    const ended = (): void => {
      this.#settled = true;
      this.#resolveEnded?.();
      this.#options.onEnded?.(this);
    };
    if (writer === undefined) ended();
    else writer.finish(this.status).then(ended, ended);
  }

  // --- events and subscribers --------------------------------------------------------------

  /** Keeps the events of one write: each part is one event (the normalizer's output), in
   * sequence order, so an event's index is its sequence_number. */
  #keep(parts: readonly (string | Buffer)[]): void {
    const events = this.#events as string[];
    const first = events.length;
    for (const part of parts) {
      const event = typeof part === 'string' ? part : part.toString();
      if (!event.startsWith(DONE_PREFIX)) events.push(event);
    }
    if (events.length === first) return;
    this.#logWriter?.add(events.slice(first));
    this.#pumpSubscribers();
  }

  /**
   * Sends `subscriber` every kept event after sequence number `afterSeq`, then the live ones,
   * then ends it. Returns the way to unsubscribe (its client went away).
   */
  subscribe(afterSeq: number, subscriber: RunSubscriber): () => void {
    const subscription = new Subscription(this, subscriber, afterSeq + 1);
    (this.#subscribers ??= new Set()).add(subscription);
    subscription.pump();
    // Bound, not an arrow over this scope: the client's request keeps it (see
    // create-response.ts on what an arrow kept alive).
    return this.unsubscribe.bind(this, subscription);
  }

  /** Stops giving `subscription` events (its client left, or it was given them all). */
  unsubscribe(subscription: Subscription): void {
    this.#subscribers?.delete(subscription);
  }
}

/** One subscriber's position in a run's events. */
class Subscription {
  readonly #run: Run;
  readonly #subscriber: RunSubscriber;
  #next: number;
  #waiting = false;

  constructor(run: Run, subscriber: RunSubscriber, next: number) {
    this.#run = run;
    this.#subscriber = subscriber;
    this.#next = Math.max(0, next);
  }

  /** Writes what it has not seen; on backpressure waits for drain (the run goes on). */
  pump(): void {
    if (this.#waiting) return;
    const events = this.#run.events();
    const deliverable = this.#run.deliverable();
    if (this.#next < deliverable) {
      const batch = events.slice(this.#next, deliverable);
      this.#next = deliverable;
      if (!this.#subscriber.write(batch)) {
        this.#waiting = true;
        this.#subscriber.onceDrain(() => {
          this.#waiting = false;
          this.pump();
        });
        return;
      }
    }
    // Ended, and every event given (the last ones wait for the log like the others).
    if (this.#run.ended && this.#next >= events.length) {
      this.#run.unsubscribe(this);
      this.#subscriber.end();
    }
  }
}
