import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { BoxedMap } from './boxed-map.ts';
import { SlotTable } from './slot-table.ts';

describe('SlotTable', () => {
  it('hands out slots, reuses emptied ones, and walks what is in it', () => {
    const table = new SlotTable<string>();
    const a = table.add('a');
    const b = table.add('b');
    assert.equal(table.take(a), 'a');
    assert.equal(table.take(a), undefined, 'a slot is emptied once');
    assert.equal(table.add('c'), a, 'the emptied slot is reused');
    assert.deepEqual(table.values().sort(), ['b', 'c']);
    assert.equal(table.take(-1), undefined, '-1 stands for never added');
    for (const value of table.values()) table.take(value === 'b' ? b : a);
    assert.deepEqual(table.values(), []);
  });
});

describe('BoxedMap', () => {
  it('gets, replaces, deletes and walks its values as a Map does', () => {
    const map = new BoxedMap<string, number>();
    map.set('x', 1);
    map.set('y', 2);
    map.set('x', 3);
    assert.equal(map.get('x'), 3);
    assert.equal(map.size, 2);
    assert.equal(map.delete('x'), true);
    assert.equal(map.delete('x'), false);
    assert.equal(map.get('x'), undefined);
    assert.deepEqual(map.values(), [2]);
    map.clear();
    assert.equal(map.size, 0);
  });
});

/**
 * How much the old generation grew while 5,000 entries went through a collection 32 at a
 * time (as requests in flight do), once it and two scavenges were over. A collection
 * that keeps removed entries reachable from the old generation has them promoted.
 */
function promotedByChurn(collection: { enter(value: object): () => void }): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (options: { type: 'minor' }) => void;
  const oldUsed = (): number => getHeapSpaceStatistics().find((space) => space.space_name === 'old_space')?.space_used_size ?? 0;
  const leaving: (() => void)[] = [];
  // The collection's table lives through two scavenges first: promoted, as a server's is.
  for (let i = 0; i < 32; i += 1) leaving.push(collection.enter({ i }));
  gc({ type: 'minor' });
  gc({ type: 'minor' });
  for (const leave of leaving.splice(0)) leave();
  gc({ type: 'minor' });
  gc({ type: 'minor' });
  const before = oldUsed();
  for (let i = 0; i < 5_000; i += 1) {
    leaving.push(collection.enter({ i, payload: new Array<number>(64).fill(i) }));
    if (leaving.length > 32) leaving.shift()?.();
  }
  for (const leave of leaving.splice(0)) leave();
  gc({ type: 'minor' });
  gc({ type: 'minor' });
  return oldUsed() - before;
}

describe('what a removed entry leaves behind', () => {
  const KIB = 1024;

  it('a Set keeps removed entries alive past scavenges (why these collections exist)', () => {
    const set = new Set<object>();
    const grown = promotedByChurn({
      enter(value) {
        set.add(value);
        return () => set.delete(value);
      },
    });
    // V8 keeps an obsolete table's entries; this is what the other two tests must not show.
    assert.ok(grown > 1024 * KIB, `the old generation grew by ${Math.round(grown / KIB)} KiB`);
  });

  it('a SlotTable lets them die young', () => {
    const table = new SlotTable<object>();
    const grown = promotedByChurn({
      enter(value) {
        const slot = table.add(value);
        return () => table.take(slot);
      },
    });
    assert.ok(grown < 256 * KIB, `the old generation grew by ${Math.round(grown / KIB)} KiB`);
  });

  it('a BoxedMap lets them die young: what it leaves is what the Map of its boxes costs', () => {
    // The obsolete tables themselves are made in the old generation (the live one is
    // there): that much grows whatever the values. Measured with numbers as values.
    const numbers = new Map<number, number>();
    let nextNumber = 0;
    const tables = promotedByChurn({
      enter() {
        const key = nextNumber++;
        numbers.set(key, key);
        return () => numbers.delete(key);
      },
    });
    const map = new BoxedMap<number, object>();
    let next = 0;
    const grown = promotedByChurn({
      enter(value) {
        const key = next++;
        map.set(key, value);
        return () => map.delete(key);
      },
    });
    // The emptied boxes are 16 bytes each; the values (a 64-number array each) are gone.
    assert.ok(grown < tables + 256 * KIB, `the old generation grew by ${Math.round(grown / KIB)} KiB, the tables alone by ${Math.round(tables / KIB)} KiB`);
  });
});
