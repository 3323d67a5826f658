// One contract, every store: SQLite in memory, SQLite in a file, and PostgreSQL. It is
// one algorithm over two dialects (src/store/sql-store.ts), and these tests hold both
// dialects to it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { GatewayError } from '../src/errors.ts';
import { decodeCheckpoint } from '../src/store/checkpoint-codec.ts';
import { CHECKPOINT_SNAPSHOT_EVERY } from '../src/store/sql-store.ts';
import type { NewItem, Page, PageProblem, SaveResponse, Store } from '../src/store/store.ts';
import { describeUnlessSkipped } from './helpers/postgres.ts';
import { storeKinds, type OpenedStore } from './helpers/stores.ts';
import { item, TENANT, turn } from '../bench/store-records.ts';

const HOUR_MS = 3_600_000;

function ids(page: Page | PageProblem): string[] {
  assert.ok(typeof page !== 'string', `expected a page, got ${typeof page === 'string' ? page : 'a page'}`);
  return page.items.map((stored) => stored.id);
}

function idsOf(...groups: (readonly NewItem[])[]): string[] {
  return groups.flat().map((i) => i.id);
}

/** A history's upstream text for these items, in order (see History.upstream). */
function upstreamOf(...groups: (readonly { upstream: string }[])[]): string {
  return groups.flat().map((i) => i.upstream).join(',');
}

const NOW = (): number => Date.now();

/** Saves a chain of `turns` turns, each continuing the last; returns them in order. */
async function saveChain(store: Store, turns: number, start: SaveResponse | undefined = undefined): Promise<SaveResponse[]> {
  const chain: SaveResponse[] = [];
  let previous = start;
  for (let n = 0; n < turns; n++) {
    const history = previous === undefined ? undefined : await store.loadResponseContext(TENANT, previous.id, NOW());
    const next = turn({ previousResponseId: previous?.id ?? null, historySeqs: history?.seqs ?? [] });
    await store.saveResponse(next);
    chain.push(next);
    previous = next;
  }
  return chain;
}

async function countRows(db: OpenedStore, table: string): Promise<number> {
  return Number((await db.rawQuery(`SELECT COUNT(*) AS n FROM ${table}`))[0]?.['n']);
}

