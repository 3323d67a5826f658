// A context kept in memory (ContextCache, --context-cache-size) must read as the store
// reads it, whatever happened since in this process or another: the same seqs and bytes,
// nothing of a response deleted or expired, nothing of an item removed, nothing of another
// tenant. `plain` is a store over the same database that keeps nothing: the reference.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import type { History, NewItem, SaveResponse, Store } from '../src/store/store.ts';
import { describeUnlessSkipped } from './helpers/postgres.ts';
import { storeKinds, type OpenedStore } from './helpers/stores.ts';
import { item, TENANT, turn } from '../bench/store-records.ts';

const HOUR_MS = 3_600_000;
const KEEP = 64 * 1024 * 1024;

/** An item whose upstream form is empty: sent to nobody, left out of a history's bytes. */
function unsent(): NewItem {
  return { ...item(), upstream: '' };
}

function same(kept: History | undefined, read: History | undefined, what: string): void {
  assert.ok(read !== undefined, `${what}: the store reads it`);
  assert.ok(kept !== undefined, `${what}: found`);
  assert.deepEqual([...kept.seqs], [...read.seqs], `${what}: seqs`);
  assert.equal(kept.upstream.toString(), read.upstream.toString(), `${what}: upstream bytes`);
  assert.equal(kept.tooLong, read.tooLong, `${what}: tooLong`);
  assert.equal(kept.replica ?? null, read.replica ?? null, `${what}: replica`);
}

