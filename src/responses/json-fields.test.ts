import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeJsonString, field, integerSpan, splice, stringSpan } from './json-fields.ts';

const delta = '{"content_index":0,"delta":"say \\"item_id\\":\\"x\\" \\\\","item_id":"abc","logprobs":[],"output_index":12,"sequence_number":407,"type":"response.output_text.delta"}';

describe('json fields', () => {
  it('reads string and integer fields of a compact object', () => {
    const id = stringSpan(delta, field('item_id'));
    assert.equal(delta.slice(id?.start, id?.end), 'abc');
    const text = stringSpan(delta, field('delta'));
    assert.equal(decodeJsonString(delta.slice(text?.start, text?.end)), 'say "item_id":"x" \\');
    assert.equal(integerSpan(delta, field('output_index'))?.value, 12);
    assert.equal(integerSpan(delta, field('sequence_number'))?.value, 407);
    assert.equal(stringSpan(delta, field('missing')), undefined);
  });

  it('tolerates a space after the colon', () => {
    assert.equal(integerSpan('{"a": 5}', field('a'))?.value, 5);
    const span = stringSpan('{"a": "b"}', field('a'));
    assert.equal('{"a": "b"}'.slice(span?.start, span?.end), 'b');
  });

  it('splices several fields at once, keeping the rest byte for byte', () => {
    const id = stringSpan(delta, field('item_id'));
    const seq = integerSpan(delta, field('sequence_number'));
    assert.ok(id && seq);
    const out = splice(delta, [
      { span: seq, text: '9' },
      { span: id, text: 'msg_1' },
    ]);
    assert.deepEqual(JSON.parse(out), { ...JSON.parse(delta), item_id: 'msg_1', sequence_number: 9 });
  });
});
