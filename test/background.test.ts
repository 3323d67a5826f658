// Background responses in one gateway process: answered at once, generated on their own,
// read as snapshots, streamed again from any sequence number, cancelled (vLLM's request
// aborted), deleted; --detach-on-disconnect; --max-background-runs. Across processes:
// test/background-processes.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { SimVllm } from '../sim/vllm-sim.ts';
import { checkResponseObject, checkStream } from './helpers/conformance.ts';
import { closeAll, startSimAndGateway, type TestGateway } from './helpers/gateway.ts';
import { postJson, send } from './helpers/http.ts';
import type { AnyJson } from './helpers/responses-api.ts';
import { checkJoined, joinedDeltas, readUntilThenLeave, resume } from './helpers/runs.ts';

/** Long enough to be caught running: 40 deltas, 25 ms apart. */
const SLOW = { 'x-sim': 'deltas=40;slow=25' };

describe('background responses', () => {
  let sim: SimVllm;
  let gw: TestGateway;
  before(async () => ({ sim, gw } = await startSimAndGateway({ 'api-keys': 'key-a alice, key-b bob' })));
  after(() => closeAll(gw, sim));
  const alice = { authorization: 'Bearer key-a' };
  const bob = { authorization: 'Bearer key-b' };
  const post = (body: object, headers: Record<string, string> = {}) => postJson(`${gw.url}/v1/responses`, body, { ...alice, ...headers });
  const get = (path: string, headers: Record<string, string> = alice) => send(`${gw.url}${path}`, { headers });
  const cancel = (id: string, headers: Record<string, string> = alice) => send(`${gw.url}/v1/responses/${id}/cancel`, { method: 'POST', headers });

  it('answers at once, runs on its own, and is retrieved as a snapshot, then as stored', async () => {
    const created = await post({ model: 'm', input: 'hello', background: true }, SLOW);
    assert.equal(created.status, 200);
    const response: AnyJson = created.json();
    assert.equal(response.background, true);
    assert.ok(['queued', 'in_progress'].includes(response.status), response.status);
    assert.deepEqual(response.output, []);
    checkResponseObject(response);
    const running: AnyJson = (await get(`/v1/responses/${response.id}`)).json();
    assert.equal(running.status, 'in_progress');
    checkResponseObject(running);
    // Read to the end through the stream (no polling), then the stored response.
    const streamed = await resume(gw.url, response.id, -1, alice);
    const checked = checkStream(streamed.text);
    const final: AnyJson = (await get(`/v1/responses/${response.id}`)).json();
    assert.equal(final.status, 'completed');
    assert.equal(final.background, true);
    assert.deepEqual(final.output, checked.terminal.output);
    assert.equal(final.output[0].content[0].text, joinedDeltas(checked));
    checkResponseObject(final);
  });

  it('background + stream: a client that leaves at event 5 resumes with starting_after; nothing is lost', async () => {
    const upstream = sim.nextRequest();
    const first = await readUntilThenLeave(`${gw.url}/v1/responses`, 5, {
      body: { model: 'm', input: 'resume me', background: true, stream: true },
      headers: { ...alice, ...SLOW },
    });
    const vllmRequest = await upstream;
    const resumed = await resume(gw.url, first.responseId, 5, alice);
    assert.equal(resumed.status, 200);
    const checked = checkJoined(first.blocks, resumed.text);
    assert.equal(checked.terminal.status, 'completed');
    assert.equal(joinedDeltas(checked), checked.terminal.output[0].content[0].text);
    assert.equal(vllmRequest?.aborted, false, 'vLLM was never interrupted');
    // A finished response replays from the log too, from any point.
    const again = await resume(gw.url, first.responseId, -1, alice);
    assert.equal(again.text, `${first.blocks.join('')}${resumed.text}`);
  });

  it('cancel mid-stream: vLLM is aborted, the output so far is kept, live readers end, and a second cancel answers the same', async () => {
    const upstream = sim.nextRequest();
    const created: AnyJson = (await post({ model: 'm', input: 'stop me', background: true }, { 'x-sim': 'deltas=400;slow=25' })).json();
    const vllmRequest = await upstream;
    const first = await readUntilThenLeave(`${gw.url}/v1/responses/${created.id}?stream=true`, 4, { headers: alice });
    const live = resume(gw.url, created.id, first.blocks.length - 1, alice);
    const cancelled = await cancel(created.id);
    assert.equal(cancelled.status, 200);
    const body: AnyJson = cancelled.json();
    assert.equal(body.status, 'cancelled');
    checkResponseObject(body);
    assert.ok(body.output.length > 0 && body.output[0].content[0].text.length > 0, 'the text generated so far is kept');
    await sim.whenAborted(vllmRequest);
    // The live reader's stream ends (no terminal event: cancellation has none).
    const rest = (await live).text;
    assert.ok(rest.endsWith('data: [DONE]\n\n'));
    const again = await cancel(created.id);
    assert.equal(again.status, 200);
    assert.deepEqual(again.json(), body);
    assert.deepEqual((await get(`/v1/responses/${created.id}`)).json(), body);
  });

  it('cancel errors: not background, already completed, unknown, another tenant', async () => {
    const foreground: AnyJson = (await post({ model: 'm', input: 'x' })).json();
    const notBackground = await cancel(foreground.id);
    assert.equal(notBackground.status, 400);
    assert.equal(notBackground.json().error.code, 'response_not_cancellable');
    const done: AnyJson = (await post({ model: 'm', input: 'x', background: true })).json();
    await resume(gw.url, done.id, -1, alice);
    const completed = await cancel(done.id);
    assert.equal(completed.status, 400);
    assert.match(completed.json().error.message, /completed/);
    assert.equal((await cancel('resp_unknown')).status, 404);
    const running: AnyJson = (await post({ model: 'm', input: 'x', background: true }, SLOW)).json();
    assert.equal((await cancel(running.id, bob)).status, 404);
    assert.equal((await get(`/v1/responses/${running.id}`, bob)).status, 404);
    assert.equal((await get(`/v1/responses/${running.id}?stream=true`, bob)).status, 404);
    assert.equal((await cancel(running.id)).json().status, 'cancelled');
  });

  it('refuses what cannot be: background without store, streaming a foreground response again, a bad starting_after', async () => {
    const noStore = await post({ model: 'm', input: 'x', background: true, store: false });
    assert.equal(noStore.status, 400);
    assert.equal(noStore.json().error.param, 'store');
    const foreground: AnyJson = (await post({ model: 'm', input: 'x' })).json();
    const replay = await get(`/v1/responses/${foreground.id}?stream=true`);
    assert.equal(replay.status, 400);
    assert.equal(replay.json().error.param, 'stream');
    const bad = await get(`/v1/responses/${foreground.id}?stream=true&starting_after=-3`);
    assert.equal(bad.status, 400);
    assert.equal(bad.json().error.param, 'starting_after');
  });

  it('a background request vLLM refuses ends failed, with vLLM\'s message, in the stream and when retrieved', async () => {
    const created: AnyJson = (await post({ model: 'm', input: 'x', background: true }, { 'x-sim': 'status=400' })).json();
    const streamed = await resume(gw.url, created.id, -1, alice);
    const checked = checkStream(streamed.text);
    assert.equal(checked.terminal.status, 'failed');
    const stored: AnyJson = (await get(`/v1/responses/${created.id}`)).json();
    assert.equal(stored.status, 'failed');
    assert.ok(typeof stored.error.message === 'string' && stored.error.message.length > 0);
  });

  it('DELETE of a running background response cancels it and deletes it', async () => {
    const upstream = sim.nextRequest();
    const created: AnyJson = (await post({ model: 'm', input: 'x', background: true }, { 'x-sim': 'deltas=400;slow=25' })).json();
    const vllmRequest = await upstream;
    const deleted = await send(`${gw.url}/v1/responses/${created.id}`, { method: 'DELETE', headers: alice });
    assert.equal(deleted.status, 200);
    assert.equal(deleted.json().deleted, true);
    await sim.whenAborted(vllmRequest);
    assert.equal((await get(`/v1/responses/${created.id}`)).status, 404);
    assert.equal((await get(`/v1/responses/${created.id}?stream=true`)).status, 404);
  });

  it('continues from a finished background response with previous_response_id', async () => {
    const created: AnyJson = (await post({ model: 'm', input: 'first', background: true })).json();
    await resume(gw.url, created.id, -1, alice);
    const next = await post({ model: 'm', input: 'second', previous_response_id: created.id });
    assert.equal(next.status, 200);
    const sent = sim.requests.at(-1)?.json as AnyJson;
    assert.equal(sent.input.length, 3, 'the first turn (input and output) and the new input went to vLLM');
    assert.equal(sent.background, undefined, 'vLLM never gets background');
  });

  it('the openai SDK: create in the background, retrieve, stream again from a sequence number (and its resume helper), cancel', async () => {
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'key-a', maxRetries: 0 });
    const created = await client.responses.create({ model: 'm', input: 'sdk', background: true }, { headers: SLOW });
    assert.equal(created.background, true);
    const retrieved = await client.responses.retrieve(created.id);
    assert.equal(retrieved.id, created.id);
    const stream = await client.responses.retrieve(created.id, { stream: true, starting_after: 2 });
    const sequences: number[] = [];
    let text = '';
    let final: AnyJson;
    for await (const event of stream) {
      sequences.push(event.sequence_number);
      if (event.type === 'response.output_text.delta') text += event.delta;
      if (event.type === 'response.completed') final = event.response;
    }
    assert.equal(sequences[0], 3);
    sequences.forEach((sequence, index) => assert.equal(sequence, 3 + index));
    assert.equal(final.status, 'completed');
    assert.ok(final.output_text === undefined || typeof final.output_text === 'string');
    assert.ok(text.length > 0 && final.output[0].content[0].text.endsWith(text));
    // The SDK's resume helper: it reads the stream from the start, rebuilds the response,
    // and hands out only the events after starting_after.
    const again = await client.responses.create({ model: 'm', input: 'sdk', background: true }, { headers: SLOW });
    const helper = client.responses.stream({ response_id: again.id, starting_after: 5 });
    const helperSequences: number[] = [];
    for await (const event of helper) helperSequences.push(event.sequence_number);
    assert.equal(helperSequences[0], 6);
    const helperFinal = await helper.finalResponse();
    assert.equal(helperFinal.status, 'completed');
    assert.equal(helperFinal.output_text, (await client.responses.retrieve(again.id)).output_text);
    const long = await client.responses.create({ model: 'm', input: 'sdk', background: true }, { headers: { 'x-sim': 'deltas=400;slow=25' } });
    const cancelled = await client.responses.cancel(long.id);
    assert.equal(cancelled.status, 'cancelled');
  });
});

