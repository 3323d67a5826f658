// The buckets on a clock the test moves: refill as the minute goes, debts from tokens
// counted after the fact, OpenAI's headers, and limits that change on a key reload.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RateLimits } from '../config/rate-limits.ts';
import { LocalRateLimiter, formatReset, rateLimitError } from './rate-limiter.ts';

function headerMap(headers: readonly string[]): Record<string, string> {
  const map: Record<string, string> = {};
  for (let i = 0; i < headers.length; i += 2) map[headers[i] as string] = headers[i + 1] as string;
  return map;
}

function limiterAt(limits: Record<string, RateLimits>): { limiter: LocalRateLimiter; clock: { now: number } } {
  const clock = { now: 1_000_000 };
  const none: RateLimits = { requestsPerMinute: undefined, tokensPerMinute: undefined };
  return { limiter: new LocalRateLimiter((tenant) => limits[tenant] ?? none, () => clock.now), clock };
}

describe('LocalRateLimiter', () => {
  it('admits a tenant its requests per minute, refilled as the minute goes', () => {
    const { limiter, clock } = limiterAt({ a: { requestsPerMinute: 3, tokensPerMinute: undefined } });
    const remaining = [0, 1, 2].map(() => headerMap(limiter.admit('a').headers)['x-ratelimit-remaining-requests']);
    assert.deepEqual(remaining, ['2', '1', '0']);
    const refused = limiter.admit('a');
    assert.equal(refused.refusal?.kind, 'requests');
    assert.equal(refused.refusal?.limit, 3);
    assert.equal(refused.refusal?.used, 3);
    // One request comes back every 20 s.
    assert.equal(refused.refusal?.retryAfterMs, 20_000);
    assert.equal(headerMap(refused.headers)['x-ratelimit-reset-requests'], '1m0s');
    clock.now += 19_999;
    assert.notEqual(limiter.admit('a').refusal, undefined);
    clock.now += 1;
    assert.equal(limiter.admit('a').refusal, undefined);
  });

  it('keeps each tenant to its own buckets, and leaves unlimited tenants alone', () => {
    const { limiter } = limiterAt({ a: { requestsPerMinute: 1, tokensPerMinute: undefined }, b: { requestsPerMinute: 1, tokensPerMinute: undefined } });
    assert.equal(limiter.admit('a').refusal, undefined);
    assert.notEqual(limiter.admit('a').refusal, undefined);
    assert.equal(limiter.admit('b').refusal, undefined);
    assert.equal(limiter.isLimited('c'), false);
    assert.equal(limiter.isLimited('a'), true);
  });

  it('takes tokens after the fact: a debt refuses until the refill pays it back', () => {
    const { limiter, clock } = limiterAt({ t: { requestsPerMinute: undefined, tokensPerMinute: 600 } });
    assert.equal(limiter.admit('t').refusal, undefined);
    limiter.recordTokens('t', 900);
    const refused = limiter.admit('t');
    assert.equal(refused.refusal?.kind, 'tokens');
    assert.equal(refused.refusal?.used, 900);
    // 300 tokens of debt plus one, at 10 tokens a second.
    assert.equal(refused.refusal?.retryAfterMs, 30_100);
    assert.equal(headerMap(refused.headers)['x-ratelimit-remaining-tokens'], '0');
    clock.now += 30_100;
    assert.equal(limiter.admit('t').refusal, undefined);
  });

  it('starts full buckets at new values when a tenant limits change (key file reload)', () => {
    const limits: Record<string, RateLimits> = { a: { requestsPerMinute: 1, tokensPerMinute: undefined } };
    const { limiter } = limiterAt(limits);
    assert.equal(limiter.admit('a').refusal, undefined);
    assert.notEqual(limiter.admit('a').refusal, undefined);
    limits['a'] = { requestsPerMinute: 5, tokensPerMinute: undefined };
    const admitted = limiter.admit('a');
    assert.equal(admitted.refusal, undefined);
    assert.equal(headerMap(admitted.headers)['x-ratelimit-limit-requests'], '5');
  });
});

describe('rate limit answers', () => {
  it('formats reset times as OpenAI does', () => {
    assert.equal(formatReset(12.2), '13ms');
    assert.equal(formatReset(1_500), '1.5s');
    assert.equal(formatReset(360_000), '6m0s');
    assert.equal(formatReset(3_723_000), '1h2m3s');
  });

  it("words a refusal as OpenAI's 429, with Retry-After in whole seconds", () => {
    const error = rateLimitError('alice', { kind: 'requests', limit: 3, used: 3, retryAfterMs: 19_200 });
    assert.equal(error.status, 429);
    assert.equal(error.code, 'rate_limit_exceeded');
    assert.equal(error.type, 'requests');
    assert.deepEqual(error.headers, { 'retry-after': '20' });
    assert.equal(
      error.message,
      'Rate limit reached for tenant alice on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 19.2s.',
    );
    assert.equal(rateLimitError('t', { kind: 'tokens', limit: 10, used: 12, retryAfterMs: 300 }).headers?.['retry-after'], '1');
  });
});
