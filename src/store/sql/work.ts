// The store's algorithms are written once, as generators that yield SQL queries and
// receive their results. Each backend runs them its own way: SQLite synchronously inside
// one better-sqlite3 transaction (no other work can interleave), PostgreSQL by awaiting
// each query on one checked-out connection. Neither backend knows what a response or a
// conversation is; the algorithms (store/core/) know no driver.

export type Row = Record<string, unknown>;

/** What a query may bind: SQLite binds no booleans, so the algorithms never pass one. */
export type SqlValue = string | number | bigint | Buffer | null | readonly number[] | readonly string[];

export interface Query {
  /** SQL with `?` placeholders (PostgreSQL's backend numbers them). */
  readonly sql: string;
  readonly params: readonly SqlValue[];
}

export interface QueryResult {
  readonly rows: readonly Row[];
  /** Rows changed by an INSERT, UPDATE or DELETE without RETURNING. */
  readonly changes: number;
}

/** A unit of store work: yields queries, gets their results, returns T. */
export type Work<T> = Generator<Query, T, QueryResult>;

/** All rows of a query. */
export function* all(sql: string, ...params: SqlValue[]): Work<readonly Row[]> {
  return (yield { sql, params }).rows;
}

/** The first row of a query, if any. */
export function* first(sql: string, ...params: SqlValue[]): Work<Row | undefined> {
  return (yield { sql, params }).rows[0];
}

/** Runs a statement; returns how many rows it changed (or returned, with RETURNING). */
export function* exec(sql: string, ...params: SqlValue[]): Work<number> {
  const result = yield { sql, params };
  return result.rows.length > 0 ? result.rows.length : result.changes;
}

/** Runs a list of prepared queries, returning every row they returned. */
export function* allOf(queries: readonly Query[]): Work<Row[]> {
  const rows: Row[] = [];
  for (const query of queries) for (const row of (yield query).rows) rows.push(row);
  return rows;
}

/** Runs work to its end, answering each query synchronously (SQLite). */
export function runSync<T>(work: Work<T>, execute: (query: Query) => QueryResult): T {
  let step = work.next();
  while (step.done !== true) step = work.next(execute(step.value));
  return step.value;
}

/** Runs work to its end, awaiting each query (PostgreSQL). */
export async function runAsync<T>(work: Work<T>, execute: (query: Query) => Promise<QueryResult>): Promise<T> {
  let step = work.next();
  while (step.done !== true) step = work.next(await execute(step.value));
  return step.value;
}
