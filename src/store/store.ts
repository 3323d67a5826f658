// The storage interface the responses layer uses. One implementation (sql-store.ts) runs
// the same algorithms on SQLite and on PostgreSQL, and one contract suite
// (test/store-contract.test.ts) holds both to them.
//
// Storage model (ARCHITECTURE.md, "State"):
// - every item is stored once, keyed by an integer `seq` and its public `id`;
// - a response stores its final JSON and a checkpoint: the seqs of its context (the
//   history it continued, its new input, its output), either whole or as the seqs it adds
//   to another response's checkpoint, with a whole one at least every few turns, so that
//   storage grows linearly along a chain and a continuation reads a bounded number of rows;
// - reference counts decide what deletion removes: a response is held by itself until
//   deleted and by each response that continued from it (or built its checkpoint on it);
//   an item by the response that created it and by each conversation it belongs to;
// - every row belongs to a tenant, and no call sees another tenant's rows.

/** An item as stored: its display JSON (what clients see) and the JSON sent to vLLM. */
export interface StoredItem {
  readonly seq: number;
  readonly id: string;
  readonly type: string;
  /** JSON text of the item as the API returns it. */
  readonly payload: string;
  /** JSON text of the item as it goes back to vLLM in a later turn's input. */
  readonly upstream: string;
}

export type NewItem = Omit<StoredItem, 'seq'>;

/** The context a new turn continues, as vLLM is to get it. */
export interface History {
  /** The checkpoint's seqs, in order. */
  readonly seqs: readonly number[];
  /** The items' upstream forms in order, joined with commas, as UTF-8 bytes; an empty form
   * (nothing to send) and an item deleted since are left out. Built where the history is
   * read and handed over whole: a history of thousands of items costs the event loop
   * nothing to join, encode or copy (the SQLite thread transfers the bytes). */
  readonly upstream: Buffer;
  /** True when the context has more than the items asked for at most: then seqs and
   * upstream are left empty (nothing is read that would be refused anyway). */
  readonly tooLong: boolean;
  /** The replica that answered the response continued, when it is known (affinity). */
  readonly replica?: string | null | undefined;
}

/**
 * A context this process keeps, handed over before the store has confirmed that it is still
 * the store's (Store.keptResponseContext): what may be sent on at once, provided nothing
 * that comes of it is released before `confirmed` resolves true.
 */
export interface UnconfirmedContext {
  readonly history: History;
  /** True: loadResponseContext would have given this very history. False: it would not (the
   * response is gone, or an item of the context was removed); the kept context is dropped,
   * and the history must be read again. Rejects as loadResponseContext would. */
  readonly confirmed: Promise<boolean>;
}

export interface SaveResponse {
  readonly tenant: string;
  readonly id: string;
  /** Epoch ms. */
  readonly createdAt: number;
  readonly status: string;
  readonly model: string;
  /** The response object exactly as the client received it, as JSON text. */
  readonly body: string;
  readonly previousResponseId: string | null;
  readonly conversationId: string | null;
  /** The context this turn continued (the previous response's or the conversation's seqs). */
  readonly historySeqs: readonly number[];
  /** This turn's new input items, then its output items. */
  readonly inputItems: readonly NewItem[];
  readonly outputItems: readonly NewItem[];
  /** Whether the response itself is kept (store: true) or only its conversation items. */
  readonly storeResponse: boolean;
  /** The model server replica that answered (several --llm-api-base): the next turn of the
   * chain goes there, from whichever gateway, for vLLM's prefix cache. */
  readonly replica?: string | null | undefined;
}

export interface SaveOutcome {
  /** False when the conversation was deleted while the turn ran: nothing was added to it. */
  readonly conversationKept: boolean;
  /** Set when this process kept the response's context for its continuation (a kept
   * context continued, then this turn's items): the context continued, as loadResponseContext
   * gave it, and the one kept, which begins with it. What a history's bytes are known to
   * hold carries over to the new one (responses/history-marks.ts). */
  readonly keptContext?: KeptContext | undefined;
}

