// Appends a run's events to the store's log in batches: one transaction per
// FLUSH_INTERVAL_MS (or per MAX_BATCH events), not one per event, so a fast stream costs
// the database a few writes a second. A crash loses at most the batch not yet written.
// A store that fails keeps the events here and is tried again; the run never waits.
import type { LogSource } from '../observability/logger.ts';
import type { Store } from '../store/store.ts';

/** How long an event may wait for its batch: the bulk of the cross-process delay. */
const FLUSH_INTERVAL_MS = 20;
const MAX_BATCH = 500;
const RETRY_MS = 250;
/** A log that cannot be written for this long is given up (the run itself goes on). */
const GIVE_UP_AFTER_MS = 60_000;

export class RunLogWriter {
  readonly #store: Store;
  readonly #runId: string;
  readonly #log: LogSource;
  #status: string;
  #nextSeq: number;
  #pending: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;
  #finished = false;
  #failingSince: number | undefined;
  /** The run's row: appends wait for it. */
  readonly #created: Promise<unknown>;
  /** The log could not be written (no row, or the store failed too long): readers are not
   * held back for it any more. */
  #abandoned = false;
  /** Called after each append that reached the store (and when the log is abandoned). */
  onWritten: (() => void) | undefined;

  constructor(store: Store, runId: string, status: string, log: LogSource, created: Promise<unknown>) {
    this.#created = created;
    this.#store = store;
    this.#runId = runId;
    this.#status = status;
    this.#log = log;
    this.#nextSeq = 0;
  }

  /** How many events the log holds (0..written-1): what may be shown to a reader. */
  get written(): number {
    return this.#nextSeq;
  }

  get abandoned(): boolean {
    return this.#abandoned;
  }

  add(events: readonly string[]): void {
    for (const event of events) this.#pending.push(event);
    if (this.#status === 'queued') this.#status = 'in_progress';
    if (this.#pending.length >= MAX_BATCH) this.#flushSoon(0);
    else this.#flushSoon(FLUSH_INTERVAL_MS);
  }

  /** Writes what is left, with the final status; resolves once written (or given up). */
  async finish(status: string): Promise<void> {
    this.#status = status;
    this.#finished = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (;;) {
      await this.#writing;
      if (await this.#flush()) return;
      if (this.#gaveUp()) return;
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  }

  #flushSoon(delayMs: number): void {
    if (this.#timer !== undefined || this.#finished) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#flush().then((ok) => {
        if (!ok && !this.#gaveUp()) this.#flushSoon(RETRY_MS);
        else if (this.#pending.length > 0) this.#flushSoon(FLUSH_INTERVAL_MS);
      });
    }, delayMs);
  }

  /** One batch; false when the store failed (the events stay pending). */
  async #flush(): Promise<boolean> {
    try {
      await this.#created;
    } catch {
      // The row could not be written: nothing can be appended to it.
      this.#pending = [];
      this.#abandon();
      return true;
    }
    // One write at a time: sequence numbers are assigned in order.
    while (this.#writing !== undefined) await this.#writing;
    if (this.#pending.length === 0 && !this.#finished) return true;
    const batch = this.#pending.splice(0, MAX_BATCH);
    const finished = this.#finished && this.#pending.length === 0;
    let ok = true;
    const write = this.#store
      .appendRunEvents(this.#runId, this.#nextSeq, batch, { status: this.#status, finished, now: Date.now() })
      .then(
        () => {
          this.#nextSeq += batch.length;
          this.#failingSince = undefined;
          this.onWritten?.();
        },
        (error: unknown) => {
          ok = false;
          this.#pending.unshift(...batch);
          if (this.#failingSince === undefined) {
            this.#failingSince = Date.now();
            this.#log().warn({ err: error, run: this.#runId }, 'writing a background response\'s events failed; retrying');
          }
        },
      );
    this.#writing = write;
    await write;
    this.#writing = undefined;
    if (ok && this.#finished && this.#pending.length > 0) return this.#flush();
    return ok;
  }

  #gaveUp(): boolean {
    if (this.#failingSince === undefined || Date.now() - this.#failingSince < GIVE_UP_AFTER_MS) return false;
    this.#log().error({ run: this.#runId, events: this.#pending.length }, 'gave up writing a background response\'s events');
    this.#pending = [];
    this.#abandon();
    return true;
  }

  #abandon(): void {
    if (this.#abandoned) return;
    this.#abandoned = true;
    this.onWritten?.();
  }
}

/** Appends read at once from the log: a few hundred events each. */
export const READ_APPENDS = 100;

/** A run's whole log, in order (a snapshot, or a dead process's run being ended). */
export async function readRunLog(store: Store, runId: string): Promise<string[]> {
  const events: string[] = [];
  for (let after = -1; ; ) {
    const page = await store.readRunEvents(runId, after, READ_APPENDS);
    for (const event of page.events) events.push(event.data);
    const last = page.events.at(-1);
    if (!page.more || last === undefined) return events;
    after = last.seq;
  }
}
