// What the store core needs from a database: where SQL differs between the two
// dialects (a few fragments), and how work is run (reads, transactions, migrations).
import type { Migration } from '../schema.ts';
import type { NewItem } from '../store.ts';
import type { Query, SqlValue, Work } from './work.ts';

/** What the items inserted together share. */
export interface ItemFields {
  readonly schemaVersion: number;
  /** The response that created them, or null (a conversation's own items). */
  readonly owner: string | null;
  readonly holders: number;
  readonly createdAt: number;
  readonly tenant: string;
}

export interface SqlDialect {
  readonly name: 'sqlite' | 'postgres';
  /**
   * A FROM-clause source aliased `alias`, with columns `value` and `key` (its 0-based
   * position), over one bound list (pass `list(values)` as its parameter).
   */
  orderedList(alias: string, type: 'bigint' | 'text'): string;
  /** The parameter for orderedList. */
  list(values: readonly number[] | readonly string[]): SqlValue;
  /**
   * A scalar subquery: how many values of a bound list of seqs (pass `list(values)`) are
   * items, each value looked up in the primary key, whatever the list's length. PostgreSQL
   * may reuse a named statement's plan for every later list on a connection: a join over
   * the list, planned for lists of 4,000 seqs, then scanned the table for lists of 20
   * (3 ms each in PostgreSQL's log; bench/README.md, "Tried and not kept").
   */
  readonly seqsFound: string;
  /** An aggregate joining the text `expression` of the rows with commas, in `orderBy`
   * order, NULLs left out (NULL when all are). */
  joinText(expression: string, orderBy: string): string;
  /** Locks the rows a SELECT reads until the transaction ends (PostgreSQL; SQLite's write
   * transaction already excludes every other writer). */
  readonly forUpdate: string;
  /** Like forUpdate, skipping rows another transaction holds (the expiry sweep). */
  readonly forUpdateSkipLocked: string;
  /** A statement telling the database's listeners a run id (bound), or undefined when the
   * database has no notifications (SQLite: readers poll). */
  readonly notify: string | undefined;
  /** The name of the bytes type (a checkpoint's), for a CAST. */
  readonly bytesType: 'BLOB' | 'BYTEA';
  /** Queries that insert the items and return each one's `seq` and `id`. */
  insertItems(items: readonly NewItem[], fields: ItemFields): Query[];
  /** Item seqs taken ahead of the inserts that use them (see ReservedSeqs), where the
   * database has a sequence to take them from (PostgreSQL). */
  readonly itemSeqs?: ItemSeqs;
  /**
   * Where a statement may change rows in its WITH clauses (PostgreSQL): `main`, made to
   * run `writes` (INSERTs or UPDATEs, without RETURNING) first, as one statement. They all
   * see the database as it was when the statement began, so none of them may read what
   * another changes, nor change the same rows. A statement is a transaction of its own, and
   * each one costs its own messages, so fewer statements cost less in the driver and on the
   * server. Absent where a WITH clause only reads (SQLite).
   */
  readonly oneStatement?: (writes: readonly Query[], main: Query) => Query;
}

/** What reserving item seqs needs (SqlDialect.itemSeqs). */
export interface ItemSeqs {
  /** A query binding a count and returning one row whose `seqs` column is that many new
   * seqs, joined with commas. Seqs are never given twice, and never reused. */
  readonly reserve: string;
  /** Queries inserting the items with the seqs given, in order; they return nothing. */
  insertItems(items: readonly NewItem[], fields: ItemFields, seqs: readonly number[]): Query[];
}

export interface SqlBackend {
  readonly dialect: SqlDialect;
  /** Runs work that only reads. */
  read<T>(work: () => Work<T>): Promise<T>;
  /** Runs work in one transaction, committed when the promise resolves. */
  write<T>(work: () => Work<T>): Promise<T>;
  /** Applies the migrations not applied yet, serialized across processes. */
  migrate(migrations: readonly Migration[]): Promise<void>;
  /** After a deletion: makes sure the deleted bytes no longer sit in the database's files
   * (SQLite's WAL), so that deleted means gone. */
  eraseResidue(): Promise<void>;
  /** Calls `listener` with each payload notified on `channel`, until the returned function
   * is called; absent when the database cannot notify. */
  listen?(channel: string, listener: (payload: string) => void): Promise<() => Promise<void>>;
  /** Closes the connections, waiting at most `graceMs` for those in use. */
  close(graceMs?: number): Promise<void>;
}