describe('--detach-on-disconnect', () => {
  let sim: SimVllm;
  let detaching: TestGateway;
  let plain: TestGateway;
  before(async () => {
    ({ sim, gw: detaching } = await startSimAndGateway({ 'detach-on-disconnect': 'true' }));
    plain = await (await import('./helpers/gateway.ts')).startGateway(sim.url);
  });
  after(() => closeAll(detaching, plain, sim));

  it('a foreground stream whose client leaves keeps generating, and is resumed from where it was left', async () => {
    const upstream = sim.nextRequest();
    const first = await readUntilThenLeave(`${detaching.url}/v1/responses`, 5, {
      body: { model: 'm', input: 'detach', stream: true },
      headers: SLOW,
    });
    const vllmRequest = await upstream;
    const resumed = await resume(detaching.url, first.responseId, 5);
    const checked = checkJoined(first.blocks, resumed.text);
    assert.equal(checked.terminal.status, 'completed');
    assert.equal(checked.terminal.background, false);
    assert.equal(vllmRequest?.aborted, false);
    const stored: AnyJson = (await send(`${detaching.url}/v1/responses/${first.responseId}`)).json();
    assert.equal(stored.output[0].content[0].text, joinedDeltas(checked));
  });

  it('without it, a client that leaves stops vLLM, as before', async () => {
    const upstream = sim.nextRequest();
    const first = await readUntilThenLeave(`${plain.url}/v1/responses`, 5, { body: { model: 'm', input: 'x', stream: true }, headers: SLOW });
    await sim.whenAborted(await upstream);
    assert.equal((await send(`${plain.url}/v1/responses/${first.responseId}`)).status, 404, 'nothing was stored');
  });
});

