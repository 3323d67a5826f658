// The storage interface the responses layer uses. Two implementations (sqlite/, postgres/)
// behave identically and pass the same contract suite (test/store-contract.test.ts).
//
// Storage model (ARCHITECTURE.md, "State"):
// - every item is stored once, keyed by an integer `seq` and its public `id`;
// - a response stores its final JSON and a checkpoint: the seqs of its whole context
//   (the history it continued, its new input, its output), so continuing it is one
//   response read and one bulk item read, never a walk up a chain;
// - reference counts decide what deletion removes: a response is held by itself until
//   deleted and by each response that continued from it; an item by the response that
//   created it and by each conversation it belongs to.

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

/** What a continuation needs from the response it continues. */
export interface ResponseContext {
  readonly responseId: string;
  readonly conversationId: string | null;
  /** The checkpoint's seqs, in order. */
  readonly seqs: readonly number[];
  /** Its items, in checkpoint order (items deleted since are left out). */
  readonly items: readonly StoredItem[];
}

export interface SaveResponse {
  readonly id: string;
  readonly createdAt: number;
  readonly status: string;
  readonly model: string;
  /** The response object exactly as the client received it, as JSON text. */
  readonly body: string;
  readonly previousResponseId: string | null;
  readonly conversationId: string | null;
  /** The context this turn continued (checkpoint seqs of the previous response or the conversation). */
  readonly historySeqs: readonly number[];
  /** This turn's new input items, then its output items. */
  readonly inputItems: readonly NewItem[];
  readonly outputItems: readonly NewItem[];
  /** Whether the response itself is kept (store: true) or only its conversation items. */
  readonly storeResponse: boolean;
  /** Epoch ms after which the response expires; null keeps it. */
  readonly expiresAt: number | null;
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

export interface Store {
  /** Creates or upgrades the schema; safe when several processes start at once. */
  migrate(): Promise<void>;

  // Responses
  loadResponseContext(responseId: string, now: number): Promise<ResponseContext | undefined>;
  getResponseBody(responseId: string, now: number): Promise<string | undefined>;
  listInputItems(responseId: string, query: PageQuery, now: number): Promise<Page | PageProblem>;
  /** Persists a finished turn; the write is committed when the promise resolves. */
  saveResponse(record: SaveResponse): Promise<void>;
  /** False when there was no such (live) response. */
  deleteResponse(responseId: string, now: number): Promise<boolean>;
  /** Items by public id (for item_reference inputs), in the order asked; missing ids are left out. */
  getItemsById(ids: readonly string[]): Promise<StoredItem[]>;

  // Conversations
  createConversation(record: ConversationRecord, items: readonly NewItem[]): Promise<void>;
  getConversation(conversationId: string): Promise<ConversationRecord | undefined>;
  updateConversation(conversationId: string, metadata: string): Promise<ConversationRecord | undefined>;
  deleteConversation(conversationId: string): Promise<boolean>;
  /** The conversation's items in order, as history for a new turn; undefined if it does not exist. */
  loadConversationItems(conversationId: string): Promise<{ seqs: number[]; items: StoredItem[] } | undefined>;
  listConversationItems(conversationId: string, query: PageQuery): Promise<Page | PageProblem>;
  /** Appends new items; resolves with them as stored, or undefined if the conversation does not exist. */
  addConversationItems(conversationId: string, items: readonly NewItem[]): Promise<StoredItem[] | undefined>;
  getConversationItem(conversationId: string, itemId: string): Promise<StoredItem | undefined>;
  /** False when the conversation or the item (in it) does not exist. */
  deleteConversationItem(conversationId: string, itemId: string): Promise<boolean>;

  /** Removes responses whose time is up (and what only they held); returns how many. */
  expire(now: number): Promise<number>;
  /** Cheap round trip, for readiness and recovery checks. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
