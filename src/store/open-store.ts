// Chooses and opens the store named by --db-url: SQLite (a file, or memory) or PostgreSQL.
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { PostgresStore } from './postgres/postgres-store.ts';
import { SqliteStore } from './sqlite/sqlite-store.ts';
import type { Store } from './store.ts';

export const DEFAULT_DB_URL = 'sqlite:~/.responses-gateway/responses.db';

export type StoreLocation =
  | { readonly kind: 'sqlite'; readonly path: string }
  | { readonly kind: 'postgres'; readonly connectionString: string };

/** Parses a --db-url; returns a description of the problem for a bad one. */
export function parseDbUrl(raw: string): StoreLocation | string {
  if (raw.startsWith('postgres://') || raw.startsWith('postgresql://')) {
    try {
      new URL(raw);
    } catch {
      return 'is not a valid postgres:// URL';
    }
    return { kind: 'postgres', connectionString: raw };
  }
  if (raw.startsWith('sqlite:')) {
    let path = raw.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (path === ':memory:') return { kind: 'sqlite', path };
    if (path.length === 0) return 'names no file (e.g. sqlite:/var/lib/gateway/responses.db)';
    if (path === '~' || path.startsWith('~/')) path = join(homedir(), path.slice(1));
    return { kind: 'sqlite', path: isAbsolute(path) ? path : resolve(path) };
  }
  return 'must start with sqlite: or postgres://';
}

/** The URL with any password replaced, for logs. */
export function redactDbUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.password !== '') url.password = '***';
    return url.toString();
  } catch {
    return raw.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
  }
}

export function openStore(location: StoreLocation, poolSize: number): Store {
  return location.kind === 'sqlite'
    ? new SqliteStore(location.path)
    : new PostgresStore({ connectionString: location.connectionString, poolSize });
}