export interface KeptContext {
  readonly continued: Buffer;
  /** `continued`, a comma (unless it is empty) and this turn's items' upstream forms. */
  readonly upstream: Buffer;
}

export type Order = 'asc' | 'desc';

export interface PageQuery {
  readonly limit: number;
  readonly order: Order;
  /** An item id: return the items after it in this order. */
  readonly after?: string | undefined;
  /** An item id: return the items before it in this order. */
  readonly before?: string | undefined;
}

export interface Page {
  readonly items: readonly StoredItem[];
  readonly hasMore: boolean;
}

export interface ConversationRecord {
  readonly id: string;
  readonly createdAt: number;
  /** JSON text of the metadata object. */
  readonly metadata: string;
}

/** Why a page could not be listed. */
export type PageProblem = 'not_found' | 'cursor_not_found';

export interface StoreOptions {
  /** How long a stored response stays (ms since it was created); null keeps it. It applies to
   * every response, whenever it was stored; conversations and their items do not expire. */
  readonly retentionMs: number | null;
  /** Bytes of response contexts kept in memory for their continuations (0 or absent: none). */
  readonly contextCacheBytes?: number;
  /** The longest kept context confirmed item by item once items were removed since it was
   * kept (SQLite: what its event loop may read); a longer one is read again then. */
  readonly contextConfirmItems?: number;
}

/** A run as it starts: a background response (or a foreground one detached from its client). */
export interface NewRun {
  readonly id: string;
  readonly tenant: string;
  /** Epoch ms. */
  readonly createdAt: number;
  readonly status: 'queued' | 'in_progress';
  /** JSON text of the response object as the run began: the base of its snapshots. */
  readonly base: string;
  /** JSON text of what storing its response needs besides the output (see PendingSave in
   * responses/), so that another process can store a run whose owner died. */
  readonly pending: string;
  /** The process that runs it (its heartbeat keeps the run alive). */
  readonly owner: string;
}

export interface RunState {
  readonly id: string;
  readonly tenant: string;
  readonly createdAt: number;
  readonly status: string;
  readonly base: string;
  readonly pending: string;
  /** Events with a sequence number below this are in the log. */
  readonly nextSeq: number;
  readonly owner: string;
  readonly cancelRequested: boolean;
  /** The run reached its terminal state; its log is complete. */
  readonly finished: boolean;
}

export interface RunEvent {
  readonly seq: number;
  /** One server-sent event, as clients get it (`event:` and `data:` lines, blank line). */
  readonly data: string;
}

export interface RunEventPage {
  readonly events: readonly RunEvent[];
  readonly more: boolean;
}

export interface RunProgress {
  /** The run's status from now on. */
  readonly status: string;
  /** The run ended: no event will follow these. */
  readonly finished: boolean;
  /** Epoch ms. */
  readonly now: number;
}

/** Told the id of a run whose log grew or that was asked to cancel (another process's too). */
export type RunListener = (runId: string) => void;

export interface Store {
  /** Creates or upgrades the schema; safe when several processes start at once. */
  migrate(): Promise<void>;

  // Responses. `now` (epoch ms) decides what has expired.
  /** `maxItems` bounds what is read (see History.tooLong). */
  loadResponseContext(tenant: string, responseId: string, now: number, maxItems?: number): Promise<History | undefined>;
  /** A context this process keeps for the response, at once, its confirmation under way
   * (UnconfirmedContext); undefined when none is kept, or the one kept is longer than
   * `maxItems` (only a read tells that from a response gone). Stores that keep none lack it. */
  keptResponseContext?(tenant: string, responseId: string, now: number, maxItems?: number): UnconfirmedContext | undefined;
  getResponseBody(tenant: string, responseId: string, now: number): Promise<string | undefined>;
  listInputItems(tenant: string, responseId: string, query: PageQuery, now: number): Promise<Page | PageProblem>;
  /** Persists a finished turn; the write is committed when the promise resolves. */
  saveResponse(record: SaveResponse): Promise<SaveOutcome>;
  /** False when there was no such (live) response. */
  deleteResponse(tenant: string, responseId: string, now: number): Promise<boolean>;
  /** Items by public id (for item_reference inputs), in the order asked; missing ids are left out. */
  getItemsById(tenant: string, ids: readonly string[]): Promise<StoredItem[]>;
  /** The items of one type among a history's (History.seqs), in history order: the MCP
   * tool lists a continuation reuses. */
  getHistoryItemsOfType(tenant: string, seqs: readonly number[], type: string): Promise<StoredItem[]>;

