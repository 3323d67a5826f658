// The store's algorithms are written once, as generators that yield SQL queries and
// receive their results. Each backend runs them its own way: SQLite synchronously inside
// one better-sqlite3 transaction (no other work can interleave), PostgreSQL by sending
// each query, or each batch of queries that do not wait on each other, on one checked-out
// connection and awaiting the answers. Neither backend knows what a response or a
// conversation is; the algorithms (sql-store.ts, sql-runs.ts) know no driver.

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

/**
 * Queries that do not need each other's results, run in order. A backend may send them
 * together: PostgreSQL pipelines them, one round trip for all. `last`: the work sends
 * nothing after them, so a transaction's COMMIT may go with them.
 */
export interface Batch {
  readonly queries: readonly Query[];
  readonly last: boolean;
}

/** What a unit of work yields: one query, or a batch. */
export type Step = Query | Batch;

/** What it is given back: a query's result, or a batch's, one for each of its queries. */
export type StepResult = QueryResult | readonly QueryResult[];

/** A unit of store work: yields queries, gets their results, returns T. */
export type Work<T> = Generator<Step, T, StepResult>;

export function isBatch(step: Step): step is Batch {
  return 'queries' in step;
}

/** One query's result (the generator is given what it asked for: see Step). */
function* one(query: Query): Work<QueryResult> {
  return (yield query) as QueryResult;
}

/** All rows of a query. */
export function* all(sql: string, ...params: SqlValue[]): Work<readonly Row[]> {
  return (yield* one({ sql, params })).rows;
}

/** The first row of a query, if any. */
export function* first(sql: string, ...params: SqlValue[]): Work<Row | undefined> {
  return (yield* one({ sql, params })).rows[0];
}

/** Runs a statement; returns how many rows it changed (or returned, with RETURNING). */
export function* exec(sql: string, ...params: SqlValue[]): Work<number> {
  const result = yield* one({ sql, params });
  return result.rows.length > 0 ? result.rows.length : result.changes;
}

/** Runs queries that do not depend on each other as one batch (see Batch); their results
 * in the same order. */
export function* batch(queries: readonly Query[], last: boolean): Work<readonly QueryResult[]> {
  return (yield { queries, last }) as readonly QueryResult[];
}

/** Runs work to its end, answering each query synchronously (SQLite). */
export function runSync<T>(work: Work<T>, execute: (query: Query) => QueryResult): T {
  let step = work.next();
  while (step.done !== true) step = work.next(isBatch(step.value) ? step.value.queries.map(execute) : execute(step.value));
  return step.value;
}

/** Runs work to its end, awaiting each query in turn (PostgreSQL's reads). */
export async function runAsync<T>(work: Work<T>, execute: (query: Query) => Promise<QueryResult>): Promise<T> {
  let step = work.next();
  while (step.done !== true) {
    let result: StepResult;
    if (isBatch(step.value)) {
      const results: QueryResult[] = [];
      for (const query of step.value.queries) results.push(await execute(query));
      result = results;
    } else {
      result = await execute(step.value);
    }
    step = work.next(result);
  }
  return step.value;
}
