// The stores a suite runs against: SQLite in memory, SQLite in a file, and PostgreSQL
// (a throwaway schema on TEST_DATABASE_URL). Each is the one SqlStore over its backend;
// `rawQuery` reads the database behind the store directly, to check what it holds.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { PostgresBackend } from '../../src/store/postgres/postgres-backend.ts';
import type { SqlBackend } from '../../src/store/sql/backend.ts';
import { isBatch, type QueryResult, type Row, type StepResult, type Work } from '../../src/store/sql/work.ts';
import { SqlStore } from '../../src/store/sql-store.ts';
import { SqliteBackend } from '../../src/store/sqlite/sqlite-backend.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { sqliteDriver } from '../../src/store/sqlite/sqlite-driver.ts';
import type { Store, StoreOptions } from '../../src/store/store.ts';
import { createTestSchema, postgresSkip, testDatabaseUrl, type TestSchema } from './postgres.ts';

export interface OpenedStore {
  readonly store: Store;
  /** Another store over the same database, with other options (a gateway restarted with other flags). */
  withOptions(options: StoreOptions): Store;
  /** Rows the store's queries returned so far (see countingBackend); undefined where the
   * queries run on another thread. */
  readonly rowsRead: (() => number) | undefined;
  /** Runs SQL directly against the database behind the store (`?` placeholders). */
  rawQuery(sql: string, ...params: unknown[]): Promise<Row[]>;
  /** The files holding the database (SQLite), to search for what was deleted. */
  readonly files: readonly string[];
}

export interface StoreKind {
  readonly name: 'sqlite (memory)' | 'sqlite (file)' | 'sqlite (thread)' | 'postgres';
  /** Why this store cannot be tested here (a suite's `skip` option), or undefined. */
  readonly skip: string | undefined;
  open(options?: Partial<StoreOptions>): Promise<OpenedStore>;
  cleanup(): Promise<void>;
}

/** As the gateway opens a store by default: contexts kept (--context-cache-size 64MiB). */
const DEFAULT_OPTIONS: StoreOptions = { retentionMs: null, contextCacheBytes: 64 * 1024 * 1024 };
const QUERY_TIMEOUT_MS = 5_000;

/** A backend that counts the rows its queries return: a page of a long list must not read it all. */
function countingBackend(inner: SqlBackend, counter: { rows: number }): SqlBackend {
  const counted = <T>(work: () => Work<T>) =>
    function* (): Work<T> {
      const generator = work();
      let step = generator.next();
      while (step.done !== true) {
        const result: StepResult = yield step.value;
        for (const one of isBatch(step.value) ? (result as readonly QueryResult[]) : [result as QueryResult]) counter.rows += one.rows.length;
        step = generator.next(result);
      }
      return step.value;
    };
  return {
    dialect: inner.dialect,
    read: (work) => inner.read(counted(work)),
    write: (work) => inner.write(counted(work)),
    migrate: (migrations) => inner.migrate(migrations),
    eraseResidue: () => inner.eraseResidue(),
    close: (graceMs) => inner.close(graceMs),
  };
}

function opened(backend: SqlBackend, options: Partial<StoreOptions>, raw: OpenedStore['rawQuery'], files: string[]): OpenedStore {
  const counter = { rows: 0 };
  const counting = countingBackend(backend, counter);
  return {
    store: new SqlStore(counting, { ...DEFAULT_OPTIONS, ...options }),
    withOptions: (other) => new SqlStore(counting, other),
    rowsRead: () => counter.rows,
    rawQuery: raw,
    files,
  };
}

/** SQL against a SQLite file, on a connection of its own. */
function readFile(path: string, sql: string, params: readonly unknown[]): Promise<Row[]> {
  const db = sqliteDriver().open(path);
  try {
    return Promise.resolve(db.prepare(sql).all(...params));
  } finally {
    db.close();
  }
}

function sqliteKind(name: 'sqlite (memory)' | 'sqlite (file)'): StoreKind {
  const dir = mkdtempSync(join(tmpdir(), 'rg-store-'));
  let counter = 0;
  return {
    name,
    skip: undefined,
    open(options = {}) {
      const path = name === 'sqlite (memory)' ? ':memory:' : join(dir, `store-${counter++}.db`);
      const backend = new SqliteBackend(path, QUERY_TIMEOUT_MS);
      // A second connection to the same file reads what the store committed; in memory,
      // the store's own statements are the only way in.
      const raw = async (sql: string, ...params: unknown[]): Promise<Row[]> => {
        if (path === ':memory:') {
          return backend.read(function* () {
            return [...((yield { sql, params: params as never[] }) as QueryResult).rows];
          });
        }
        return readFile(path, sql, params);
      };
      return Promise.resolve(opened(backend, options, raw, path === ':memory:' ? [] : [path, `${path}-wal`]));
    },
    cleanup: () => Promise.resolve(),
  };
}

function postgresKind(skip: string | undefined): StoreKind {
  let schema: TestSchema | undefined;
  return {
    name: 'postgres',
    skip,
    async open(options = {}) {
      schema ??= await createTestSchema(testDatabaseUrl());
      const url = schema.url;
      const backend = new PostgresBackend({ connectionString: url, poolSize: 5, queryTimeoutMs: QUERY_TIMEOUT_MS });
      const raw = async (sql: string, ...params: unknown[]): Promise<Row[]> => {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          let n = 0;
          return (await client.query(sql.replace(/\?/g, () => `$${++n}`), params)).rows as Row[];
        } finally {
          await client.end();
        }
      };
      return opened(backend, options, raw, []);
    },
    cleanup: async () => schema?.drop(),
  };
}

/** SQLite as the gateway opens it (SqliteStore), told to do every call it can on its
 * thread: the same SqlStore, reached through messages. */
function sqliteThreadKind(): StoreKind {
  const dir = mkdtempSync(join(tmpdir(), 'rg-store-thread-'));
  let counter = 0;
  const opened: SqliteStore[] = [];
  return {
    name: 'sqlite (thread)',
    skip: undefined,
    open(options = {}) {
      const path = join(dir, `store-${counter++}.db`);
      const open = (storeOptions: StoreOptions): Store => {
        const store = new SqliteStore(path, QUERY_TIMEOUT_MS, { ...storeOptions, inlineItems: 0 });
        opened.push(store);
        return store;
      };
      return Promise.resolve({
        store: open({ ...DEFAULT_OPTIONS, ...options }),
        withOptions: open,
        rowsRead: undefined,
        rawQuery: (sql: string, ...params: unknown[]) => readFile(path, sql, params),
        files: [path, `${path}-wal`],
      });
    },
    cleanup: async () => {
      await Promise.all(opened.splice(0).map((store) => store.close()));
    },
  };
}

/** Every store a contract runs against (PostgreSQL's with its skip reason, see postgresSkip). */
export async function storeKinds(): Promise<StoreKind[]> {
  return [sqliteKind('sqlite (memory)'), sqliteKind('sqlite (file)'), sqliteThreadKind(), postgresKind(await postgresSkip())];
}

/** A store in memory, for a gateway a test wraps or inspects. */
export function memoryStore(options: Partial<StoreOptions> = {}): Store {
  return new SqlStore(new SqliteBackend(':memory:', QUERY_TIMEOUT_MS), { ...DEFAULT_OPTIONS, ...options });
}
