import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeCheckpoint, encodeCheckpoint } from './checkpoint-codec.ts';

describe('checkpoint codec', () => {
  it('round-trips increasing, decreasing, repeated and large keys', () => {
    const cases = [[], [1], [1, 2, 3, 4], [500, 3, 3, 700000, 2 ** 40, 1, Number.MAX_SAFE_INTEGER], [7, 7, 7]];
    for (const seqs of cases) assert.deepEqual(decodeCheckpoint(encodeCheckpoint(seqs)), seqs);
  });

  it('spends about a byte per key on a conversation created in order', () => {
    const seqs = Array.from({ length: 1000 }, (_, i) => 1_000_000 + i * 3);
    assert.ok(encodeCheckpoint(seqs).length <= 1003);
  });

  it('refuses truncated bytes', () => {
    assert.throws(() => decodeCheckpoint(Uint8Array.from([0x80])), /truncated/);
  });
});
