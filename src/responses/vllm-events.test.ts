// Reading vLLM's events: text cut anywhere between chunks (inside a UTF-8 character too),
// vLLM's two-line events and the general SSE forms.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeParts, endsWithType, eventTypeAt, parseEventLines } from './vllm-events.ts';

describe('decodeParts', () => {
  it('gives the same text however the bytes were cut, inside a character included', () => {
    const text = 'event: response.output_text.delta\ndata: {"delta":"héllo — 你好 🙂"}\n\n';
    const bytes = Buffer.from(text);
    for (let at = 1; at < bytes.length; at++) {
      assert.equal(decodeParts([bytes.subarray(0, at), bytes.subarray(at)]), text, `cut at byte ${at}`);
    }
  });
});

describe('parseEventLines', () => {
  it("reads vLLM's event and data lines", () => {
    assert.deepEqual(parseEventLines('event: response.created\ndata: {"a":1}'), { name: 'response.created', data: '{"a":1}' });
    assert.deepEqual(parseEventLines('data: {"a":1}'), { name: undefined, data: '{"a":1}' });
  });

  it('reads the general forms: no space after the colon, several data lines, comments and ids', () => {
    assert.deepEqual(parseEventLines(': comment\nid: 7\nevent:x\ndata:{"a":\ndata: 1}'), { name: 'x', data: '{"a":\n1}' });
  });
});

describe('endsWithType', () => {
  it('tells the type vLLM writes last, and nothing that merely ends the same way', () => {
    assert.equal(endsWithType('{"delta":"x","type":"response.output_text.delta"}', 'response.output_text.delta'), true);
    assert.equal(endsWithType('{"delta":"x","type":"xresponse.output_text.delta"}', 'response.output_text.delta'), false);
    assert.equal(endsWithType('{"type":"response.output_text.delta","delta":"x"}', 'response.output_text.delta'), false);
  });
});

describe('eventTypeAt', () => {
  const TYPES = ['response.output_text.delta', 'response.refusal.delta'];
  const delta = 'event: response.output_text.delta\ndata: {"delta":"x","type":"response.output_text.delta"}';

  it('reads a block where it lies in a longer text', () => {
    const text = `event: response.created\ndata: {}\n\n${delta}\n\n${delta}\n\n`;
    const start = text.indexOf('event: response.output_text.delta');
    const end = text.indexOf('\n\n', start);
    assert.equal(eventTypeAt(text, start, end, TYPES), 'response.output_text.delta');
    assert.equal(eventTypeAt(text, 0, text.indexOf('\n\n'), TYPES), undefined);
  });

  it('refuses any other shape: a data type that disagrees, two data lines, no event line, a type not asked for', () => {
    const cases = [
      'event: response.output_text.delta\ndata: {"delta":"x","type":"response.refusal.delta"}',
      'event: response.output_text.delta\ndata: {"delta":"x",\ndata: "type":"response.output_text.delta"}',
      'data: {"delta":"x","type":"response.output_text.delta"}',
      'event: response.reasoning_text.delta\ndata: {"delta":"x","type":"response.reasoning_text.delta"}',
      'event: response.output_text.deltas\ndata: {"delta":"x","type":"response.output_text.delta"}',
    ];
    for (const block of cases) assert.equal(eventTypeAt(block, 0, block.length, TYPES), undefined, block);
    assert.equal(eventTypeAt(delta, 0, delta.length, TYPES), 'response.output_text.delta');
  });
});
