// The store's PostgreSQL backend on another driver, postgres.js (the `postgres` package), for
// bench:pg-store --against postgres.js only: to learn whether pg's per-statement costs are
// the driver's or any Node.js client's. It runs the store's work as the gateway's backend
// runs it (src/store/postgres/postgres-backend.ts): the same dialect and statements, named
// (prepared) on each connection, a lone statement sent alone, a transaction's batches
// pipelined on one connection with BEGIN and COMMIT. It has none of that backend's fault
// handling (retries of dead connections, deadlines), which the benchmark never meets.
import postgres from 'postgres';
import type { Migration } from '../src/store/schema.ts';
import type { SqlBackend } from '../src/store/sql/backend.ts';
import { isBatch, runAsync, type Query, type QueryResult, type Row, type Work } from '../src/store/sql/work.ts';
import { POSTGRES_DIALECT, toPostgres } from '../src/store/postgres/postgres-backend.ts';

type Connection = postgres.Sql | postgres.ReservedSql;

/** postgres.js's parameter type: it serializes each value by the type the server describes. */
type Parameter = postgres.ParameterOrJSON<never>;

async function run(on: Connection, query: Query): Promise<QueryResult> {
  const rows = await on.unsafe(toPostgres(query.sql).text, query.params as Parameter[], { prepare: true });
  return { rows: rows as unknown as Row[], changes: rows.count };
}

export class PostgresJsBackend implements SqlBackend {
  readonly dialect = POSTGRES_DIALECT;
  readonly #sql: postgres.Sql;

  /** `searchPath`: the schema, as a connection parameter (the bench's URLs set it in `options`). */
  constructor(connectionString: string, poolSize: number, searchPath: string) {
    this.#sql = postgres(connectionString, {
      max: poolSize,
      connection: { search_path: searchPath },
      onnotice: () => undefined,
      // The store binds JSON as text it made (pg sends it as it is); postgres.js would
      // stringify it again by default.
      types: { json: { to: 114, from: [114, 3802], serialize: (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value)), parse: (text: string): unknown => JSON.parse(text) } },
    });
  }

  read<T>(work: () => Work<T>): Promise<T> {
    return runAsync(work(), (query) => run(this.#sql, query));
  }

  async write<T>(work: () => Work<T>): Promise<T> {
    const generator = work();
    let step = generator.next();
    if (step.done === true) return step.value;
    // One statement: a transaction of its own on the server, as the gateway's backend sends it.
    if (isBatch(step.value) && step.value.last && step.value.queries.length === 1) {
      const result = await run(this.#sql, step.value.queries[0] as Query);
      const end = generator.next([result]);
      if (end.done !== true) throw new Error('store work asked for a query after its last batch');
      return end.value;
    }
    const connection = await this.#sql.reserve();
    try {
      // BEGIN is not awaited: it goes out with the first batch, as pg pipelines it.
      const begin = run(connection, { sql: 'BEGIN', params: [] });
      begin.catch(() => undefined); // its failure is the first query's too, thrown from there
      let committed = false;
      while (step.done !== true) {
        const queries = isBatch(step.value) ? step.value.queries : [step.value];
        const last = isBatch(step.value) && step.value.last;
        const sent = queries.map((query) => run(connection, query));
        const commit = last ? run(connection, { sql: 'COMMIT', params: [] }) : undefined;
        const results = await Promise.all(sent);
        if (commit !== undefined) {
          await commit;
          committed = true;
        }
        step = generator.next(isBatch(step.value) ? results : (results[0] as QueryResult));
      }
      await begin;
      if (!committed) await run(connection, { sql: 'COMMIT', params: [] });
      return step.value;
    } catch (error) {
      await run(connection, { sql: 'ROLLBACK', params: [] }).catch(() => undefined);
      throw error;
    } finally {
      connection.release();
    }
  }

  /** The benchmark migrates its schema with the gateway's own backend first. */
  migrate(_migrations: readonly Migration[]): Promise<void> {
    return Promise.resolve();
  }

  eraseResidue(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return this.#sql.end({ timeout: 1 });
  }
}
