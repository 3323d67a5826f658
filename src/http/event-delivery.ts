// Delivers a run's events to an HTTP client as server-sent events: the stream of a
// background response (its POST with stream: true, or a later GET ?stream=true), from
// memory or from the store's log. The client's backpressure pauses this delivery only;
// the run goes on and the delivery catches up.
import { renderSseError } from '../errors.ts';
import type { RunSubscriber } from '../runs/run.ts';
import type { RequestContext } from './request-context.ts';

const DONE_LINE = 'data: [DONE]\n\n';

/** Opens the event stream on `ctx`, subscribes, and ends when the run has or the client left. */
export async function deliverEvents(ctx: RequestContext, subscribe: (subscriber: RunSubscriber) => Promise<() => void> | (() => void)): Promise<void> {
  const res = ctx.res;
  let opened = false;
  const open = (): void => {
    if (opened) return;
    opened = true;
    const headers = ['content-type', 'text/event-stream; charset=utf-8', 'cache-control', 'no-cache', 'x-accel-buffering', 'no'];
    for (const part of ctx.extraHeaders) headers.push(part);
    res.writeHead(200, headers);
    res.flushHeaders();
    ctx.record.streamed = true;
  };
  const subscriber: RunSubscriber = {
    write(events) {
      open();
      if (res.destroyed) return true;
      const text = events.length === 1 ? (events[0] as string) : events.join('');
      ctx.record.bytesOut += Buffer.byteLength(text);
      return res.write(text);
    },
    onceDrain(listener) {
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
    },
    end(error) {
      open();
      if (res.destroyed) return;
      // A stream that could not be read to its end says why, and has no [DONE]: the client
      // resumes after the last sequence number it has.
      if (error === undefined) res.end(DONE_LINE);
      else res.end(renderSseError(error, undefined));
    },
  };
  // Errors (no such response) are thrown before the stream opens: the client gets JSON.
  const unsubscribe = await subscribe(subscriber);
  open();
  ctx.onClientGone = unsubscribe;
  ctx.onShutdown = () => {
    unsubscribe();
    if (!res.destroyed) res.end();
  };
}
