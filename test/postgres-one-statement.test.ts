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
import { TENANT, turn } from '../bench/store-records.ts';
import type { SaveResponse } from '../src/store/store.ts';
import { createTestSchema, describeUnlessSkipped, postgresSkip, testDatabaseUrl, type TestSchema } from './helpers/postgres.ts';

/** How long the write may take to reach the removal's lock: polled, not slept. */
const WAIT_POLLS = 500;
const POLL_MS = 10;

describeUnlessSkipped('PostgreSQL: a turn written as one statement', await postgresSkip(), () => {
  let schema: TestSchema;
  let store: SqlStore;
  /** Another gateway's transaction, held open. */
  let other: pg.Client;
  /** Watches the server's locks. */
  let watcher: pg.Client;
  before(async () => {
    schema = await createTestSchema(testDatabaseUrl());
    store = new SqlStore(new PostgresBackend({ connectionString: schema.url, poolSize: 2, queryTimeoutMs: 10_000 }), { retentionMs: null });
    await store.migrate();
    other = new pg.Client({ connectionString: schema.url });
    watcher = new pg.Client({ connectionString: schema.url });
    await Promise.all([other.connect(), watcher.connect()]);
  });
  after(async () => {
    await other?.end();
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

  /**
   * Saves a continuation of a new stored response while another connection's transaction
   * holds that response's row (`hold`, bound its id), committed once the save waits for
   * it. Returns the response continued, the history read, and the new response's row.
   */
  async function continueWhileHeld(hold: string): Promise<{ first: SaveResponse; history: readonly number[]; next: SaveResponse; row: Record<string, unknown> | undefined }> {
    const first = turn();
    await store.saveResponse(first);
    const context = await store.loadResponseContext(TENANT, first.id, Date.now());
    assert.ok(context !== undefined);
    await other.query('BEGIN');
    assert.equal((await other.query(hold, [first.id])).rowCount, 1);
    const next = turn({ previousResponseId: first.id, historySeqs: context.seqs });
    const saving = store.saveResponse(next);
    try {
      await someoneWaitsForALock();
    } finally {
      await other.query('COMMIT');
    }
    await saving;
    const { rows } = await watcher.query('SELECT checkpoint, checkpoint_base, checkpoint_depth, holds_response_id FROM responses WHERE id = $1', [next.id]);
    return { first, history: context.seqs, next, row: rows[0] as Record<string, unknown> | undefined };
  }

  it('a continuation whose reference waited for the removal of the response continued: whole, holding nothing', async () => {
    // Its row goes (its items stay: they are this turn's history, and a removal in the
    // store would keep them while held).
    const { history, next, row } = await continueWhileHeld('DELETE FROM responses WHERE id = $1');
    assert.deepEqual(
      [row?.['checkpoint_base'], Number(row?.['checkpoint_depth']), row?.['holds_response_id']],
      [null, 0, null],
      'built on nothing, holding nothing: the response it continued is gone',
    );
    const saved = await store.loadResponseContext(TENANT, next.id, Date.now());
    assert.deepEqual(decodeCheckpoint(row?.['checkpoint'] as Buffer), saved?.seqs, 'the whole context in its own checkpoint');
    assert.equal(saved?.seqs.length, history.length + 2, 'the history and the turn');
  });

  it('a continuation whose reference waited for another one: built on the response continued, held by both', async () => {
    // Another gateway's continuation took its reference and has not committed yet.
    const { first, row } = await continueWhileHeld('UPDATE responses SET refs = refs + 1 WHERE id = $1');
    assert.deepEqual([row?.['checkpoint_base'], Number(row?.['checkpoint_depth']), row?.['holds_response_id']], [first.id, 1, first.id]);
    const held = await watcher.query('SELECT refs FROM responses WHERE id = $1', [first.id]);
    assert.equal(Number(held.rows[0]?.refs), 3, 'its own, the other continuation and this one');
  });
});
