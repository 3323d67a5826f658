// A simulated vLLM answer that writes as fast as its socket takes, for backpressure tests:
// how far it got, and a bounded wait until it stalls (a reader that does not read).
import type { ServerResponse } from 'node:http';

export interface Flood {
  /** Chunks written so far. */
  readonly written: number;
  readonly finished: boolean;
  /** Resolves when the writer stalled (no progress for 500 ms), finished, or after 30 s. */
  stalled(): Promise<void>;
}

/** Writes `total` chunks (`chunk(n)`), then `last()` and ends; pauses on a full socket. */
export function flood(res: ServerResponse, total: number, chunk: (n: number) => string | Buffer, last: () => string = () => ''): Flood {
  let written = 0;
  let lastProgress = Date.now();
  let finished = false;
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const pump = (): void => {
    while (written < total) {
      const next = chunk(written);
      written += 1;
      lastProgress = Date.now();
      if (!res.write(next)) {
        res.once('drain', pump);
        return;
      }
    }
    finished = true;
    res.end(last());
  };
  pump();
  return {
    get written() {
      return written;
    },
    get finished() {
      return finished;
    },
    async stalled() {
      // Observes progress until it stops (bounded: gives up after 30 s).
      const deadline = Date.now() + 30_000;
      while (!finished && Date.now() - lastProgress < 500 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
  };
}
