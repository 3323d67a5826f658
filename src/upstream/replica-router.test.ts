// The choice of replica: least outstanding (weighted by slow start), affinity kept within
// the load bound, moved when its replica is down or over it, keys hashed alike everywhere.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LOAD_BOUND, LOAD_HEADROOM, ReplicaRouter, rendezvousOrder, type RouteCandidate } from './replica-router.ts';

const replicas = (...inFlight: number[]): RouteCandidate[] => inFlight.map((n, i) => ({ id: `http://r${i}`, up: true, inFlight: n, weight: 1 }));

describe('ReplicaRouter', () => {
  it('picks the replica with the fewest requests in flight', () => {
    assert.deepEqual(new ReplicaRouter().choose(replicas(3, 1, 2), undefined, undefined), { index: 1, outcome: 'none' });
  });

  it('spreads requests evenly over idle replicas (ties turn)', () => {
    const router = new ReplicaRouter();
    const counts = [0, 0, 0];
    for (let i = 0; i < 30; i++) {
      const index = (router.choose(replicas(0, 0, 0), undefined, undefined) as { index: number }).index;
      counts[index] = (counts[index] as number) + 1;
    }
    assert.deepEqual(counts, [10, 10, 10]);
  });

  it('weights by slow start: a replica at a tenth of its weight counts as ten times as busy', () => {
    const candidates = replicas(0, 5);
    candidates[0] = { ...(candidates[0] as RouteCandidate), weight: 0.1 };
    assert.equal(new ReplicaRouter().choose(candidates, undefined, undefined)?.index, 1);
  });

  it('never picks a replica marked down while one is up, nor one already tried', () => {
    const candidates = replicas(0, 9, 9);
    candidates[0] = { ...(candidates[0] as RouteCandidate), up: false };
    assert.equal(new ReplicaRouter().choose(candidates, undefined, undefined)?.index, 1);
    assert.equal(new ReplicaRouter().choose(replicas(0, 9, 9), undefined, undefined, new Set([0, 1]))?.index, 2);
    assert.equal(new ReplicaRouter().choose(replicas(0, 0), undefined, undefined, new Set([0, 1])), undefined);
  });

  it('with every replica down, tries the least busy one anyway (it may be back)', () => {
    const candidates = replicas(4, 2).map((candidate) => ({ ...candidate, up: false }));
    assert.equal(new ReplicaRouter().choose(candidates, undefined, undefined)?.index, 1);
  });

  it("keeps a chain on its replica while that one is up and within the load bound", () => {
    const router = new ReplicaRouter();
    // At a low load, a few requests over the average keep it: (6 + 1) / 3 rounds up to 3,
    // and 3 + LOAD_HEADROOM = 7 with the new one.
    assert.equal(LOAD_HEADROOM, 4);
    assert.deepEqual(router.choose(replicas(2, 0, 1), 'http://r0', undefined), { index: 0, outcome: 'kept' });
    assert.deepEqual(router.choose(replicas(6, 0, 0), 'http://r0', undefined), { index: 0, outcome: 'kept' });
    assert.deepEqual(router.choose(replicas(7, 0, 0), 'http://r0', undefined), { index: 1, outcome: 'moved' });
    // At a high one, 1.25x the average: (22 + 20 + 10 + 1) / 3 = 17.7, so 23 with the new one.
    assert.equal(Math.ceil((LOAD_BOUND * 53) / 3), 23);
    assert.deepEqual(router.choose(replicas(22, 20, 10), 'http://r0', undefined), { index: 0, outcome: 'kept' });
    assert.deepEqual(router.choose(replicas(23, 20, 10), 'http://r0', undefined), { index: 2, outcome: 'moved' });
  });

  it('moves a chain whose replica is down to the least busy one', () => {
    const candidates = replicas(0, 3, 1);
    candidates[0] = { ...(candidates[0] as RouteCandidate), up: false };
    assert.deepEqual(new ReplicaRouter().choose(candidates, 'http://r0', undefined), { index: 2, outcome: 'moved' });
  });

  it('hashes a key to the same replica in every router, and to the next in its order when over the bound', () => {
    const order = rendezvousOrder('conv_abc', replicas(0, 0, 0));
    for (let i = 0; i < 5; i++) assert.deepEqual(new ReplicaRouter().choose(replicas(0, 0, 0), undefined, 'conv_abc'), { index: order[0], outcome: 'kept' });
    const busy = replicas(0, 0, 0).map((candidate, i) => ({ ...candidate, inFlight: i === order[0] ? 7 : 0 }));
    assert.deepEqual(new ReplicaRouter().choose(busy, undefined, 'conv_abc'), { index: order[1], outcome: 'moved' });
  });

  it('rendezvous: removing a replica moves only the keys it had', () => {
    const three = replicas(0, 0, 0);
    const two = three.slice(0, 2);
    let moved = 0;
    let kept = 0;
    for (let k = 0; k < 300; k++) {
      const key = `chain-${k}`;
      const before = three[rendezvousOrder(key, three)[0] as number]?.id;
      const after = two[rendezvousOrder(key, two)[0] as number]?.id;
      if (before === 'http://r2') moved += 1;
      else {
        assert.equal(after, before, `${key} stayed where it was`);
        kept += 1;
      }
    }
    // About a third each way, and every key spread over all three.
    assert.ok(moved > 60 && kept > 120, `moved ${moved}, kept ${kept}`);
  });

  it('a stored replica that is no longer configured counts as none: the least busy one', () => {
    assert.deepEqual(new ReplicaRouter().choose(replicas(2, 1), 'http://gone', undefined), { index: 1, outcome: 'moved' });
  });
});
