// Delivers a run's events to an HTTP client as server-sent events: the stream of a
// background response (its POST with stream: true, or a later GET ?stream=true), from
// memory or from the store's log. The client's backpressure pauses this delivery only;
// the run goes on and the delivery catches up.
import { renderSseError, type GatewayError } from '../errors.ts';
import type { RunSubscriber } from '../runs/run.ts';
import type { RequestContext } from './request-context.ts';

const DONE_LINE = 'data: [DONE]\n\n';

/** Opens the event stream on `ctx`, subscribes, and ends when the run has or the client left. */
export async function deliverEvents(ctx: RequestContext, subscribe: (subscriber: RunSubscriber) => Promise<() => void> | (() => void)): Promise<void> {
  const delivery = new EventDelivery(ctx);
  // Errors (no such response) are thrown before the stream opens: the client gets JSON.
  delivery.unsubscribe = await subscribe(delivery);
  delivery.open();
  // Bound methods, not arrows over this scope: the request keeps them for as long as it
  // lives (create-response.ts says what an arrow kept alive).
  ctx.onClientGone = delivery.unsubscribe;
  ctx.onShutdown = delivery.shutdown.bind(delivery);
}

/** One client's stream of a run's events. */
class EventDelivery implements RunSubscriber {
  readonly #ctx: RequestContext;
  #opened = false;
  unsubscribe: () => void = noop;

  constructor(ctx: RequestContext) {
    this.#ctx = ctx;
  }

  open(): void {
    if (this.#opened) return;
    this.#opened = true;
    const ctx = this.#ctx;
    const headers = ['content-type', 'text/event-stream; charset=utf-8', 'cache-control', 'no-cache', 'x-accel-buffering', 'no'];
    for (const part of ctx.extraHeaders) headers.push(part);
    ctx.res.writeHead(200, headers);
    ctx.res.flushHeaders();
    ctx.record.streamed = true;
  }

  write(events: readonly string[]): boolean {
    this.open();
    const res = this.#ctx.res;
    if (res.destroyed) return true;
    const text = events.length === 1 ? (events[0] as string) : events.join('');
    this.#ctx.record.bytesOut += Buffer.byteLength(text);
    return res.write(text);
  }

  onceDrain(listener: () => void): void {
    const res = this.#ctx.res;
    if (res.destroyed) {
      listener();
      return;
    }
    // A client that leaves while its socket is full never drains: its close ends the wait.
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      listener();
    };
    res.on('drain', done);
    res.on('close', done);
  }

  end(error?: GatewayError): void {
    this.open();
    const res = this.#ctx.res;
    if (res.destroyed) return;
    // A stream that could not be read to its end says why, and has no [DONE]: the client
    // resumes after the last sequence number it has.
    if (error === undefined) res.end(DONE_LINE);
    else res.end(renderSseError(error, undefined));
  }

  /** The gateway is shutting down: the stream ends here, the run goes on elsewhere. */
  shutdown(): void {
    this.unsubscribe();
    if (!this.#ctx.res.destroyed) this.#ctx.res.end();
  }
}

function noop(): void {}