describe('--max-background-runs', () => {
  let sim: SimVllm;
  let gw: TestGateway;
  before(async () => ({ sim, gw } = await startSimAndGateway({ 'max-background-runs': '1' })));
  after(() => closeAll(gw, sim));

  it('runs one at a time: the others wait in queued and start in order', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const created: AnyJson = (await postJson(`${gw.url}/v1/responses`, { model: 'm', input: `run ${i}`, background: true }, SLOW)).json();
      assert.equal(created.status, i === 0 ? 'in_progress' : 'queued');
      ids.push(created.id);
    }
    assert.equal((await send(`${gw.url}/v1/responses/${ids[2]}`)).json().status, 'queued');
    // vLLM sees them in the order they were created, one after the other.
    for (const id of ids) assert.equal(checkStream((await resume(gw.url, id, -1)).text).terminal.status, 'completed');
    const inputs = sim.requests.slice(-3).map((request) => JSON.stringify(request.json?.['input']));
    assert.deepEqual(inputs.map((input) => /run (\d)/.exec(input)?.[1]), ['0', '1', '2']);
  });
});

describe('--background-event-ttl', () => {
  let sim: SimVllm;
  let gw: TestGateway;
  before(async () => ({ sim, gw } = await startSimAndGateway({ 'background-event-ttl': '300ms' })));
  after(() => closeAll(gw, sim));

  it("removes an ended response's event log once it is that old; the response itself stays", async () => {
    const created: AnyJson = (await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'x', background: true })).json();
    assert.equal((await resume(gw.url, created.id, -1)).status, 200);
    // The keeper expires logs every 300 ms here: each read is a round trip; a few of its
    // ticks are enough, and the loop is bounded.
    let status = 200;
    for (let attempt = 0; attempt < 5_000 && status === 200; attempt++) status = (await resume(gw.url, created.id, -1)).status;
    assert.equal(status, 400, 'the log is gone');
    const stored = await send(`${gw.url}/v1/responses/${created.id}`);
    assert.equal(stored.status, 200);
    assert.equal(stored.json().status, 'completed');
  });
});
