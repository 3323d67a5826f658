import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hasIdShape, itemIdPrefix, newId } from './ids.ts';

describe('ids', () => {
  it('carry the prefix and 32 hex digits', () => {
    assert.match(newId('resp_'), /^resp_[0-9a-f]{32}$/);
  });

  it('sort by creation time, also within one millisecond', () => {
    const ids = Array.from({ length: 2000 }, () => newId('msg_'));
    assert.deepEqual([...ids].sort(), ids);
    assert.equal(new Set(ids).size, ids.length);
  });

  it('name items by OpenAI\'s prefixes', () => {
    assert.equal(itemIdPrefix('message'), 'msg_');
    assert.equal(itemIdPrefix('reasoning'), 'rs_');
    assert.equal(itemIdPrefix('function_call'), 'fc_');
    assert.equal(itemIdPrefix('function_call_output'), 'fco_');
    assert.equal(itemIdPrefix('something_new'), 'item_');
  });

  it('tell ids of the wrong kind or shape', () => {
    assert.equal(hasIdShape('resp_abc123', 'resp_'), true);
    assert.equal(hasIdShape('msg_abc123', 'resp_'), false);
    assert.equal(hasIdShape('resp_', 'resp_'), false);
    assert.equal(hasIdShape('resp_a/b', 'resp_'), false);
  });
});
