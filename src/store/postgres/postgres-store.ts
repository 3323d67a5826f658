// The PostgreSQL store: for several gateway processes or machines sharing state. A pg
// Pool (sized by --db-pool-size); every write is one transaction. A lost connection
// fails the request with 503 and the pool makes a new one on the next query.
import pg from 'pg';
import { decodeCheckpoint, encodeCheckpoint } from '../checkpoint-codec.ts';
import { ITEM_SCHEMA_VERSION, MIGRATIONS, pageWindow } from '../schema.ts';
import { toConversation, toItem, type Row } from '../rows.ts';
import { storeFailure } from '../store-error.ts';
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

type Queryable = Pick<pg.PoolClient, 'query'>;

/** Any fixed number: all gateways agree on it to serialise their migrations. */
const MIGRATION_LOCK_KEY = 7_257_311_902;
const CONNECT_TIMEOUT_MS = 5_000;

export interface PostgresOptions {
  readonly connectionString: string;
  readonly poolSize: number;
}

export class PostgresStore implements Store {
  readonly #pool: pg.Pool;

  constructor(options: PostgresOptions) {
    this.#pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      idleTimeoutMillis: 30_000,
    });
    // An idle client losing its connection (a database restart) must not crash the
    // process; the pool drops it and connects again when needed.
    this.#pool.on('error', () => {});
  }

  async #read<T>(work: (db: Queryable) => Promise<T>): Promise<T> {
    try {
      return await work(this.#pool);
    } catch (error) {
      throw storeFailure(error);
    }
  }

  async #transaction<T>(work: (db: Queryable) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw storeFailure(error);
    }
    let broken = false;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw storeFailure(error);
    } finally {
      client.release(broken);
    }
  }

  migrate(): Promise<void> {
    return this.#transaction(async (db) => {
      await db.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
      await db.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
      const { rows } = await db.query('SELECT version FROM schema_migrations');
      const applied = new Set(rows.map((row: Row) => Number(row['version'])));
      for (const migration of MIGRATIONS) {
        if (applied.has(migration.version)) continue;
        for (const statement of migration.postgres) await db.query(statement);
        await db.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [migration.version, Date.now()]);
      }
    });
  }

  async #itemsBySeq(db: Queryable, seqs: readonly number[]): Promise<StoredItem[]> {
    if (seqs.length === 0) return [];
    const { rows } = await db.query(
      `SELECT i.seq, i.id, i.type, i.payload, i.upstream
       FROM unnest($1::bigint[]) WITH ORDINALITY AS j(seq, ord) JOIN items i ON i.seq = j.seq ORDER BY j.ord`,
      [seqs],
    );
    return rows.map(toItem);
  }

  async #liveResponse(db: Queryable, responseId: string, now: number): Promise<Row | undefined> {
    const { rows } = await db.query(
      `SELECT id, conversation_id, checkpoint, input_count, body FROM responses
       WHERE id = $1 AND NOT deleted AND (expires_at IS NULL OR expires_at > $2)`,
      [responseId, now],
    );
    return rows[0] as Row | undefined;
  }

  loadResponseContext(responseId: string, now: number): Promise<ResponseContext | undefined> {
    return this.#read(async (db) => {
      const row = await this.#liveResponse(db, responseId, now);
      if (row === undefined) return undefined;
      const seqs = decodeCheckpoint(row['checkpoint'] as Buffer);
      return {
        responseId,
        conversationId: (row['conversation_id'] as string | null) ?? null,
        seqs,
        items: await this.#itemsBySeq(db, seqs),
      };
    });
  }

  getResponseBody(responseId: string, now: number): Promise<string | undefined> {
    return this.#read(async (db) => (await this.#liveResponse(db, responseId, now))?.['body'] as string | undefined);
  }

  getItemsById(ids: readonly string[]): Promise<StoredItem[]> {
    return this.#read(async (db) => {
      if (ids.length === 0) return [];
      const { rows } = await db.query(
        `SELECT i.seq, i.id, i.type, i.payload, i.upstream
         FROM unnest($1::text[]) WITH ORDINALITY AS j(id, ord) JOIN items i ON i.id = j.id ORDER BY j.ord`,
        [ids],
      );
      return rows.map(toItem);
    });
  }

  async #seqOfItem(db: Queryable, itemId: string): Promise<number | undefined> {
    const { rows } = await db.query('SELECT seq FROM items WHERE id = $1', [itemId]);
    return rows[0] === undefined ? undefined : Number((rows[0] as Row)['seq']);
  }

  async #page(db: Queryable, seqsAscending: readonly number[], query: PageQuery): Promise<Page | PageProblem> {
    const ordered = query.order === 'asc' ? seqsAscending : [...seqsAscending].reverse();
    let startAfter = -1;
    let endBefore = ordered.length;
    if (query.after !== undefined) {
      const seq = await this.#seqOfItem(db, query.after);
      startAfter = seq === undefined ? -1 : ordered.indexOf(seq);
      if (startAfter === -1) return 'cursor_not_found';
    }
    if (query.before !== undefined) {
      const seq = await this.#seqOfItem(db, query.before);
      endBefore = seq === undefined ? -1 : ordered.indexOf(seq);
      if (endBefore === -1) return 'cursor_not_found';
    }
    const { window, hasMore } = pageWindow(ordered, startAfter, endBefore, query.limit);
    return { items: await this.#itemsBySeq(db, window), hasMore };
  }

  listInputItems(responseId: string, query: PageQuery, now: number): Promise<Page | PageProblem> {
    return this.#read(async (db) => {
      const row = await this.#liveResponse(db, responseId, now);
      if (row === undefined) return 'not_found';
      const seqs = decodeCheckpoint(row['checkpoint'] as Buffer).slice(0, Number(row['input_count']));
      return this.#page(db, seqs, query);
    });
  }

  async #insertItems(db: Queryable, items: readonly NewItem[], owner: string | null, holders: number, now: number): Promise<number[]> {
    if (items.length === 0) return [];
    const { rows } = await db.query(
      `INSERT INTO items (id, type, payload, upstream, schema_version, owner_response_id, holders, created_at)
       SELECT id, type, payload, upstream, $5, $6, $7, $8 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS t(id, type, payload, upstream)
       RETURNING seq, id`,
      [
        items.map((item) => item.id),
        items.map((item) => item.type),
        items.map((item) => item.payload),
        items.map((item) => item.upstream),
        ITEM_SCHEMA_VERSION,
        owner,
        holders,
        now,
      ],
    );
    // RETURNING order is not promised to follow the input: map back by id.
    const seqById = new Map(rows.map((row: Row) => [row['id'] as string, Number(row['seq'])]));
    return items.map((item) => seqById.get(item.id) as number);
  }

  async #appendToConversation(db: Queryable, conversationId: string, seqs: readonly number[]): Promise<boolean> {
    const { rows } = await db.query('SELECT next_position FROM conversations WHERE id = $1 FOR UPDATE', [conversationId]);
    if (rows[0] === undefined) return false;
    const first = Number((rows[0] as Row)['next_position']);
    if (seqs.length > 0) {
      await db.query(
        `INSERT INTO conversation_items (conversation_id, position, item_seq)
         SELECT $1, $2 + ord - 1, seq FROM unnest($3::bigint[]) WITH ORDINALITY AS t(seq, ord)`,
        [conversationId, first, seqs],
      );
      await db.query('UPDATE conversations SET next_position = $1 WHERE id = $2', [first + seqs.length, conversationId]);
    }
    return true;
  }

  saveResponse(record: SaveResponse): Promise<void> {
    return this.#transaction(async (db) => {
      const now = Date.now();
      const owner = record.storeResponse ? record.id : null;
      const holders = (record.storeResponse ? 1 : 0) + (record.conversationId !== null ? 1 : 0);
      const inputSeqs = await this.#insertItems(db, record.inputItems, owner, holders, now);
      const outputSeqs = await this.#insertItems(db, record.outputItems, owner, holders, now);
      if (record.conversationId !== null) await this.#appendToConversation(db, record.conversationId, [...inputSeqs, ...outputSeqs]);
      if (!record.storeResponse) return;
      await db.query(
        `INSERT INTO responses (id, created_at, status, model, body, previous_response_id, conversation_id, checkpoint, input_count, refs, deleted, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, FALSE, $10)`,
        [
          record.id,
          record.createdAt,
          record.status,
          record.model,
          record.body,
          record.previousResponseId,
          record.conversationId,
          encodeCheckpoint([...record.historySeqs, ...inputSeqs, ...outputSeqs]),
          record.historySeqs.length + inputSeqs.length,
          record.expiresAt,
        ],
      );
      // The new response holds the one it continued, so that one's items outlive its deletion.
      if (record.previousResponseId !== null) {
        await db.query('UPDATE responses SET refs = refs + 1 WHERE id = $1', [record.previousResponseId]);
      }
    });
  }

  /** Drops one reference; a response nobody holds is removed with what only it held, up its chain. */
  async #release(db: Queryable, responseId: string): Promise<void> {
    let current: string | null = responseId;
    while (current !== null) {
      const result: pg.QueryResult<Row> = await db.query(
        'UPDATE responses SET refs = refs - 1 WHERE id = $1 RETURNING refs, previous_response_id',
        [current],
      );
      const row: Row | undefined = result.rows[0];
      if (row === undefined || Number(row['refs']) > 0) return;
      await db.query('DELETE FROM responses WHERE id = $1', [current]);
      // Items only this response held go; those a conversation also holds stay with it.
      await db.query('DELETE FROM items WHERE owner_response_id = $1 AND holders <= 1', [current]);
      await db.query('UPDATE items SET holders = holders - 1, owner_response_id = NULL WHERE owner_response_id = $1', [current]);
      current = (row['previous_response_id'] as string | null) ?? null;
    }
  }

  deleteResponse(responseId: string, now: number): Promise<boolean> {
    return this.#transaction(async (db) => {
      const { rows } = await db.query(
        `UPDATE responses SET deleted = TRUE WHERE id = $1 AND NOT deleted AND (expires_at IS NULL OR expires_at > $2) RETURNING id`,
        [responseId, now],
      );
      if (rows.length === 0) return false;
      await this.#release(db, responseId);
      return true;
    });
  }

  expire(now: number): Promise<number> {
    return this.#transaction(async (db) => {
      const { rows } = await db.query(
        `UPDATE responses SET deleted = TRUE WHERE id IN (
           SELECT id FROM responses WHERE expires_at IS NOT NULL AND expires_at <= $1 AND NOT deleted
           ORDER BY expires_at LIMIT 500 FOR UPDATE SKIP LOCKED)
         RETURNING id`,
        [now],
      );
      for (const row of rows as Row[]) await this.#release(db, row['id'] as string);
      return rows.length;
    });
  }

  createConversation(record: ConversationRecord, items: readonly NewItem[]): Promise<void> {
    return this.#transaction(async (db) => {
      await db.query('INSERT INTO conversations (id, created_at, metadata, next_position) VALUES ($1, $2, $3, 0)', [
        record.id,
        record.createdAt,
        record.metadata,
      ]);
      await this.#appendToConversation(db, record.id, await this.#insertItems(db, items, null, 1, record.createdAt));
    });
  }

  getConversation(conversationId: string): Promise<ConversationRecord | undefined> {
    return this.#read(async (db) => {
      const { rows } = await db.query('SELECT id, created_at, metadata FROM conversations WHERE id = $1', [conversationId]);
      return rows[0] === undefined ? undefined : toConversation(rows[0] as Row);
    });
  }

  updateConversation(conversationId: string, metadata: string): Promise<ConversationRecord | undefined> {
    return this.#read(async (db) => {
      const { rows } = await db.query('UPDATE conversations SET metadata = $1 WHERE id = $2 RETURNING id, created_at, metadata', [
        metadata,
        conversationId,
      ]);
      return rows[0] === undefined ? undefined : toConversation(rows[0] as Row);
    });
  }

  async #dropMembership(db: Queryable, conversationId: string, itemSeq: number | undefined): Promise<void> {
    const { rows } =
      itemSeq === undefined
        ? await db.query('DELETE FROM conversation_items WHERE conversation_id = $1 RETURNING item_seq', [conversationId])
        : await db.query('DELETE FROM conversation_items WHERE conversation_id = $1 AND item_seq = $2 RETURNING item_seq', [
            conversationId,
            itemSeq,
          ]);
    const seqs = rows.map((row: Row) => Number(row['item_seq']));
    if (seqs.length === 0) return;
    await db.query('UPDATE items SET holders = holders - 1 WHERE seq = ANY($1::bigint[])', [seqs]);
    await db.query('DELETE FROM items WHERE seq = ANY($1::bigint[]) AND holders <= 0', [seqs]);
  }

  deleteConversation(conversationId: string): Promise<boolean> {
    return this.#transaction(async (db) => {
      const { rowCount } = await db.query('DELETE FROM conversations WHERE id = $1', [conversationId]);
      if ((rowCount ?? 0) === 0) return false;
      await this.#dropMembership(db, conversationId, undefined);
      return true;
    });
  }

  async #conversationSeqs(db: Queryable, conversationId: string): Promise<number[] | undefined> {
    const exists = await db.query('SELECT 1 FROM conversations WHERE id = $1', [conversationId]);
    if (exists.rows.length === 0) return undefined;
    const { rows } = await db.query('SELECT item_seq FROM conversation_items WHERE conversation_id = $1 ORDER BY position', [
      conversationId,
    ]);
    return rows.map((row: Row) => Number(row['item_seq']));
  }

  loadConversationItems(conversationId: string): Promise<{ seqs: number[]; items: StoredItem[] } | undefined> {
    return this.#read(async (db) => {
      const seqs = await this.#conversationSeqs(db, conversationId);
      return seqs === undefined ? undefined : { seqs, items: await this.#itemsBySeq(db, seqs) };
    });
  }

  listConversationItems(conversationId: string, query: PageQuery): Promise<Page | PageProblem> {
    return this.#read(async (db) => {
      const seqs = await this.#conversationSeqs(db, conversationId);
      return seqs === undefined ? 'not_found' : this.#page(db, seqs, query);
    });
  }

  addConversationItems(conversationId: string, items: readonly NewItem[]): Promise<StoredItem[] | undefined> {
    return this.#transaction(async (db) => {
      const exists = await db.query('SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE', [conversationId]);
      if (exists.rows.length === 0) return undefined;
      const seqs = await this.#insertItems(db, items, null, 1, Date.now());
      await this.#appendToConversation(db, conversationId, seqs);
      return items.map((item, i) => ({ ...item, seq: seqs[i] as number }));
    });
  }

  getConversationItem(conversationId: string, itemId: string): Promise<StoredItem | undefined> {
    return this.#read(async (db) => {
      const { rows } = await db.query(
        `SELECT i.seq, i.id, i.type, i.payload, i.upstream FROM conversation_items ci JOIN items i ON i.seq = ci.item_seq
         WHERE ci.conversation_id = $1 AND i.id = $2 LIMIT 1`,
        [conversationId, itemId],
      );
      return rows[0] === undefined ? undefined : toItem(rows[0] as Row);
    });
  }

  deleteConversationItem(conversationId: string, itemId: string): Promise<boolean> {
    return this.#transaction(async (db) => {
      const seq = await this.#seqOfItem(db, itemId);
      if (seq === undefined) return false;
      const member = await db.query('SELECT 1 FROM conversation_items WHERE conversation_id = $1 AND item_seq = $2', [
        conversationId,
        seq,
      ]);
      if (member.rows.length === 0) return false;
      await this.#dropMembership(db, conversationId, seq);
      return true;
    });
  }

  ping(): Promise<void> {
    return this.#read(async (db) => {
      await db.query('SELECT 1');
    });
  }

  close(): Promise<void> {
    return this.#pool.end();
  }
}
