// npm run bench:sqlite
//
// node:sqlite against better-sqlite3 on the store's hot statements, in one process: save a
// turn (one transaction: two item inserts with RETURNING, one response insert), read a
// response by id, read a 1,000-item history (json_each + group_concat). 3 runs, medians.
// better-sqlite3 is measured where it loads: the build this Node can run must be installed
// (Node 22+: npm install --no-save better-sqlite3@13).
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface Db {
  exec(sql: string): void;
  prepare(sql: string): { all(...params: unknown[]): unknown[]; run(...params: unknown[]): unknown };
}
type Open = (path: string) => Db;

const require = createRequire(import.meta.url);
const drivers = new Map<string, Open>();
try {
  const { DatabaseSync } = require('node:sqlite') as { DatabaseSync: new (path: string) => Db };
  drivers.set('node:sqlite', (path) => new DatabaseSync(path));
} catch {
  console.log(`node:sqlite: not in Node ${process.versions.node}`);
}
try {
  const Database = require('better-sqlite3') as new (path: string) => Db;
  drivers.set(`better-sqlite3 ${(require('better-sqlite3/package.json') as { version: string }).version}`, (path) => new Database(path));
} catch (error) {
  console.log(`better-sqlite3: does not load here (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`);
}

const TURNS = 3_000;
const payload = JSON.stringify({ id: 'msg', type: 'message', content: [{ type: 'input_text', text: 'x'.repeat(200) }] });
const results = new Map<string, { save: number[]; get: number[]; history: number[] }>();
for (let run = 0; run < 3; run++) {
  for (const [name, open] of drivers) {
    const path = join(tmpdir(), `rg-sqlite-drivers-${process.pid}.db`);
    for (const file of [path, `${path}-wal`, `${path}-shm`]) rmSync(file, { force: true });
    const db = open(path);
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;');
    db.exec(`CREATE TABLE items (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, payload TEXT NOT NULL,
      upstream TEXT NOT NULL, owner TEXT, holders INTEGER NOT NULL);
      CREATE TABLE responses (id TEXT PRIMARY KEY, body TEXT NOT NULL, checkpoint BLOB NOT NULL);`);
    const insertItem = db.prepare('INSERT INTO items (id, payload, upstream, owner, holders) VALUES (?, ?, ?, ?, 1) RETURNING seq, id');
    const insertResponse = db.prepare('INSERT INTO responses (id, body, checkpoint) VALUES (?, ?, ?)');
    const getResponse = db.prepare('SELECT body, checkpoint FROM responses WHERE id = ?');
    const history = db.prepare("SELECT group_concat(i.upstream, ',' ORDER BY j.key) AS u FROM json_each(?) j JOIN items i ON i.seq = j.value");
    let started = performance.now();
    for (let i = 0; i < TURNS; i++) {
      db.exec('BEGIN IMMEDIATE');
      insertItem.all(`msg_${i}a`, payload, payload, `resp_${i}`);
      insertItem.all(`msg_${i}b`, payload, payload, `resp_${i}`);
      insertResponse.run(`resp_${i}`, payload, Buffer.from([1, 2, 3]));
      db.exec('COMMIT');
    }
    const save = ((performance.now() - started) * 1000) / TURNS;
    started = performance.now();
    for (let i = 0; i < 20_000; i++) getResponse.all(`resp_${i % TURNS}`);
    const get = ((performance.now() - started) * 1000) / 20_000;
    const seqs = JSON.stringify(Array.from({ length: 1_000 }, (_, i) => i + 1));
    started = performance.now();
    for (let i = 0; i < 300; i++) history.all(seqs);
    const read = ((performance.now() - started) * 1000) / 300;
    const entry = results.get(name) ?? { save: [], get: [], history: [] };
    entry.save.push(save);
    entry.get.push(get);
    entry.history.push(read);
    results.set(name, entry);
  }
}
const median = (values: number[]): string => ([...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN).toFixed(1);
console.log(`\nNode ${process.version}: median of 3 runs, µs`);
console.log('| driver | save a turn | read a response by id | read a 1,000-item history |');
console.log('| --- | ---: | ---: | ---: |');
for (const [name, r] of results) console.log(`| ${name} | ${median(r.save)} | ${median(r.get)} | ${median(r.history)} |`);
