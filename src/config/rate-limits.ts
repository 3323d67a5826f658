// Per-tenant rate limits: requests and tokens per minute. --rate-limit-rpm and
// --rate-limit-tpm set them for every tenant; an entry of the key file may set its
// tenant's own (`rpm=600 tpm=200000`, or `rpm=none` for no limit).

export interface RateLimits {
  /** Requests per minute; undefined: no limit. */
  readonly requestsPerMinute: number | undefined;
  /** Tokens (input + output) per minute; undefined: no limit. */
  readonly tokensPerMinute: number | undefined;
}

/** What a key entry says of its tenant's limits: a number, none (null), or nothing. */
export interface TenantLimitOverrides {
  readonly requestsPerMinute?: number | null;
  readonly tokensPerMinute?: number | null;
}

export const NO_LIMITS: RateLimits = { requestsPerMinute: undefined, tokensPerMinute: undefined };

const OPTION_NAMES = { rpm: 'requestsPerMinute', tpm: 'tokensPerMinute' } as const;

/** One `rpm=N` / `tpm=N` field of a key entry: what it sets, or a problem. */
export function parseLimitOption(field: string): { name: keyof TenantLimitOverrides; value: number | null } | string {
  const eq = field.indexOf('=');
  const option = field.slice(0, eq).toLowerCase();
  const raw = field.slice(eq + 1);
  const name = OPTION_NAMES[option as keyof typeof OPTION_NAMES] as keyof TenantLimitOverrides | undefined;
  if (name === undefined) return `unknown option "${field.slice(0, eq)}" (rpm= or tpm=)`;
  if (['none', 'off', 'unlimited'].includes(raw.toLowerCase())) return { name, value: null };
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value < 1) return `${option}=${raw}: a whole number >= 1, or none`;
  return { name, value };
}

export function hasLimits(limits: RateLimits): boolean {
  return limits.requestsPerMinute !== undefined || limits.tokensPerMinute !== undefined;
}

/** A tenant's limits: its own where it set them, the flags' elsewhere. */
export function resolveLimits(defaults: RateLimits, overrides: TenantLimitOverrides | undefined): RateLimits {
  if (overrides === undefined) return defaults;
  const pick = (own: number | null | undefined, fallback: number | undefined): number | undefined =>
    own === undefined ? fallback : own === null ? undefined : own;
  return {
    requestsPerMinute: pick(overrides.requestsPerMinute, defaults.requestsPerMinute),
    tokensPerMinute: pick(overrides.tokensPerMinute, defaults.tokensPerMinute),
  };
}
