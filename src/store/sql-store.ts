// The one store: every algorithm (saving a turn, checkpoints, paging, deletion by
// reference counts, expiry) written once over a SqlBackend, so that SQLite and PostgreSQL
// behave the same and each fix is made in one place. The backends only run queries.
import { decodeCheckpoint, encodeCheckpoint } from './checkpoint-codec.ts';
import { ContextCache, type CachedContext } from './context-cache.ts';
import { ReservedSeqs } from './reserved-seqs.ts';
import { toConversation, toItem } from './rows.ts';
import { ITEM_SCHEMA_VERSION, MIGRATIONS, pageWindow } from './schema.ts';
import type { SqlBackend } from './sql/backend.ts';
import * as runs from './sql-runs.ts';
import { all, batch, exec, first, type Query, type QueryResult, type Row, type Work } from './sql/work.ts';
import type {
  ConversationRecord,
  History,
  KeptContext,
  NewItem,
  NewRun,
  Page,
  PageProblem,
  PageQuery,
  RunEventPage,
  RunListener,
  RunProgress,
  RunState,
  SaveOutcome,
  SaveResponse,
  Store,
  StoreOptions,
  StoredItem,
  UnconfirmedContext,
} from './store.ts';

/**
 * A checkpoint is stored whole at least every this many turns along a chain; in between,
 * each turn stores only the seqs it adds. Storage then grows with the items a chain adds
 * (plus a whole checkpoint every 16 turns, bounded by --max-input-items), and loading a
 * context reads at most this many checkpoint rows.
 */
export const CHECKPOINT_SNAPSHOT_EVERY = 16;

/** Item seqs reserved at once (PostgreSQL; see ReservedSeqs): a turn adds a few items, so
 * a reservation serves a hundred turns or so, and a process leaves fewer than this unused. */
const SEQS_RESERVED_AT_ONCE = 256;

const ITEM_COLUMNS = 'i.seq, i.id, i.type, i.payload, i.upstream';
/** Above every conversation position (an INTEGER column). */
const MAX_POSITION = 2_147_483_647;
const NOTHING = Buffer.alloc(0);
const TOO_LONG: History = Object.freeze({ seqs: [], upstream: NOTHING, tooLong: true });
/** A kept context that is no longer the store's (an item of it was removed since). */
const NOT_KEPT = Symbol('not kept');

function keptHistory(kept: CachedContext): History {
  return { seqs: kept.seqs, upstream: kept.upstream, tooLong: false, replica: kept.replica };
}

/** A kept context's check confirmed it as it is (never too long: keptResponseContext asks
 * only of one that fits). */
function isKept(checked: History | undefined | typeof NOT_KEPT): boolean {
  return checked !== undefined && checked !== NOT_KEPT;
}

/** A turn's write as saveResponse's work returns it: the seqs its new items were given,
 * when the response itself was stored (what the context cache keeps of it). */
interface SavedTurn extends SaveOutcome {
  readonly newSeqs: readonly number[] | undefined;
}

/** A history's upstream forms, joined by the database (see History.upstream): one value
 * to read, however many items. */
function historyBytes(joined: unknown): Buffer {
  return typeof joined === 'string' && joined.length > 0 ? Buffer.from(joined) : NOTHING;
}

/** The seqs the database gave items, in the items' order, from their inserts' results
 * (RETURNING order is not promised to follow the input: mapped back by id). */
function seqsOf(items: readonly NewItem[], results: readonly QueryResult[]): number[] {
  const seqById = new Map<string, number>();
  for (const result of results) for (const row of result.rows) seqById.set(row['id'] as string, Number(row['seq']));
  return items.map((item) => seqById.get(item.id) as number);
}

/** What a new checkpoint builds on. */
interface CheckpointBase {
  readonly id: string;
  readonly depth: number;
  /** How many seqs of the new turn's history the base's context already holds. */
  readonly covers: number;
}

/** A response's checkpoint, resolved along its bases: its whole context. */
interface Context {
  readonly seqs: number[];
  readonly inputCount: number;
  readonly depth: number;
  /** The model server replica that answered the response (several --llm-api-base). */
  readonly replica: string | null;
  /** The count of item removals (store_counters), read before the context's items. */
  readonly removals: number;
}

/** A context read, with what keeping it needs (the count of item removals before it). */
interface ReadContext {
  readonly history: History;
  readonly removals: number;
}

/** The least a working connection answers. */
function* pingWork(): Work<void> {
  yield* first('SELECT 1 AS one');
}

/**
 * Each operation hands the backend a generator method bound to its arguments, never a
 * generator function made per call (`function* () {...}` over the arguments). A generator
 * function makes its objects as a constructor does, and V8 gives each function object that
 * constructs its own initial map, made in the old generation and pointing back at the
 * function: every call's function, with the scope it closes over (a whole turn's items and
 * body), outlived the scavenges until a mark-compact (bench/README.md, "Garbage": 900 KB
 * promoted a scavenge for json-1k-store at c=32, 57 KB with bound methods).
 */
export class SqlStore implements Store {
  readonly #backend: SqlBackend;
  readonly #retentionMs: number | null;
  readonly #sql: ReturnType<typeof statements>;
  /** Contexts of responses this process stored or read, checked before each use. */
  readonly #contexts: ContextCache;
  /** The longest kept context confirmed item by item (StoreOptions.contextConfirmItems). */
  readonly #confirmItems: number;
  readonly #reserved = new ReservedSeqs();

  constructor(backend: SqlBackend, options: StoreOptions) {
    this.#backend = backend;
    this.#retentionMs = options.retentionMs;
    this.#sql = statements(backend);
    this.#contexts = new ContextCache(options.contextCacheBytes ?? 0);
    this.#confirmItems = options.contextConfirmItems ?? Number.MAX_SAFE_INTEGER;
  }

