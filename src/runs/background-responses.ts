// What clients do with runs, wherever they run: retrieve a running response's snapshot,
// stream its events from a sequence number on, cancel it, delete it. A run of this process
// is read from memory; another process's (a --workers sibling, another gateway on the same
// PostgreSQL) from the store's log, woken by its notifications or by polling.
import { GatewayError } from '../errors.ts';
import type { Json } from '../responses/items.ts';
import { checkIdShape } from '../responses/create-request.ts';
import { ID_PREFIX } from '../responses/ids.ts';
import type { ResponsesService } from '../responses/responses-service.ts';
import { snapshotFromEvents } from '../responses/run-snapshot.ts';
import type { RunState, Store } from '../store/store.ts';
import type { Run, RunSubscriber } from './run.ts';
import type { RunRegistry } from './run-registry.ts';
import { READ_APPENDS, readRunLog } from './run-log-writer.ts';

/** SQLite cannot notify: a reader of another process's run polls the file this often. */
const POLL_MS = 25;
/** With notifications a reader still polls, slowly, should one be lost (a reconnect). */
const POLL_WITH_NOTIFY_MS = 1_000;
/** How long a cancel waits for another process to carry it out. */
const CANCEL_WAIT_MS = 10_000;

const TERMINAL_STATUSES = new Set(['completed', 'incomplete', 'failed', 'cancelled']);

export class BackgroundResponses {
  readonly #store: Store;
  readonly #registry: RunRegistry;
  readonly #responses: ResponsesService;

  constructor(store: Store, registry: RunRegistry, responses: ResponsesService) {
    this.#store = store;
    this.#registry = registry;
    this.#responses = responses;
  }

