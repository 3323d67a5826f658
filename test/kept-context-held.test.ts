// A continuation this process keeps the context of is sent to vLLM while the store checks
// that context (one database round trip off its latency), and its answer is held until the
// check ends: confirmed, the client gets it; not (the response was deleted by another
// process), vLLM's call is dropped and the client gets what a read gives (404); the check
// failing, the client gets the store's error. On every store.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_TENANT } from '../src/config/tenants.ts';
import { storeFailure } from '../src/store/store-error.ts';
import type { Store } from '../src/store/store.ts';
import { startSimVllm, type RecordedRequest, type SimVllm } from '../sim/vllm-sim.ts';
import { controlledStore, type StoreControls } from './helpers/controlled-store.ts';
import { closeAll, startGateway, type TestGateway } from './helpers/gateway.ts';
import { describeUnlessSkipped } from './helpers/postgres.ts';
import type { RawResponse } from './helpers/http.ts';
import { create, createStream, type AnyJson } from './helpers/responses-api.ts';
import { memoryStore, storeKinds, type OpenedStore } from './helpers/stores.ts';

/** A gate the test opens (or fails). */
function gate(): { promise: Promise<void>; open(): void; fail(error: Error): void } {
  let open!: () => void;
  let fail!: (error: Error) => void;
  const promise = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

for (const kind of await storeKinds()) {
  describeUnlessSkipped(`a kept context checked while vLLM is called: ${kind.name}`, kind.skip, () => {
    let db: OpenedStore;
    let other: Store;
    let controls: StoreControls;
    let sim: SimVllm;
    let gw: TestGateway;
    before(async () => {
      db = await kind.open();
      await db.store.migrate();
      // Another process on the same database: what it deletes, this one still keeps.
      other = db.withOptions({ retentionMs: null });
      const controlled = controlledStore(db.store);
      controls = controlled.controls;
      sim = await startSimVllm();
      gw = await startGateway(sim.url, {}, { store: controlled.store });
    });
    after(async () => {
      // The gateway closes its store (and `other`, which shares its database handle).
      await closeAll(gw, sim);
      await kind.cleanup();
    });

    /** A stored response whose context the gateway keeps: read (and kept) to continue it
     * once; it is continued again from there, as a client that forks a chain does. */
    async function keptChain(): Promise<string> {
      const first = await create(gw.url, { model: 'sim', input: 'Remember the number 7.' });
      assert.equal(first.status, 200);
      const second = await create(gw.url, { model: 'sim', previous_response_id: first.json().id, input: 'Got it?' });
      assert.equal(second.status, 200);
      return first.json().id as string;
    }

    /** Sends a continuation of `previous` while the check waits for `check`: resolves with
     * vLLM's request once it arrived, and with the client's answer. */
    function continueHeld(previous: string, check: Promise<void>): { arrived: Promise<RecordedRequest>; answer: Promise<RawResponse> } {
      controls.confirmGate = check;
      const confirmationsBefore = controls.confirmations;
      const arrived = sim.nextRequest().then((request) => {
        assert.equal(controls.confirmations, confirmationsBefore + 1, 'the kept context was used, its check under way');
        return request;
      });
      const answer = create(gw.url, { model: 'sim', previous_response_id: previous, input: 'Which number?' });
      return { arrived, answer };
    }

    it('sends the continuation before the check has answered, and answers once it confirms', async () => {
      const previous = await keptChain();
      const check = gate();
      try {
        let confirmedYet = false;
        const held = continueHeld(previous, check.promise);
        const answer = held.answer.then((res) => {
          assert.equal(confirmedYet, true, 'the client is answered only after the check');
          return res;
        });
        const request = await held.arrived;
        // vLLM has the kept history while the check is still held by the test.
        const input = request.json?.['input'] as AnyJson[];
        assert.equal(input.length, 3, 'the first turn (its input and output) and the new input');
        confirmedYet = true;
        check.open();
        const res = await answer;
        assert.equal(res.status, 200);
        const body = res.json();
        assert.equal(body.status, 'completed');
        assert.equal(body.previous_response_id, previous);
        // Stored as any continuation: the next turn builds on it.
        controls.confirmGate = undefined;
        const next = await create(gw.url, { model: 'sim', previous_response_id: body.id, input: 'And again?' });
        assert.equal(next.status, 200);
        assert.equal((sim.requests.at(-1)?.json?.['input'] as AnyJson[]).length, 5);
      } finally {
        controls.confirmGate = undefined;
      }
    });

    it('drops the call and answers 404 when another process deleted the response', async () => {
      const previous = await keptChain();
      assert.equal(await other.deleteResponse(DEFAULT_TENANT, previous, Date.now()), true);
      const check = gate();
      // vLLM never answers this one: only the gateway's abort ends it.
      sim.enqueue(() => undefined);
      try {
        const { arrived, answer } = continueHeld(previous, check.promise);
        const request = await arrived;
        const requestsBefore = sim.requests.length;
        check.open();
        const res = await answer;
        assert.equal(res.status, 404);
        const error = (res.json()).error;
        assert.equal(error.code, 'previous_response_not_found');
        assert.equal(error.param, 'previous_response_id');
        await sim.whenAborted(request);
        assert.equal(sim.requests.length, requestsBefore, 'vLLM is not called again');
      } finally {
        controls.confirmGate = undefined;
      }
    });

    it("answers with the store's error when the check fails, and drops the call", async () => {
      const previous = await keptChain();
      const check = gate();
      sim.enqueue(() => undefined);
      try {
        const { arrived, answer } = continueHeld(previous, check.promise);
        const request = await arrived;
        check.fail(storeFailure(new Error('connection lost (simulated)')));
        const res = await answer;
        assert.equal(res.status, 503);
        assert.equal((res.json()).error.code, 'store_unavailable');
        await sim.whenAborted(request);
      } finally {
        controls.confirmGate = undefined;
      }
    });
  });
}

// Runs whose answer is not this request's alone wait for the check before vLLM is called:
// a background run (answered at once, read by anyone), and a stream that may detach (the
// registry's once its client leaves, not this request's to plan again).
describe('a kept context checked first', () => {
  let sim: SimVllm;
  let gw: TestGateway;
  let controls: StoreControls;
  before(async () => {
    const controlled = controlledStore(memoryStore());
    controls = controlled.controls;
    sim = await startSimVllm();
    gw = await startGateway(sim.url, { 'detach-on-disconnect': 'true' }, { store: controlled.store });
  });
  after(() => closeAll(gw, sim));

  async function keptChain(): Promise<string> {
    const first = await create(gw.url, { model: 'sim', input: 'Remember the number 7.' });
    const second = await create(gw.url, { model: 'sim', previous_response_id: first.json().id, input: 'Got it?' });
    assert.equal(second.status, 200);
    return first.json().id as string;
  }

  it('for a stream that may detach', async () => {
    const previous = await keptChain();
    const before = controls.confirmations;
    const stream = await createStream(gw.url, { model: 'sim', previous_response_id: previous, input: 'Which number?' });
    assert.equal(stream.terminal?.status, 'completed');
    assert.equal(controls.confirmations, before, 'not planned on an unconfirmed context');
    // The same gateway speculates for a JSON answer, which cannot detach.
    const json = await create(gw.url, { model: 'sim', previous_response_id: previous, input: 'Which number?' });
    assert.equal(json.status, 200);
    assert.equal(controls.confirmations, before + 1);
  });

  it('for a background run', async () => {
    const previous = await keptChain();
    const before = controls.confirmations;
    const res = await create(gw.url, { model: 'sim', previous_response_id: previous, input: 'Which number?', background: true });
    assert.equal(res.status, 200);
    assert.equal(controls.confirmations, before, 'not planned on an unconfirmed context');
  });
});
