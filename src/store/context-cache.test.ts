import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ContextCache, type CachedContext } from './context-cache.ts';

function context(bytes: number): CachedContext {
  return { seqs: [1, 2, 3], upstream: Buffer.alloc(bytes, 0x61), replica: null, removalsAt: 0 };
}

describe('ContextCache', () => {
  it('lets the least recently used go first once over its budget', () => {
    const cache = new ContextCache(8 * 1_300);
    for (const name of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']) cache.set('t', name, context(1_000));
    assert.ok(cache.get('t', 'a'), 'a, used again, is now the most recent');
    cache.set('t', 'i', context(1_000));
    assert.equal(cache.peek('t', 'b'), undefined, 'b went first');
    for (const name of ['a', 'c', 'd', 'e', 'f', 'g', 'h', 'i']) assert.ok(cache.peek('t', name), name);
    assert.ok(cache.bytes <= 8 * 1_300);
  });

  it('keeps nothing over an eighth of its budget, its seqs counted, and nothing with a budget of 0', () => {
    const cache = new ContextCache(8_000);
    cache.set('t', 'big', context(1_000));
    assert.equal(cache.peek('t', 'big'), undefined, 'an eighth of 8,000 bytes, with what an entry costs besides');
    cache.set('t', 'small', context(500));
    assert.ok(cache.peek('t', 'small'));
    // 8 bytes a seq: 100 seqs and 10 bytes are over an eighth, 10 seqs are not.
    cache.set('t', 'long', { seqs: Array.from({ length: 100 }, (_, i) => i), upstream: Buffer.alloc(10), replica: null, removalsAt: 0 });
    assert.equal(cache.peek('t', 'long'), undefined, 'its seqs count against the budget');
    assert.equal(cache.admits(100, 10), false);
    assert.equal(cache.admits(10, 10), true);
    const none = new ContextCache(0);
    none.set('t', 'small', context(1));
    assert.equal(none.peek('t', 'small'), undefined);
    assert.equal(none.bytes, 0);
  });

  it('counts back to zero as entries go, replaced or deleted', () => {
    const cache = new ContextCache(1_000_000);
    cache.set('t', 'a', context(500));
    cache.set('t', 'a', context(700));
    cache.set('t', 'b', context(100));
    cache.delete('t', 'a');
    cache.delete('t', 'b');
    cache.delete('t', 'never');
    assert.equal(cache.bytes, 0);
  });

  it('keys by tenant and response id: one tenant never gets another tenant\'s entry', () => {
    const cache = new ContextCache(1_000_000);
    cache.set('tenant-a', 'resp_1', context(10));
    assert.equal(cache.get('tenant-b', 'resp_1'), undefined);
    // Whatever the two hold, no pair reads as another: "ab" + "c" is not "a" + "bc".
    cache.set('a', 'bc', context(10));
    assert.equal(cache.get('ab', 'c'), undefined);
  });

  it("holds a pooled Buffer's bytes alone, not the shared 8 KiB it was cut from", () => {
    const cache = new ContextCache(1_000_000);
    const pooled = Buffer.from('[{"type":"message"}]');
    assert.ok(pooled.buffer.byteLength > pooled.length, 'Node handed out a slice of its pool');
    cache.set('t', 'a', { seqs: [1], upstream: pooled, replica: null, removalsAt: 0 });
    const kept = cache.get('t', 'a');
    assert.equal(kept?.upstream.toString(), pooled.toString());
    assert.equal(kept?.upstream.buffer.byteLength, pooled.length);
  });
});
