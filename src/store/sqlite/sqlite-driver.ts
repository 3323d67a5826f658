// Which SQLite this Node has. From Node 22.13 on, the built-in node:sqlite: no native
// addon to download or compile, and as fast as better-sqlite3 on the store's statements
// (bench/README.md, "SQLite driver"). Node 20 has none built in: there the store takes
// better-sqlite3 12, installed beside the gateway on purpose (not a dependency, so that
// installs on newer Node never build it; 13 needs Node 22, and 12 aborts Node 24.19+ when
// its statements are garbage-collected, nodejs/node#65446).
// Both are reached through the same small interface, so one backend serves both.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where a checkout's `npm install` puts better-sqlite3 on a Node without node:sqlite. */
const NODE20_ADDON_DIR = fileURLToPath(new URL('../../../.sqlite-node20/node_modules', import.meta.url));

/** A prepared statement: rows, or the count of rows a statement changed. */
export interface SqliteStatement {
  all(...params: unknown[]): Record<string, unknown>[];
  run(...params: unknown[]): { changes: number | bigint };
}

export interface SqliteDatabase {
  prepare(sql: string): SqliteStatement;
  /** Runs SQL without results (PRAGMA, BEGIN, DDL). */
  exec(sql: string): void;
  close(): void;
}

export interface SqliteDriver {
  /** For messages: `node:sqlite` or `better-sqlite3 <version>`. */
  readonly name: string;
  open(path: string, options?: { readonly readOnly?: boolean }): SqliteDatabase;
}

/** What fixes a Node without a SQLite it can load. */
export const SQLITE_DRIVER_FIX =
  'use Node 22.13 or newer (its built-in node:sqlite); or install better-sqlite3 12 beside the gateway ' +
  '(in a checkout `npm install` does it; for a global install: npm install -g better-sqlite3@12); ' +
  'or store in PostgreSQL (--db-url postgres://...)';

/** The part of node:sqlite the gateway uses (its types are not in @types/node 20). */
interface NodeSqliteModule {
  readonly DatabaseSync: new (
    path: string,
    options?: { readonly readOnly?: boolean },
  ) => {
    prepare(sql: string): { all(...params: unknown[]): unknown[]; run(...params: unknown[]): { changes: number | bigint } };
    exec(sql: string): void;
    close(): void;
  };
}

function nodeSqlite(): NodeSqliteModule | undefined {
  // Node 22.13 to 22.x announce node:sqlite as experimental once per process; it is what
  // this gateway is built on there, so that one warning is not printed.
  const saved: unknown = Reflect.get(process, 'emitWarning');
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  // Stored for the life of the process, made once: not the per-request closure the lint
  // rule is about.
  // eslint-disable-next-line no-restricted-syntax
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const text = typeof warning === 'string' ? warning : warning.message;
    if (!/SQLite is an experimental feature/.test(text)) emit(warning, ...rest);
  });
  try {
    return createRequire(import.meta.url)('node:sqlite') as NodeSqliteModule;
  } catch {
    return undefined; // Node 20, or 22 before 22.13 (behind a flag there)
  } finally {
    Reflect.set(process, 'emitWarning', saved);
  }
}

/** What both libraries' database objects offer, as the gateway uses it. */
interface NativeDatabase {
  prepare(sql: string): { all(...params: unknown[]): unknown[]; run(...params: unknown[]): { changes: number | bigint } };
  exec(sql: string): unknown;
  close(): unknown;
}

/** One adapter for both: they differ in how a database is opened, not in how it is used. */
function adapt(db: NativeDatabase): SqliteDatabase {
  return {
    prepare(sql) {
      const statement = db.prepare(sql);
      return {
        all: (...params) => statement.all(...params) as Record<string, unknown>[],
        run: (...params) => statement.run(...params),
      };
    },
    exec: (sql) => void db.exec(sql),
    close: () => void db.close(),
  };
}

function fromNodeSqlite(module: NodeSqliteModule): SqliteDriver {
  return {
    name: 'node:sqlite',
    open: (path, options = {}) => adapt(new module.DatabaseSync(path, { readOnly: options.readOnly === true })),
  };
}

type BetterSqliteConstructor = new (path: string, options?: { readonly?: boolean }) => NativeDatabase;

function fromBetterSqlite(Database: BetterSqliteConstructor, version: string): SqliteDriver {
  return {
    name: `better-sqlite3 ${version}`,
    open: (path, options = {}) => adapt(new Database(path, { readonly: options.readOnly === true })),
  };
}

let loaded: SqliteDriver | undefined;

/** Loaded on first use, so a gateway that stores in PostgreSQL never needs either. */
export function sqliteDriver(): SqliteDriver {
  if (loaded !== undefined) return loaded;
  const builtIn = nodeSqlite();
  if (builtIn !== undefined) {
    loaded = fromNodeSqlite(builtIn);
    return loaded;
  }
  const require = createRequire(import.meta.url);
  try {
    // Beside the gateway (its node_modules, or a global install's), else where a checkout's
    // `npm install` put it (scripts/prepare.mjs).
    const main = require.resolve('better-sqlite3', { paths: [...(require.resolve.paths('better-sqlite3') ?? []), NODE20_ADDON_DIR] });
    const Database = require(main) as BetterSqliteConstructor;
    const { version } = require(join(dirname(main), '..', 'package.json')) as { version: string };
    loaded = fromBetterSqlite(Database, version);
    return loaded;
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new Error(`Node ${process.versions.node} has no SQLite the gateway can load (${reason}): ${SQLITE_DRIVER_FIX}`, {
      cause: error,
    });
  }
}
