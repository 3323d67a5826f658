// `npm install` in a checkout runs this (npm's "prepare"). It is not run when the packed
// or published package is installed.
// - It builds dist/, unless the build is newer than every source (dist/.built says when it
//   was made). `npx responses-gateway` inside the checkout runs this too: npm 10 and 11 link
//   the checkout into npx's cache (~/.npm/_npx) and prepare it there on every run, and an
//   npx interrupted during that leaves the cache entry without its package.json, failing
//   every later npx until it is deleted. With the build current this takes a fraction of
//   a second instead of the compiler's seconds. (`npm start -- <flags>` avoids npx's
//   cache altogether.)
// - It links this checkout's command into node_modules/.bin, for the scripts and tools
//   that look there.
// - On a Node without node:sqlite (20, or 22 before 22.13) it installs better-sqlite3 12,
//   which the SQLite store needs there, into .sqlite-node20/ (where the store looks for it).
//   Not a dependency in package.json: then installing the gateway on Node 22.13+ would
//   download or compile an addon it never uses. Not into node_modules/ either: the install
//   that runs this would prune it as extraneous.
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

const BUILD_STAMP = join(root, 'dist', '.built');
const BUILD_INPUTS = ['src', 'tsconfig.json', 'tsconfig.build.json', 'package.json'];

/** The newest modification time among the files under `path`. */
function newestMtime(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = 0;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

function buildIsCurrent() {
  try {
    const builtAt = statSync(BUILD_STAMP).mtimeMs;
    return BUILD_INPUTS.every((input) => newestMtime(join(root, input)) < builtAt);
  } catch {
    return false;
  }
}

function build() {
  if (buildIsCurrent()) return;
  const result = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
  writeFileSync(BUILD_STAMP, `${new Date().toISOString()}\n`);
}

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

build();
linkCommand();
sqliteForOldNode();