for (const kind of await storeKinds()) {
  describeUnlessSkipped(`store contract: ${kind.name}`, kind.skip, () => {
    let db: OpenedStore;
    let store: Store;
    before(async () => {
      db = await kind.open();
      store = db.store;
      await store.migrate();
    });
    after(async () => {
      await store?.close();
      await kind.cleanup();
    });

    it('migrates again without harm, and from several processes at once', async () => {
      await store.migrate();
      if (kind.name === 'sqlite (memory)') return; // one connection, nothing to race
      const others = await Promise.all([kind.open(), kind.open(), kind.open()]);
      await Promise.all(others.map((other) => other.store.migrate()));
      await Promise.all(others.map((other) => other.store.close()));
    });

    it('a turn whose write fails leaves nothing of it, in its first statements or its last', async () => {
      // PostgreSQL sends a turn's statements together (the COMMIT with the last of them):
      // a failure anywhere among them must still undo every one.
      const first = turn();
      await store.saveResponse(first);
      const refsOf = async (id: string) => Number((await db.rawQuery('SELECT refs FROM responses WHERE id = ?', id))[0]?.['refs']);
      const refs = await refsOf(first.id);
      const seqs = (await store.loadResponseContext(TENANT, first.id, NOW()))?.seqs ?? [];
      const itemCount = await countRows(db, 'items');
      // The last statements fail: a response with that id exists.
      const sameId = turn({ id: first.id, previousResponseId: first.id, historySeqs: seqs });
      await assert.rejects(store.saveResponse(sameId));
      // The first ones fail: an item with that id exists.
      const sameItem = turn({ previousResponseId: first.id, historySeqs: seqs, inputItems: [first.inputItems[0] as NewItem] });
      await assert.rejects(store.saveResponse(sameItem));
      assert.equal(await refsOf(first.id), refs, 'no reference was kept on the response continued');
      assert.equal(await countRows(db, 'items'), itemCount, 'no item was kept');
      assert.equal(await store.getResponseBody(TENANT, sameItem.id, NOW()), undefined);
      // And the store goes on.
      const next = turn({ previousResponseId: first.id, historySeqs: seqs });
      await store.saveResponse(next);
      assert.equal(await refsOf(first.id), refs + 1);
    });

    it('saves a turn and gives back its body and its context in order', async () => {
      const first = turn();
      assert.deepEqual(await store.saveResponse(first), { conversationKept: true });
      assert.equal(await store.getResponseBody(TENANT, first.id, NOW()), first.body);
      const context = await store.loadResponseContext(TENANT, first.id, NOW());
      assert.equal(context?.upstream.toString(), upstreamOf(first.inputItems, first.outputItems));
      assert.equal(context?.seqs.length, 2);
      assert.equal(await store.getResponseBody(TENANT, 'resp_missing', NOW()), undefined);
      assert.equal(await store.loadResponseContext(TENANT, 'resp_missing', NOW()), undefined);
    });

    it('keeps the texts of items exactly, whatever characters they hold, however many items a turn has', async () => {
      // Quotes, backslashes, escapes as text (a NUL and a lone surrogate, as JSON.stringify
      // writes them), commas and braces (an array literal's own), control characters, and
      // characters beyond the BMP.
      const awkward = 'say "hi", {a,b} \\ \\"x\\" \\u0000 \\ud800 \ttab\nline é 漢 🙂 NULL';
      const odd = (): NewItem => {
        const id = item().id;
        return { id, type: 'message', payload: JSON.stringify({ id, text: awkward }), upstream: awkward };
      };
      // A turn within a reservation, and one beyond it (its insert gives the seqs).
      for (const count of [2, 300]) {
        const saved = turn({ inputItems: Array.from({ length: count }, odd), outputItems: [odd()] });
        await store.saveResponse(saved);
        const context = await store.loadResponseContext(TENANT, saved.id, NOW());
        assert.equal(context?.upstream.toString(), upstreamOf(saved.inputItems, saved.outputItems), `${count} items: the upstream texts`);
        const stored = await store.getItemsById(TENANT, [saved.inputItems[0]?.id as string]);
        assert.equal(stored[0]?.payload, saved.inputItems[0]?.payload, `${count} items: the payload`);
      }
    });

    it("finds a history's items of one type, in history order, for its tenant only", async () => {
      const list = (label: string): NewItem => {
        const id = item().id.replace(/^msg_/, 'mcpl_');
        return { id, type: 'mcp_list_tools', payload: JSON.stringify({ id, type: 'mcp_list_tools', server_label: label, tools: [] }), upstream: '' };
      };
      const first = turn({ outputItems: [list('a'), item()] });
      await store.saveResponse(first);
      const [second] = await saveChain(store, 1, first);
      const continued = turn({ previousResponseId: (second as SaveResponse).id, outputItems: [list('b'), item()] });
      const context = await store.loadResponseContext(TENANT, (second as SaveResponse).id, NOW());
      await store.saveResponse({ ...continued, historySeqs: context?.seqs ?? [] });
      const history = await store.loadResponseContext(TENANT, continued.id, NOW());
      const seqs = history?.seqs ?? [];
      const found = await store.getHistoryItemsOfType(TENANT, seqs, 'mcp_list_tools');
      assert.deepEqual(found.map((stored) => JSON.parse(stored.payload).server_label), ['a', 'b']);
      assert.deepEqual(await store.getHistoryItemsOfType('someone-else', seqs, 'mcp_list_tools'), []);
      assert.deepEqual(await store.getHistoryItemsOfType(TENANT, [], 'mcp_list_tools'), []);
    });

    it('continues a chain, and lists input items with cursors', async () => {
      const first = turn({ inputItems: [item(), item()], outputItems: [item()] });
      await store.saveResponse(first);
      const firstContext = await store.loadResponseContext(TENANT, first.id, NOW());
      const second = turn({ previousResponseId: first.id, historySeqs: firstContext?.seqs ?? [], inputItems: [item('function_call_output')] });
      await store.saveResponse(second);
      const context = await store.loadResponseContext(TENANT, second.id, NOW());
      const expected = idsOf(first.inputItems, first.outputItems, second.inputItems, second.outputItems);
      assert.equal(context?.upstream.toString(), upstreamOf(first.inputItems, first.outputItems, second.inputItems, second.outputItems));

      const inputs = expected.slice(0, 4);
      const list = (query: { limit: number; order: 'asc' | 'desc'; after?: string; before?: string }) =>
        store.listInputItems(TENANT, second.id, query, NOW());
      assert.deepEqual(ids(await list({ limit: 20, order: 'asc' })), inputs);
      assert.deepEqual(ids(await list({ limit: 20, order: 'desc' })), [...inputs].reverse());
      const firstPage = await list({ limit: 2, order: 'asc' });
      assert.deepEqual(ids(firstPage), inputs.slice(0, 2));
      assert.equal((firstPage as Page).hasMore, true);
      const nextPage = await list({ limit: 2, order: 'asc', after: inputs[1] });
      assert.deepEqual(ids(nextPage), inputs.slice(2, 4));
      assert.equal((nextPage as Page).hasMore, false);
      assert.deepEqual(ids(await list({ limit: 20, order: 'asc', before: inputs[2] })), inputs.slice(0, 2));
      assert.deepEqual(ids(await list({ limit: 20, order: 'desc', after: inputs[2] })), [inputs[1], inputs[0]]);
      assert.equal(await list({ limit: 2, order: 'asc', after: 'msg_nope' }), 'cursor_not_found');
      assert.equal(await store.listInputItems(TENANT, 'resp_nope', { limit: 2, order: 'asc' }, NOW()), 'not_found');
    });

    it('deletes a response: it is gone, a continuation keeps its history, the rest goes with the last holder', async () => {
      const [first, second] = (await saveChain(store, 2)) as [SaveResponse, SaveResponse];
      assert.equal(await store.deleteResponse(TENANT, first.id, NOW()), true);
      assert.equal(await store.deleteResponse(TENANT, first.id, NOW()), false, 'already deleted');
      assert.equal(await store.getResponseBody(TENANT, first.id, NOW()), undefined);
      assert.equal(await store.loadResponseContext(TENANT, first.id, NOW()), undefined);
      const kept = await store.loadResponseContext(TENANT, second.id, NOW());
      assert.equal(kept?.upstream.toString(), upstreamOf(first.inputItems, first.outputItems, second.inputItems, second.outputItems), "the continuation still has the deleted response's items");
      const held = await db.rawQuery('SELECT body FROM responses WHERE id = ?', first.id);
      assert.deepEqual(held.map((row) => row['body']), [''], 'a deleted response that is still held keeps no body');

      assert.equal(await store.deleteResponse(TENANT, second.id, NOW()), true);
      assert.deepEqual(await store.getItemsById(TENANT, idsOf(first.inputItems, first.outputItems, second.inputItems, second.outputItems)), []);
      assert.deepEqual(await db.rawQuery('SELECT id FROM responses WHERE id IN (?, ?)', first.id, second.id), [], 'no row is left');
    });

    it('stores a continuation of a response removed after the turn read it: whole, holding nothing', async () => {
      const first = turn();
      await store.saveResponse(first);
      const seqs = (await store.loadResponseContext(TENANT, first.id, NOW()))?.seqs ?? [];
      // Nothing holds it: it goes, with its items, while the next turn runs.
      assert.equal(await store.deleteResponse(TENANT, first.id, NOW()), true);
      assert.deepEqual(await db.rawQuery('SELECT id FROM responses WHERE id = ?', first.id), []);
      const next = turn({ previousResponseId: first.id, historySeqs: seqs });
      await store.saveResponse(next);
      const [row] = await db.rawQuery('SELECT checkpoint, checkpoint_base, checkpoint_depth, holds_response_id FROM responses WHERE id = ?', next.id);
      assert.deepEqual(
        [row?.['checkpoint_base'], Number(row?.['checkpoint_depth']), row?.['holds_response_id']],
        [null, 0, null],
        'built on nothing, holding nothing',
      );
      const context = await store.loadResponseContext(TENANT, next.id, NOW());
      assert.deepEqual(decodeCheckpoint(row?.['checkpoint'] as Buffer), context?.seqs, 'the whole context in its own checkpoint');
      assert.deepEqual(context?.seqs.slice(0, seqs.length), seqs);
      assert.equal(context?.upstream.toString(), upstreamOf(next.inputItems, next.outputItems), "the removed response's items went with it");
      assert.equal(await store.deleteResponse(TENANT, next.id, NOW()), true);
      assert.deepEqual(await store.getItemsById(TENANT, idsOf(next.inputItems, next.outputItems)), []);
    });

    it('gives every item its own seq, whichever store saves it', async () => {
      // Stores of their own over the same database, as other gateway processes would be
      // (each reserves its own seqs where the database has a sequence).
      const stores = [store, db.withOptions({ retentionMs: null }), db.withOptions({ retentionMs: null })];
      // Each saves a chain at the same time as the others, a turn at a time.
      const chains = await Promise.all(stores.map((one) => saveChain(one, 5)));
      for (const chain of chains) {
        const last = chain.at(-1) as SaveResponse;
        const context = await store.loadResponseContext(TENANT, last.id, NOW());
        assert.equal(context?.upstream.toString(), upstreamOf(...chain.flatMap((t) => [t.inputItems, t.outputItems])));
      }
      const ids = chains.flat().flatMap((t) => idsOf(t.inputItems, t.outputItems));
      const stored = await store.getItemsById(TENANT, ids);
      assert.equal(new Set(stored.map((one) => one.seq)).size, ids.length);
    });

    it('keeps both branches of a response working when it is deleted', async () => {
      const root = turn();
      await store.saveResponse(root);
      const seqs = (await store.loadResponseContext(TENANT, root.id, NOW()))?.seqs ?? [];
      const left = turn({ previousResponseId: root.id, historySeqs: seqs });
      const right = turn({ previousResponseId: root.id, historySeqs: seqs });
      await Promise.all([store.saveResponse(left), store.saveResponse(right)]);
      await store.deleteResponse(TENANT, root.id, NOW());
      await store.deleteResponse(TENANT, left.id, NOW());
      const rightContext = await store.loadResponseContext(TENANT, right.id, NOW());
      assert.equal(rightContext?.upstream.toString(), upstreamOf(root.inputItems, root.outputItems, right.inputItems, right.outputItems));
      assert.deepEqual(await store.getItemsById(TENANT, idsOf(left.outputItems)), [], "the deleted branch's own items are gone");
    });

    it('stores a long chain in linear space, with a whole checkpoint every few turns', async () => {
      const turns = 3 * CHECKPOINT_SNAPSHOT_EVERY + 5;
      const chain = await saveChain(store, turns);
      const last = chain.at(-1) as SaveResponse;
      const context = await store.loadResponseContext(TENANT, last.id, NOW());
      assert.equal(context?.upstream.toString(), upstreamOf(...chain.flatMap((t) => [t.inputItems, t.outputItems])));

      const rows = await db.rawQuery(
        `SELECT checkpoint, checkpoint_depth FROM responses WHERE id IN (${chain.map(() => '?').join(', ')})`,
        ...chain.map((t) => t.id),
      );
      const depths = rows.map((row) => Number(row['checkpoint_depth']));
      assert.ok(Math.max(...depths) < CHECKPOINT_SNAPSHOT_EVERY, 'a whole checkpoint at least every CHECKPOINT_SNAPSHOT_EVERY turns');
      assert.equal(depths.filter((depth) => depth === 0).length, Math.ceil(turns / CHECKPOINT_SNAPSHOT_EVERY));
      // Every turn adds 2 items: whole checkpoints every turn would take ~turns² bytes.
      const bytes = rows.reduce((sum, row) => sum + (row['checkpoint'] as Buffer).length, 0);
      const wholeEveryTurn = (turns * (turns + 1)) / 2 * 2;
      assert.ok(bytes < wholeEveryTurn / 4, `${bytes} bytes of checkpoints for ${turns} turns`);

      // A continuation reads at most CHECKPOINT_SNAPSHOT_EVERY checkpoint rows, plus its items
      // (counted where the queries run in this thread; the thread runs the same SqlStore).
      if (db.rowsRead !== undefined) {
        const before = db.rowsRead();
        await store.loadResponseContext(TENANT, last.id, NOW());
        assert.ok(db.rowsRead() - before <= CHECKPOINT_SNAPSHOT_EVERY + (context?.seqs.length ?? 0));
      }

      // Input items and deletion work along the chain too.
      const middle = chain[CHECKPOINT_SNAPSHOT_EVERY + 3] as SaveResponse;
      const inputs = await store.listInputItems(TENANT, middle.id, { limit: 100, order: 'asc' }, NOW());
      assert.equal(ids(inputs).at(-1), middle.inputItems[0]?.id);
      for (const t of chain.slice(0, -1)) await store.deleteResponse(TENANT, t.id, NOW());
      const survivor = await store.loadResponseContext(TENANT, last.id, NOW());
      assert.equal(survivor?.upstream.toString(), context?.upstream.toString(), 'deleting the ancestors keeps the last turn whole');
      await store.deleteResponse(TENANT, last.id, NOW());
      assert.deepEqual(await store.getItemsById(TENANT, chain.flatMap((t) => idsOf(t.inputItems, t.outputItems))), []);
    });

    it('builds conversation turns on the previous turn, and on nothing once the conversation changed', async () => {
      const conversationId = `conv_${Math.random().toString(16).slice(2)}`;
      await store.createConversation(TENANT, { id: conversationId, createdAt: NOW(), metadata: '{}' }, [item()]);
      const saved: SaveResponse[] = [];
      for (let n = 0; n < 4; n++) {
        const history = await store.loadConversationItems(TENANT, conversationId);
        const next = turn({ conversationId, historySeqs: history?.seqs ?? [] });
        await store.saveResponse(next);
        saved.push(next);
      }
      const depthOf = async (id: string) => Number((await db.rawQuery('SELECT checkpoint_depth FROM responses WHERE id = ?', id))[0]?.['checkpoint_depth']);
      assert.deepEqual(await Promise.all(saved.map((t) => depthOf(t.id))), [0, 1, 2, 3]);
      const all = await store.loadConversationItems(TENANT, conversationId);
      assert.equal((await store.loadResponseContext(TENANT, (saved[3] as SaveResponse).id, NOW()))?.upstream.toString(), all?.upstream.toString());
      const members = await store.listConversationItems(TENANT, conversationId, { limit: 100, order: 'asc' });

      // An item removed from the conversation: the next turn's history no longer begins
      // with the last turn's context, so its checkpoint is whole.
      await store.deleteConversationItem(TENANT, conversationId, ids(members)[1] as string);
      const history = await store.loadConversationItems(TENANT, conversationId);
      const after = turn({ conversationId, historySeqs: history?.seqs ?? [] });
      await store.saveResponse(after);
      assert.equal(await depthOf(after.id), 0);
      const expected = [history?.upstream.toString(), upstreamOf(after.inputItems, after.outputItems)].join(',');
      assert.equal((await store.loadResponseContext(TENANT, after.id, NOW()))?.upstream.toString(), expected);
    });

    it('expires responses past their retention, counted from creation, whatever was set when they were stored', async () => {
      // Stored while nothing expired...
      const old = turn({ createdAt: NOW() - 2 * HOUR_MS });
      const recent = turn();
      await store.saveResponse(old);
      await store.saveResponse(recent);
      assert.equal(await store.getResponseBody(TENANT, old.id, NOW()), old.body);
      // ...then read by a store with a one-hour retention, over the same database.
      const retaining = db.withOptions({ retentionMs: HOUR_MS });
      assert.equal(await retaining.getResponseBody(TENANT, old.id, NOW()), undefined, 'invisible as soon as it expires');
      assert.equal(await retaining.loadResponseContext(TENANT, old.id, NOW()), undefined);
      assert.ok((await retaining.expire(NOW(), 1000)) >= 1);
      assert.deepEqual(await store.getItemsById(TENANT, idsOf(old.outputItems)), []);
      assert.equal(await retaining.getResponseBody(TENANT, recent.id, NOW()), recent.body);
      assert.equal(await store.expire(NOW(), 1000), 0, 'a store without retention expires nothing');
    });

    it('expires in batches until none is due', async () => {
      const old = NOW() - 2 * HOUR_MS;
      await Promise.all(Array.from({ length: 45 }, () => store.saveResponse(turn({ createdAt: old }))));
      const retaining = db.withOptions({ retentionMs: HOUR_MS });
      const batches: number[] = [];
      for (;;) {
        const removed = await retaining.expire(NOW(), 20);
        batches.push(removed);
        if (removed < 20) break;
      }
      assert.deepEqual(batches.slice(0, 2), [20, 20]);
      assert.ok((batches[2] as number) >= 5);
    });

    it('reads no history longer than asked for', async () => {
      const [first, second] = (await saveChain(store, 2)) as [SaveResponse, SaveResponse];
      assert.equal((await store.loadResponseContext(TENANT, second.id, NOW(), 4))?.tooLong, false);
      const refused = await store.loadResponseContext(TENANT, second.id, NOW(), 3);
      assert.deepEqual([refused?.tooLong, refused?.seqs, refused?.upstream.length], [true, [], 0]);
      assert.equal((await store.loadResponseContext(TENANT, first.id, NOW(), 2))?.upstream.toString(), upstreamOf(first.inputItems, first.outputItems));
      const conversationId = `conv_${Math.random().toString(16).slice(2)}`;
      await store.createConversation(TENANT, { id: conversationId, createdAt: NOW(), metadata: '{}' }, [item(), item(), item()]);
      assert.equal((await store.loadConversationItems(TENANT, conversationId, 3))?.tooLong, false);
      assert.equal((await store.loadConversationItems(TENANT, conversationId, 2))?.tooLong, true);
    });

    it('stores a 1000-item history and loads it back in order', async () => {
      const many = Array.from({ length: 1000 }, () => item());
      const big = turn({ inputItems: many.slice(0, 999), outputItems: many.slice(999) });
      await store.saveResponse(big);
      const context = await store.loadResponseContext(TENANT, big.id, NOW());
      assert.equal(context?.upstream.toString(), upstreamOf(many));
    });

    it('keeps conversations: items in order, pages, metadata, item deletion', async () => {
      const conversationId = `conv_${Math.random().toString(16).slice(2)}`;
      const seed = [item(), item()];
      await store.createConversation(TENANT, { id: conversationId, createdAt: Date.now(), metadata: '{"topic":"x"}' }, seed);
      assert.equal((await store.getConversation(TENANT, conversationId))?.metadata, '{"topic":"x"}');
      assert.equal((await store.updateConversation(TENANT, conversationId, '{"topic":"y"}'))?.metadata, '{"topic":"y"}');
      assert.equal(await store.updateConversation(TENANT, 'conv_nope', '{}'), undefined);

      const added = await store.addConversationItems(TENANT, conversationId, [item()]);
      assert.equal(added?.length, 1);
      const all = [...seed, ...(added ?? [])].map((i) => i.id);
      const list = (query: { limit: number; order: 'asc' | 'desc'; after?: string; before?: string }) =>
        store.listConversationItems(TENANT, conversationId, query);
      assert.deepEqual(ids(await list({ limit: 20, order: 'asc' })), all);
      assert.deepEqual(ids(await list({ limit: 1, order: 'desc' })), [all[2]]);
      assert.deepEqual(ids(await list({ limit: 5, order: 'desc', after: all[2] })), [all[1], all[0]]);
      assert.deepEqual(ids(await list({ limit: 5, order: 'asc', before: all[2] })), [all[0], all[1]]);
      assert.deepEqual(ids(await list({ limit: 5, order: 'asc', after: all[0], before: all[2] })), [all[1]]);
      assert.equal(await list({ limit: 5, order: 'asc', after: 'msg_nope' }), 'cursor_not_found');
      assert.equal((await store.getConversationItem(TENANT, conversationId, all[1] as string))?.id, all[1]);

      // A turn in the conversation appends its input and output.
      const history = await store.loadConversationItems(TENANT, conversationId);
      const inConversation = turn({ conversationId, historySeqs: history?.seqs ?? [] });
      await store.saveResponse(inConversation);
      const afterTurn = [...all, ...idsOf(inConversation.inputItems, inConversation.outputItems)];
      const historyAfterTurn = upstreamOf(seed, added ?? [], inConversation.inputItems, inConversation.outputItems);
      assert.equal((await store.loadConversationItems(TENANT, conversationId))?.upstream.toString(), historyAfterTurn);

      // Deleting the response leaves the conversation's items; deleting an item removes it.
      await store.deleteResponse(TENANT, inConversation.id, NOW());
      assert.equal((await store.loadConversationItems(TENANT, conversationId))?.upstream.toString(), historyAfterTurn);
      assert.equal(await store.deleteConversationItem(TENANT, conversationId, all[0] as string), true);
      assert.equal(await store.deleteConversationItem(TENANT, conversationId, all[0] as string), false);
      assert.equal(await store.getConversationItem(TENANT, conversationId, all[0] as string), undefined);
      assert.deepEqual(await store.getItemsById(TENANT, [all[0] as string]), []);

      assert.equal(await store.deleteConversation(TENANT, conversationId), true);
      assert.equal(await store.getConversation(TENANT, conversationId), undefined);
      assert.equal(await list({ limit: 5, order: 'asc' }), 'not_found');
      assert.deepEqual(await store.getItemsById(TENANT, afterTurn), [], 'items held only by the conversation are gone');
      assert.equal(await store.deleteConversation(TENANT, conversationId), false);
    });

    const countsRows = kind.name !== 'sqlite (thread)';
    it("lists a page of a long conversation in O(limit): it reads the page's rows, not the conversation", {
      skip: countsRows ? undefined : 'rows read are counted where the queries run in this thread; the other kinds run the same SqlStore',
    }, async () => {
      const rowsRead = db.rowsRead as () => number;
      const conversationId = `conv_${Math.random().toString(16).slice(2)}`;
      const many = Array.from({ length: 600 }, () => item());
      await store.createConversation(TENANT, { id: conversationId, createdAt: NOW(), metadata: '{}' }, many);
      const before = rowsRead();
      const page = await store.listConversationItems(TENANT, conversationId, { limit: 5, order: 'desc', after: many[300]?.id });
      assert.deepEqual(ids(page), idsOf(many.slice(295, 300)).reverse());
      assert.equal((page as Page).hasMore, true);
      assert.ok(rowsRead() - before <= 10, `read ${rowsRead() - before} rows for a page of 5`);
    });

    it('appends a store:false turn to its conversation without keeping the response', async () => {
      const conversationId = `conv_${Math.random().toString(16).slice(2)}`;
      await store.createConversation(TENANT, { id: conversationId, createdAt: Date.now(), metadata: '{}' }, []);
      const unstored = turn({ conversationId, storeResponse: false });
      await store.saveResponse(unstored);
      assert.equal(await store.getResponseBody(TENANT, unstored.id, NOW()), undefined);
      assert.equal((await store.loadConversationItems(TENANT, conversationId))?.upstream.toString(), upstreamOf(unstored.inputItems, unstored.outputItems));
    });

    it('saves a turn whose conversation was deleted meanwhile without leaking a row', async () => {
      const conversationId = `conv_${Math.random().toString(16).slice(2)}`;
      await store.createConversation(TENANT, { id: conversationId, createdAt: NOW(), metadata: '{}' }, [item()]);
      const history = await store.loadConversationItems(TENANT, conversationId);
      const itemsBefore = await countRows(db, 'items');
      const membersBefore = await countRows(db, 'conversation_items');
      await store.deleteConversation(TENANT, conversationId);

      const unstored = turn({ conversationId, storeResponse: false, historySeqs: history?.seqs ?? [] });
      assert.deepEqual(await store.saveResponse(unstored), { conversationKept: false });
      const stored = turn({ conversationId, historySeqs: history?.seqs ?? [] });
      assert.deepEqual(await store.saveResponse(stored), { conversationKept: false });
      assert.equal(await store.getResponseBody(TENANT, stored.id, NOW()), stored.body, 'the response itself is kept');
      assert.equal(await countRows(db, 'items'), itemsBefore - 1 + 2, "the conversation's item went; only the stored turn's items came");
      assert.equal(await countRows(db, 'conversation_items'), membersBefore - 1);
      await store.deleteResponse(TENANT, stored.id, NOW());
      assert.equal(await countRows(db, 'items'), itemsBefore - 1, 'and they go with it: nothing is held by nothing');
    });

    it("keeps every tenant's data from every other tenant", async () => {
      const mine = turn({ tenant: 'alice' });
      await store.saveResponse(mine);
      const conversationId = `conv_${Math.random().toString(16).slice(2)}`;
      const seed = [item()];
      await store.createConversation('alice', { id: conversationId, createdAt: NOW(), metadata: '{}' }, seed);

      const bob = 'bob';
      assert.equal(await store.getResponseBody(bob, mine.id, NOW()), undefined);
      assert.equal(await store.loadResponseContext(bob, mine.id, NOW()), undefined);
      assert.equal(await store.listInputItems(bob, mine.id, { limit: 5, order: 'asc' }, NOW()), 'not_found');
      assert.equal(await store.deleteResponse(bob, mine.id, NOW()), false);
      assert.deepEqual(await store.getItemsById(bob, idsOf(mine.inputItems, seed)), []);
      assert.equal(await store.getConversation(bob, conversationId), undefined);
      assert.equal(await store.updateConversation(bob, conversationId, '{"x":"y"}'), undefined);
      assert.equal(await store.loadConversationItems(bob, conversationId), undefined);
      assert.equal(await store.listConversationItems(bob, conversationId, { limit: 5, order: 'asc' }), 'not_found');
      assert.equal(await store.addConversationItems(bob, conversationId, [item()]), undefined);
      assert.equal(await store.getConversationItem(bob, conversationId, seed[0]?.id as string), undefined);
      assert.equal(await store.deleteConversationItem(bob, conversationId, seed[0]?.id as string), false);
      assert.equal(await store.deleteConversation(bob, conversationId), false);
      // A turn of bob's that names alice's conversation adds nothing to it.
      assert.deepEqual(await store.saveResponse(turn({ tenant: bob, conversationId, storeResponse: false })), { conversationKept: false });

      // Alice still has all of it.
      assert.equal(await store.getResponseBody('alice', mine.id, NOW()), mine.body);
      assert.deepEqual(ids(await store.listConversationItems('alice', conversationId, { limit: 5, order: 'asc' })), idsOf(seed));
      assert.equal((await store.getConversation('alice', conversationId))?.metadata, '{}');
    });

    it('reports a failing database as store_unavailable', async () => {
      const broken = await kind.open();
      await broken.store.migrate();
      await broken.store.close();
      await assert.rejects(broken.store.getResponseBody(TENANT, 'resp_x', NOW()), (error: unknown) => {
        assert.ok(error instanceof GatewayError);
        assert.equal(error.code, 'store_unavailable');
        assert.equal(error.status, 503);
        return true;
      });
    });
  });
}

