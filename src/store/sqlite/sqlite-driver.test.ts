import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { sqliteDriver, sqliteDriverPackage } from './sqlite-driver.ts';

describe('SQLite driver choice', () => {
  it('takes the Node-API build (13) from Node 22 on, and 12 on Node 20', () => {
    assert.equal(sqliteDriverPackage('20.18.1'), 'better-sqlite3');
    assert.equal(sqliteDriverPackage('20.20.2'), 'better-sqlite3');
    assert.equal(sqliteDriverPackage('22.12.0'), 'better-sqlite3-napi');
    assert.equal(sqliteDriverPackage('24.21.0'), 'better-sqlite3-napi');
    assert.equal(sqliteDriverPackage('26.0.0'), 'better-sqlite3-napi');
  });

  it('loads a build that this Node runs', () => {
    const name = sqliteDriverPackage();
    const { version } = createRequire(import.meta.url)(`${name}/package.json`) as { version: string };
    // 12 aborts on Node 24.19+ when a statement is collected; 13 segfaults on Node 20.
    assert.equal(version.split('.')[0], name === 'better-sqlite3' ? '12' : '13');

    const SqliteDatabase = sqliteDriver();
    const db = new SqliteDatabase(':memory:');
    try {
      assert.deepEqual(db.prepare('SELECT 1 + 1 AS two').get(), { two: 2 });
    } finally {
      db.close();
    }
  });
});
