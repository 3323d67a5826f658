// Which better-sqlite3 build this Node can run. 12 is built on node::ObjectWrap, and
// Node 24.19+ aborts the process when such an object is garbage-collected at the wrong
// moment (nodejs/node#65446): the store's contract suite died in 2 runs of 3 on 24.21.
// 13 moved to Node-API and ships prebuilt binaries, but needs Node 22 (it segfaults on
// 20). Both have the same API, so the store takes whichever fits the running Node.
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';

export type DatabaseConstructor = typeof BetterSqlite3;

const NODE_API_BUILD_FROM_MAJOR = 22;

/** The package name (as installed) of the build this Node loads. */
export function sqliteDriverPackage(nodeVersion: string = process.versions.node): string {
  const major = Number(nodeVersion.split('.')[0]);
  return major >= NODE_API_BUILD_FROM_MAJOR ? 'better-sqlite3-napi' : 'better-sqlite3';
}

let loaded: DatabaseConstructor | undefined;

/** Loaded on first use, so a gateway that stores in PostgreSQL never needs either build. */
export function sqliteDriver(): DatabaseConstructor {
  if (loaded !== undefined) return loaded;
  const name = sqliteDriverPackage();
  try {
    loaded = createRequire(import.meta.url)(name) as DatabaseConstructor;
  } catch (error) {
    // 12 is an optional dependency (it compiles from source where no prebuilt binary
    // fits), so on Node 20 a failed build surfaces here rather than failing npm install.
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new Error(
      `the SQLite driver ${name} cannot be loaded on Node ${process.versions.node} (${reason}); ` +
        'run `npm rebuild better-sqlite3` with python3, make and a C++ compiler installed, use Node 22 or newer, ' +
        'or store in PostgreSQL',
      { cause: error },
    );
  }
  return loaded;
}
