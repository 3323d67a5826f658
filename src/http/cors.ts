// CORS for browsers calling the gateway directly. The gateway owns CORS: vLLM's own
// Access-Control-* headers are dropped from relayed responses (see hop-by-hop.ts), so a
// browser never sees two conflicting sets. Credentials are never allowed.

const ALLOWED_METHODS = 'GET, POST, DELETE, OPTIONS';
const DEFAULT_ALLOWED_HEADERS = 'authorization, content-type, x-request-id, openai-organization, openai-project, openai-beta';
const EXPOSED_HEADERS = 'x-request-id';
const PREFLIGHT_MAX_AGE_S = '600';

export class CorsPolicy {
  readonly #anyOrigin: boolean;
  readonly #origins: ReadonlySet<string>;

  constructor(origins: readonly string[]) {
    this.#anyOrigin = origins.includes('*');
    this.#origins = new Set(origins.map((origin) => origin.replace(/\/+$/, '')));
  }

  #allowOrigin(origin: string): string | undefined {
    if (this.#anyOrigin) return '*';
    return this.#origins.has(origin) ? origin : undefined;
  }

  /** Headers for an actual (non-preflight) response, pushed onto `out`. */
  addResponseHeaders(origin: string | undefined, out: string[]): void {
    if (!this.#anyOrigin) out.push('vary', 'Origin');
    if (origin === undefined) return;
    const allowed = this.#allowOrigin(origin);
    if (allowed === undefined) return;
    out.push('access-control-allow-origin', allowed, 'access-control-expose-headers', EXPOSED_HEADERS);
  }

  /** Headers answering a preflight; an origin that is not allowed gets none (the browser then blocks). */
  preflightHeaders(origin: string, requestedHeaders: string | undefined): string[] {
    const out: string[] = ['vary', 'Origin, Access-Control-Request-Headers'];
    const allowed = this.#allowOrigin(origin);
    if (allowed === undefined) return out;
    out.push(
      'access-control-allow-origin',
      allowed,
      'access-control-allow-methods',
      ALLOWED_METHODS,
      'access-control-allow-headers',
      requestedHeaders !== undefined && requestedHeaders.length > 0 ? requestedHeaders : DEFAULT_ALLOWED_HEADERS,
      'access-control-max-age',
      PREFLIGHT_MAX_AGE_S,
    );
    return out;
  }
}
