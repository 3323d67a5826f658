// `npm install` in a checkout runs this (npm's "prepare", after the build). It is not run
// when the packed or published package is installed.
// - It links this checkout's command into node_modules/.bin, so `npx responses-gateway`
//   inside the checkout runs it directly: otherwise npx installs the checkout into its own
//   cache first, and an interrupted npx leaves that cache broken for the next run.
// - On a Node without node:sqlite (20, or 22 before 22.13) it installs better-sqlite3 12,
//   which the SQLite store needs there, into .sqlite-node20/ (where the store looks for it).
//   Not a dependency in package.json: then installing the gateway on Node 22.13+ would
//   download or compile an addon it never uses. Not into node_modules/ either: the install
//   that runs this would prune it as extraneous.
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, symlinkSync, unlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

function linkCommand() {
  const bin = join(root, 'node_modules', '.bin');
  const link = join(bin, 'responses-gateway');
  mkdirSync(bin, { recursive: true });
  try {
    if (lstatSync(link)) unlinkSync(link);
  } catch {
    // No link yet.
  }
  symlinkSync(join('..', '..', 'bin', 'responses-gateway.js'), link);
}

function hasBuiltInSqlite() {
  try {
    createRequire(import.meta.url)('node:sqlite');
    return true;
  } catch {
    return false;
  }
}

function sqliteForOldNode() {
  if (hasBuiltInSqlite()) return;
  const require = createRequire(import.meta.url);
  for (const where of [root, join(root, '.sqlite-node20')]) {
    try {
      require.resolve('better-sqlite3', { paths: [where] });
      return;
    } catch {
      // Not there.
    }
  }
  console.log(`Node ${process.versions.node} has no node:sqlite: installing better-sqlite3 12 into .sqlite-node20/ for the SQLite store`);
  const result = spawnSync(
    'npm',
    ['install', '--prefix', join(root, '.sqlite-node20'), '--no-package-lock', '--no-save', '--no-audit', '--no-fund', 'better-sqlite3@12'],
    { cwd: root, stdio: 'inherit' },
  );
  if (result.status !== 0) {
    console.log('better-sqlite3 could not be installed: on this Node the SQLite store will not work (PostgreSQL will); see README, "Requirements"');
  }
}

linkCommand();
sqliteForOldNode();
