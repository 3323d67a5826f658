// Per-tenant rate limits, as OpenAI applies its own: requests per minute and tokens per
// minute, each a token bucket (token-bucket.ts). A request is admitted while both have
// something left, and takes one request; its tokens (input + output, from vLLM's usage)
// are taken when it ends. Every answer to a limited tenant carries OpenAI's
// x-ratelimit-* headers; a refusal is 429 with Retry-After.
//
// OpenAI counts a request's tokens up front from an estimate (max_tokens and the prompt's
// length); the gateway has no tokenizer, so it counts what vLLM reports afterwards: a
// tenant can go over its budget by the requests in flight when it ran out, and then
// waits for the debt to refill.
import { hasLimits, type RateLimits } from '../config/rate-limits.ts';
import { GatewayError } from '../errors.ts';
import { TokenBucket } from './token-bucket.ts';

export type LimitKind = 'requests' | 'tokens';

/** A refusal, plain data (it crosses from the cluster's primary to a worker). */
export interface Refusal {
  readonly kind: LimitKind;
  readonly limit: number;
  /** Used within the last minute, as the bucket sees it (capacity - level). */
  readonly used: number;
  readonly retryAfterMs: number;
}

export interface Admission {
  /** Response headers, flat: x-ratelimit-{limit,remaining,reset}-{requests,tokens}. */
  readonly headers: readonly string[];
  readonly refusal: Refusal | undefined;
}

/** What the http layer asks; in a cluster the answer comes from the primary. */
export interface RateLimiter {
  /** Whether the tenant has any limit at all (admission is skipped otherwise). */
  isLimited(tenant: string): boolean;
  admit(tenant: string): Admission | Promise<Admission>;
  /** Tokens a finished request of this tenant used. */
  recordTokens(tenant: string, tokens: number): void;
}

interface TenantBuckets {
  readonly limits: RateLimits;
  readonly requests: TokenBucket | undefined;
  readonly tokens: TokenBucket | undefined;
}

/**
 * The limiter itself: one process's buckets. `limitsOf` is read on every admission, so a
 * reload of the key file (SIGHUP) applies at once; a tenant whose limits changed starts
 * with full buckets at the new values.
 */
export class LocalRateLimiter implements RateLimiter {
  readonly #limitsOf: (tenant: string) => RateLimits;
  readonly #now: () => number;
  readonly #tenants = new Map<string, TenantBuckets>();

  constructor(limitsOf: (tenant: string) => RateLimits, now: () => number = Date.now) {
    this.#limitsOf = limitsOf;
    this.#now = now;
  }

  isLimited(tenant: string): boolean {
    return hasLimits(this.#limitsOf(tenant));
  }

  admit(tenant: string): Admission {
    const now = this.#now();
    const buckets = this.#bucketsOf(tenant, now);
    let refusal: Refusal | undefined;
    if (buckets.tokens !== undefined && buckets.tokens.level(now) <= 0) {
      refusal = refusalOf('tokens', buckets.tokens, Math.max(1, buckets.tokens.msUntil(1, now)), now);
    }
    if (refusal === undefined && buckets.requests !== undefined && !buckets.requests.tryTake(1, now)) {
      refusal = refusalOf('requests', buckets.requests, buckets.requests.msUntil(1, now), now);
    }
    return { headers: headersOf(buckets, now), refusal };
  }

  recordTokens(tenant: string, tokens: number): void {
    if (tokens <= 0) return;
    const now = this.#now();
    this.#bucketsOf(tenant, now).tokens?.take(tokens, now);
  }

  #bucketsOf(tenant: string, now: number): TenantBuckets {
    const limits = this.#limitsOf(tenant);
    const known = this.#tenants.get(tenant);
    if (
      known !== undefined &&
      known.limits.requestsPerMinute === limits.requestsPerMinute &&
      known.limits.tokensPerMinute === limits.tokensPerMinute
    ) {
      return known;
    }
    const made: TenantBuckets = {
      limits,
      requests: limits.requestsPerMinute === undefined ? undefined : new TokenBucket(limits.requestsPerMinute, now),
      tokens: limits.tokensPerMinute === undefined ? undefined : new TokenBucket(limits.tokensPerMinute, now),
    };
    this.#tenants.set(tenant, made);
    return made;
  }
}

const LIMIT_NAMES: Record<LimitKind, string> = { requests: 'requests per min (RPM)', tokens: 'tokens per min (TPM)' };

/** The 429 for a refusal, worded as OpenAI words its own, with Retry-After in seconds. */
export function rateLimitError(tenant: string, refusal: Refusal): GatewayError {
  const retrySeconds = Math.max(1, Math.ceil(refusal.retryAfterMs / 1000));
  const requested = refusal.kind === 'requests' ? ', Requested 1' : '';
  return new GatewayError(
    'rate_limit_exceeded',
    `Rate limit reached for tenant ${tenant} on ${LIMIT_NAMES[refusal.kind]}: Limit ${refusal.limit}, Used ${refusal.used}${requested}. ` +
      `Please try again in ${formatReset(refusal.retryAfterMs)}.`,
    { type: refusal.kind, headers: { 'retry-after': String(retrySeconds) } },
  );
}

function refusalOf(kind: LimitKind, bucket: TokenBucket, retryAfterMs: number, now: number): Refusal {
  return { kind, limit: bucket.capacity, used: Math.ceil(bucket.capacity - bucket.level(now)), retryAfterMs };
}

function headersOf(buckets: TenantBuckets, now: number): string[] {
  const headers: string[] = [];
  for (const [kind, bucket] of [['requests', buckets.requests], ['tokens', buckets.tokens]] as const) {
    if (bucket === undefined) continue;
    headers.push(
      `x-ratelimit-limit-${kind}`,
      String(bucket.capacity),
      `x-ratelimit-remaining-${kind}`,
      String(Math.max(0, Math.floor(bucket.level(now)))),
      `x-ratelimit-reset-${kind}`,
      formatReset(bucket.msUntilFull(now)),
    );
  }
  return headers;
}

/** OpenAI's reset format (Go's durations): 12ms, 1.5s, 6m0s. */
export function formatReset(ms: number): string {
  if (ms < 1000) return `${Math.ceil(ms)}ms`;
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(3))}s`;
  const seconds = Math.ceil(ms / 1000);
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  return `${hours > 0 ? `${hours}h` : ''}${minutes}m${seconds % 60}s`;
}
