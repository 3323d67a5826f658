// Runs the test suite with node's test runner and tsx. Node 20's --test does not find
// .ts files by itself, so this collects them: unit tests next to the code (src/**) and
// cross-module tests (test/**). Extra arguments are file filters: `npm test -- cli`.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);

function collect(dir) {
  const out = [];
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...collect(path));
    else if (entry.name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

const files = [...collect('src'), ...collect('test')]
  .map((file) => relative(root, join(root, file)))
  .filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter)))
  .sort();

if (files.length === 0) {
  console.error('no test files match', filters);
  process.exit(1);
}

const result = spawnSync(
  process.execPath,
  // A test that hangs fails after the timeout instead of stalling the run, and a file
  // whose fixtures leave handles open still ends; its reports reach the runner whole
  // (blocking-report-pipe.mjs).
  ['--import', join(root, 'scripts/blocking-report-pipe.mjs'), '--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=120000', '--test-force-exit', '--test-reporter=spec', ...files],
  { cwd: root, stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } },
);
process.exit(result.status ?? 1);
