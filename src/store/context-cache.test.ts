import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ContextCache, type CachedContext } from './context-cache.ts';

function context(bytes: number): CachedContext {
  return { seqs: [1, 2, 3], upstream: Buffer.alloc(bytes, 0x61), replica: null };
}

describe('ContextCache', () => {
  it('lets the least recently used go first once over its budget', () => {
    const cache = new ContextCache(3 * 1_300);
    cache.set('t', 'a', context(1_000));
    cache.set('t', 'b', context(1_000));
    cache.set('t', 'c', context(1_000));
    assert.ok(cache.get('t', 'a'), 'a, used again, is now the most recent');
    cache.set('t', 'd', context(1_000));
    assert.equal(cache.peek('t', 'b'), undefined, 'b went first');
    assert.ok(cache.peek('t', 'a') && cache.peek('t', 'c') && cache.peek('t', 'd'));
    assert.ok(cache.bytes <= 3 * 1_300);
  });

  it('keeps nothing larger than its budget, and nothing at all with a budget of 0', () => {
    const cache = new ContextCache(1_000);
    cache.set('t', 'big', context(2_000));
    assert.equal(cache.peek('t', 'big'), undefined);
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
    cache.set('t', 'a', { seqs: [1], upstream: pooled, replica: null });
    const kept = cache.get('t', 'a');
    assert.equal(kept?.upstream.toString(), pooled.toString());
    assert.equal(kept?.upstream.buffer.byteLength, pooled.length);
  });
});
