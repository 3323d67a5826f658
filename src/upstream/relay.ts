// Relays one vLLM response to one sink: an undici dispatch handler that hands status,
// filtered headers and body to a RelaySink, a client's node:http ServerResponse
// (ResponseSink) or a run (runs/), which owns the response from there.
//
// - Bytes are written as they arrive; a full client socket pauses reading from vLLM
//   (backpressure) instead of buffering in the gateway.
// - Server-sent events are relayed event by event: the bytes of an event go out the moment
//   its closing blank line arrives. A client cannot use half an event, and holding the
//   unfinished tail is what lets a mid-stream failure end with a clean `error` event.
// - A transformer, when given, takes over the body: per event (streams) or whole
//   (JSON). This is where the responses layer normalises and stores.
import type { ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { GatewayError, renderSseError } from '../errors.ts';
import type { LogSource } from '../observability/logger.ts';
import type { GatewayMetrics } from '../observability/metrics.ts';
import { classifyUpstreamError, describeCause, type ClassifiedUpstreamError } from './classify-error.ts';
import { filterResponseHeaders } from './hop-by-hop.ts';
import { SseBoundary } from './sse-boundary.ts';
import type { UsageScanner } from './usage-scanner.ts';

export type Output = string | Buffer | readonly (string | Buffer)[] | null | undefined;
export type Emit = (output: Output) => void;

export interface UpstreamHead {
  readonly status: number;
  readonly rawHeaders: readonly (Buffer | string)[];
  readonly isEventStream: boolean;
}

/** Rewrites a streamed body event by event. */
export interface EventStreamTransform {
  readonly kind: 'events';
  /** One or more complete SSE events, each with its closing blank line, as the chunks
   * they arrived in (the last chunk cut at the last event end). A returned promise
   * pauses reading from vLLM until it settles; output may be emitted before. `parts` is
   * the relay's, valid during the call only (it is reused for the next chunk). */
  onEvents(parts: readonly Buffer[], emit: Emit): void | Promise<void>;
  /** vLLM ended the body cleanly. */
  onEnd(emit: Emit): void | Promise<void>;
  /** vLLM failed mid-stream; `error` is what the client must be told. */
  onFailure(error: GatewayError, emit: Emit): void | Promise<void>;
  /**
   * The token usage and model vLLM reported in the body that just ended (its terminal
   * event's response), taken once. A transform that reads the terminal event anyway offers
   * them: the usage meter then need not keep the body's last chunks (16 KiB of small
   * buffers a stream, each pinning its own socket read) to search them at the end.
   */
  takeUsage?(): ReportedUsage | undefined;
}

/** What a transform that parses vLLM's answer anyway can tell of its usage. */
type UsageReporter = Pick<EventStreamTransform, 'takeUsage'>;

/** What a body reported of itself: vLLM's usage object and model name, as sent. */
export interface ReportedUsage {
  readonly usage: unknown;
  readonly model: unknown;
}

export interface BufferedReply {
  readonly status: number;
  /** Response headers as a flat [name, value, ...] list, Content-Length excluded. */
  readonly headers: readonly string[];
  readonly body: string | Buffer;
}

/** Replaces a whole (non-streamed) body. */
export interface BufferedTransform {
  readonly kind: 'buffered';
  finish(body: Buffer, head: UpstreamHead, filteredHeaders: readonly string[]): BufferedReply | Promise<BufferedReply>;
  /** The usage of the body finish() read, taken once (see EventStreamTransform.takeUsage):
   * the usage meter then need not scan the body a second time. */
  takeUsage?(): ReportedUsage | undefined;
}

export interface ResponseTransformer {
  /** Called once vLLM's status and headers are in; undefined relays the bytes unchanged. */
  select(head: UpstreamHead): EventStreamTransform | BufferedTransform | undefined;
}

/** What the access log and metrics learn about the exchange. */
export interface ExchangeRecord {
  upstreamStatus: number | undefined;
  streamed: boolean;
  bytesOut: number;
  errorCode: string | undefined;
}

/** Where the relay's answer goes. */
export interface RelaySink {
  /** Status and headers (flat); `flush` sends them at once (an event stream). */
  head(status: number, headers: readonly string[], statusMessage: string | undefined, flush: boolean): void;
  /** The output of one tick, in order (each part of a transformed stream is one event);
   * false asks the relay to stop reading from vLLM until the drain listener is called.
   * `parts` is the relay's, valid during the call only: a sink that keeps parts copies them. */
  write(parts: readonly (string | Buffer)[]): boolean;
  onceDrain(listener: () => void): void;
  end(body?: string | Buffer): void;
  /** Cuts the answer short (a plain body that failed half-way). */
  destroy(): void;
}

export interface RelayTarget {
  readonly sink: RelaySink;
  /** Headers the gateway adds to every response (CORS, x-request-id), flat. */
  readonly extraHeaders: readonly string[];
  readonly route: string;
  /** performance.now() when the request arrived. */
  readonly startedAt: number;
  readonly metrics: GatewayMetrics;
  /** The request's logger, made on first use (a pino child per request is not free). */
  readonly log: LogSource;
  /** Largest unfinished SSE event (or buffered body) held before the exchange is failed. */
  readonly maxEventBytes: number;
  readonly record: ExchangeRecord;
  /** Sees the body of a successful answer as vLLM sent it, to find its token usage. */
  readonly usage?: UsageScanner | undefined;
  /** Answers with an error when no response header has been sent yet. */
  sendError(error: GatewayError): void;
  /** vLLM reset the connection before answering: true if the request was sent again. */
  retryAfterReset?(): boolean;
}

type Mode = 'head' | 'raw' | 'raw-events' | 'events' | 'buffered' | 'finished';

class ClientGoneError extends Error {
  override name = 'ClientGoneError';
  code = 'CLIENT_GONE';
}

function contentTypeOf(headers: Record<string, string | string[] | undefined>): string {
  const value = headers['content-type'];
  return (Array.isArray(value) ? value[0] : value) ?? '';
}

export class UpstreamRelay implements Dispatcher.DispatchHandler {
  readonly #target: RelayTarget;
  readonly #transformer: ResponseTransformer | undefined;
  #controller: Dispatcher.DispatchController | undefined;
  #mode: Mode = 'head';
  #head: UpstreamHead | undefined;
  /** Meters the token usage by the body's bytes (what passes untransformed). */
  #usage: UsageScanner | undefined;
  /** Meters it by what the event transform reports (see EventStreamTransform.takeUsage). */
  #usageReport: UsageScanner | undefined;
  #filteredHeaders: string[] = [];
  #clientGone = false;
  #boundary: SseBoundary | undefined;
  #pending: Buffer[] = [];
  /** An emptied array for #pending to move to (see #completeEvents). */
  #sparePending: Buffer[] | undefined = [];
  #pendingBytes = 0;
  #firstByteSeen = false;
  /** vLLM's head came (held or not): a failure from now on is in its body. */
  #answered = false;
  #streamCounted = false;
  #events: EventStreamTransform | undefined;
  #buffered: BufferedTransform | undefined;
  /** Work of the transformer in progress; later chunks wait behind it. */
  #work: Promise<void> | undefined;
  #queued: Array<() => void | Promise<void>> = [];
  #pausedForDrain = false;
  /** Output of this tick not yet handed to the response; see #write. */
  #outbox: Array<string | Buffer> = [];
  /** The outbox of the tick before, emptied: the next one (see #flush). */
  #spareOutbox: Array<string | Buffer> | undefined = [];
  #outboxScheduled = false;
  readonly #flushOutbox = (): void => this.#flush();
  /** An abort the gateway asked for before undici handed over the controller. */
  #gatewayAbort: GatewayError | undefined;
  readonly #emit: Emit = (output) => this.#write(output);
  readonly #onDrain = (): void => {
    this.#pausedForDrain = false;
    this.#maybeResume();
  };

  constructor(target: RelayTarget, transformer: ResponseTransformer | undefined) {
    this.#target = target;
    this.#transformer = transformer;
  }

  /** Ends the exchange with the gateway's own error (shutdown): the client is told, vLLM stops. */
  failFromGateway(error: GatewayError): void {
    if (this.#clientGone || this.#mode === 'finished') return;
    this.#gatewayAbort = error;
    this.#controller?.abort(error);
  }

  /**
   * Holds vLLM's answer until `confirmation` resolves (a request planned on a kept context
   * whose check is under way: CreatePlan.confirmation). It waits as it would behind a
   * transform's work: its head too, the socket paused. True: it goes on. False, or a
   * rejection: vLLM's request is aborted and nothing of its answer reaches the sink (the
   * request is planned again, or answered with the store's error).
   */
  holdUntil(confirmation: Promise<boolean>): void {
    this.#track(confirmation.then(this.#holdEnded.bind(this), this.#discard.bind(this)));
  }

  #holdEnded(confirmed: boolean): void {
    if (!confirmed) this.#discard();
  }

  #discard(): void {
    this.#queued = [];
    this.clientClosed();
  }

  /** The client went away: abort the upstream request so vLLM stops generating. */
  clientClosed(): void {
    if (this.#clientGone) return;
    this.#clientGone = true;
    this.#controller?.abort(new ClientGoneError('client closed the connection'));
    this.#closeStream();
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#clientGone) controller.abort(new ClientGoneError('client closed the connection'));
    else if (this.#gatewayAbort !== undefined) controller.abort(this.#gatewayAbort);
    // Held (holdUntil): nothing is read past the head until the hold ends.
    else if (this.#work !== undefined) controller.pause();
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    status: number,
    headers: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void {
    if (status < 200 || this.#clientGone) return;
    this.#answered = true;
    if (this.#work !== undefined) {
      // Held (holdUntil): the head waits too.
      this.#queued.push(this.onResponseStart.bind(this, controller, status, headers, statusMessage));
      return;
    }
    const target = this.#target;
    const rawHeaders = (controller.rawHeaders as (Buffer | string)[] | null | undefined) ?? [];
    const isEventStream = contentTypeOf(headers).startsWith('text/event-stream');
    const head: UpstreamHead = { status, rawHeaders, isEventStream };
    this.#head = head;
    target.record.upstreamStatus = status;
    const transform = this.#transformer?.select(head);
    // Errors carry no usage; only a successful answer's is metered.
    if (status < 300) {
      if (transform?.takeUsage !== undefined) this.#usageReport = target.usage;
      else this.#usage = target.usage;
    }
    if (transform?.kind === 'buffered') {
      this.#buffered = transform;
      this.#filteredHeaders = filterResponseHeaders(rawHeaders, false);
      this.#mode = 'buffered';
      return;
    }
    const out = filterResponseHeaders(rawHeaders, transform === undefined);
    if (isEventStream) {
      removeHeader(out, 'cache-control');
      out.push('cache-control', 'no-cache', 'x-accel-buffering', 'no');
      this.#boundary = new SseBoundary();
      target.record.streamed = true;
      target.metrics.streamOpened();
      this.#streamCounted = true;
    }
    for (const part of target.extraHeaders) out.push(part);
    target.sink.head(status, out, statusMessage, isEventStream);
    if (transform?.kind === 'events') {
      this.#events = transform;
      this.#mode = 'events';
    } else {
      this.#mode = isEventStream ? 'raw-events' : 'raw';
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#clientGone) return;
    if (this.#work !== undefined) {
      this.#queued.push(this.#queuedData.bind(this, chunk));
      return;
    }
    if (this.#usage !== undefined) this.#usage.push(chunk);
    const result = this.#data(chunk);
    if (result !== undefined) this.#track(result);
    if (this.#pausedForDrain || this.#work !== undefined) controller.pause();
  }

  onResponseEnd(): void {
    if (this.#clientGone) return;
    const finish = (): void | Promise<void> => this.#end();
    if (this.#work !== undefined) this.#queued.push(finish);
    else {
      const result = finish();
      if (result !== undefined) this.#track(result);
    }
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.#clientGone || error instanceof ClientGoneError) {
      this.#closeStream();
      return;
    }
    if (this.#mode === 'finished') return;
    // A head held (holdUntil) came: not a reset before answering, to be sent again.
    const inBody = this.#answered;
    if (error instanceof GatewayError) {
      // The gateway's own aborts carry their error already: an oversized event (vLLM's
      // fault, counted), or the end of the shutdown grace period (not vLLM's).
      if (error.code !== 'server_shutting_down' && error.code !== 'run_interrupted') this.#target.metrics.countUpstreamError('invalid_response');
      this.#finishWith({ kind: 'invalid_response', error });
      return;
    }
    const classified = classifyUpstreamError(error, inBody ? 'in-body' : 'before-headers');
    this.#target.metrics.countUpstreamError(classified.kind);
    if (!inBody && classified.kind === 'reset' && this.#target.retryAfterReset?.() === true) {
      this.#mode = 'finished';
      return;
    }
    this.#finishWith(classified);
  }

  #finishWith(classified: ClassifiedUpstreamError): void {
    const fail = (): void | Promise<void> => this.#fail(classified);
    // Work in progress (a store write, say) finishes first; the failure follows in order.
    this.#queued = [];
    if (this.#work !== undefined) this.#queued.push(fail);
    else {
      const result = fail();
      if (result !== undefined) this.#track(result);
    }
  }

  /** A chunk that waited (behind work, or held): metered when its turn comes, since a
   * held head decides whether it is metered at all. */
  #queuedData(chunk: Buffer): void | Promise<void> {
    if (this.#usage !== undefined) this.#usage.push(chunk);
    return this.#data(chunk);
  }

  #data(chunk: Buffer): void | Promise<void> {
    switch (this.#mode) {
      case 'raw':
        this.#firstByte();
        this.#write(chunk);
        return;
      case 'raw-events': {
        const complete = this.#completeEvents(chunk);
        if (complete !== undefined) {
          this.#firstByte();
          this.#write(complete);
          this.#recycle(complete);
        }
        return;
      }
      case 'events': {
        const complete = this.#completeEvents(chunk);
        if (complete === undefined) return;
        this.#firstByte();
        const result = (this.#events as EventStreamTransform).onEvents(complete, this.#emit);
        this.#recycle(complete);
        return result;
      }
      case 'buffered':
        this.#pending.push(chunk);
        this.#pendingBytes += chunk.length;
        if (this.#pendingBytes > this.#target.maxEventBytes) {
          this.#abortUpstream('the response body is larger than the gateway accepts');
        }
        return;
      default:
        return;
    }
  }

  /**
   * Adds the chunk to the unfinished event; returns the parts that complete events, valid
   * until #recycle. Two arrays take turns as #pending instead of a new one a chunk: at a
   * model's pace a stream's next chunk comes after a scavenge or two, and an array made
   * for it lived until then, was promoted and became old-space garbage, for every event of
   * every stream (bench/README.md, "What was changed").
   */
  #completeEvents(chunk: Buffer): Buffer[] | undefined {
    const end = (this.#boundary as SseBoundary).push(chunk);
    if (end === -1) {
      this.#pending.push(chunk);
      this.#pendingBytes += chunk.length;
      if (this.#pendingBytes > this.#target.maxEventBytes) {
        this.#abortUpstream('a server-sent event from the model server is larger than the gateway accepts');
      }
      return undefined;
    }
    const parts = this.#pending;
    const next = this.#sparePending ?? [];
    this.#sparePending = undefined;
    if (end === chunk.length) {
      parts.push(chunk);
      this.#pendingBytes = 0;
    } else {
      parts.push(chunk.subarray(0, end));
      const rest = chunk.subarray(end);
      next.push(rest);
      this.#pendingBytes = rest.length;
    }
    this.#pending = next;
    return parts;
  }

  /** The parts #completeEvents returned, used: emptied (no chunk kept alive by them) and
   * kept for the next turn. */
  #recycle(parts: Buffer[]): void {
    parts.length = 0;
    this.#sparePending = parts;
  }

  #end(): void | Promise<void> {
    switch (this.#mode) {
      case 'raw':
        this.#endResponse();
        break;
      case 'raw-events':
        // A tail without its blank line is passed on as it came (clients discard it).
        if (this.#pendingBytes > 0) this.#write(this.#pending);
        this.#endResponse();
        break;
      case 'events': {
        const tail = this.#pending;
        this.#pending = [];
        this.#pendingBytes = 0;
        const done = (): void | Promise<void> => {
          this.#reportUsage();
          const result = (this.#events as EventStreamTransform).onEnd(this.#emit);
          if (result instanceof Promise) return result.then(() => this.#endResponse());
          this.#endResponse();
        };
        if (tail.length > 0) {
          // An unterminated last event still reaches the transformer, closed by a blank line.
          tail.push(Buffer.from('\n\n'));
          const result = (this.#events as EventStreamTransform).onEvents(tail, this.#emit);
          if (result instanceof Promise) return result.then(done);
        }
        return done();
      }
      case 'buffered':
        return this.#finishBuffered();
      default:
        break;
    }
    this.#mode = 'finished';
  }

  /** Synchronous when the transform is (nothing to store): no promise, no pause of vLLM's socket. */
  #finishBuffered(): void | Promise<void> {
    const body = this.#pending.length === 1 ? (this.#pending[0] as Buffer) : Buffer.concat(this.#pending);
    this.#pending = [];
    let reply: BufferedReply | Promise<BufferedReply>;
    try {
      reply = (this.#buffered as BufferedTransform).finish(body, this.#head as UpstreamHead, this.#filteredHeaders);
    } catch (error) {
      this.#reportUsage();
      this.#bufferedFailed(error);
      return;
    }
    // The body is read (its usage known) before any store write or the answer.
    this.#reportUsage();
    if (reply instanceof Promise) {
      return reply.then(
        (later) => this.#sendBuffered(later),
        (error: unknown) => this.#bufferedFailed(error),
      );
    }
    this.#sendBuffered(reply);
  }

  #bufferedFailed(error: unknown): void {
    if (!this.#clientGone) this.#target.sendError(asGatewayError(error));
  }

  #sendBuffered(reply: BufferedReply): void {
    const target = this.#target;
    if (this.#clientGone) return;
    const headers = [...reply.headers, 'content-length', String(Buffer.byteLength(reply.body))];
    for (const part of target.extraHeaders) headers.push(part);
    target.sink.head(reply.status, headers, undefined, false);
    target.record.bytesOut += Buffer.byteLength(reply.body);
    target.sink.end(reply.body);
    this.#mode = 'finished';
  }

  #fail(classified: ClassifiedUpstreamError): void | Promise<void> {
    const target = this.#target;
    target.record.errorCode = classified.error.code;
    // One line at warn; the stack trace only when someone asked for debug.
    const log = target.log();
    const cause = classified.error.cause;
    log.warn(
      {
        kind: classified.kind,
        code: classified.error.code,
        cause: cause === undefined ? classified.error.message : describeCause(cause),
        ...(classified.hint === undefined ? {} : { hint: classified.hint }),
        ...(log.isLevelEnabled('debug') ? { err: cause } : {}),
      },
      'upstream exchange failed',
    );
    const mode = this.#mode;
    this.#mode = 'finished';
    this.#pending = [];
    this.#pendingBytes = 0;
    if (mode === 'head' || mode === 'buffered') {
      target.sendError(classified.error);
      return;
    }
    if (mode === 'raw') {
      // Headers and part of a plain body are out: only a cut connection tells the client.
      this.#outbox = [];
      target.sink.destroy();
      return;
    }
    if (mode === 'raw-events') {
      this.#write(renderSseError(classified.error, undefined));
      this.#endResponse();
      return;
    }
    // A failure after the terminal event (the connection cut before its end) still used tokens.
    this.#reportUsage();
    const result = (this.#events as EventStreamTransform).onFailure(classified.error, this.#emit);
    if (result instanceof Promise) return result.then(() => this.#endResponse());
    this.#endResponse();
  }

  /** Every event of the body is in: its usage is known (before the sink ends, where the
   * response is accounted). */
  #reportUsage(): void {
    const reporter: UsageReporter | undefined = this.#events ?? this.#buffered;
    this.#usageReport?.report(reporter?.takeUsage?.());
  }

  #endResponse(): void {
    this.#flush();
    this.#target.sink.end();
  }

  #abortUpstream(message: string): void {
    this.#controller?.abort(new GatewayError('upstream_invalid_response', message));
  }

  /**
   * Output waits in the outbox until the end of the tick, then leaves as one
   * res.write: when vLLM's events arrive together (one socket read holding many, as
   * happens when the gateway is busy), they cost one chunk instead of one each (a
   * chunked write is four iovecs and ~2 µs of JS). A lone event leaves in the same tick
   * it arrived: nothing waits for a timer.
   */
  #write(output: Output): void {
    if (output === null || output === undefined || this.#clientGone) return;
    if (typeof output === 'string' || Buffer.isBuffer(output)) this.#outbox.push(output);
    else for (const part of output) this.#outbox.push(part);
    if (!this.#outboxScheduled) {
      this.#outboxScheduled = true;
      queueMicrotask(this.#flushOutbox);
    }
  }

  #flush(): void {
    this.#outboxScheduled = false;
    const outbox = this.#outbox;
    if (outbox.length === 0 || this.#clientGone) return;
    // Two outboxes take turns (see #completeEvents): what is written meanwhile goes to the
    // other, and this one is emptied once the sink has taken its parts.
    this.#outbox = this.#spareOutbox ?? [];
    this.#spareOutbox = undefined;
    const writable = this.#target.sink.write(outbox);
    outbox.length = 0;
    this.#spareOutbox = outbox;
    if (!writable && !this.#pausedForDrain) {
      // Outside onResponseData undici only notes the pause; the socket stops at the next
      // chunk, so at most one more read (64 KiB) arrives before the client drains.
      this.#pausedForDrain = true;
      this.#target.sink.onceDrain(this.#onDrain);
      this.#controller?.pause();
    }
  }

  #firstByte(): void {
    if (this.#firstByteSeen) return;
    this.#firstByteSeen = true;
    const target = this.#target;
    if (target.record.streamed) {
      target.metrics.observeStreamTtfb(target.route, (performance.now() - target.startedAt) / 1000);
    }
  }

  #track(work: void | Promise<void>): void {
    if (!(work instanceof Promise)) return;
    this.#work = work;
    this.#controller?.pause();
    work.then(
      () => this.#afterWork(),
      (error: unknown) => {
        this.#target.log().error({ err: error }, 'response transform failed');
        this.#queued = [];
        this.#work = undefined;
        if (!this.#clientGone) this.#target.sink.destroy();
      },
    );
  }

  #afterWork(): void {
    this.#work = undefined;
    while (this.#queued.length > 0 && this.#work === undefined) {
      const next = this.#queued.shift() as () => void | Promise<void>;
      const result = next();
      if (result instanceof Promise) this.#track(result);
    }
    this.#maybeResume();
  }

  #maybeResume(): void {
    if (this.#pausedForDrain || this.#work !== undefined || this.#clientGone) return;
    const controller = this.#controller;
    if (controller?.paused === true) controller.resume();
  }

  /** Decrements the open-streams gauge once, whichever way the stream ended. */
  #closeStream(): void {
    if (!this.#streamCounted) return;
    this.#streamCounted = false;
    this.#target.metrics.streamClosed();
  }

  /** Called by the http layer when the response is finished or the socket closed. */
  responseClosed(): void {
    this.#closeStream();
  }
}

function removeHeader(flat: string[], lowerName: string): void {
  for (let i = flat.length - 2; i >= 0; i -= 2) {
    if ((flat[i] as string).toLowerCase() === lowerName) flat.splice(i, 2);
  }
}

/** The output of a tick as one write: the parts joined, as text while they all are. */
export function joinParts(parts: readonly (string | Buffer)[]): string | Buffer {
  if (parts.length === 1) return parts[0] as string | Buffer;
  return parts.every((part) => typeof part === 'string')
    ? parts.join('')
    : Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part) : part)));
}

/** Any failure as the gateway's error (unknown ones are internal errors). */
export function asGatewayError(error: unknown): GatewayError {
  return error instanceof GatewayError
    ? error
    : new GatewayError('internal_error', 'The gateway failed to process the response.', { cause: error });
}

/** The sink of a client's exchange: the relay's output, written to its ServerResponse. */
export class ResponseSink implements RelaySink {
  readonly #res: ServerResponse;
  readonly #record: ExchangeRecord;
  /** The head of a stream, written but not yet on the socket: see head(). */
  #headWaiting = false;
  readonly #flushHead = (): void => {
    if (!this.#headWaiting) return;
    this.#headWaiting = false;
    if (!this.#res.destroyed) this.#res.flushHeaders();
  };

  constructor(res: ServerResponse, record: ExchangeRecord) {
    this.#res = res;
    this.#record = record;
  }

  /**
   * A stream's head must not wait for its first event, but it need not leave alone either:
   * vLLM's headers and first events usually arrive in one read, and then the head leaves
   * with them in the first write (one syscall, where flushing it at once took two). What
   * arrived alone is flushed at the end of this turn of the event loop (setImmediate:
   * after the read's callbacks and their microtasks, where the relay writes).
   */
  head(status: number, headers: readonly string[], statusMessage: string | undefined, flush: boolean): void {
    if (statusMessage) this.#res.writeHead(status, statusMessage, headers as string[]);
    else this.#res.writeHead(status, headers as string[]);
    if (flush) {
      this.#headWaiting = true;
      setImmediate(this.#flushHead);
    }
  }

  /** One res.write for the tick (see UpstreamRelay#write). */
  write(parts: readonly (string | Buffer)[]): boolean {
    this.#headWaiting = false;
    // Not cork()/uncork(): on Node 24 a ServerResponse written under cork never emits
    // 'drain', which would stall backpressure for good.
    const joined = joinParts(parts);
    this.#record.bytesOut += typeof joined === 'string' ? Buffer.byteLength(joined) : joined.length;
    return this.#res.write(joined);
  }

  onceDrain(listener: () => void): void {
    this.#res.once('drain', listener);
  }

  end(body?: string | Buffer): void {
    this.#headWaiting = false;
    if (body === undefined) this.#res.end();
    else this.#res.end(body);
  }

  destroy(): void {
    this.#res.destroy();
  }
}
