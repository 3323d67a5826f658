// The stream normalizer's delta paths: vLLM's deltas rewritten where they lie in the
// chunk's text, and the general way for any other shape, give the client the same events.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { REAL_VLLM_QUIRKS, eventChunks, makeIds, planGeneration, streamEvents, type JsonObject } from '../../sim/wire.ts';
import type { Json } from './items.ts';
import type { ResponseFacts } from './response-object.ts';
import { StreamNormalizer } from './stream-normalizer.ts';

const body = { model: 'm', input: 'Tell me about the sea', stream: true };
const facts: ResponseFacts = { id: 'resp_test', request: body, store: false, background: false, previousResponseId: null, conversationId: null, keepRawFields: false };
const noLog = (): never => {
  throw new Error('no logging expected');
};

/** vLLM's events for one answer of `deltas` text deltas, each rendered by `render`. */
function vllmEvents(deltas: number, render: (event: JsonObject, sequence: number) => string): string[] {
  const plan = planGeneration(body, { deltas });
  return streamEvents(body, plan, makeIds(plan, REAL_VLLM_QUIRKS), 1).map(render);
}

/** The events the client gets when the text arrives in the given chunks. */
async function normalize(chunks: readonly string[], extraFacts: Partial<ResponseFacts> = {}): Promise<Json[]> {
  const normalizer = new StreamNormalizer({ ...facts, ...extraFacts }, { finish: () => undefined }, noLog);
  let text = '';
  const emit = (output: unknown): void => {
    if (typeof output === 'string') text += output;
    else if (Array.isArray(output)) text += output.join('');
  };
  for (const chunk of chunks) await normalizer.onEvents([Buffer.from(chunk)], emit);
  const events: Json[] = [];
  for (const block of text.split('\n\n')) {
    if (block === '' || block === 'data: [DONE]') continue;
    const [eventLine, dataLine] = block.split('\n') as [string, string];
    const event = JSON.parse(dataLine.slice('data: '.length)) as Json;
    assert.equal(eventLine, `event: ${String(event['type'])}`, 'the event line names the type');
    events.push(event);
  }
  return events;
}

/** What a client checks of a normalized stream; returns the deltas' text. */
function assertWellFormed(events: Json[], textOutputIndex = 0): string {
  assert.deepEqual(
    events.map((event) => event['sequence_number']),
    events.map((_, i) => i),
    'sequence numbers from 0 without gaps',
  );
  const added = events.find((event) => event['type'] === 'response.output_item.added' && (event['item'] as Json)['type'] === 'message');
  const itemId = (added?.['item'] as Json | undefined)?.['id'];
  assert.match(String(itemId), /^msg_/);
  const deltas = events.filter((event) => event['type'] === 'response.output_text.delta');
  assert.ok(deltas.length > 0);
  for (const delta of deltas) {
    assert.equal(delta['item_id'], itemId, 'the gateway id in every delta');
    assert.equal(delta['output_index'], textOutputIndex);
    assert.equal(delta['content_index'], 0);
  }
  const text = deltas.map((delta) => delta['delta']).join('');
  const done = events.find((event) => event['type'] === 'response.output_text.done');
  assert.equal(done?.['text'], text, 'the deltas join to the done text');
  assert.equal(events.at(-1)?.['type'], 'response.completed');
  return text;
}

/** The events with what the gateway assigns (ids, sequence numbers, timestamps) taken out,
 * keys sorted (a spliced delta keeps vLLM's field order). */
function withoutAssigned(events: Json[]): string {
  const assigned = new Set(['id', 'item_id', 'sequence_number', 'created_at', 'completed_at']);
  return JSON.stringify(events, (key, value: unknown) => {
    if (assigned.has(key)) return undefined;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
    return Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : 1)));
  });
}

describe('StreamNormalizer deltas', () => {
  const asVllm = (event: JsonObject, sequence: number): string => eventChunks(event, sequence).join('');
  // OpenAI's own order (type first): not the shape read in place.
  const typeFirst = (event: JsonObject, sequence: number): string => {
    const { type, ...rest } = event;
    return `event: ${String(type)}\ndata: ${JSON.stringify({ type, ...rest, sequence_number: sequence })}\n\n`;
  };

  it('gives the same events for vLLM\'s deltas in one chunk, one chunk each, and in another field order', async () => {
    const inOneChunk = await normalize([vllmEvents(40, asVllm).join('')]);
    const eachAlone = await normalize(vllmEvents(40, asVllm));
    const otherOrder = await normalize([vllmEvents(40, typeFirst).join('')]);
    const text = assertWellFormed(inOneChunk);
    assert.equal(assertWellFormed(eachAlone), text);
    assert.equal(assertWellFormed(otherOrder), text);
    assert.equal(withoutAssigned(inOneChunk), withoutAssigned(eachAlone));
    assert.equal(withoutAssigned(inOneChunk), withoutAssigned(otherOrder));
  });

  it('keeps every delta right when the shape changes mid-stream (a field missing from some deltas)', async () => {
    const events = vllmEvents(30, (event, sequence) => {
      const rendered = asVllm(event, sequence);
      // From the tenth event on, deltas come without content_index (read as 0).
      return sequence >= 10 && event['type'] === 'response.output_text.delta' ? rendered.replace('"content_index":0,', '') : rendered;
    });
    assert.equal(assertWellFormed(await normalize([events.join('')])), assertWellFormed(await normalize([vllmEvents(30, asVllm).join('')])));
  });

  it('moves the deltas\' output_index past items the gateway sent first', async () => {
    const leadingItems = [{ type: 'compaction', id: 'cmp_1', encrypted_content: 'sealed' }];
    const events = await normalize([vllmEvents(20, asVllm).join('')], { leadingItems });
    assertWellFormed(events, 1);
    const first = events.find((event) => event['type'] === 'response.output_item.added');
    assert.equal((first?.['item'] as Json)['type'], 'compaction');
  });
});
