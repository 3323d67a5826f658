// Ends answers a client does not read. A client that stops reading (its window full)
// would hold its request slot, its connection to vLLM and vLLM's generation for as long
// as it likes; backpressure stops the gateway from buffering, but not from waiting.
//
// One timer scans the requests in flight: an answer whose socket has bytes waiting and
// has handed none to the kernel for --client-write-timeout is ended (the socket
// destroyed, which aborts vLLM's request through the usual client-gone path). Nothing is
// done per write: the hot path is untouched, whichever way it writes.
import type { ServerResponse } from 'node:http';

interface Progress {
  /** Bytes the kernel took from the socket, when last seen. */
  flushed: number;
  /** When the socket was last seen with nothing waiting, or making progress. */
  since: number;
}

/** An exchange being answered: whatever holds its ServerResponse. */
export interface Answering {
  readonly res: ServerResponse;
}

export class WriteWatchdog<T extends Answering> {
  readonly #timeoutMs: number;
  readonly #progress = new WeakMap<ServerResponse, Progress>();
  readonly #timer: NodeJS.Timeout;

  /** `inFlight` is read on every check; `onStalled` ends one that stalled too long. */
  constructor(timeoutMs: number, inFlight: { values(): Iterable<T> }, onStalled: (exchange: T) => void) {
    this.#timeoutMs = timeoutMs;
    // Checked at a quarter of the timeout (at most every second): ended within 1.25x of it.
    this.#timer = setInterval(() => {
      const now = performance.now();
      for (const exchange of inFlight.values()) if (this.#stalled(exchange.res, now)) onStalled(exchange);
    }, Math.min(1_000, timeoutMs / 4));
    this.#timer.unref();
  }

  #stalled(res: ServerResponse, now: number): boolean {
    const socket = res.socket;
    if (socket === null || socket.destroyed) return false;
    const waiting = socket.writableLength;
    const flushed = socket.bytesWritten - waiting;
    const progress = this.#progress.get(res);
    if (waiting === 0 || progress === undefined || progress.flushed !== flushed) {
      this.#progress.set(res, { flushed, since: now });
      return false;
    }
    return now - progress.since >= this.#timeoutMs;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
