// --db-url: which store, and where. Parsed here (config is the bottom layer); the store
// layer opens what it describes.
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

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

/** A database URL for logs and messages: never with its password. */
export function redactDbUrl(raw: string): string {
  return raw.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}

/** Where the store is, for a log line. */
export function describeLocation(location: StoreLocation): string {
  return location.kind === 'sqlite' ? `sqlite:${location.path}` : redactDbUrl(location.connectionString);
}
