// --store-ttl's sweeper keeps up with any storage rate: one sweep deletes in batches until
// nothing is due, while responses keep arriving.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EXPIRY_BATCH, ExpirySweeper } from '../src/store/expiry-sweeper.ts';
import type { SaveResponse, Store } from '../src/store/store.ts';
import { describeUnlessSkipped } from './helpers/postgres.ts';
import { storeKinds, type OpenedStore } from './helpers/stores.ts';

const RETENTION_MS = 60_000;

let counter = 0;
function turn(createdAt: number): SaveResponse {
  const id = `resp_${(counter++).toString(16).padStart(12, '0')}${Math.random().toString(16).slice(2, 10)}`;
  const item = (n: number) => ({ id: `msg_${id.slice(5)}${n}`, type: 'message', payload: '{"x":1}', upstream: '{"x":1}' });
  return {
    tenant: 'default',
    id,
    createdAt,
    status: 'completed',
    model: 'm',
    body: '{}',
    previousResponseId: null,
    conversationId: null,
    historySeqs: [],
    inputItems: [item(0)],
    outputItems: [item(1)],
    storeResponse: true,
  };
}

for (const kind of await storeKinds()) {
  if (kind.name === 'sqlite (memory)') continue; // the same SqlStore as the file; one is enough here
  describeUnlessSkipped(`the expiry sweeper on ${kind.name}`, kind.skip, () => {
    let db: OpenedStore;
    let store: Store;
    before(async () => {
      db = await kind.open({ retentionMs: RETENTION_MS });
      store = db.store;
      await store.migrate();
    });
    after(async () => {
      await store?.close();
      await kind.cleanup();
    });

    it('removes a backlog of several hundred responses a second, while more keep coming', { timeout: 60_000 }, async () => {
      // Ten seconds at 300 a second, all past their retention: 3,000 due, 15 batches.
      const past = Date.now() - 2 * RETENTION_MS;
      const backlog = Array.from({ length: 3_000 }, (_, i) => turn(past + Math.floor(i / 300) * 1_000));
      for (let i = 0; i < backlog.length; i += 100) await Promise.all(backlog.slice(i, i + 100).map((t) => store.saveResponse(t)));

      // New responses (not due) keep arriving during the sweep.
      let arriving = true;
      const fresh: SaveResponse[] = [];
      const writer = (async () => {
        while (arriving) {
          const t = turn(Date.now());
          fresh.push(t);
          await store.saveResponse(t);
          // In-process SQLite answers at once: give the sweep its turns of the event loop.
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      const swept: number[] = [];
      const sweeper = new ExpirySweeper(store, { intervalMs: 60_000, onSwept: (n) => swept.push(n), onError: (error) => assert.fail(String(error)) });
      const removed = await sweeper.sweep();
      arriving = false;
      await writer;

      assert.equal(removed, backlog.length, 'one sweep removed every due response, in batches');
      assert.ok(removed > EXPIRY_BATCH);
      const left = await db.rawQuery('SELECT COUNT(*) AS n FROM responses WHERE created_at < ?', Date.now() - RETENTION_MS);
      assert.equal(Number(left[0]?.['n']), 0, 'nothing due is left');
      const kept = await db.rawQuery('SELECT COUNT(*) AS n FROM responses');
      assert.equal(Number(kept[0]?.['n']), fresh.length, 'the fresh ones stay');
      const items = await db.rawQuery('SELECT COUNT(*) AS n FROM items');
      assert.equal(Number(items[0]?.['n']), 2 * fresh.length, 'and so do only their items');
    });
  });
}

describe('the expiry sweeper, running', () => {
  it('sweeps on its interval and stops when told', async () => {
    const kind = (await storeKinds()).find((k) => k.name === 'sqlite (memory)');
    const db = await (kind as NonNullable<typeof kind>).open({ retentionMs: RETENTION_MS });
    await db.store.migrate();
    await db.store.saveResponse(turn(Date.now() - 2 * RETENTION_MS));
    // The sweeper's timer does not hold the process alive (a gateway's sockets do): this does.
    const holdOpen = setInterval(() => undefined, 1_000);
    const swept = await new Promise<number>((resolve, reject) => {
      const sweeper = new ExpirySweeper(db.store, {
        intervalMs: 10,
        onSwept: (n) => {
          sweeper.stop();
          resolve(n);
        },
        onError: reject,
      });
      sweeper.start();
    });
    clearInterval(holdOpen);
    assert.equal(swept, 1);
    await db.store.close();
  });
});
