// One contract, every Store: SQLite in memory, SQLite in a file, and PostgreSQL (when
// TEST_DATABASE_URL is set). The two backends must behave identically.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GatewayError } from '../src/errors.ts';
import { PostgresStore } from '../src/store/postgres/postgres-store.ts';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import type { NewItem, Page, PageProblem, SaveResponse, Store } from '../src/store/store.ts';
import { POSTGRES_SKIP_REASON, TEST_DATABASE_URL, createTestSchema, type TestSchema } from './helpers/postgres.ts';

interface Backend {
  readonly name: string;
  open(): Promise<Store>;
  cleanup?(): Promise<void>;
}

const tempDir = mkdtempSync(join(tmpdir(), 'rg-store-'));
let counter = 0;

const backends: Backend[] = [
  { name: 'sqlite (memory)', open: () => Promise.resolve(new SqliteStore(':memory:')) },
  { name: 'sqlite (file)', open: () => Promise.resolve(new SqliteStore(join(tempDir, `store-${counter++}.db`))) },
];
if (TEST_DATABASE_URL !== undefined) {
  const baseUrl = TEST_DATABASE_URL;
  let schema: TestSchema | undefined;
  backends.push({
    name: 'postgres',
    open: async () => {
      schema ??= await createTestSchema(baseUrl);
      return new PostgresStore({ connectionString: schema.url, poolSize: 5 });
    },
    cleanup: async () => schema?.drop(),
  });
} else {
  console.log(`# ${POSTGRES_SKIP_REASON}`);
}

let itemCounter = 0;
function item(type = 'message', text = `text ${itemCounter}`): NewItem {
  const id = `${type === 'message' ? 'msg' : 'fc'}_${(itemCounter++).toString(16).padStart(12, '0')}${Math.random().toString(16).slice(2, 10)}`;
  return { id, type, payload: JSON.stringify({ id, type, text }), upstream: JSON.stringify({ type, text }) };
}

let responseCounter = 0;
function turn(overrides: Partial<SaveResponse> = {}): SaveResponse {
  const id = `resp_${(responseCounter++).toString(16).padStart(8, '0')}${Math.random().toString(16).slice(2, 10)}`;
  return {
    id,
    createdAt: Date.now(),
    status: 'completed',
    model: 'm',
    body: JSON.stringify({ id, object: 'response', status: 'completed' }),
    previousResponseId: null,
    conversationId: null,
    historySeqs: [],
    inputItems: [item()],
    outputItems: [item()],
    storeResponse: true,
    expiresAt: null,
    ...overrides,
  };
}

function ids(page: Page | PageProblem): string[] {
  assert.ok(typeof page !== 'string', `expected a page, got ${typeof page === 'string' ? page : 'a page'}`);
  return page.items.map((stored) => stored.id);
}

const NOW = (): number => Date.now();

