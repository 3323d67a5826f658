// SQLite under the store core: one file (WAL mode) that the gateway processes of one
// machine share. better-sqlite3 is synchronous and each unit of work is short (an indexed
// read or one small write), so work runs on the event loop without a thread hop, and a
// write transaction runs start to end with nothing interleaved. The writes of one turn of
// the event loop share a transaction (see write).
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Migration } from '../schema.ts';
import type { SqlBackend, SqlDialect } from '../sql/backend.ts';
import { applyMigrations } from '../sql/migrate.ts';
import { runSync, type Query, type QueryResult, type Work } from '../sql/work.ts';
import { storeFailure } from '../store-error.ts';
import { sqliteDriver, type SqliteDatabase, type SqliteStatement } from './sqlite-driver.ts';

/** The most writes one transaction takes: they run as one synchronous block of the event
 * loop (a small turn's write is 0.1–0.2 ms of SQLite work), which this bounds. */
const WRITES_PER_COMMIT = 64;

/** After a checkpoint the WAL is cut back to this size, so it cannot grow without end. */
const WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

const INSERT_ITEM =
  'INSERT INTO items (id, type, payload, upstream, schema_version, owner_response_id, holders, created_at, tenant) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq, id';

export const SQLITE_DIALECT: SqlDialect = {
  name: 'sqlite',
  orderedList: (alias) => `json_each(?) AS ${alias}`,
  // SQLite plans each prepared statement for what it binds: the join is looked up by rowid.
  seqsFound: '(SELECT count(*) FROM json_each(?) AS j JOIN items i ON i.seq = j.value)',
  list: (values) => JSON.stringify(values),
  joinText: (expression, orderBy) => `group_concat(${expression}, ',' ORDER BY ${orderBy})`,
  forUpdate: '',
  forUpdateSkipLocked: '',
  notify: undefined,
  bytesType: 'BLOB',
  // One prepared statement per row: in-process, a row costs a few microseconds.
  insertItems: (items, fields): Query[] =>
    items.map((item) => ({
      sql: INSERT_ITEM,
      params: [item.id, item.type, item.payload, item.upstream, fields.schemaVersion, fields.owner, fields.holders, fields.createdAt, fields.tenant],
    })),
};

/**
 * Runs `work` again while SQLite answers SQLITE_BUSY without waiting. Switching a new file
 * to WAL takes an exclusive lock, and when two processes (the workers of one gateway,
 * forked together) try at the same instant, SQLite fails one at once instead of calling
 * the busy handler, to avoid a deadlock. Startup only, so a synchronous wait will do.
 */
function retryWhileBusy<T>(work: () => T, timeoutMs: number): T {
  const deadline = Date.now() + timeoutMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      return work();
    } catch (error) {
      if (!isBusy(error) || Date.now() >= deadline) throw error;
      Atomics.wait(pause, 0, 0, 10 + Math.floor(Math.random() * 40));
    }
  }
}

/**
 * Creates a directory and its missing parents, one at a time. Not mkdirSync's recursive
 * mode: under /proc it retries for ever (the kernel refuses the directory, and node then
 * retries the parent, which exists), and a gateway given such a path spun instead of
 * saying why it could not start.
 */
function ensureDirectory(dir: string): void {
  const missing: string[] = [];
  for (let current = dir; !existsSync(current); current = dirname(current)) {
    missing.push(current);
    if (dirname(current) === current) break;
  }
  for (const directory of missing.reverse()) {
    try {
      mkdirSync(directory);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      throw new Error(`cannot create the directory ${directory} (${typeof code === 'string' ? code : 'error'})`, { cause: error });
    }
  }
}

/** SQLITE_BUSY or SQLITE_LOCKED, as either driver reports it. */
function isBusy(error: unknown): boolean {
  const { code, errcode } = error as { code?: unknown; errcode?: unknown };
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || errcode === 5 || errcode === 6;
}

/** Whether a statement returns rows (a query, or a change with RETURNING). */
function returnsRows(sql: string): boolean {
  return /^\s*(SELECT|WITH|PRAGMA)\b/i.test(sql) || /\bRETURNING\b/i.test(sql);
}

interface QueuedWrite {
  readonly work: () => Work<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

interface Prepared {
  readonly statement: SqliteStatement;
  readonly returnsRows: boolean;
}

export class SqliteBackend implements SqlBackend {
  readonly dialect = SQLITE_DIALECT;
  readonly #db: SqliteDatabase;
  #open = true;
  readonly #statements = new Map<string, Prepared>();
  readonly #execute = (query: Query): QueryResult => {
    const { statement, returnsRows: rows } = this.#statement(query.sql);
    const params = query.params as unknown[];
    if (rows) return { rows: statement.all(...params), changes: 0 };
    return { rows: [], changes: Number(statement.run(...params).changes) };
  };

