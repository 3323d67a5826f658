import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sqliteDriver } from './sqlite-driver.ts';

const major = Number(process.versions.node.split('.')[0]);
const minor = Number(process.versions.node.split('.')[1]);
const hasBuiltIn = major > 22 || (major === 22 && minor >= 13);

describe('SQLite driver choice', () => {
  it(`takes ${hasBuiltIn ? "Node's built-in node:sqlite" : 'better-sqlite3 12'} on Node ${process.versions.node}`, () => {
    const driver = sqliteDriver();
    if (hasBuiltIn) assert.equal(driver.name, 'node:sqlite');
    // 13 segfaults on Node 20; 12 aborts Node 24.19+ when a statement is collected.
    else assert.match(driver.name, /^better-sqlite3 12\./);
  });

  it('reads, writes and reports what a statement changed, through either driver', () => {
    const db = sqliteDriver().open(':memory:');
    try {
      db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)');
      assert.equal(Number(db.prepare('INSERT INTO t (body) VALUES (?)').run(Buffer.from([1, 2, 3])).changes), 1);
      const rows = db.prepare('SELECT id, body FROM t WHERE id = ?').all(1);
      assert.equal(rows.length, 1);
      assert.deepEqual([...(rows[0]?.['body'] as Uint8Array)], [1, 2, 3]);
      const updated = db.prepare('UPDATE t SET body = ? RETURNING id').all(Buffer.alloc(0));
      assert.deepEqual(updated.map((row) => Number(row['id'])), [1]);
    } finally {
      db.close();
    }
  });
});
