// The store's PostgreSQL round trips, counted by a relay between the backend and the
// server (bench/round-trip-relay.ts): statements that do not wait on each other go out
// together, BEGIN with the first and COMMIT with the last, and a turn's items take seqs
// reserved ahead, so a continuation's write is one round trip and its read two (one when
// this process keeps the context). A backend that sent its statements one by one again
// would take seven; one that waited for the items' seqs before writing the rest, three.
// The relay counts statements too: a turn's write whose seqs were reserved is one
// statement, sent without BEGIN and COMMIT.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { startRoundTripRelay, type RoundTripRelay } from '../bench/round-trip-relay.ts';
import { PostgresBackend } from '../src/store/postgres/postgres-backend.ts';
import { SqlStore } from '../src/store/sql-store.ts';
import type { SaveResponse } from '../src/store/store.ts';
import { items, TENANT, turn } from '../bench/store-records.ts';
import { createTestSchema, describeUnlessSkipped, postgresSkip, testDatabaseUrl, type TestSchema } from './helpers/postgres.ts';

describeUnlessSkipped('PostgreSQL round trips', await postgresSkip(), () => {
  let schema: TestSchema;
  let relay: RoundTripRelay;
  let store: SqlStore;
  before(async () => {
    schema = await createTestSchema(testDatabaseUrl());
    relay = await startRoundTripRelay(schema.url);
    // One connection: the count leaves out connecting.
    store = new SqlStore(new PostgresBackend({ connectionString: relay.url, poolSize: 1, queryTimeoutMs: 10_000 }), { retentionMs: null });
    await store.migrate();
  });
  after(async () => {
    await store?.close();
    await relay?.close();
    await schema?.drop();
  });

  /** Two continuations in a row, each read then written, with the round trips of each. */
  async function continueTwice(on: SqlStore, readRoundTrips: number, why: string): Promise<void> {
    let previous = turn();
    await on.saveResponse(previous);
    // A first turn's save keeps nothing (it continues nothing): a store keeping contexts
    // keeps it when this first read reads it.
    await on.loadResponseContext(TENANT, previous.id, Date.now());
    // Twice, so the second is measured on a connection whose statements are all prepared.
    for (let n = 0; n < 2; n++) {
      relay.reset();
      const context = await on.loadResponseContext(TENANT, previous.id, Date.now());
      assert.equal(relay.count(), readRoundTrips, why);
      assert.ok(context !== undefined);
      const next = turn({ previousResponseId: previous.id, historySeqs: context.seqs });
      relay.reset();
      await on.saveResponse(next);
      assert.equal(relay.count(), 1, 'the items, the reference and the response in one statement');
      assert.equal(relay.statements(), 1, 'one statement, a transaction of its own: no BEGIN, no COMMIT');
      previous = next;
    }
    const last = await on.loadResponseContext(TENANT, previous.id, Date.now());
    assert.equal(last?.seqs.length, 6, 'the three turns, two items each, in the context');
  }

  it('a continuation: its read in two, its write in one', async () => {
    await continueTwice(store, 2, 'the chain, then the items');
  });

  it("a turn's items take seqs reserved ahead, 256 at a time; a bigger turn waits for its insert's", async () => {
    const fresh = new SqlStore(new PostgresBackend({ connectionString: relay.url, poolSize: 1, queryTimeoutMs: 10_000 }), { retentionMs: null });
    try {
      await fresh.ping();
      /** A save's round trips and statements. */
      const roundTrips = async (record: SaveResponse): Promise<[number, number]> => {
        relay.reset();
        await fresh.saveResponse(record);
        return [relay.count(), relay.statements()];
      };
      // 255 items, then 1: the 256 seqs of one reservation, taken with the first turn's BEGIN.
      assert.deepEqual(await roundTrips(turn({ inputItems: items(254) })), [2, 4], 'BEGIN and the reservation; then the turn and COMMIT');
      assert.deepEqual(await roundTrips(turn({ inputItems: [] })), [1, 1], 'the seq left: the items and the response in one statement');
      assert.deepEqual(await roundTrips(turn()), [2, 4], 'none left: another reservation');
      assert.deepEqual(await roundTrips(turn()), [1, 1]);
      // More items than a reservation holds: their seqs come back from their insert, and
      // the response goes after.
      const big = turn({ inputItems: items(300) });
      assert.deepEqual(await roundTrips(big), [2, 4], 'BEGIN and the items; then the response and COMMIT');
      const context = await fresh.loadResponseContext(TENANT, big.id, Date.now());
      assert.equal(context?.upstream.toString(), [...big.inputItems, ...big.outputItems].map((i) => i.upstream).join(','));
      assert.equal(new Set(context.seqs).size, 301, 'every item its own seq');
    } finally {
      await fresh.close();
    }
  });

  it('a continuation of a response whose context this process keeps: its read in one', async () => {
    const keeping = new SqlStore(new PostgresBackend({ connectionString: relay.url, poolSize: 1, queryTimeoutMs: 10_000 }), {
      retentionMs: null,
      contextCacheBytes: 1024 * 1024,
    });
    try {
      await continueTwice(keeping, 1, 'whether the response is live and its items all there');
    } finally {
      await keeping.close();
    }
  });
});
