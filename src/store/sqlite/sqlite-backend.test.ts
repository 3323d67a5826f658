// Group commit (SqliteBackend#write): the writes of one turn of the event loop share one
// transaction (one failing: each runs again alone), and nobody is told a write is done
// before it is committed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GatewayError } from '../../errors.ts';
import { all, exec, type Work } from '../sql/work.ts';
import { SqliteBackend } from './sqlite-backend.ts';
import { sqliteDriver } from './sqlite-driver.ts';

function* insert(id: number, body: string): Work<number> {
  return yield* exec('INSERT INTO t (id, body) VALUES (?, ?)', id, body);
}

function* ids(): Work<number[]> {
  return (yield* all('SELECT id FROM t ORDER BY id')).map((row) => Number(row['id']));
}

function* failing(): Work<number> {
  yield* exec('INSERT INTO t (id, body) VALUES (?, ?)', 1000, 'undone with its transaction');
  throw new Error('the work failed after its first statement');
}

describe('SQLite group commit', () => {
  let dir = '';
  let path = '';
  let backend: SqliteBackend;
  /** WAL frames (pages) written since the last checkpoint, as a second connection sees them. */
  const walFrames = (): number => {
    const db = sqliteDriver().open(path);
    try {
      return Number(db.prepare('PRAGMA wal_checkpoint(PASSIVE)').all()[0]?.['log']);
    } finally {
      db.close();
    }
  };
  const truncateWal = (): void => {
    const db = sqliteDriver().open(path);
    try {
      db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
    } finally {
      db.close();
    }
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rg-group-commit-'));
    path = join(dir, 'store.db');
    backend = new SqliteBackend(path, 200);
    await backend.write(() => exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)'));
  });
  after(async () => {
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('commits the writes of one turn together: their common pages reach the WAL once', async () => {
    await backend.write(() => exec('DELETE FROM t'));
    truncateWal();
    for (let id = 1; id <= 20; id++) await backend.write(() => insert(id, 'one a turn'));
    const apart = walFrames();
    await backend.write(() => exec('DELETE FROM t'));
    truncateWal();
    await Promise.all(Array.from({ length: 20 }, (_, i) => backend.write(() => insert(i + 1, 'all in one turn'))));
    const together = walFrames();
    assert.ok(apart >= 20, `20 transactions wrote ${apart} pages`);
    assert.ok(together <= 3, `one transaction for 20 writes wrote ${together} pages`);
    assert.deepEqual(await backend.read(ids), Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('commits at most 64 writes a transaction, and lets the event loop run between two', async () => {
    await backend.write(() => exec('DELETE FROM t'));
    const writes = Array.from({ length: 130 }, (_, i) => backend.write(() => insert(i + 1, 'a busy turn')));
    // Queued after the first commit's callback: runs after it, before the second commit.
    const committedBetween = await new Promise<number>((resolve) => {
      setImmediate(() => {
        const db = sqliteDriver().open(path);
        try {
          resolve(Number(db.prepare('SELECT count(*) AS n FROM t').all()[0]?.['n']));
        } finally {
          db.close();
        }
      });
    });
    await Promise.all(writes);
    assert.equal(committedBetween, 64);
    assert.equal((await backend.read(ids)).length, 130);
  });

  it('fails a write alone, with its own error, and commits the others of its turn', async () => {
    await backend.write(() => exec('DELETE FROM t'));
    const results = await Promise.allSettled([
      backend.write(() => insert(1, 'kept')),
      backend.write(failing),
      backend.write(() => insert(1, 'a duplicate key')),
      backend.write(() => insert(2, 'kept too')),
    ]);
    assert.deepEqual(
      results.map((result) => result.status),
      ['fulfilled', 'rejected', 'rejected', 'fulfilled'],
    );
    const failed = results[1] as PromiseRejectedResult;
    assert.ok(failed.reason instanceof GatewayError && failed.reason.code === 'store_unavailable');
    assert.match(String(failed.reason.cause), /the work failed after its first statement/);
    assert.deepEqual(await backend.read(ids), [1, 2], 'the failed work left nothing behind');
  });

  it('runs the others of a turn with a failing write once in what is stored, and answers each with what its own run read', async () => {
    await backend.write(() => exec('CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)'));
    await backend.write(() => exec('INSERT OR REPLACE INTO counter (id, n) VALUES (1, 0)'));
    function* increment(): Work<number> {
      return Number((yield* all('UPDATE counter SET n = n + 1 WHERE id = 1 RETURNING n'))[0]?.['n']);
    }
    const results = await Promise.allSettled([backend.write(increment), backend.write(increment), backend.write(failing), backend.write(increment)]);
    assert.deepEqual(
      results.map((result) => (result.status === 'fulfilled' ? result.value : 'rejected')),
      [1, 2, 'rejected', 3],
    );
    const counted = await backend.read(function* () {
      return Number((yield* all('SELECT n FROM counter WHERE id = 1'))[0]?.['n']);
    });
    assert.equal(counted, 3, 'the increments run before the failure were undone, then run once more alone');
  });

  it('lets a read see every write made before it, committed or not yet', async () => {
    await backend.write(() => exec('DELETE FROM t'));
    const written = backend.write(() => insert(7, 'queued'));
    assert.deepEqual(await backend.read(ids), [7]);
    assert.equal(await written, 1);
  });

  it('fails every write of a turn when the transaction cannot begin, and stores none', async () => {
    await backend.write(() => exec('DELETE FROM t'));
    const other = sqliteDriver().open(path);
    other.exec('BEGIN IMMEDIATE');
    try {
      const results = await Promise.allSettled([backend.write(() => insert(1, 'a')), backend.write(() => insert(2, 'b'))]);
      for (const result of results) {
        assert.equal(result.status, 'rejected');
        assert.equal((result.reason as GatewayError).code, 'store_unavailable');
      }
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    assert.deepEqual(await backend.read(ids), []);
  });

  it('commits what is queued before the file closes', async () => {
    const closing = new SqliteBackend(path, 200);
    const written = closing.write(() => insert(42, 'written at close'));
    await closing.close();
    assert.equal(await written, 1);
    assert.deepEqual(await backend.read(ids), [42]);
  });
});