  /** `path` is a file path or ':memory:'; `busyTimeoutMs` bounds the wait for another
   * process's write lock. */
  constructor(path: string, busyTimeoutMs: number) {
    try {
      if (path !== ':memory:') ensureDirectory(dirname(path));
      this.#db = sqliteDriver().open(path);
      this.#db.exec(`PRAGMA busy_timeout = ${Math.round(busyTimeoutMs)}`);
      retryWhileBusy(() => this.#db.exec('PRAGMA journal_mode = WAL'), busyTimeoutMs);
      // NORMAL in WAL mode: a commit survives a crash of the process; only a power loss
      // can drop the last commits. FULL would fsync every turn.
      this.#db.exec('PRAGMA synchronous = NORMAL');
      this.#db.exec('PRAGMA foreign_keys = OFF');
      // Deleted rows are overwritten with zeros, not left in free space.
      this.#db.exec('PRAGMA secure_delete = ON');
      this.#db.exec(`PRAGMA journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
    } catch (error) {
      throw storeFailure(error);
    }
  }

  #statement(sql: string): Prepared {
    let prepared = this.#statements.get(sql);
    if (prepared === undefined) {
      prepared = { statement: this.#db.prepare(sql), returnsRows: returnsRows(sql) };
      this.#statements.set(sql, prepared);
    }
    return prepared;
  }

  read<T>(work: () => Work<T>): Promise<T> {
    try {
      this.flushWrites();
      return Promise.resolve(runSync(work(), this.#execute));
    } catch (error) {
      return Promise.reject(storeFailure(error));
    }
  }

  /**
   * Group commit: the writes made during one turn of the event loop are committed together,
   * in one transaction, at the end of the turn (setImmediate). A commit writes every page its
   * transaction changed into the WAL, and the writes of concurrent responses change the
   * same pages (the tables' last leaves, their indexes' pages): under load one commit
   * writes those pages once for many responses. A lone write is committed as before, at the
   * end of its turn. Nobody is answered before their write is committed: each promise
   * settles after the COMMIT.
   *
   * One write failing leaves the others whole: the transaction is rolled back and each write
   * of it runs again alone, in a transaction of its own (works only run statements, so
   * running one again is running it once). Not a savepoint a write, which would spare that
   * rare second run at a cost on every commit: SQLite records a savepoint's pages in a
   * sub-journal that spilled into a temporary file, 11 more pwrite64 a stored response
   * under load and 15 % of its CPU (bench/README.md).
   */
  write<T>(work: () => Work<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queued.push({ work, resolve: resolve as (value: unknown) => void, reject });
      if (this.#queued.length === 1) setImmediate(this.#commitQueued);
    });
  }

  /** Writes waiting for the end of this turn (see write). */
  readonly #queued: QueuedWrite[] = [];

  /** At the end of the turn: one transaction, and the rest (if more were queued than one
   * takes) at the end of the next turn, so that I/O is served in between. */
  readonly #commitQueued = (): void => {
    this.#commitSome();
    if (this.#queued.length > 0) setImmediate(this.#commitQueued);
  };

  /**
   * Commits the writes queued so far, now. Reads call it first, so a read sees every write
   * made before it, as when each write committed at once; so does anything that is about to
   * write on another connection to the file (it would wait for this one's lock).
   */
  flushWrites(): void {
    while (this.#queued.length > 0) this.#commitSome();
  }

  /** Commits up to WRITES_PER_COMMIT of the queued writes in one transaction. */
  #commitSome(): void {
    const queued = this.#queued.splice(0, WRITES_PER_COMMIT);
    if (queued.length <= 1) {
      if (queued.length === 1) this.#commitAlone(queued[0] as QueuedWrite);
      return;
    }
    try {
      this.#begin();
    } catch (error) {
      for (const write of queued) write.reject(storeFailure(error));
      return;
    }
    const values: unknown[] = [];
    try {
      for (const write of queued) values.push(runSync(write.work(), this.#execute));
    } catch {
      this.#rollback();
      for (const write of queued) this.#commitAlone(write);
      return;
    }
    try {
      this.#db.exec('COMMIT');
    } catch (error) {
      this.#rollback();
      // Nothing of the transaction is stored: every write fails.
      for (const write of queued) write.reject(storeFailure(error));
      return;
    }
    queued.forEach((write, i) => write.resolve(values[i]));
  }

  /** One write as its own transaction: a failure rolls the transaction back. */
  #commitAlone(write: QueuedWrite): void {
    let value: unknown;
    try {
      this.#begin();
    } catch (error) {
      write.reject(storeFailure(error));
      return;
    }
    try {
      value = runSync(write.work(), this.#execute);
      this.#db.exec('COMMIT');
    } catch (error) {
      this.#rollback();
      write.reject(storeFailure(error));
      return;
    }
    write.resolve(value);
  }

  /** IMMEDIATE takes the write lock at once: two processes never deadlock upgrading. */
  #begin(): void {
    this.#db.exec('BEGIN IMMEDIATE');
  }

  #rollback(): void {
    try {
      this.#db.exec('ROLLBACK');
    } catch {
      // SQLite already rolled back (an I/O error, a full disk): nothing is left to undo.
    }
  }

  migrate(migrations: readonly Migration[]): Promise<void> {
    return this.write(() => applyMigrations(migrations, this.dialect));
  }

  /**
   * Deleted content is zeroed in the database file (secure_delete), but the WAL still
   * holds the pages as they were before: a checkpoint that truncates it removes them.
   */
  eraseResidue(): Promise<void> {
    try {
      this.flushWrites();
      this.#db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(storeFailure(error));
    }
  }

  close(): Promise<void> {
    try {
      // What was asked to be written is written before the file closes.
      this.flushWrites();
      if (this.#open) this.#db.close();
      this.#open = false;
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(storeFailure(error));
    }
  }
}
