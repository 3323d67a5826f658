// SQLite as the gateway opens it: two connections to one file, each call on the one that
// suits its size.
// - Small calls (nearly all: a turn of a few items, a history of hundreds) run on the
//   event loop's own connection: tens of microseconds, synchronously. A hop to a thread
//   would cost more than the work (a message round trip is 50-100 µs of CPU here).
// - Large calls run on the store thread (SqliteThreadStore): a history of more than
//   INLINE_ITEMS items, a turn that stores more, and every deletion (it may cascade, and
//   its WAL truncation writes to disk). Such work takes tens of milliseconds; there it
//   never stalls the requests and streams the event loop serves (docs/reliability.md).
// While the thread has a write in flight, writes go there too, behind it: SQLite allows
// one writer, and a write on the event loop would wait for the lock synchronously.
// Readers never wait in WAL mode, so reads stay on the event loop throughout.
import type { History, NewItem, SaveResponse, Store, StoreOptions, UnconfirmedContext } from '../store.ts';
import { SqlStore } from '../sql-store.ts';
import { SqliteBackend } from './sqlite-backend.ts';
import { SqliteThreadStore } from './sqlite-thread-store.ts';

/** The most items a call handles on the event loop (about 7 ms to insert, 1 ms to read). */
export const INLINE_ITEMS = 1_000;

export interface SqliteStoreOptions extends StoreOptions {
  /** Overrides INLINE_ITEMS (tests send everything to the thread with 0). */
  readonly inlineItems?: number;
}

export class SqliteStore implements Store {
  readonly #inline: SqlStore;
  /** The event loop's connection, whose writes commit at the end of the turn (group commit). */
  readonly #inlineBackend: SqliteBackend;
  /** Undefined for ':memory:', which one connection alone can see. */
  readonly #thread: SqliteThreadStore | undefined;
  readonly #inlineItems: number;
  #threadWrites = 0;