  // Conversations
  createConversation(tenant: string, record: ConversationRecord, items: readonly NewItem[]): Promise<void>;
  getConversation(tenant: string, conversationId: string): Promise<ConversationRecord | undefined>;
  updateConversation(tenant: string, conversationId: string, metadata: string): Promise<ConversationRecord | undefined>;
  deleteConversation(tenant: string, conversationId: string): Promise<boolean>;
  /** The conversation's items in order, as history for a new turn; undefined if it does not
   * exist. `maxItems` bounds what is read (see History.tooLong). */
  loadConversationItems(tenant: string, conversationId: string, maxItems?: number): Promise<History | undefined>;
  /** One page, read in O(limit) whatever the conversation's length. */
  listConversationItems(tenant: string, conversationId: string, query: PageQuery): Promise<Page | PageProblem>;
  /** Appends new items; resolves with them as stored, or undefined if the conversation does not exist. */
  addConversationItems(tenant: string, conversationId: string, items: readonly NewItem[]): Promise<StoredItem[] | undefined>;
  getConversationItem(tenant: string, conversationId: string, itemId: string): Promise<StoredItem | undefined>;
  /** False when the conversation or the item (in it) does not exist. */
  deleteConversationItem(tenant: string, conversationId: string, itemId: string): Promise<boolean>;

  /** Removes up to `limit` responses past their retention (and what only they held);
   * returns how many. Call again while it returns `limit`. */
  expire(now: number, limit: number): Promise<number>;
  // Runs: background responses while they run, and their event logs.
  createRun(run: NewRun): Promise<void>;
  /** Appends events (sequence numbers from `firstSeq`) and the run's status, in one
   * transaction; listeners of every process sharing the database are told. */
  appendRunEvents(runId: string, firstSeq: number, events: readonly string[], progress: RunProgress): Promise<void>;
  getRun(tenant: string, runId: string): Promise<RunState | undefined>;
  /** The events after `afterSeq`, in order, from up to `limit` appends; `more` when there
   * may be more to read at once. */
  readRunEvents(runId: string, afterSeq: number, limit: number): Promise<RunEventPage>;
  /** Marks an unfinished run to be cancelled by its owner; returns the run as it is. */
  requestRunCancel(tenant: string, runId: string): Promise<RunState | undefined>;
  /** The owner's unfinished runs someone asked to cancel. */
  runsToCancel(owner: string): Promise<string[]>;
  /** The owner is alive: its unfinished runs are not stale. */
  heartbeatRuns(owner: string, now: number): Promise<void>;
  /** The owners of unfinished runs (to find those of this machine whose process is gone). */
  runOwners(): Promise<string[]>;
  /** Takes over up to `limit` unfinished runs whose owner's last heartbeat is before
   * `staleBefore`, or whose owner is one of `deadOwners`: they are the new owner's to end. */
  claimStaleRuns(owner: string, staleBefore: number, deadOwners: readonly string[], now: number, limit: number): Promise<RunState[]>;
  /** Removes up to `limit` runs finished before `finishedBefore`, with their logs. */
  expireRuns(finishedBefore: number, limit: number): Promise<number>;
  /** Calls `listener` when any process appends to a run or asks to cancel one; resolves
   * with the way to stop, or undefined when this database cannot notify (then poll). */
  watchRuns(listener: RunListener): Promise<(() => Promise<void>) | undefined>;

  /** Cheap round trip, for readiness and recovery checks. */
  ping(): Promise<void>;
  /** Closes the connections, waiting at most `graceMs` for those in use. */
  close(graceMs?: number): Promise<void>;
}
