// The SQLite store: one file (WAL mode) that several gateway processes on one machine
// share. better-sqlite3 is synchronous; each call is short (an indexed read or one small
// transaction), so it runs on the event loop without a thread hop.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';
import { decodeCheckpoint, encodeCheckpoint } from '../checkpoint-codec.ts';
import { MIGRATIONS, ITEM_SCHEMA_VERSION, pageWindow } from '../schema.ts';
import { toConversation, toItem, type Row } from '../rows.ts';
import { storeFailure } from '../store-error.ts';
import { sqliteDriver } from './sqlite-driver.ts';
import type {
  ConversationRecord,
  NewItem,
  Page,
  PageProblem,
  PageQuery,
  ResponseContext,
  SaveResponse,
  Store,
  StoredItem,
} from '../store.ts';

const BUSY_TIMEOUT_MS = 5_000;

export class SqliteStore implements Store {
  readonly #db: Database.Database;
  readonly #statements = new Map<string, Database.Statement>();

  /** `path` is a file path or ':memory:'. */
  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    try {
      const SqliteDatabase = sqliteDriver();
      this.#db = new SqliteDatabase(path, { timeout: BUSY_TIMEOUT_MS });
      this.#db.pragma('journal_mode = WAL');
      // NORMAL in WAL mode: a commit survives a crash of the process; only a power
      // loss can drop the last commits. FULL would fsync every turn.
      this.#db.pragma('synchronous = NORMAL');
      this.#db.pragma('foreign_keys = OFF');
    } catch (error) {
      throw storeFailure(error);
    }
  }

  #sql(text: string): Database.Statement {
    let statement = this.#statements.get(text);
    if (statement === undefined) {
      statement = this.#db.prepare(text);
      this.#statements.set(text, statement);
    }
    return statement;
  }

  /** Runs `work` synchronously, mapping driver failures to store_unavailable. */
  #run<T>(work: () => T): Promise<T> {
    try {
      return Promise.resolve(work());
    } catch (error) {
      return Promise.reject(storeFailure(error));
    }
  }

  /** A write transaction that takes the write lock at once (no upgrade deadlocks). */
  #write<T>(work: () => T): Promise<T> {
    return this.#run(() => this.#db.transaction(work).immediate());
  }

  migrate(): Promise<void> {
    return this.#write(() => {
      this.#db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
      const applied = new Set(
        (this.#db.prepare('SELECT version FROM schema_migrations').all() as Row[]).map((row) => Number(row['version'])),
      );
      for (const migration of MIGRATIONS) {
        if (applied.has(migration.version)) continue;
        for (const statement of migration.sqlite) this.#db.exec(statement);
        this.#db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(migration.version, Date.now());
      }
    });
  }

  #itemsBySeq(seqs: readonly number[]): StoredItem[] {
    if (seqs.length === 0) return [];
    const rows = this.#sql(
      'SELECT i.seq, i.id, i.type, i.payload, i.upstream FROM json_each(?) j JOIN items i ON i.seq = j.value ORDER BY j.key',
    ).all(JSON.stringify(seqs)) as Row[];
    return rows.map(toItem);
  }

  #liveResponse(responseId: string, now: number): Row | undefined {
    return this.#sql(
      'SELECT id, conversation_id, checkpoint, input_count, body FROM responses WHERE id = ? AND deleted = 0 AND (expires_at IS NULL OR expires_at > ?)',
    ).get(responseId, now) as Row | undefined;
  }

  loadResponseContext(responseId: string, now: number): Promise<ResponseContext | undefined> {
    return this.#run(() => {
      const row = this.#liveResponse(responseId, now);
      if (row === undefined) return undefined;
      const seqs = decodeCheckpoint(row['checkpoint'] as Buffer);
      return {
        responseId,
        conversationId: (row['conversation_id'] as string | null) ?? null,
        seqs,
        items: this.#itemsBySeq(seqs),
      };
    });
  }

  getResponseBody(responseId: string, now: number): Promise<string | undefined> {
    return this.#run(() => this.#liveResponse(responseId, now)?.['body'] as string | undefined);
  }

  getItemsById(ids: readonly string[]): Promise<StoredItem[]> {
    return this.#run(() => {
      if (ids.length === 0) return [];
      const rows = this.#sql(
        'SELECT i.seq, i.id, i.type, i.payload, i.upstream FROM json_each(?) j JOIN items i ON i.id = j.value ORDER BY j.key',
      ).all(JSON.stringify(ids)) as Row[];
      return rows.map(toItem);
    });
  }

  #seqOfItem(itemId: string): number | undefined {
    const row = this.#sql('SELECT seq FROM items WHERE id = ?').get(itemId) as Row | undefined;
    return row === undefined ? undefined : Number(row['seq']);
  }

  /** Applies a page query to seqs in natural (ascending) order. */
  #page(seqsAscending: readonly number[], query: PageQuery): Page | PageProblem {
    const ordered = query.order === 'asc' ? seqsAscending : [...seqsAscending].reverse();
    let startAfter = -1;
    let endBefore = ordered.length;
    if (query.after !== undefined) {
      const seq = this.#seqOfItem(query.after);
      startAfter = seq === undefined ? -1 : ordered.indexOf(seq);
      if (startAfter === -1) return 'cursor_not_found';
    }
    if (query.before !== undefined) {
      const seq = this.#seqOfItem(query.before);
      endBefore = seq === undefined ? -1 : ordered.indexOf(seq);
      if (endBefore === -1) return 'cursor_not_found';
    }
    const { window, hasMore } = pageWindow(ordered, startAfter, endBefore, query.limit);
    return { items: this.#itemsBySeq(window), hasMore };
  }

  listInputItems(responseId: string, query: PageQuery, now: number): Promise<Page | PageProblem> {
    return this.#run(() => {
      const row = this.#liveResponse(responseId, now);
      if (row === undefined) return 'not_found';
      const seqs = decodeCheckpoint(row['checkpoint'] as Buffer).slice(0, Number(row['input_count']));
      return this.#page(seqs, query);
    });
  }

  #insertItems(items: readonly NewItem[], owner: string | null, holders: number, now: number): number[] {
    const insert = this.#sql(
      'INSERT INTO items (id, type, payload, upstream, schema_version, owner_response_id, holders, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    return items.map((item) =>
      Number(insert.run(item.id, item.type, item.payload, item.upstream, ITEM_SCHEMA_VERSION, owner, holders, now).lastInsertRowid),
    );
  }

  #appendToConversation(conversationId: string, seqs: readonly number[]): void {
    const row = this.#sql('SELECT next_position FROM conversations WHERE id = ?').get(conversationId) as Row | undefined;
    if (row === undefined) return;
    let position = Number(row['next_position']);
    const insert = this.#sql('INSERT INTO conversation_items (conversation_id, position, item_seq) VALUES (?, ?, ?)');
    for (const seq of seqs) insert.run(conversationId, position++, seq);
    this.#sql('UPDATE conversations SET next_position = ? WHERE id = ?').run(position, conversationId);
  }

  saveResponse(record: SaveResponse): Promise<void> {
    return this.#write(() => {
      const now = Date.now();
      const owner = record.storeResponse ? record.id : null;
      const holders = (record.storeResponse ? 1 : 0) + (record.conversationId !== null ? 1 : 0);
      const inputSeqs = this.#insertItems(record.inputItems, owner, holders, now);
      const outputSeqs = this.#insertItems(record.outputItems, owner, holders, now);
      if (record.conversationId !== null) this.#appendToConversation(record.conversationId, [...inputSeqs, ...outputSeqs]);
      if (!record.storeResponse) return;
      const checkpoint = encodeCheckpoint([...record.historySeqs, ...inputSeqs, ...outputSeqs]);
      this.#sql(
        `INSERT INTO responses (id, created_at, status, model, body, previous_response_id, conversation_id, checkpoint, input_count, refs, deleted, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 0, ?)`,
      ).run(
        record.id,
        record.createdAt,
        record.status,
        record.model,
        record.body,
        record.previousResponseId,
        record.conversationId,
        checkpoint,
        record.historySeqs.length + inputSeqs.length,
        record.expiresAt,
      );
      // The new response holds the one it continued, so that one's items outlive its deletion.
      if (record.previousResponseId !== null) {
        this.#sql('UPDATE responses SET refs = refs + 1 WHERE id = ?').run(record.previousResponseId);
      }
    });
  }

  /** Drops one reference; a response nobody holds is removed with what only it held, up its chain. */
  #release(responseId: string): void {
    let current: string | null = responseId;
    while (current !== null) {
      this.#sql('UPDATE responses SET refs = refs - 1 WHERE id = ?').run(current);
      const row = this.#sql('SELECT refs, previous_response_id FROM responses WHERE id = ?').get(current) as Row | undefined;
      if (row === undefined || Number(row['refs']) > 0) return;
      this.#sql('DELETE FROM responses WHERE id = ?').run(current);
      // Items only this response held go; those a conversation also holds stay with it.
      this.#sql('DELETE FROM items WHERE owner_response_id = ? AND holders <= 1').run(current);
      this.#sql('UPDATE items SET holders = holders - 1, owner_response_id = NULL WHERE owner_response_id = ?').run(current);
      current = (row['previous_response_id'] as string | null) ?? null;
    }
  }

  deleteResponse(responseId: string, now: number): Promise<boolean> {
    return this.#write(() => {
      if (this.#liveResponse(responseId, now) === undefined) return false;
      this.#sql('UPDATE responses SET deleted = 1 WHERE id = ?').run(responseId);
      this.#release(responseId);
      return true;
    });
  }

  expire(now: number): Promise<number> {
    return this.#write(() => {
      const due = this.#sql(
        'SELECT id FROM responses WHERE expires_at IS NOT NULL AND expires_at <= ? AND deleted = 0 ORDER BY expires_at LIMIT 500',
      ).all(now) as Row[];
      for (const row of due) {
        this.#sql('UPDATE responses SET deleted = 1 WHERE id = ?').run(row['id']);
        this.#release(row['id'] as string);
      }
      return due.length;
    });
  }

  createConversation(record: ConversationRecord, items: readonly NewItem[]): Promise<void> {
    return this.#write(() => {
      this.#sql('INSERT INTO conversations (id, created_at, metadata, next_position) VALUES (?, ?, ?, 0)').run(
        record.id,
        record.createdAt,
        record.metadata,
      );
      this.#appendToConversation(record.id, this.#insertItems(items, null, 1, record.createdAt));
    });
  }

  getConversation(conversationId: string): Promise<ConversationRecord | undefined> {
    return this.#run(() => {
      const row = this.#sql('SELECT id, created_at, metadata FROM conversations WHERE id = ?').get(conversationId) as Row | undefined;
      return row === undefined ? undefined : toConversation(row);
    });
  }

  updateConversation(conversationId: string, metadata: string): Promise<ConversationRecord | undefined> {
    return this.#write(() => {
      this.#sql('UPDATE conversations SET metadata = ? WHERE id = ?').run(metadata, conversationId);
      const row = this.#sql('SELECT id, created_at, metadata FROM conversations WHERE id = ?').get(conversationId) as Row | undefined;
      return row === undefined ? undefined : toConversation(row);
    });
  }

  #dropMembership(whereSql: string, ...params: unknown[]): void {
    const seqs = (this.#sql(`SELECT item_seq FROM conversation_items WHERE ${whereSql}`).all(...params) as Row[]).map(
      (row) => Number(row['item_seq']),
    );
    this.#sql(`DELETE FROM conversation_items WHERE ${whereSql}`).run(...params);
    const release = this.#sql('UPDATE items SET holders = holders - 1 WHERE seq = ?');
    const remove = this.#sql('DELETE FROM items WHERE seq = ? AND holders <= 0');
    for (const seq of seqs) {
      release.run(seq);
      remove.run(seq);
    }
  }

  deleteConversation(conversationId: string): Promise<boolean> {
    return this.#write(() => {
      const existed = this.#sql('DELETE FROM conversations WHERE id = ?').run(conversationId).changes > 0;
      if (existed) this.#dropMembership('conversation_id = ?', conversationId);
      return existed;
    });
  }

  #conversationSeqs(conversationId: string): number[] | undefined {
    const exists = this.#sql('SELECT 1 FROM conversations WHERE id = ?').get(conversationId);
    if (exists === undefined) return undefined;
    return (
      this.#sql('SELECT item_seq FROM conversation_items WHERE conversation_id = ? ORDER BY position').all(conversationId) as Row[]
    ).map((row) => Number(row['item_seq']));
  }

  loadConversationItems(conversationId: string): Promise<{ seqs: number[]; items: StoredItem[] } | undefined> {
    return this.#run(() => {
      const seqs = this.#conversationSeqs(conversationId);
      return seqs === undefined ? undefined : { seqs, items: this.#itemsBySeq(seqs) };
    });
  }

  listConversationItems(conversationId: string, query: PageQuery): Promise<Page | PageProblem> {
    return this.#run(() => {
      const seqs = this.#conversationSeqs(conversationId);
      return seqs === undefined ? 'not_found' : this.#page(seqs, query);
    });
  }

  addConversationItems(conversationId: string, items: readonly NewItem[]): Promise<StoredItem[] | undefined> {
    return this.#write(() => {
      if (this.#sql('SELECT 1 FROM conversations WHERE id = ?').get(conversationId) === undefined) return undefined;
      const seqs = this.#insertItems(items, null, 1, Date.now());
      this.#appendToConversation(conversationId, seqs);
      return items.map((item, i) => ({ ...item, seq: seqs[i] as number }));
    });
  }

  getConversationItem(conversationId: string, itemId: string): Promise<StoredItem | undefined> {
    return this.#run(() => {
      const row = this.#sql(
        `SELECT i.seq, i.id, i.type, i.payload, i.upstream FROM conversation_items ci JOIN items i ON i.seq = ci.item_seq
         WHERE ci.conversation_id = ? AND i.id = ? LIMIT 1`,
      ).get(conversationId, itemId) as Row | undefined;
      return row === undefined ? undefined : toItem(row);
    });
  }

  deleteConversationItem(conversationId: string, itemId: string): Promise<boolean> {
    return this.#write(() => {
      const seq = this.#seqOfItem(itemId);
      if (seq === undefined) return false;
      const member = this.#sql('SELECT 1 FROM conversation_items WHERE conversation_id = ? AND item_seq = ?').get(conversationId, seq);
      if (member === undefined) return false;
      this.#dropMembership('conversation_id = ? AND item_seq = ?', conversationId, seq);
      return true;
    });
  }

  ping(): Promise<void> {
    return this.#run(() => {
      this.#sql('SELECT 1').get();
    });
  }

  close(): Promise<void> {
    return this.#run(() => {
      if (this.#db.open) this.#db.close();
    });
  }
}