  constructor(path: string, busyTimeoutMs: number, options: SqliteStoreOptions) {
    const storeOptions = { retentionMs: options.retentionMs };
    this.#inlineBackend = new SqliteBackend(path, busyTimeoutMs);
    this.#inlineItems = options.inlineItems ?? INLINE_ITEMS;
    // Contexts are kept on the event loop's side, whatever their length (those read on the
    // thread too): confirming one is a row. But after items were removed, a context is
    // confirmed seq by seq only up to the length the event loop reads itself: that visits a
    // page of the items' table for each seq, which for thousands of items is milliseconds
    // (the huge-inputs stress measured it stalling /health); a longer one is read again.
    this.#inline = new SqlStore(this.#inlineBackend, {
      ...storeOptions,
      contextCacheBytes: options.contextCacheBytes,
      contextConfirmItems: this.#inlineItems,
    });
    this.#thread = path === ':memory:' ? undefined : new SqliteThreadStore(path, busyTimeoutMs, storeOptions);
  }

  /** A write on the thread, counted so that later writes queue behind it. */
  async #threadWrite<T>(write: (thread: SqliteThreadStore) => Promise<T>, inline: () => Promise<T>): Promise<T> {
    if (this.#thread === undefined) return inline();
    // The event loop's writes made before this one commit first: they come first, and
    // the thread would otherwise wait for their lock.
    this.#inlineBackend.flushWrites();
    this.#threadWrites += 1;
    try {
      return await write(this.#thread);
    } finally {
      this.#threadWrites -= 1;
    }
  }

  /** A small write: on the event loop, unless the thread is writing. */
  #write<T>(write: (store: Store) => Promise<T>): Promise<T> {
    return this.#threadWrites > 0 ? this.#threadWrite(write, () => write(this.#inline)) : write(this.#inline);
  }

  /** A history: read here while it is short, else on the thread. */
  async #history(read: (store: Store, maxItems: number) => Promise<History | undefined>, maxItems: number): Promise<History | undefined> {
    if (this.#thread === undefined) return read(this.#inline, maxItems);
    const limit = Math.min(maxItems, this.#inlineItems);
    const history = await read(this.#inline, limit);
    if (history === undefined || !history.tooLong || limit === maxItems) return history;
    return read(this.#thread, maxItems);
  }

  migrate(): Promise<void> {
    return this.#inline.migrate();
  }

  /** A context kept on the event loop's side is served from there whatever its length; a
   * long one read on the thread is kept there for the next turn. */
  async loadResponseContext(tenant: string, responseId: string, now: number, maxItems = Number.MAX_SAFE_INTEGER): Promise<History | undefined> {
    const limit = this.#thread === undefined ? maxItems : Math.min(maxItems, this.#inlineItems);
    const history = await this.#inline.loadResponseContext(tenant, responseId, now, limit, maxItems);
    if (this.#thread === undefined || history === undefined || !history.tooLong || limit === maxItems) return history;
    // Counted before the thread reads: a removal in between is seen at the next turn.
    const removals = await this.#inline.itemRemovals();
    const read = await this.#thread.loadResponseContext(tenant, responseId, now, maxItems);
    return read === undefined ? undefined : this.#inline.keepRead(tenant, responseId, read, removals);
  }

  /** Kept contexts are the event loop's side's, whatever their length. */
  keptResponseContext(tenant: string, responseId: string, now: number, maxItems?: number): UnconfirmedContext | undefined {
    return this.#inline.keptResponseContext(tenant, responseId, now, maxItems);
  }

  loadConversationItems(tenant: string, conversationId: string, maxItems = Number.MAX_SAFE_INTEGER): Promise<History | undefined> {
    return this.#history((store, limit) => store.loadConversationItems(tenant, conversationId, limit), maxItems);
  }

  saveResponse(record: SaveResponse): ReturnType<Store['saveResponse']> {
    const items = record.inputItems.length + record.outputItems.length;
    if (items > this.#inlineItems) return this.#threadWrite((thread) => thread.saveResponse(record), () => this.#inline.saveResponse(record));
    return this.#write((store) => store.saveResponse(record));
  }

  // Deletions cascade (a response's items, a conversation's) and truncate the WAL.
  deleteResponse(tenant: string, responseId: string, now: number): Promise<boolean> {
    return this.#threadWrite((thread) => thread.deleteResponse(tenant, responseId, now), () => this.#inline.deleteResponse(tenant, responseId, now));
  }

  deleteConversation(tenant: string, conversationId: string): Promise<boolean> {
    return this.#threadWrite((thread) => thread.deleteConversation(tenant, conversationId), () => this.#inline.deleteConversation(tenant, conversationId));
  }

  deleteConversationItem(tenant: string, conversationId: string, itemId: string): Promise<boolean> {
    return this.#threadWrite(
      (thread) => thread.deleteConversationItem(tenant, conversationId, itemId),
      () => this.#inline.deleteConversationItem(tenant, conversationId, itemId),
    );
  }

  expire(now: number, limit: number): Promise<number> {
    return this.#threadWrite((thread) => thread.expire(now, limit), () => this.#inline.expire(now, limit));
  }

  // At most 20 items each (the Conversations API's limit): small writes.
  createConversation(tenant: string, record: Parameters<Store['createConversation']>[1], items: readonly NewItem[]): Promise<void> {
    return this.#write((store) => store.createConversation(tenant, record, items));
  }

  addConversationItems(tenant: string, conversationId: string, items: readonly NewItem[]): ReturnType<Store['addConversationItems']> {
    return this.#write((store) => store.addConversationItems(tenant, conversationId, items));
  }

  updateConversation(tenant: string, conversationId: string, metadata: string): ReturnType<Store['updateConversation']> {
    return this.#write((store) => store.updateConversation(tenant, conversationId, metadata));
  }

  // A run's writes are small; behind the thread's writes while it has some (see the header).
  createRun: Store['createRun'] = (...args) => this.#write((store) => store.createRun(...args));
  appendRunEvents: Store['appendRunEvents'] = (...args) => this.#write((store) => store.appendRunEvents(...args));
  requestRunCancel: Store['requestRunCancel'] = (...args) => this.#write((store) => store.requestRunCancel(...args));
  heartbeatRuns: Store['heartbeatRuns'] = (...args) => this.#write((store) => store.heartbeatRuns(...args));
  claimStaleRuns: Store['claimStaleRuns'] = (...args) => this.#write((store) => store.claimStaleRuns(...args));
  expireRuns: Store['expireRuns'] = (...args) => this.#write((store) => store.expireRuns(...args));
  /** SQLite cannot notify: readers of a run's log poll the file. */
  watchRuns: Store['watchRuns'] = () => Promise.resolve(undefined);

  // Reads: never blocked by a writer in WAL mode.
  getRun: Store['getRun'] = (...args) => this.#inline.getRun(...args);
  readRunEvents: Store['readRunEvents'] = (...args) => this.#inline.readRunEvents(...args);
  runsToCancel: Store['runsToCancel'] = (...args) => this.#inline.runsToCancel(...args);
  runOwners: Store['runOwners'] = () => this.#inline.runOwners();
  getResponseBody: Store['getResponseBody'] = (...args) => this.#inline.getResponseBody(...args);
  listInputItems: Store['listInputItems'] = (...args) => this.#inline.listInputItems(...args);
  getItemsById: Store['getItemsById'] = (...args) => this.#inline.getItemsById(...args);
  getHistoryItemsOfType: Store['getHistoryItemsOfType'] = (...args) => this.#inline.getHistoryItemsOfType(...args);
  getConversation: Store['getConversation'] = (...args) => this.#inline.getConversation(...args);
  listConversationItems: Store['listConversationItems'] = (...args) => this.#inline.listConversationItems(...args);
  getConversationItem: Store['getConversationItem'] = (...args) => this.#inline.getConversationItem(...args);
  ping: Store['ping'] = () => this.#inline.ping();

  async close(graceMs?: number): Promise<void> {
    await Promise.all([this.#thread?.close(), this.#inline.close(graceMs)]);
  }
}