for (const backend of backends) {
  describe(`store contract: ${backend.name}`, () => {
    let store: Store;
    before(async () => {
      store = await backend.open();
      await store.migrate();
    });
    after(async () => {
      await store.close();
      await backend.cleanup?.();
    });

    it('migrates again without harm, and from several processes at once', async () => {
      await store.migrate();
      if (backend.name === 'sqlite (memory)') return; // one connection, nothing to race
      const others = await Promise.all([backend.open(), backend.open(), backend.open()]);
      await Promise.all(others.map((other) => other.migrate()));
      await Promise.all(others.map((other) => other.close()));
    });

    it('saves a turn and gives back its body and its context in order', async () => {
      const first = turn();
      await store.saveResponse(first);
      assert.equal(await store.getResponseBody(first.id, NOW()), first.body);
      const context = await store.loadResponseContext(first.id, NOW());
      assert.deepEqual(context?.items.map((stored) => stored.id), [...first.inputItems, ...first.outputItems].map((i) => i.id));
      assert.equal(context?.items[0]?.upstream, first.inputItems[0]?.upstream);
      assert.equal(await store.getResponseBody('resp_missing', NOW()), undefined);
      assert.equal(await store.loadResponseContext('resp_missing', NOW()), undefined);
    });

    it('continues a chain from one checkpoint, and lists input items with cursors', async () => {
      const first = turn({ inputItems: [item(), item()], outputItems: [item()] });
      await store.saveResponse(first);
      const firstContext = await store.loadResponseContext(first.id, NOW());
      const second = turn({ previousResponseId: first.id, historySeqs: firstContext?.seqs ?? [], inputItems: [item('function_call_output')] });
      await store.saveResponse(second);
      const context = await store.loadResponseContext(second.id, NOW());
      const expected = [...first.inputItems, ...first.outputItems, ...second.inputItems, ...second.outputItems].map((i) => i.id);
      assert.deepEqual(context?.items.map((stored) => stored.id), expected);

      const inputs = expected.slice(0, 4);
      assert.deepEqual(ids(await store.listInputItems(second.id, { limit: 20, order: 'asc' }, NOW())), inputs);
      assert.deepEqual(ids(await store.listInputItems(second.id, { limit: 20, order: 'desc' }, NOW())), [...inputs].reverse());
      const firstPage = await store.listInputItems(second.id, { limit: 2, order: 'asc' }, NOW());
      assert.deepEqual(ids(firstPage), inputs.slice(0, 2));
      assert.equal((firstPage as Page).hasMore, true);
      const nextPage = await store.listInputItems(second.id, { limit: 2, order: 'asc', after: inputs[1] }, NOW());
      assert.deepEqual(ids(nextPage), inputs.slice(2, 4));
      assert.equal((nextPage as Page).hasMore, false);
      assert.deepEqual(ids(await store.listInputItems(second.id, { limit: 20, order: 'asc', before: inputs[2] }, NOW())), inputs.slice(0, 2));
      assert.deepEqual(ids(await store.listInputItems(second.id, { limit: 20, order: 'desc', after: inputs[2] }, NOW())), [inputs[1], inputs[0]]);
      assert.equal(await store.listInputItems(second.id, { limit: 2, order: 'asc', after: 'msg_nope' }, NOW()), 'cursor_not_found');
      assert.equal(await store.listInputItems('resp_nope', { limit: 2, order: 'asc' }, NOW()), 'not_found');
    });

    it('deletes a response: it is gone, a continuation of it keeps its history, the rest goes with the last holder', async () => {
      const first = turn();
      await store.saveResponse(first);
      const second = turn({ previousResponseId: first.id, historySeqs: (await store.loadResponseContext(first.id, NOW()))?.seqs ?? [] });
      await store.saveResponse(second);

      assert.equal(await store.deleteResponse(first.id, NOW()), true);
      assert.equal(await store.deleteResponse(first.id, NOW()), false, 'already deleted');
      assert.equal(await store.getResponseBody(first.id, NOW()), undefined);
      assert.equal(await store.loadResponseContext(first.id, NOW()), undefined);
      const kept = await store.loadResponseContext(second.id, NOW());
      assert.equal(kept?.items.length, 4, 'the continuation still has the deleted response\'s items');

      assert.equal(await store.deleteResponse(second.id, NOW()), true);
      const allIds = [...first.inputItems, ...first.outputItems, ...second.inputItems, ...second.outputItems].map((i) => i.id);
      assert.deepEqual(await store.getItemsById(allIds), [], 'no item is left once nothing holds it');
    });

    it('keeps both branches of a response working when it is deleted', async () => {
      const root = turn();
      await store.saveResponse(root);
      const seqs = (await store.loadResponseContext(root.id, NOW()))?.seqs ?? [];
      const left = turn({ previousResponseId: root.id, historySeqs: seqs });
      const right = turn({ previousResponseId: root.id, historySeqs: seqs });
      await Promise.all([store.saveResponse(left), store.saveResponse(right)]);
      await store.deleteResponse(root.id, NOW());
      await store.deleteResponse(left.id, NOW());
      const rightContext = await store.loadResponseContext(right.id, NOW());
      assert.deepEqual(
        rightContext?.items.map((stored) => stored.id),
        [...root.inputItems, ...root.outputItems, ...right.inputItems, ...right.outputItems].map((i) => i.id),
      );
      assert.deepEqual(await store.getItemsById(left.outputItems.map((i) => i.id)), [], 'the deleted branch\'s own items are gone');
    });

    it('expires responses whose time is up', async () => {
      const past = turn({ expiresAt: Date.now() - 1 });
      const future = turn({ expiresAt: Date.now() + 3_600_000 });
      await store.saveResponse(past);
      await store.saveResponse(future);
      assert.equal(await store.getResponseBody(past.id, NOW()), undefined, 'invisible as soon as it expires');
      assert.ok((await store.expire(NOW())) >= 1);
      assert.deepEqual(await store.getItemsById(past.outputItems.map((i) => i.id)), []);
      assert.equal(await store.getResponseBody(future.id, NOW()), future.body);
    });

    it('stores a 1000-item history and loads it back in order', async () => {
      const many = Array.from({ length: 1000 }, () => item());
      const big = turn({ inputItems: many.slice(0, 999), outputItems: many.slice(999) });
      await store.saveResponse(big);
      const context = await store.loadResponseContext(big.id, NOW());
      assert.equal(context?.items.length, 1000);
      assert.deepEqual(context?.items.map((stored) => stored.id), many.map((i) => i.id));
    });

    it('keeps conversations: items in order, pages, metadata, item deletion', async () => {
      const conversationId = `conv_${Math.random().toString(16).slice(2)}`;
      const seed = [item(), item()];
      await store.createConversation({ id: conversationId, createdAt: Date.now(), metadata: '{"topic":"x"}' }, seed);
      assert.equal((await store.getConversation(conversationId))?.metadata, '{"topic":"x"}');
      assert.equal((await store.updateConversation(conversationId, '{"topic":"y"}'))?.metadata, '{"topic":"y"}');
      assert.equal(await store.updateConversation('conv_nope', '{}'), undefined);

      const added = await store.addConversationItems(conversationId, [item()]);
      assert.equal(added?.length, 1);
      const all = [...seed, ...(added ?? [])].map((i) => i.id);
      assert.deepEqual(ids(await store.listConversationItems(conversationId, { limit: 20, order: 'asc' })), all);
      assert.deepEqual(ids(await store.listConversationItems(conversationId, { limit: 1, order: 'desc' })), [all[2]]);
      assert.deepEqual(ids(await store.listConversationItems(conversationId, { limit: 5, order: 'desc', after: all[2] })), [all[1], all[0]]);
      assert.equal((await store.getConversationItem(conversationId, all[1] as string))?.id, all[1]);

      // A turn in the conversation appends its input and output.
      const history = await store.loadConversationItems(conversationId);
      const inConversation = turn({ conversationId, historySeqs: history?.seqs ?? [] });
      await store.saveResponse(inConversation);
      const afterTurn = [...all, ...inConversation.inputItems.map((i) => i.id), ...inConversation.outputItems.map((i) => i.id)];
      assert.deepEqual((await store.loadConversationItems(conversationId))?.items.map((stored) => stored.id), afterTurn);

      // Deleting the response leaves the conversation's items; deleting an item removes it.
      await store.deleteResponse(inConversation.id, NOW());
      assert.equal((await store.loadConversationItems(conversationId))?.items.length, afterTurn.length);
      assert.equal(await store.deleteConversationItem(conversationId, all[0] as string), true);
      assert.equal(await store.deleteConversationItem(conversationId, all[0] as string), false);
      assert.equal(await store.getConversationItem(conversationId, all[0] as string), undefined);
      assert.deepEqual(await store.getItemsById([all[0] as string]), []);

      assert.equal(await store.deleteConversation(conversationId), true);
      assert.equal(await store.getConversation(conversationId), undefined);
      assert.equal(await store.listConversationItems(conversationId, { limit: 5, order: 'asc' }), 'not_found');
      assert.deepEqual(await store.getItemsById(afterTurn), [], 'items held only by the conversation are gone');
      assert.equal(await store.deleteConversation(conversationId), false);
    });

    it('appends a store:false turn to its conversation without keeping the response', async () => {
      const conversationId = `conv_${Math.random().toString(16).slice(2)}`;
      await store.createConversation({ id: conversationId, createdAt: Date.now(), metadata: '{}' }, []);
      const unstored = turn({ conversationId, storeResponse: false });
      await store.saveResponse(unstored);
      assert.equal(await store.getResponseBody(unstored.id, NOW()), undefined);
      assert.equal((await store.loadConversationItems(conversationId))?.items.length, 2);
    });

    it('reports a failing database as store_unavailable', async () => {
      const broken = await backend.open();
      await broken.migrate();
      await broken.close();
      await assert.rejects(broken.getResponseBody('resp_x', NOW()), (error: unknown) => {
        assert.ok(error instanceof GatewayError);
        assert.equal(error.code, 'store_unavailable');
        assert.equal(error.status, 503);
        return true;
      });
    });
  });
}
