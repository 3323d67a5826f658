// The benchmark's summary statistics: --quick has 2 rounds, where the median must be the
// mean of both rather than the larger one.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { median, percentile, spread } from '../bench/stats.ts';

describe('bench statistics', () => {
  it('median: the middle value, or the mean of the two middle ones', () => {
    assert.equal(median([5, 1, 3]), 3);
    assert.equal(median([497, 975]), 736);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
  });

  it('spread: the smallest and the largest, rounded as asked', () => {
    assert.equal(spread([3.2, 1.04, 2]), '1–3');
    assert.equal(spread([0.934, 1.104], 2), '0.93–1.10');
  });

  it('percentile: nearest rank, the largest value for p100', () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i);
    assert.equal(percentile(values, 50), 51);
    assert.equal(percentile(values, 99), 100);
    assert.equal(percentile(values, 100), 100);
  });
});
