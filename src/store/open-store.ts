// Opens the store a --db-url names: SQLite (a file, or memory) or PostgreSQL.
import type { StoreLocation } from '../config/db-url.ts';
import { PostgresBackend } from './postgres/postgres-backend.ts';
import { SqlStore } from './sql-store.ts';
import { SqliteStore } from './sqlite/sqlite-store.ts';
import type { Store, StoreOptions } from './store.ts';

export interface OpenStoreOptions extends StoreOptions {
  /** PostgreSQL: connections per process. */
  readonly poolSize: number;
  /** Deadline of one query (PostgreSQL), or of the wait for another process's write lock (SQLite). */
  readonly queryTimeoutMs: number;
}

export function openStore(location: StoreLocation, options: OpenStoreOptions): Store {
  const storeOptions = { retentionMs: options.retentionMs, contextCacheBytes: options.contextCacheBytes };
  if (location.kind === 'sqlite') return new SqliteStore(location.path, options.queryTimeoutMs, storeOptions);
  const backend = new PostgresBackend({
    connectionString: location.connectionString,
    poolSize: options.poolSize,
    queryTimeoutMs: options.queryTimeoutMs,
  });
  return new SqlStore(backend, storeOptions);
}
