// A turn's write on PostgreSQL is one statement (SqlDialect.oneStatement): its items, the
// reference on the response it continues and its response row. A statement sees the
// tables as they were when it began, so a removal that commits while the reference waits
// for it must still be seen: the response row is built from what the reference found, not
// from the table read again. These tests hold the removal open in another connection until
// the write is seen waiting for it, then commit it.
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, it } from 'node:test';
import pg from 'pg';
import { decodeCheckpoint } from '../src/store/checkpoint-codec.ts';
import { PostgresBackend } from '../src/store/postgres/postgres-backend.ts';
import { SqlStore } from '../src/store/sql-store.ts';
import { TENANT, turn } from './helpers/store-records.ts';
import { createTestSchema, describeUnlessSkipped, postgresSkip, testDatabaseUrl, type TestSchema } from './helpers/postgres.ts';

/** How long the write may take to reach the removal's lock: polled, not slept. */
const WAIT_POLLS = 500;
const POLL_MS = 10;

describeUnlessSkipped('PostgreSQL: a turn written as one statement', await postgresSkip(), () => {
  let schema: TestSchema;
  let store: SqlStore;
  /** Another gateway's removal, held open. */
  let remover: pg.Client;
  /** Watches the server's locks. */
  let watcher: pg.Client;
  before(async () => {
    schema = await createTestSchema(testDatabaseUrl());
    store = new SqlStore(new PostgresBackend({ connectionString: schema.url, poolSize: 2, queryTimeoutMs: 10_000 }), { retentionMs: null });
    await store.migrate();
    remover = new pg.Client({ connectionString: schema.url });
    watcher = new pg.Client({ connectionString: schema.url });
    await Promise.all([remover.connect(), watcher.connect()]);
  });
  after(async () => {
    await remover?.end();
    await watcher?.end();
    await store?.close();
    await schema?.drop();
  });

  /** Resolves once a statement of this database waits for a lock another holds. */
  async function someoneWaitsForALock(): Promise<void> {
    for (let n = 0; n < WAIT_POLLS; n++) {
      const { rows } = await watcher.query<{ waiting: string }>(
        "SELECT count(*) AS waiting FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
      );
      if (Number(rows[0]?.waiting) > 0) return;
      await delay(POLL_MS);
    }
    throw new Error(`no statement waited for a lock within ${WAIT_POLLS} polls`);
  }

  it('a continuation whose reference waited for the removal of the response continued: whole, holding nothing', async () => {
    const first = turn();
    await store.saveResponse(first);
    const context = await store.loadResponseContext(TENANT, first.id, Date.now());
    assert.ok(context !== undefined);
    // Its row goes, in a transaction not committed yet (its items stay: they are this
    // turn's history, and a removal in the store would keep them while held).
    await remover.query('BEGIN');
    assert.equal((await remover.query('DELETE FROM responses WHERE id = $1', [first.id])).rowCount, 1);
    const next = turn({ previousResponseId: first.id, historySeqs: context.seqs });
    const saving = store.saveResponse(next);
    try {
      await someoneWaitsForALock();
    } finally {
      await remover.query('COMMIT');
    }
    await saving;
    const { rows } = await watcher.query('SELECT checkpoint, checkpoint_base, checkpoint_depth, holds_response_id FROM responses WHERE id = $1', [next.id]);
    const row = rows[0] as Record<string, unknown> | undefined;
    assert.deepEqual(
      [row?.['checkpoint_base'], Number(row?.['checkpoint_depth']), row?.['holds_response_id']],
      [null, 0, null],
      'built on nothing, holding nothing: the response it continued is gone',
    );
    const saved = await store.loadResponseContext(TENANT, next.id, Date.now());
    assert.deepEqual(decodeCheckpoint(row?.['checkpoint'] as Buffer), saved?.seqs, 'the whole context in its own checkpoint');
    assert.equal(saved?.seqs.length, context.seqs.length + 2, 'the history and the turn');
  });

  it('a continuation whose reference waited for another one: built on the response continued, held by both', async () => {
    const first = turn();
    await store.saveResponse(first);
    const context = await store.loadResponseContext(TENANT, first.id, Date.now());
    assert.ok(context !== undefined);
    // Another gateway's continuation took its reference and has not committed yet.
    await remover.query('BEGIN');
    await remover.query('UPDATE responses SET refs = refs + 1 WHERE id = $1', [first.id]);
    const next = turn({ previousResponseId: first.id, historySeqs: context.seqs });
    const saving = store.saveResponse(next);
    try {
      await someoneWaitsForALock();
    } finally {
      await remover.query('COMMIT');
    }
    await saving;
    const { rows } = await watcher.query('SELECT checkpoint_base, checkpoint_depth, holds_response_id FROM responses WHERE id = $1', [next.id]);
    const row = rows[0] as Record<string, unknown> | undefined;
    assert.deepEqual([row?.['checkpoint_base'], Number(row?.['checkpoint_depth']), row?.['holds_response_id']], [first.id, 1, first.id]);
    const held = await watcher.query('SELECT refs FROM responses WHERE id = $1', [first.id]);
    assert.equal(Number(held.rows[0]?.refs), 3, 'its own, the other continuation and this one');
  });
});
