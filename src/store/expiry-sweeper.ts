// Deletes stored responses past their retention, in batches, until none is due: however
// fast responses are stored, each sweep catches up. Batches are separate transactions
// with a turn of the event loop between them, so a large backlog never holds the store
// (or the loop) for long.
import type { Store } from './store.ts';

/** Responses removed per transaction. */
export const EXPIRY_BATCH = 200;

export interface SweeperOptions {
  /** Time between the end of one sweep and the start of the next. */
  readonly intervalMs: number;
  readonly onSwept: (removed: number) => void;
  readonly onError: (error: unknown) => void;
}

export class ExpirySweeper {
  readonly #store: Store;
  readonly #options: SweeperOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<number> | undefined;
  #stopped = false;

  constructor(store: Store, options: SweeperOptions) {
    this.#store = store;
    this.#options = options;
  }

  start(): void {
    this.#stopped = false;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.sweep().then(
        (removed) => {
          if (removed > 0) this.#options.onSwept(removed);
        },
        (error: unknown) => this.#options.onError(error),
      ).finally(() => this.#schedule());
    }, this.#options.intervalMs);
    this.#timer.unref();
  }

  /** One sweep: batches until fewer than a batch are due. Resolves with how many went. */
  sweep(): Promise<number> {
    this.#running ??= this.#sweep().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #sweep(): Promise<number> {
    let total = 0;
    for (;;) {
      const removed = await this.#store.expire(Date.now(), EXPIRY_BATCH);
      total += removed;
      if (removed < EXPIRY_BATCH || this.#stopped) return total;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Stops sweeping: no new batch starts (one in progress is a transaction of its own,
   * committed or not, and is not waited for). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }
}