describe('deleted means gone (SQLite file)', () => {
  let db: OpenedStore;
  before(async () => {
    db = await (await storeKinds()).find((kind) => kind.name === 'sqlite (file)')?.open() as OpenedStore;
    await db.store.migrate();
  });
  after(() => db?.store.close());

  const marker = (): string => `secret-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
  const inFiles = (text: string): boolean => db.files.some((file) => {
    try {
      return readFileSync(file).includes(text);
    } catch {
      return false; // the WAL truncated away
    }
  });

  it('leaves no trace of a deleted response in the database files', async () => {
    const text = marker();
    const secret: NewItem = { id: `msg_${Math.random().toString(16).slice(2)}`, type: 'message', payload: JSON.stringify({ text }), upstream: JSON.stringify({ text }) };
    const saved = turn({ inputItems: [secret], body: JSON.stringify({ text }) });
    await db.store.saveResponse(saved);
    assert.ok(inFiles(text), 'the text is there once stored');
    await db.store.deleteResponse(TENANT, saved.id, NOW());
    assert.ok(!inFiles(text), 'and nowhere once deleted');
  });

  it('leaves no trace of a deleted conversation in the database files', async () => {
    const text = marker();
    const conversationId = `conv_${Math.random().toString(16).slice(2)}`;
    const secret: NewItem = { id: `msg_${Math.random().toString(16).slice(2)}`, type: 'message', payload: JSON.stringify({ text }), upstream: '{}' };
    await db.store.createConversation(TENANT, { id: conversationId, createdAt: NOW(), metadata: JSON.stringify({ text }) }, [secret]);
    assert.ok(inFiles(text));
    await db.store.deleteConversation(TENANT, conversationId);
    assert.ok(!inFiles(text));
  });
});
