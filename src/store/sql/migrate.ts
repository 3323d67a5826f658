// Applying migrations: the same steps on both backends, inside one write transaction that
// the backend serializes across processes (SQLite's write lock, a PostgreSQL advisory lock).
import type { Migration } from '../schema.ts';
import type { SqlDialect } from './backend.ts';
import { all, exec, type Work } from './work.ts';

export function* applyMigrations(migrations: readonly Migration[], dialect: SqlDialect): Work<void> {
  yield* exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
  const applied = new Set((yield* all('SELECT version FROM schema_migrations')).map((row) => Number(row['version'])));
  for (const migration of migrations) {
    if (applied.has(migration.version)) continue;
    for (const statement of migration[dialect.name]) yield* exec(statement);
    yield* exec('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)', migration.version, Date.now());
  }
}
