// The store's PostgreSQL backend on another driver, postgres.js (the `postgres` package), for
// bench:pg-store --against postgres.js only: to learn whether pg's per-statement costs are
// the driver's or any Node.js client's. It runs the store's work as the gateway's backend
// runs it (src/store/postgres/postgres-backend.ts): the same dialect and statements, named
// (prepared) on each connection, and writes run by the same `pipelined` (a lone statement
// sent alone, a transaction's batches pipelined with BEGIN and COMMIT). It has none of that
// backend's fault handling (retries of dead connections, deadlines), which the benchmark
// never meets.
import postgres from 'postgres';
import type { Migration } from '../src/store/schema.ts';
import type { SqlBackend } from '../src/store/sql/backend.ts';
import { runAsync, type Query, type QueryResult, type Row, type Work } from '../src/store/sql/work.ts';
import { pipelined, POSTGRES_DIALECT, toPostgres } from '../src/store/postgres/postgres-backend.ts';

const ROLLBACK: Query = { sql: 'ROLLBACK', params: [] };

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

  /** On a connection reserved for it, as the gateway's backend checks one out of its pool. */
  async write<T>(work: () => Work<T>): Promise<T> {
    const connection = await this.#sql.reserve();
    try {
      return await pipelined(work(), (query) => run(connection, query));
    } catch (error) {
      // Outside a transaction (a lone statement that failed) this only draws a warning.
      await run(connection, ROLLBACK).catch(() => undefined);
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