  /** This process's run of that response, while it runs, when it is the tenant's. */
  #localRun(tenant: string, responseId: string): Run | undefined {
    const local = this.#registry.get(responseId);
    return local !== undefined && local.tenant === tenant && !local.ended ? local : undefined;
  }

  /** GET /v1/responses/{id}: a running response's snapshot, else the stored response. */
  async retrieve(tenant: string, responseId: string): Promise<string> {
    checkIdShape(responseId, ID_PREFIX.response, 'response_id');
    const local = this.#localRun(tenant, responseId);
    if (local !== undefined) return JSON.stringify(this.#snapshot(local.initialResponse(local.status), local.events(), local.status));
    const run = await this.#store.getRun(tenant, responseId);
    if (run !== undefined && !run.finished) return JSON.stringify(await this.#storedSnapshot(run));
    // Finished runs were stored as responses before their logs were closed.
    return this.#responses.getResponse(tenant, responseId);
  }

  #snapshot(base: Json, events: Iterable<string>, status: string): Json {
    const snapshot = snapshotFromEvents(base, events);
    if (!snapshot.terminal && !TERMINAL_STATUSES.has(String(snapshot.response['status']))) snapshot.response['status'] = status;
    return snapshot.response;
  }

  async #storedSnapshot(run: RunState): Promise<Json> {
    return this.#snapshot(JSON.parse(run.base) as Json, await readRunLog(this.#store, run.id), run.status);
  }

  /**
   * GET /v1/responses/{id}?stream=true&starting_after=N: every event after N, then the live
   * ones until the run ends. Throws (before anything is written) when there is no such
   * run. Returns the way to stop (the client left).
   */
  async stream(tenant: string, responseId: string, afterSeq: number, subscriber: RunSubscriber): Promise<() => void> {
    checkIdShape(responseId, ID_PREFIX.response, 'response_id');
    // A run of this process that has just ended still hands out its events from memory.
    const local = this.#registry.get(responseId);
    if (local !== undefined && local.tenant === tenant) return local.subscribe(afterSeq, subscriber);
    const run = await this.#store.getRun(tenant, responseId);
    if (run === undefined) {
      // A stored response without a run was not created in the background: nothing to stream.
      await this.#responses.getResponse(tenant, responseId);
      throw new GatewayError(
        'invalid_request',
        `Response '${responseId}' has no events to stream: it was not created with background: true, or its events are no longer kept (--background-event-ttl).`,
        { param: 'stream' },
      );
    }
    return this.#follow(run, afterSeq, subscriber);
  }

  /** Reads another process's run from the store's log until it ends. */
  #follow(run: RunState, afterSeq: number, subscriber: RunSubscriber): () => void {
    let stopped = false;
    let wake: (() => void) | undefined;
    const unwatch = this.#registry.watch(run.id, () => wake?.());
    const interval = this.#registry.notifies ? POLL_WITH_NOTIFY_MS : POLL_MS;
    const stop = (): void => {
      stopped = true;
      unwatch();
      wake?.();
    };
    const loop = async (): Promise<void> => {
      let cursor = afterSeq;
      /** The log was read once more after the run was seen finished. */
      let rereadAfterEnd = false;
      while (!stopped) {
        const page = await retryingRead(() => this.#store.readRunEvents(run.id, cursor, READ_APPENDS), () => stopped);
        const last = page.events.at(-1);
        if (last !== undefined) {
          cursor = last.seq;
          if (!subscriber.write(page.events.map((event) => event.data))) await new Promise<void>((resolve) => subscriber.onceDrain(resolve));
          if (page.more) continue;
        }
        const state = await retryingRead(() => this.#store.getRun(run.tenant, run.id), () => stopped);
        // Ended (or deleted): read on while the log holds events not yet sent. Its last
        // appends may have landed between the read above and this one (found by the soak:
        // a reader ended after event 1 of a finished run): one more read, even when the
        // read above found nothing.
        if (state === undefined || state.finished) {
          if (state !== undefined && cursor < state.nextSeq - 1 && (last !== undefined || !rereadAfterEnd)) {
            rereadAfterEnd = true;
            continue;
          }
          break;
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, interval);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
      unwatch();
      if (!stopped) subscriber.end();
    };
    loop().catch((error: unknown) => {
      unwatch();
      // The store stayed down: the reader is told, and can resume after its last event.
      if (!stopped) subscriber.end(asStoreError(error));
    });
    return stop;
  }

  /** POST /v1/responses/{id}/cancel: the cancelled response (again, when it already is). */
  async cancel(tenant: string, responseId: string): Promise<string> {
    checkIdShape(responseId, ID_PREFIX.response, 'response_id');
    const local = this.#localRun(tenant, responseId);
    if (local !== undefined) {
      await local.cancel();
      if (local.status !== 'cancelled') throw notCancellable(local.status);
      return this.#responses.getResponse(tenant, responseId);
    }
    let run = await this.#store.getRun(tenant, responseId);
    if (run === undefined) {
      await this.#responses.getResponse(tenant, responseId); // 404 when there is no such response
      throw new GatewayError('response_not_cancellable', 'Only responses created with background: true can be cancelled.', { param: 'response_id' });
    }
    if (!run.finished) run = await this.#cancelElsewhere(tenant, run);
    if (!run.finished) return JSON.stringify(await this.#storedSnapshot(run));
    if (run.status !== 'cancelled') throw notCancellable(run.status);
    return this.#responses.getResponse(tenant, responseId);
  }

  /** Asks the owner (another process) to cancel, and waits until it has. */
  async #cancelElsewhere(tenant: string, run: RunState): Promise<RunState> {
    let state = (await this.#store.requestRunCancel(tenant, run.id)) ?? run;
    const deadline = Date.now() + CANCEL_WAIT_MS;
    while (!state.finished && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const unwatch = this.#registry.watch(run.id, () => {
          unwatch();
          resolve();
        });
        setTimeout(() => {
          unwatch();
          resolve();
        }, this.#registry.notifies ? 250 : POLL_MS * 2);
      });
      state = (await this.#store.getRun(tenant, run.id)) ?? { ...state, finished: true };
    }
    return state;
  }

  /** DELETE /v1/responses/{id}: a running response is cancelled first, then deleted. */
  async delete(tenant: string, responseId: string): Promise<string> {
    checkIdShape(responseId, ID_PREFIX.response, 'response_id');
    const local = this.#localRun(tenant, responseId);
    if (local !== undefined) await local.cancel();
    else {
      const run = await this.#store.getRun(tenant, responseId);
      if (run !== undefined && !run.finished) await this.#cancelElsewhere(tenant, run);
    }
    return this.#responses.deleteResponse(tenant, responseId);
  }
}

/** A reader outlives a database blip: a failed read is tried again for READ_RETRY_MS. */
const READ_RETRY_MS = 5_000;
const READ_RETRY_PAUSE_MS = 100;

async function retryingRead<T>(read: () => Promise<T>, stopped: () => boolean): Promise<T> {
  const deadline = Date.now() + READ_RETRY_MS;
  for (;;) {
    try {
      return await read();
    } catch (error) {
      if (stopped() || Date.now() >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, READ_RETRY_PAUSE_MS));
    }
  }
}

function notCancellable(status: string): GatewayError {
  return new GatewayError('response_not_cancellable', `Cannot cancel a response that has already ended (status: ${status}).`, {
    param: 'response_id',
  });
}

function asStoreError(error: unknown): GatewayError {
  return error instanceof GatewayError ? error : new GatewayError('store_unavailable', 'The response store is unavailable; resume the stream shortly.');
}
