// Opens the store a --db-url names: SQLite (a file, or memory) or PostgreSQL.
import type { StoreLocation } from '../config/db-url.ts';
import { PostgresStore } from './postgres/postgres-store.ts';
import { SqliteStore } from './sqlite/sqlite-store.ts';
import type { Store } from './store.ts';

export function openStore(location: StoreLocation, poolSize: number): Store {
  return location.kind === 'sqlite'
    ? new SqliteStore(location.path)
    : new PostgresStore({ connectionString: location.connectionString, poolSize });
}
