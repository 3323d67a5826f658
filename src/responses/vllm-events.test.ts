// Reading vLLM's events: text cut anywhere between chunks (inside a UTF-8 character too),
// vLLM's two-line events and the general SSE forms.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeParts, endsWithType, parseEventLines } from './vllm-events.ts';

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