for (const kind of await storeKinds()) {
  describeUnlessSkipped(`kept contexts: ${kind.name}`, kind.skip, () => {
    let db: OpenedStore;
    let store: Store;
    let plain: Store;
    before(async () => {
      db = await kind.open({ contextCacheBytes: KEEP });
      store = db.store;
      await store.migrate();
      plain = db.withOptions({ retentionMs: null });
    });
    after(async () => {
      await store?.close();
      await kind.cleanup();
    });

    /** Rows the store read while `load` ran (undefined where its queries run on a thread). */
    async function rowsWhile<T>(load: () => Promise<T>): Promise<{ value: T; rows: number | undefined }> {
      const before = db.rowsRead?.();
      const value = await load();
      const after = db.rowsRead?.();
      return { value, rows: before === undefined || after === undefined ? undefined : after - before };
    }

    it('reads a chain as the store does, turn after turn, in one row a turn from its second', async () => {
      // Past CHECKPOINT_SNAPSHOT_EVERY turns, with items that are never sent and a replica.
      let previous: SaveResponse | undefined;
      for (let n = 0; n < 20; n++) {
        const history = previous === undefined ? undefined : await store.loadResponseContext(TENANT, previous.id, Date.now());
        const next = turn({
          previousResponseId: previous?.id ?? null,
          historySeqs: history?.seqs ?? [],
          inputItems: n % 3 === 0 ? [unsent(), item()] : [item()],
          outputItems: n % 4 === 1 ? [unsent()] : [item(), item('function_call')],
          replica: n % 2 === 0 ? `http://127.0.0.1:${8000 + n}` : null,
        });
        await store.saveResponse(next);
        const { value: kept, rows } = await rowsWhile(() => store.loadResponseContext(TENANT, next.id, Date.now()));
        same(kept, await plain.loadResponseContext(TENANT, next.id, Date.now()), `turn ${n}`);
        // A kept context is confirmed by one statement of one row; a read is two statements.
        // The first turn continues nothing, so its save keeps nothing: it is read, then kept.
        if (rows !== undefined && kind.name !== 'sqlite (thread)') assert.equal(rows, n === 0 ? 2 : 1, `turn ${n}: ${n === 0 ? 'read' : 'from memory'}`);
        previous = next;
      }
    });

    it('tells, on saving a continuation, the context it continued and the one it kept, as loads give them', async () => {
      const first = turn();
      await store.saveResponse(first);
      const continued = await store.loadResponseContext(TENANT, first.id, Date.now());
      assert.ok(continued !== undefined);
      const second = turn({ previousResponseId: first.id, historySeqs: continued.seqs });
      const outcome = await store.saveResponse(second);
      // The thread kind stores every turn on the store thread (inlineItems 0), which keeps no
      // contexts: the turn's context is kept when it is next read.
      if (kind.name === 'sqlite (thread)') {
        assert.equal(outcome.keptContext, undefined);
        return;
      }
      assert.ok(outcome.keptContext !== undefined, 'kept');
      // The very Buffers: what is known of the first carries over to the second (history-marks.ts).
      assert.equal(outcome.keptContext.continued, continued.upstream);
      assert.equal(outcome.keptContext.upstream.subarray(0, continued.upstream.length).toString(), continued.upstream.toString());
      assert.equal((await store.loadResponseContext(TENANT, second.id, Date.now()))?.upstream, outcome.keptContext.upstream);
      // A turn that continues nothing keeps nothing.
      assert.equal((await store.saveResponse(turn())).keptContext, undefined);
    });

    it('keeps what it read: a context stored elsewhere is read once, then confirmed', async () => {
      const first = turn();
      await plain.saveResponse(first);
      same(await store.loadResponseContext(TENANT, first.id, Date.now()), await plain.loadResponseContext(TENANT, first.id, Date.now()), 'read');
      const { value, rows } = await rowsWhile(() => store.loadResponseContext(TENANT, first.id, Date.now()));
      same(value, await plain.loadResponseContext(TENANT, first.id, Date.now()), 'kept');
      if (rows !== undefined && kind.name !== 'sqlite (thread)') assert.equal(rows, 1);
    });

    /** Changes an item behind the store's back (items are never updated): a context kept
     * still holds the bytes as they were, one read holds them as they are. */
    async function changeItem(itemId: string): Promise<void> {
      const changed = await db.rawQuery("UPDATE items SET upstream = '{\"changed\":true}' WHERE id = ? RETURNING seq", itemId);
      assert.equal(changed.length, 1);
    }

    /** An item removed elsewhere: one a conversation held alone, so it is deleted. */
    async function removeAnItemElsewhere(): Promise<void> {
      const conversationId = `conv_${Math.random().toString(16).slice(2)}`;
      const alone = item();
      await plain.createConversation(TENANT, { id: conversationId, createdAt: Date.now(), metadata: '{}' }, [alone]);
      assert.equal(await plain.deleteConversationItem(TENANT, conversationId, alone.id), true);
    }

    async function itemRemovals(): Promise<number> {
      const rows = await db.rawQuery("SELECT value FROM store_counters WHERE name = 'item_removals'");
      return Number(rows[0]?.['value']);
    }

    it('serves a kept context from memory whatever its length (SQLite keeps what its thread read)', async () => {
      // The thread kind reads every context on the store thread (inlineItems 0).
      const first = turn({ inputItems: [item(), item(), item()] });
      await store.saveResponse(first);
      const read = await store.loadResponseContext(TENANT, first.id, Date.now());
      await changeItem((first.inputItems[0] as NewItem).id);
      const again = (await store.loadResponseContext(TENANT, first.id, Date.now()))?.upstream.toString();
      assert.equal(again, read?.upstream.toString(), 'the kept bytes');
      assert.ok((await plain.loadResponseContext(TENANT, first.id, Date.now()))?.upstream.toString().includes('changed'), 'a read sees the change');
    });

    it('after an item was removed elsewhere, confirms a kept context seq by seq, on SQLite only one its event loop would read', async () => {
      const first = turn({ inputItems: [item(), item(), item()] });
      await store.saveResponse(first);
      const read = await store.loadResponseContext(TENANT, first.id, Date.now());
      await changeItem((first.inputItems[0] as NewItem).id);

      const before = await itemRemovals();
      await removeAnItemElsewhere();
      assert.equal(await itemRemovals(), before + 1, 'the removal is counted');
      const again = (await store.loadResponseContext(TENANT, first.id, Date.now()))?.upstream.toString();
      if (kind.name === 'sqlite (thread)') assert.ok(again?.includes('changed'), 'longer than its event loop reads (0 items here): read again');
      else assert.equal(again, read?.upstream.toString(), 'every seq found: still the kept bytes');
      // Confirmed at the new count: the kept context serves again without a seq looked up.
      const { value, rows } = await rowsWhile(() => store.loadResponseContext(TENANT, first.id, Date.now()));
      assert.equal(value?.upstream.toString(), again);
      if (rows !== undefined) assert.equal(rows, 1);
    });

    it('counts only the removals that delete an item', async () => {
      // An item a stored response also holds stays when its conversation lets it go.
      const conversationId = `conv_${Math.random().toString(16).slice(2)}`;
      await plain.createConversation(TENANT, { id: conversationId, createdAt: Date.now(), metadata: '{}' }, []);
      const stored = turn({ conversationId });
      await plain.saveResponse(stored);
      const before = await itemRemovals();
      assert.equal(await plain.deleteConversationItem(TENANT, conversationId, (stored.inputItems[0] as NewItem).id), true);
      assert.equal(await itemRemovals(), before, 'still held by the response: not removed, not counted');
      assert.equal(await plain.deleteResponse(TENANT, stored.id, Date.now()), true);
      assert.equal(await itemRemovals(), before, "a response's own items go with it, uncounted: no live context holds them");
      // Counted by the database itself: a deletion the store did not make counts too.
      const alone = item();
      await plain.createConversation(TENANT, { id: `conv_${Math.random().toString(16).slice(2)}`, createdAt: Date.now(), metadata: '{}' }, [alone]);
      assert.equal((await db.rawQuery('DELETE FROM items WHERE id = ? RETURNING seq', alone.id)).length, 1);
      assert.equal(await itemRemovals(), before + 1);
    });

    it('confirms seq by seq a context that names an item twice', async () => {
      // Each seq of the list is looked up, a seq named twice twice: the count is the list's length.
      const first = turn();
      await store.saveResponse(first);
      const seqs = (await plain.loadResponseContext(TENANT, first.id, Date.now()))?.seqs ?? [];
      const twice = turn({ historySeqs: [...seqs, ...seqs] });
      await store.saveResponse(twice);
      const read = await store.loadResponseContext(TENANT, twice.id, Date.now());
      await changeItem((twice.inputItems[0] as NewItem).id);
      await removeAnItemElsewhere();
      const kept = await store.loadResponseContext(TENANT, twice.id, Date.now());
      assert.equal(kept?.seqs.length, 2 * seqs.length + 2);
      if (kind.name !== 'sqlite (thread)') assert.equal(kept?.upstream.toString(), read?.upstream.toString(), 'confirmed, not read');
    });

    it('finds nothing of a response deleted elsewhere, though its context was kept', async () => {
      const saved = turn();
      await store.saveResponse(saved);
      assert.ok(await store.loadResponseContext(TENANT, saved.id, Date.now()), 'read, and kept');
      assert.ok(await store.loadResponseContext(TENANT, saved.id, Date.now()), 'kept');
      assert.equal(await plain.deleteResponse(TENANT, saved.id, Date.now()), true);
      assert.equal(await store.loadResponseContext(TENANT, saved.id, Date.now()), undefined);
    });

    it('finds nothing of a response past its retention, though its context was kept', async () => {
      const retaining = db.withOptions({ retentionMs: HOUR_MS, contextCacheBytes: KEEP });
      const saved = turn();
      await retaining.saveResponse(saved);
      assert.ok(await retaining.loadResponseContext(TENANT, saved.id, Date.now()));
      assert.equal(await retaining.loadResponseContext(TENANT, saved.id, Date.now() + 2 * HOUR_MS), undefined);
    });

    it('leaves out an item removed since, as the store does', async () => {
      // A conversation's item is held by the conversation alone: removing it from the
      // conversation removes it, and a response whose context holds it then goes without.
      const conversationId = `conv_${Math.random().toString(16).slice(2)}`;
      const seed = [item(), item(), item()];
      await plain.createConversation(TENANT, { id: conversationId, createdAt: Date.now(), metadata: '{}' }, seed);
      const history = await plain.loadConversationItems(TENANT, conversationId);
      const inConversation = turn({ conversationId, historySeqs: history?.seqs ?? [] });
      await plain.saveResponse(inConversation);
      const next = turn({ previousResponseId: inConversation.id, historySeqs: (await store.loadResponseContext(TENANT, inConversation.id, Date.now()))?.seqs ?? [] });
      await store.saveResponse(next);
      const keptBefore = await store.loadResponseContext(TENANT, next.id, Date.now());
      assert.ok(keptBefore?.upstream.toString().includes((seed[1] as NewItem).upstream));

      assert.equal(await plain.deleteConversationItem(TENANT, conversationId, (seed[1] as NewItem).id), true);
      for (const id of [inConversation.id, next.id]) {
        const kept = await store.loadResponseContext(TENANT, id, Date.now());
        same(kept, await plain.loadResponseContext(TENANT, id, Date.now()), id);
        assert.ok(!kept?.upstream.toString().includes((seed[1] as NewItem).upstream), 'the removed item is not sent again');
      }
    });

    it("keeps a tenant's context from every other tenant", async () => {
      const saved = turn({ tenant: 'tenant-a' });
      await store.saveResponse(saved);
      assert.ok(await store.loadResponseContext('tenant-a', saved.id, Date.now()));
      assert.equal(await store.loadResponseContext('tenant-b', saved.id, Date.now()), undefined);
      assert.equal(await store.loadResponseContext(TENANT, saved.id, Date.now()), undefined);
    });

    it('answers too long for a kept context longer than asked, and not found once it is gone', async () => {
      const saved = turn({ inputItems: [item(), item(), item()] });
      await store.saveResponse(saved);
      assert.ok(await store.loadResponseContext(TENANT, saved.id, Date.now()));
      assert.equal((await store.loadResponseContext(TENANT, saved.id, Date.now(), 2))?.tooLong, true);
      await plain.deleteResponse(TENANT, saved.id, Date.now());
      assert.equal(await store.loadResponseContext(TENANT, saved.id, Date.now(), 2), undefined);
    });
  });
}