  /** Responses created at or before this (epoch ms) have expired. */
  #cutoff(now: number): number {
    return this.#retentionMs === null ? Number.MIN_SAFE_INTEGER : now - this.#retentionMs;
  }

  migrate(): Promise<void> {
    return this.#backend.migrate(MIGRATIONS);
  }

  // --- responses -------------------------------------------------------------------------

  /**
   * A response's whole context: its checkpoint and those of its bases, root first. One
   * query, however the checkpoint is stored. `now` undefined reads any response of the
   * tenant (a base that was deleted but is still held, or has expired).
   */
  *#context(tenant: string, responseId: string, now: number | undefined): Work<Context | undefined> {
    const rows =
      now === undefined
        ? yield* all(this.#sql.anyChain, responseId, tenant)
        : yield* all(this.#sql.liveChain, responseId, tenant, this.#cutoff(now));
    const head = rows[0];
    if (head === undefined) return undefined;
    const seqs: number[] = [];
    for (let i = rows.length - 1; i >= 0; i--) {
      for (const seq of decodeCheckpoint((rows[i] as Row)['checkpoint'] as Buffer)) seqs.push(seq);
    }
    return {
      seqs,
      inputCount: Number(head['input_count']),
      depth: Number(head['checkpoint_depth']),
      replica: (head['replica'] as string | null) ?? null,
      removals: Number(head['removals']),
    };
  }

  /**
   * A context kept (ContextCache) is used once the store confirms, in one row, that its
   * response is live and that no item a context may hold was removed since it was kept (the
   * count of such removals reads the same). Where items were removed since, every seq of it
   * is looked up (up to contextConfirmItems; a longer one is read again). Otherwise the
   * context is read, and kept for the next time.
   *
   * `readItems` bounds a read where `maxItems` bounds what is served: SQLite serves a kept
   * context of any length from its event loop, but reads a long one on its thread (a read
   * longer than `readItems` answers tooLong, and sqlite-store.ts goes to the thread).
   */
  async loadResponseContext(tenant: string, responseId: string, now: number, readItems = Number.MAX_SAFE_INTEGER, maxItems = readItems): Promise<History | undefined> {
    const kept = this.#contexts.get(tenant, responseId);
    if (kept !== undefined) {
      const checked = await this.#confirmKept(tenant, responseId, now, maxItems, kept);
      if (checked !== NOT_KEPT) return checked;
    }
    const read = await this.#backend.read(this.#contextWork.bind(this, tenant, responseId, now, readItems));
    return read === undefined ? undefined : this.keepRead(tenant, responseId, read.history, read.removals);
  }

  /** The kept context, before the row that confirms it is read (Store.keptResponseContext). */
  keptResponseContext(tenant: string, responseId: string, now: number, maxItems = Number.MAX_SAFE_INTEGER): UnconfirmedContext | undefined {
    const kept = this.#contexts.get(tenant, responseId);
    if (kept === undefined || kept.seqs.length > maxItems) return undefined;
    return {
      history: keptHistory(kept),
      confirmed: this.#confirmKept(tenant, responseId, now, maxItems, kept).then(isKept),
    };
  }

  async #confirmKept(tenant: string, responseId: string, now: number, maxItems: number, kept: CachedContext): Promise<History | undefined | typeof NOT_KEPT> {
    const checked = await this.#backend.read(this.#keptContextWork.bind(this, tenant, responseId, now, maxItems, kept));
    // Gone, or no longer the store's: not kept any more.
    if (checked === undefined || checked === NOT_KEPT) this.#contexts.delete(tenant, responseId);
    return checked;
  }

  /**
   * Keeps a context read (here, or by another store on the same database: SQLite's thread),
   * `removals` being the count of item removals read before it; returns it with the bytes
   * as kept, the ones a stored continuation will begin with (SaveOutcome.keptContext).
   */
  keepRead(tenant: string, responseId: string, history: History, removals: number): History {
    if (history.tooLong) return history;
    const keeping = this.#contexts.set(tenant, responseId, { seqs: history.seqs, upstream: history.upstream, replica: history.replica ?? null, removalsAt: removals });
    return keeping === undefined ? history : { seqs: keeping.seqs, upstream: keeping.upstream, tooLong: false, replica: keeping.replica };
  }

  /** The count of item removals now (see keepRead). */
  itemRemovals(): Promise<number> {
    return this.#backend.read(this.#itemRemovalsWork.bind(this));
  }

  *#itemRemovalsWork(): Work<number> {
    return Number((yield* first(this.#sql.itemRemovals))?.['value']);
  }

  *#keptContextWork(tenant: string, responseId: string, now: number, maxItems: number, kept: CachedContext): Work<History | undefined | typeof NOT_KEPT> {
    const live = yield* first(this.#sql.keptContextLive, responseId, tenant, this.#cutoff(now));
    if (live === undefined) return undefined;
    // Too long: only whether the response is live decides (not found, or too long).
    if (kept.seqs.length > maxItems) return TOO_LONG;
    if (Number(live['removals']) !== kept.removalsAt) {
      // Items were removed since (from a conversation): this context's may be among them.
      if (kept.seqs.length > this.#confirmItems) return NOT_KEPT;
      const row = yield* first(this.#sql.keptContextCheck, this.#backend.dialect.list(kept.seqs));
      if (row === undefined || Number(row['present']) !== kept.seqs.length) return NOT_KEPT;
      // Whole at this count (read in the same statement): one row again from now on.
      kept.removalsAt = Number(row['removals']);
    }
    return keptHistory(kept);
  }

  *#contextWork(tenant: string, responseId: string, now: number, maxItems: number): Work<ReadContext | undefined> {
    const context = yield* this.#context(tenant, responseId, now);
    if (context === undefined) return undefined;
    if (context.seqs.length > maxItems) return { history: TOO_LONG, removals: context.removals };
    const row = yield* first(this.#sql.historyBySeq, this.#backend.dialect.list(context.seqs));
    return { history: { seqs: context.seqs, upstream: historyBytes(row?.['upstream']), tooLong: false, replica: context.replica }, removals: context.removals };
  }

  getResponseBody(tenant: string, responseId: string, now: number): Promise<string | undefined> {
    return this.#backend.read(this.#bodyWork.bind(this, tenant, responseId, now));
  }

  *#bodyWork(tenant: string, responseId: string, now: number): Work<string | undefined> {
    const row = yield* first(this.#sql.body, responseId, tenant, this.#cutoff(now));
    return row?.['body'] as string | undefined;
  }

  listInputItems(tenant: string, responseId: string, query: PageQuery, now: number): Promise<Page | PageProblem> {
    return this.#backend.read(this.#inputItemsWork.bind(this, tenant, responseId, query, now));
  }

  *#inputItemsWork(tenant: string, responseId: string, query: PageQuery, now: number): Work<Page | PageProblem> {
    const context = yield* this.#context(tenant, responseId, now);
    if (context === undefined) return 'not_found';
    return yield* this.#page(context.seqs.slice(0, context.inputCount), query);
  }

  getItemsById(tenant: string, ids: readonly string[]): Promise<StoredItem[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return this.#backend.read(this.#itemsByIdWork.bind(this, tenant, ids));
  }

  *#itemsByIdWork(tenant: string, ids: readonly string[]): Work<StoredItem[]> {
    return (yield* all(this.#sql.itemsById, this.#backend.dialect.list(ids), tenant)).map(toItem);
  }

  getHistoryItemsOfType(tenant: string, seqs: readonly number[], type: string): Promise<StoredItem[]> {
    if (seqs.length === 0) return Promise.resolve([]);
    return this.#backend.read(this.#historyItemsOfTypeWork.bind(this, tenant, seqs, type));
  }

  *#historyItemsOfTypeWork(tenant: string, seqs: readonly number[], type: string): Work<StoredItem[]> {
    return (yield* all(this.#sql.historyItemsOfType, this.#backend.dialect.list(seqs), tenant, type)).map(toItem);
  }

  *#itemsBySeq(seqs: readonly number[]): Work<StoredItem[]> {
    if (seqs.length === 0) return [];
    return (yield* all(this.#sql.itemsBySeq, this.#backend.dialect.list(seqs))).map(toItem);
  }

  *#seqOfItem(itemId: string): Work<number | undefined> {
    const row = yield* first('SELECT seq FROM items WHERE id = ?', itemId);
    return row === undefined ? undefined : Number(row['seq']);
  }

  /** A page of a list held in memory as seqs in ascending order (a response's input items). */
  *#page(seqsAscending: readonly number[], query: PageQuery): Work<Page | PageProblem> {
    const ordered = query.order === 'asc' ? seqsAscending : [...seqsAscending].reverse();
    let startAfter = -1;
    let endBefore = ordered.length;
    if (query.after !== undefined) {
      const seq = yield* this.#seqOfItem(query.after);
      startAfter = seq === undefined ? -1 : ordered.indexOf(seq);
      if (startAfter === -1) return 'cursor_not_found';
    }
    if (query.before !== undefined) {
      const seq = yield* this.#seqOfItem(query.before);
      endBefore = seq === undefined ? -1 : ordered.indexOf(seq);
      if (endBefore === -1) return 'cursor_not_found';
    }
    const { window, hasMore } = pageWindow(ordered, startAfter, endBefore, query.limit);
    return { items: yield* this.#itemsBySeq(window), hasMore };
  }

  /** The queries inserting items (none for no items); seqsOf reads their results, unless
   * their seqs are given (reserved: see #reservedSeqs). */
  #itemInserts(tenant: string, items: readonly NewItem[], owner: string | null, holders: number, now: number, seqs?: readonly number[]): readonly Query[] {
    if (items.length === 0) return [];
    const fields = { schemaVersion: ITEM_SCHEMA_VERSION, owner, holders, createdAt: now, tenant };
    const itemSeqs = this.#backend.dialect.itemSeqs;
    if (seqs === undefined || itemSeqs === undefined) return this.#backend.dialect.insertItems(items, fields);
    return itemSeqs.insertItems(items, fields, seqs);
  }

  /** Inserts items and returns their seqs, in the order given. */
  *#insertItems(tenant: string, items: readonly NewItem[], owner: string | null, holders: number, now: number): Work<number[]> {
    return seqsOf(items, yield* batch(this.#itemInserts(tenant, items, owner, holders, now), false));
  }

  /** The queries appending seqs to a conversation whose next position the caller read (and locked). */
  #appends(conversationId: string, first: number, seqs: readonly number[]): Query[] {
    if (seqs.length === 0) return [];
    return [
      { sql: this.#sql.appendMembers, params: [conversationId, first, this.#backend.dialect.list(seqs)] },
      { sql: 'UPDATE conversations SET next_position = ? WHERE id = ?', params: [first + seqs.length, conversationId] },
    ];
  }

  /**
   * What a new checkpoint can build on, when the turn continues no previous response (see
   * saveResponse for one that does): a conversation's last stored turn while its context
   * is still how the conversation's history begins (no item of it was removed since).
   * Returns the base, its depth and how many of the history's seqs it covers.
   */
  *#conversationBase(record: SaveResponse, lastConversationResponse: string | null): Work<CheckpointBase | undefined> {
    if (lastConversationResponse === null) return undefined;
    // Any state will do: the base only has to exist, and the reference taken on it keeps it.
    const base = yield* this.#context(record.tenant, lastConversationResponse, undefined);
    if (base === undefined || base.seqs.length > record.historySeqs.length) return undefined;
    for (let i = 0; i < base.seqs.length; i++) if (base.seqs[i] !== record.historySeqs[i]) return undefined;
    return { id: lastConversationResponse, depth: base.depth, covers: base.seqs.length };
  }

  /**
   * One turn's write, in as few round trips as its dependencies allow (PostgreSQL
   * pipelines each batch, its BEGIN with the first and its COMMIT with the last). With its
   * items' seqs reserved (PostgreSQL), a turn's write is one batch: its items, and its
   * response with the checkpoint that names their seqs; a continuation's response row
   * takes the reference on the response continued and lets the database choose what its
   * checkpoint builds on (insertContinuation), so nothing has to come back first. Where
   * the insert gives the seqs (SQLite, whose batches cost no round trip, or a turn of more
   * items than a reservation), the items go first. A turn in a conversation reads the
   * conversation (locked) before all of it.
   */
  async saveResponse(record: SaveResponse): Promise<SaveOutcome> {
    const saved = await this.#backend.write(this.#saveResponse.bind(this, record));
    const keptContext = saved.newSeqs === undefined ? undefined : this.#keepContext(record, saved.newSeqs);
    return keptContext === undefined ? { conversationKept: saved.conversationKept } : { conversationKept: saved.conversationKept, keptContext };
  }

  /**
   * Keeps a stored continuation's context: the context it continued, when kept here (the
   * very seqs this turn was given), then its new items. A chain is kept from its second
   * turn on (its first continuation reads the first turn's context and keeps it); a
   * response that continues nothing costs nothing here, and a conversation's history is
   * not kept.
   */
  #keepContext(record: SaveResponse, newSeqs: readonly number[]): KeptContext | undefined {
    if (record.previousResponseId === null) return undefined;
    const history = this.#contexts.peek(record.tenant, record.previousResponseId);
    if (history === undefined || history.seqs !== record.historySeqs) return undefined;
    // The upstream forms as the store joins them (historyBySeq): empty ones left out.
    const parts: string[] = [];
    for (const item of record.inputItems) if (item.upstream !== '') parts.push(item.upstream);
    for (const item of record.outputItems) if (item.upstream !== '') parts.push(item.upstream);
    const tail = parts.join(',');
    // Not copied at all when it would not be kept.
    if (!this.#contexts.admits(record.historySeqs.length + newSeqs.length, history.upstream.length + tail.length + 1)) return undefined;
    const upstream =
      tail.length === 0 ? history.upstream : history.upstream.length === 0 ? Buffer.from(tail) : Buffer.concat([history.upstream, Buffer.from(`,${tail}`)]);
    // Whole at the count the context continued was whole at: its items were all there then,
    // and this turn's are new.
    const kept = this.#contexts.set(record.tenant, record.id, {
      seqs: [...record.historySeqs, ...newSeqs],
      upstream,
      replica: record.replica ?? null,
      removalsAt: history.removalsAt,
    });
    return kept === undefined ? undefined : { continued: history.upstream, upstream: kept.upstream };
  }

  *#saveResponse(record: SaveResponse): Work<SavedTurn> {
    const now = Date.now();
    let conversation: Row | undefined;
    if (record.conversationId !== null) {
      conversation = yield* first(this.#sql.lockConversation, record.conversationId, record.tenant);
    }
    // A conversation deleted while the turn ran takes nothing: its items would be held by
    // nothing. The response itself is still kept if it was to be.
    const conversationKept = record.conversationId === null || conversation !== undefined;
    if (!record.storeResponse && conversation === undefined) return { conversationKept, newSeqs: undefined };

    const owner = record.storeResponse ? record.id : null;
    const holders = (record.storeResponse ? 1 : 0) + (conversation !== undefined ? 1 : 0);
    const newItems = [...record.inputItems, ...record.outputItems];
    /** The items' insert when it waits for nothing (their seqs reserved): it goes in the
     * last batch, in the response's own statement where the dialect allows. */
    let itemWrites: readonly Query[] = [];
    let seqs = yield* this.#reservedSeqs(newItems.length);
    if (seqs !== undefined) {
      itemWrites = this.#itemInserts(record.tenant, newItems, owner, holders, now, seqs);
    } else {
      seqs = yield* this.#insertItems(record.tenant, newItems, owner, holders, now);
    }
    /** What goes in the last batch, with the COMMIT. */
    const writes: Query[] = [];
    if (conversation !== undefined) writes.push(...this.#appends(record.conversationId as string, Number(conversation['next_position']), seqs));
    if (!record.storeResponse) {
      yield* batch([...itemWrites, ...writes], true);
      return { conversationKept, newSeqs: undefined };
    }
    // The response's row and the items' insert touch different tables and read nothing the
    // other writes: one statement where the dialect allows (see SqlDialect.oneStatement).
    const oneStatement = this.#backend.dialect.oneStatement;
    const withItems = (response: Query): Query[] => (oneStatement === undefined ? [...itemWrites, response] : [oneStatement(itemWrites, response)]);

    const conversationId = record.conversationId !== null && conversation !== undefined ? record.conversationId : null;
    // The columns both inserts begin with.
    const row = [record.id, record.createdAt, record.status, record.model, record.body, record.previousResponseId, conversationId];
    const inputCount = record.historySeqs.length + record.inputItems.length;
    if (record.previousResponseId !== null) {
      // The response continued is held by the new one (its items are this turn's history),
      // the reference taken before the row that names it is inserted.
      const hold = [record.previousResponseId, record.tenant];
      const continuation = [
        ...row,
        // Built on the response continued: only this turn's seqs.
        encodeCheckpoint(seqs),
        // Whole: when the one continued was removed meanwhile, or its checkpoint ends a run.
        encodeCheckpoint([...record.historySeqs, ...seqs]),
        inputCount,
        record.tenant,
        record.replica ?? null,
      ];
      if (oneStatement === undefined) {
        writes.push(...withItems({ sql: this.#sql.holdPrevious, params: hold }), { sql: this.#sql.insertContinuation, params: [...continuation, ...hold] });
      } else {
        writes.push(...withItems({ sql: this.#sql.holdAndInsertContinuation, params: [...hold, ...continuation] }));
      }
    } else {
      const base = yield* this.#conversationBase(record, (conversation?.['last_response_id'] as string | null | undefined) ?? null);
      // A whole checkpoint is due every CHECKPOINT_SNAPSHOT_EVERY turns along a chain.
      const buildsOn = base !== undefined && base.depth + 1 < CHECKPOINT_SNAPSHOT_EVERY ? base : undefined;
      const checkpoint = encodeCheckpoint([...record.historySeqs.slice(buildsOn?.covers ?? 0), ...seqs]);
      const baseId = buildsOn?.id ?? null;
      const depth = buildsOn === undefined ? 0 : buildsOn.depth + 1;
      // The response holds its checkpoint's base (the second baseId), so that the base
      // does not go while needed.
      writes.push(...withItems({ sql: this.#sql.insertResponse, params: [...row, checkpoint, inputCount, record.tenant, baseId, depth, baseId, record.replica ?? null] }));
      if (baseId !== null) writes.push({ sql: 'UPDATE responses SET refs = refs + 1 WHERE id = ?', params: [baseId] });
    }
    if (conversation !== undefined) {
      writes.push({ sql: 'UPDATE conversations SET last_response_id = ? WHERE id = ?', params: [record.id, record.conversationId] });
    }
    yield* batch(writes, true);
    return { conversationKept, newSeqs: seqs };
  }

  /**
   * Seqs for a turn's `count` new items, reserved ahead (ReservedSeqs), reserving more
   * first when too few are left: one query every SEQS_RESERVED_AT_ONCE items or so.
   * Undefined where the items' insert is to give them: a database without a sequence
   * (SQLite), or more items than one reservation.
   */
  *#reservedSeqs(count: number): Work<readonly number[] | undefined> {
    const itemSeqs = this.#backend.dialect.itemSeqs;
    if (itemSeqs === undefined || count > SEQS_RESERVED_AT_ONCE) return undefined;
    if (this.#reserved.available < count) {
      const row = yield* first(itemSeqs.reserve, SEQS_RESERVED_AT_ONCE);
      this.#reserved.add(String(row?.['seqs']).split(',').map(Number));
    }
    return this.#reserved.take(count);
  }

  /** Drops one reference; a response nobody holds is removed with what only it held, along
   * the responses it held in turn. */
  *#release(responseId: string): Work<void> {
    let current: string | null = responseId;
    while (current !== null) {
      const row: Row | undefined = yield* first('UPDATE responses SET refs = refs - 1 WHERE id = ? RETURNING refs, holds_response_id', current);
      if (row === undefined || Number(row['refs']) > 0) return;
      yield* exec('DELETE FROM responses WHERE id = ?', current);
      // Items only this response held go; those a conversation also holds stay with it.
      yield* exec('DELETE FROM items WHERE owner_response_id = ? AND holders <= 1', current);
      yield* exec('UPDATE items SET holders = holders - 1, owner_response_id = NULL WHERE owner_response_id = ?', current);
      current = (row['holds_response_id'] as string | null) ?? null;
    }
  }

  async deleteResponse(tenant: string, responseId: string, now: number): Promise<boolean> {
    this.#contexts.delete(tenant, responseId);
    const deleted = await this.#backend.write(this.#deleteResponseWork.bind(this, tenant, responseId, now));
    if (deleted) await this.#backend.eraseResidue();
    return deleted;
  }

  *#deleteResponseWork(tenant: string, responseId: string, now: number): Work<boolean> {
    // The body goes at once; the checkpoint and items stay while later turns need them.
    const marked = yield* exec(this.#sql.markDeleted, responseId, tenant, this.#cutoff(now));
    if (marked === 0) return false;
    yield* runs.deleteRun(responseId);
    yield* this.#release(responseId);
    return true;
  }

  async expire(now: number, limit: number): Promise<number> {
    if (this.#retentionMs === null) return 0;
    const cutoff = this.#cutoff(now);
    const removed = await this.#backend.write(this.#expireWork.bind(this, cutoff, limit));
    if (removed > 0) await this.#backend.eraseResidue();
    return removed;
  }

  *#expireWork(cutoff: number, limit: number): Work<number> {
    const due = yield* all(this.#sql.due, cutoff, limit);
    for (const row of due) {
      const id = row['id'] as string;
      yield* exec("UPDATE responses SET deleted = TRUE, body = '' WHERE id = ?", id);
      yield* runs.deleteRun(id);
      yield* this.#release(id);
    }
    return due.length;
  }

  // --- conversations ---------------------------------------------------------------------

  createConversation(tenant: string, record: ConversationRecord, items: readonly NewItem[]): Promise<void> {
    return this.#backend.write(this.#createConversationWork.bind(this, tenant, record, items));
  }

  *#createConversationWork(tenant: string, record: ConversationRecord, items: readonly NewItem[]): Work<void> {
    const conversationRow: Query = {
      sql: 'INSERT INTO conversations (id, created_at, metadata, next_position, tenant) VALUES (?, ?, ?, 0, ?)',
      params: [record.id, record.createdAt, record.metadata, tenant],
    };
    const inserted = yield* batch([conversationRow, ...this.#itemInserts(tenant, items, null, 1, record.createdAt)], false);
    yield* batch(this.#appends(record.id, 0, seqsOf(items, inserted.slice(1))), true);
  }

  getConversation(tenant: string, conversationId: string): Promise<ConversationRecord | undefined> {
    return this.#backend.read(this.#conversationWork.bind(this, tenant, conversationId));
  }

  *#conversationWork(tenant: string, conversationId: string): Work<ConversationRecord | undefined> {
    const row = yield* first(this.#sql.conversation, conversationId, tenant);
    return row === undefined ? undefined : toConversation(row);
  }

  updateConversation(tenant: string, conversationId: string, metadata: string): Promise<ConversationRecord | undefined> {
    return this.#backend.write(this.#updateConversationWork.bind(this, tenant, conversationId, metadata));
  }

  *#updateConversationWork(tenant: string, conversationId: string, metadata: string): Work<ConversationRecord | undefined> {
    const row = yield* first(
      'UPDATE conversations SET metadata = ? WHERE id = ? AND tenant = ? RETURNING id, created_at, metadata',
      metadata,
      conversationId,
      tenant,
    );
    return row === undefined ? undefined : toConversation(row);
  }

  /** Removes memberships and the items nothing else holds. */
  *#dropMembership(conversationId: string, itemSeq: number | undefined): Work<void> {
    const removed =
      itemSeq === undefined
        ? yield* all('DELETE FROM conversation_items WHERE conversation_id = ? RETURNING item_seq', conversationId)
        : yield* all('DELETE FROM conversation_items WHERE conversation_id = ? AND item_seq = ? RETURNING item_seq', conversationId, itemSeq);
    if (removed.length === 0) return;
    const seqs = this.#backend.dialect.list(removed.map((row) => Number(row['item_seq'])));
    yield* exec(this.#sql.releaseItems, seqs);
    // The one deletion that can take an item from a live response's context (an item a
    // conversation held alone, that a stored turn's context names): counted by a trigger
    // (schema.ts, migration 5), and contexts kept in memory are confirmed again.
    yield* exec(this.#sql.deleteUnheldItems, seqs);
  }

  async deleteConversation(tenant: string, conversationId: string): Promise<boolean> {
    const deleted = await this.#backend.write(this.#deleteConversationWork.bind(this, tenant, conversationId));
    if (deleted) await this.#backend.eraseResidue();
    return deleted;
  }

  *#deleteConversationWork(tenant: string, conversationId: string): Work<boolean> {
    const removed = yield* exec('DELETE FROM conversations WHERE id = ? AND tenant = ? RETURNING id', conversationId, tenant);
    if (removed === 0) return false;
    yield* this.#dropMembership(conversationId, undefined);
    return true;
  }

  loadConversationItems(tenant: string, conversationId: string, maxItems = MAX_POSITION): Promise<History | undefined> {
    return this.#backend.read(this.#conversationItemsWork.bind(this, tenant, conversationId, maxItems));
  }

  *#conversationItemsWork(tenant: string, conversationId: string, maxItems: number): Work<History | undefined> {
    if ((yield* first(this.#sql.conversation, conversationId, tenant)) === undefined) return undefined;
    // One more than allowed tells that there are too many, without reading them all.
    const row = (yield* first(this.#sql.conversationHistory, conversationId, Math.min(maxItems, MAX_POSITION - 1) + 1)) ?? {};
    if (Number(row['n']) > maxItems) return TOO_LONG;
    const seqs = typeof row['seqs'] === 'string' ? row['seqs'].split(',').map(Number) : [];
    return { seqs, upstream: historyBytes(row['upstream']), tooLong: false };
  }

  /** The position of an item in a conversation, for a cursor. */
  *#positionOf(conversationId: string, itemId: string): Work<number | undefined> {
    const row = yield* first(this.#sql.memberPosition, conversationId, itemId);
    return row === undefined ? undefined : Number(row['position']);
  }

  listConversationItems(tenant: string, conversationId: string, query: PageQuery): Promise<Page | PageProblem> {
    return this.#backend.read(this.#conversationPageWork.bind(this, tenant, conversationId, query));
  }

  *#conversationPageWork(tenant: string, conversationId: string, query: PageQuery): Work<Page | PageProblem> {
    if ((yield* first(this.#sql.conversation, conversationId, tenant)) === undefined) return 'not_found';
    // Cursors become positions, and the page is read by position: O(limit).
    let after: number | undefined;
    let before: number | undefined;
    if (query.after !== undefined) {
      after = yield* this.#positionOf(conversationId, query.after);
      if (after === undefined) return 'cursor_not_found';
    }
    if (query.before !== undefined) {
      before = yield* this.#positionOf(conversationId, query.before);
      if (before === undefined) return 'cursor_not_found';
    }
    const ascending = query.order === 'asc';
    const low = ascending ? after : before;
    const high = ascending ? before : after;
    const rows = yield* all(
      ascending ? this.#sql.pageAscending : this.#sql.pageDescending,
      conversationId,
      low ?? -1,
      high ?? MAX_POSITION,
      query.limit + 1,
    );
    return { items: rows.slice(0, query.limit).map(toItem), hasMore: rows.length > query.limit };
  }

  addConversationItems(tenant: string, conversationId: string, items: readonly NewItem[]): Promise<StoredItem[] | undefined> {
    return this.#backend.write(this.#addConversationItemsWork.bind(this, tenant, conversationId, items));
  }

  *#addConversationItemsWork(tenant: string, conversationId: string, items: readonly NewItem[]): Work<StoredItem[] | undefined> {
    const conversation = yield* first(this.#sql.lockConversation, conversationId, tenant);
    if (conversation === undefined) return undefined;
    const seqs = yield* this.#insertItems(tenant, items, null, 1, Date.now());
    yield* batch(this.#appends(conversationId, Number(conversation['next_position']), seqs), true);
    return items.map((item, i) => ({ ...item, seq: seqs[i] as number }));
  }

  getConversationItem(tenant: string, conversationId: string, itemId: string): Promise<StoredItem | undefined> {
    return this.#backend.read(this.#conversationItemWork.bind(this, tenant, conversationId, itemId));
  }

  *#conversationItemWork(tenant: string, conversationId: string, itemId: string): Work<StoredItem | undefined> {
    const row = yield* first(this.#sql.member, conversationId, tenant, itemId);
    return row === undefined ? undefined : toItem(row);
  }

  async deleteConversationItem(tenant: string, conversationId: string, itemId: string): Promise<boolean> {
    const deleted = await this.#backend.write(this.#deleteConversationItemWork.bind(this, tenant, conversationId, itemId));
    if (deleted) await this.#backend.eraseResidue();
    return deleted;
  }

  *#deleteConversationItemWork(tenant: string, conversationId: string, itemId: string): Work<boolean> {
    const row = yield* first(this.#sql.member, conversationId, tenant, itemId);
    if (row === undefined) return false;
    yield* this.#dropMembership(conversationId, Number(row['seq']));
    return true;
  }

  // --- runs (sql-runs.ts) ------------------------------------------------------------------

  createRun(run: NewRun): Promise<void> {
    return this.#backend.write(() => runs.createRun(run));
  }

  appendRunEvents(runId: string, firstSeq: number, events: readonly string[], progress: RunProgress): Promise<void> {
    return this.#backend.write(() => runs.appendRunEvents(this.#backend.dialect, runId, firstSeq, events, progress));
  }

  getRun(tenant: string, runId: string): Promise<RunState | undefined> {
    return this.#backend.read(() => runs.getRun(tenant, runId));
  }

  readRunEvents(runId: string, afterSeq: number, limit: number): Promise<RunEventPage> {
    return this.#backend.read(() => runs.readRunEvents(runId, afterSeq, limit));
  }

  requestRunCancel(tenant: string, runId: string): Promise<RunState | undefined> {
    return this.#backend.write(() => runs.requestRunCancel(this.#backend.dialect, tenant, runId));
  }

  runsToCancel(owner: string): Promise<string[]> {
    return this.#backend.read(() => runs.runsToCancel(owner));
  }

  heartbeatRuns(owner: string, now: number): Promise<void> {
    return this.#backend.write(() => runs.heartbeatRuns(owner, now));
  }

  runOwners(): Promise<string[]> {
    return this.#backend.read(() => runs.runOwners());
  }

  claimStaleRuns(owner: string, staleBefore: number, deadOwners: readonly string[], now: number, limit: number): Promise<RunState[]> {
    return this.#backend.write(() => runs.claimStaleRuns(this.#backend.dialect, owner, staleBefore, deadOwners, now, limit));
  }

  expireRuns(finishedBefore: number, limit: number): Promise<number> {
    return this.#backend.write(() => runs.expireRuns(this.#backend.dialect, finishedBefore, limit));
  }

  async watchRuns(listener: RunListener): Promise<(() => Promise<void>) | undefined> {
    return this.#backend.listen === undefined ? undefined : this.#backend.listen(runs.RUNS_CHANNEL, listener);
  }

  ping(): Promise<void> {
    return this.#backend.read(pingWork);
  }

  close(graceMs?: number): Promise<void> {
    return this.#backend.close(graceMs);
  }
}

/** A response's row and the rows its checkpoint builds on, head first (hop 0). */
function chain(headCondition: string): string {
  return `WITH RECURSIVE chain(checkpoint, checkpoint_base, checkpoint_depth, input_count, replica, hop) AS (
      SELECT checkpoint, checkpoint_base, checkpoint_depth, input_count, replica, 0 FROM responses WHERE id = ? AND ${headCondition}
      UNION ALL
      SELECT r.checkpoint, r.checkpoint_base, r.checkpoint_depth, r.input_count, r.replica, c.hop + 1
      FROM responses r JOIN chain c ON r.id = c.checkpoint_base
      WHERE c.checkpoint_depth > 0 AND c.hop < ${CHECKPOINT_SNAPSHOT_EVERY}
    )
    SELECT checkpoint, checkpoint_depth, input_count, replica, (${ITEM_REMOVALS}) AS removals FROM chain ORDER BY hop`;
}

/** The count of item removals (store_counters; see schema.ts), read with a context. */
const ITEM_REMOVALS = "SELECT value FROM store_counters WHERE name = 'item_removals'";

/** The statements whose text depends on the dialect, built once. */
function statements(backend: SqlBackend) {
  const d = backend.dialect;
  const seqList = d.orderedList('j', 'bigint');
  /** Whether a continuation's checkpoint builds on that of the response continued (p, NULL
   * when it is gone): a whole checkpoint is due every CHECKPOINT_SNAPSHOT_EVERY turns. */
  const buildsOn = `p.checkpoint_depth + 1 < ${CHECKPOINT_SNAPSHOT_EVERY}`;
  const holdPrevious = 'UPDATE responses SET refs = refs + 1 WHERE id = ? AND tenant = ?';
  /** A continuation's response row, but for the response continued (p), joined after it.
   * Its checkpoint builds on p's when p is still stored and its own is not the last of a
   * run; otherwise it is whole, and holds nothing when p was removed since the turn read
   * it. The database decides as it inserts, so that the write needs nothing back before it. */
  const continuationRow = `INSERT INTO responses (id, created_at, status, model, body, previous_response_id, conversation_id, checkpoint,
        input_count, refs, deleted, tenant, checkpoint_base, checkpoint_depth, holds_response_id, replica)
      SELECT ?, CAST(? AS BIGINT), ?, ?, ?, ?, ?,
        CASE WHEN ${buildsOn} THEN CAST(? AS ${d.bytesType}) ELSE CAST(? AS ${d.bytesType}) END,
        CAST(? AS INTEGER), 1, FALSE, ?,
        CASE WHEN ${buildsOn} THEN p.id END, CASE WHEN ${buildsOn} THEN p.checkpoint_depth + 1 ELSE 0 END, p.id, ?
      FROM (SELECT 1 AS one) AS one LEFT JOIN`;
  return {
    /** A live response of this tenant and the checkpoints it builds on, head first. */
    liveChain: chain('tenant = ? AND deleted = FALSE AND created_at > ?'),
    /** The same for any stored response of this tenant, deleted (but still held) or expired. */
    anyChain: chain('tenant = ?'),
    body: 'SELECT body FROM responses WHERE id = ? AND tenant = ? AND deleted = FALSE AND created_at > ?',
    holdPrevious,
    /** Whether a kept context is still the store's: its response live (no row otherwise),
     * and the count of item removals; then, if that count moved, how many of its seqs are
     * still items (seqs are never reused). */
    keptContextLive: `SELECT (${ITEM_REMOVALS}) AS removals FROM responses WHERE id = ? AND tenant = ? AND deleted = FALSE AND created_at > ?`,
    keptContextCheck: `SELECT ${d.seqsFound} AS present, (${ITEM_REMOVALS}) AS removals`,
    itemRemovals: ITEM_REMOVALS,
    historyBySeq: `SELECT ${d.joinText("NULLIF(i.upstream, '')", 'j.key')} AS upstream FROM ${seqList} JOIN items i ON i.seq = j.value`,
    itemsBySeq: `SELECT ${ITEM_COLUMNS} FROM ${seqList} JOIN items i ON i.seq = j.value ORDER BY j.key`,
    historyItemsOfType: `SELECT ${ITEM_COLUMNS} FROM ${seqList} JOIN items i ON i.seq = j.value WHERE i.tenant = ? AND i.type = ? ORDER BY j.key`,
    itemsById: `SELECT ${ITEM_COLUMNS} FROM ${d.orderedList('j', 'text')} JOIN items i ON i.id = j.value WHERE i.tenant = ? ORDER BY j.key`,
    insertResponse: `INSERT INTO responses (id, created_at, status, model, body, previous_response_id, conversation_id, checkpoint,
        input_count, refs, deleted, tenant, checkpoint_base, checkpoint_depth, holds_response_id, replica)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, FALSE, ?, ?, ?, ?, ?)`,
    /** A continuation's response, after holdPrevious in the same transaction (the response
     * continued read again, as the reference left it). */
    insertContinuation: `${continuationRow} responses p ON p.id = ? AND p.tenant = ?`,
    /** The same with the reference taken in the same statement (SqlDialect.oneStatement):
     * the response continued as the reference found it, none when it was removed
     * meanwhile. Not read again from the table: a statement sees the table as it was when
     * it began, and a removal that committed while the reference waited for it would not
     * show there. */
    holdAndInsertContinuation: `WITH held AS (${holdPrevious} RETURNING id, checkpoint_depth) ${continuationRow} held p ON TRUE`,
    markDeleted: `UPDATE responses SET deleted = TRUE, body = '' WHERE id = ? AND tenant = ? AND deleted = FALSE AND created_at > ? RETURNING id`,
    due: `SELECT id FROM responses WHERE deleted = FALSE AND created_at <= ? ORDER BY created_at LIMIT ?${d.forUpdateSkipLocked}`,
    conversation: 'SELECT id, created_at, metadata FROM conversations WHERE id = ? AND tenant = ?',
    lockConversation: `SELECT next_position, last_response_id FROM conversations WHERE id = ? AND tenant = ?${d.forUpdate}`,
    appendMembers: `INSERT INTO conversation_items (conversation_id, position, item_seq)
      SELECT CAST(? AS TEXT), CAST(? AS INTEGER) + j.key, j.value FROM ${seqList}`,
    releaseItems: `UPDATE items SET holders = holders - 1 WHERE seq IN (SELECT j.value FROM ${seqList})`,
    deleteUnheldItems: `DELETE FROM items WHERE holders <= 0 AND seq IN (SELECT j.value FROM ${seqList})`,
    conversationHistory: `SELECT COUNT(*) AS n, ${d.joinText('CAST(t.item_seq AS TEXT)', 't.position')} AS seqs,
        ${d.joinText("NULLIF(t.upstream, '')", 't.position')} AS upstream
      FROM (SELECT ci.position, ci.item_seq, i.upstream FROM conversation_items ci JOIN items i ON i.seq = ci.item_seq
        WHERE ci.conversation_id = ? ORDER BY ci.position LIMIT ?) t`,
    memberPosition: `SELECT ci.position FROM items i JOIN conversation_items ci ON ci.item_seq = i.seq
      WHERE ci.conversation_id = ? AND i.id = ?`,
    member: `SELECT ${ITEM_COLUMNS} FROM conversations c JOIN conversation_items ci ON ci.conversation_id = c.id
      JOIN items i ON i.seq = ci.item_seq WHERE c.id = ? AND c.tenant = ? AND i.id = ? LIMIT 1`,
    pageAscending: `SELECT ${ITEM_COLUMNS} FROM conversation_items ci JOIN items i ON i.seq = ci.item_seq
      WHERE ci.conversation_id = ? AND ci.position > ? AND ci.position < ? ORDER BY ci.position ASC LIMIT ?`,
    pageDescending: `SELECT ${ITEM_COLUMNS} FROM conversation_items ci JOIN items i ON i.seq = ci.item_seq
      WHERE ci.conversation_id = ? AND ci.position > ? AND ci.position < ? ORDER BY ci.position DESC LIMIT ?`,
  };
}
