// The gateway's own API keys (--api-keys): who may call /v1/*, and as which tenant.
// Keys are kept as SHA-256 digests and a candidate is compared with every one of them in
// constant time, so the answer's timing tells nothing about any key.
//
// A key entry (a line of the key file, or an entry of the comma list) is `<key>`, or
// `<key> <tenant>`, then optionally its tenant's rate limits (`rpm=600 tpm=200000`, see
// config/rate-limits.ts); a key without a tenant is a tenant of its own (tenantOfKey).
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ApiKeySource } from '../config/load-config.ts';
import { NO_LIMITS, parseLimitOption, resolveLimits, type RateLimits, type TenantLimitOverrides } from '../config/rate-limits.ts';
import { DEFAULT_TENANT, tenantNameProblem, tenantOfKey } from '../config/tenants.ts';
import { GatewayError } from '../errors.ts';

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

export class ApiKeyLoadError extends Error {
  override name = 'ApiKeyLoadError';
}

interface KeyEntry {
  readonly digest: Buffer;
  readonly tenant: string;
  /** The limits this entry sets for its tenant, if it sets any. */
  readonly limits: TenantLimitOverrides | undefined;
  readonly where: string;
}

/** One `<key> [<tenant>] [rpm=N] [tpm=N]` entry; `where` names it in an error. */
function parseEntry(text: string, where: string): KeyEntry {
  const [key, ...rest] = text.trim().split(/\s+/);
  if (key === undefined || key.length === 0) throw new ApiKeyLoadError(`${where}: no key`);
  let tenant: string | undefined;
  let limits: { -readonly [K in keyof TenantLimitOverrides]: TenantLimitOverrides[K] } | undefined;
  for (const field of rest) {
    if (field.includes('=')) {
      const option = parseLimitOption(field);
      if (typeof option === 'string') throw new ApiKeyLoadError(`${where}: ${option}`);
      limits ??= {};
      limits[option.name] = option.value;
    } else if (tenant === undefined && limits === undefined) {
      const problem = tenantNameProblem(field);
      if (problem !== undefined) throw new ApiKeyLoadError(`${where}: ${problem}`);
      tenant = field;
    } else {
      throw new ApiKeyLoadError(`${where}: expected "<key>", "<key> <tenant>", then rpm=N or tpm=N`);
    }
  }
  return { digest: digest(key), tenant: tenant ?? tenantOfKey(key), limits, where };
}

/** Each tenant's limits, from its entries; two entries that disagree are an error. */
function limitsByTenant(entries: readonly KeyEntry[], defaults: RateLimits): Map<string, RateLimits> {
  const said = new Map<string, KeyEntry>();
  const limits = new Map<string, RateLimits>();
  for (const entry of entries) {
    if (entry.limits === undefined) continue;
    const earlier = said.get(entry.tenant);
    if (earlier !== undefined && JSON.stringify(earlier.limits) !== JSON.stringify(entry.limits)) {
      throw new ApiKeyLoadError(`${entry.where}: tenant ${entry.tenant} has other limits at ${earlier.where}; give them once`);
    }
    said.set(entry.tenant, entry);
    limits.set(entry.tenant, resolveLimits(defaults, entry.limits));
  }
  return limits;
}

function readKeyFile(path: string): KeyEntry[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw new ApiKeyLoadError(`cannot read the --api-keys file ${path} (${typeof code === 'string' ? code : 'error'})`);
  }
  const entries: KeyEntry[] = [];
  text.split(/\r?\n/).forEach((line, index) => {
    const trimmed = line.trim();
    if (trimmed.length === 0 || trimmed.startsWith('#')) return;
    entries.push(parseEntry(trimmed, `the --api-keys file ${path}, line ${index + 1}`));
  });
  // Never authentication silently off: a file without keys is an error, not "no keys".
  if (entries.length === 0) throw new ApiKeyLoadError(`the --api-keys file ${path} holds no key`);
  return entries;
}

export class ApiKeyGuard {
  readonly #source: ApiKeySource;
  readonly #defaultLimits: RateLimits;
  #entries: KeyEntry[] = [];
  #limits = new Map<string, RateLimits>();

  /** Throws ApiKeyLoadError when a key file cannot be read or an entry is malformed.
   * `defaultLimits` (--rate-limit-rpm/-tpm) apply where an entry sets none. */
  constructor(source: ApiKeySource, defaultLimits: RateLimits = NO_LIMITS) {
    this.#source = source;
    this.#defaultLimits = defaultLimits;
    this.#entries = this.#load();
    this.#limits = limitsByTenant(this.#entries, defaultLimits);
  }

  /** Tenants whose key entries set their own rate limits. */
  get tenantsWithOwnLimits(): number {
    return this.#limits.size;
  }

  /** A tenant's rate limits: its entry's, else the flags'. */
  limitsOf(tenant: string): RateLimits {
    return this.#limits.get(tenant) ?? this.#defaultLimits;
  }

  get enabled(): boolean {
    return this.#source.kind !== 'none';
  }

  /** How many keys are in force (for the log). */
  get size(): number {
    return this.#entries.length;
  }

  /** How many tenants those keys belong to (for the log). */
  get tenants(): number {
    return new Set(this.#entries.map((entry) => entry.tenant)).size;
  }

  #load(): KeyEntry[] {
    switch (this.#source.kind) {
      case 'none':
        return [];
      case 'list':
        return this.#source.keys.map((entry, index) => parseEntry(entry, `--api-keys entry ${index + 1}`));
      case 'file':
        return readKeyFile(this.#source.path);
    }
  }

  /** Re-reads a key file (SIGHUP). On failure the keys in force stay, and the error is thrown. */
  reload(): void {
    const entries = this.#load();
    this.#limits = limitsByTenant(entries, this.#defaultLimits);
    this.#entries = entries;
  }

  /**
   * Checks the request's Authorization header and returns the caller's tenant; throws the
   * 401 to send when it fails. Without keys every caller is the default tenant.
   */
  check(rawHeaders: readonly string[]): string {
    if (!this.enabled) return DEFAULT_TENANT;
    let authorization: string | undefined;
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i] as string;
      if (name.length === 13 && name.toLowerCase() === 'authorization') {
        authorization = rawHeaders[i + 1];
        break;
      }
    }
    const match = authorization === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match === null) {
      throw new GatewayError(
        'invalid_api_key',
        "You didn't provide an API key. Send it as an Authorization header: 'Authorization: Bearer YOUR_KEY'.",
      );
    }
    const candidate = digest(match[1] as string);
    let tenant: string | undefined;
    // Every entry is compared, whatever matched first: the time taken says nothing.
    for (const entry of this.#entries) {
      if (timingSafeEqual(candidate, entry.digest)) tenant ??= entry.tenant;
    }
    if (tenant === undefined) throw new GatewayError('invalid_api_key', 'Incorrect API key provided.');
    return tenant;
  }
}
