// Header filtering for a proxy, on Node's flat raw-header arrays ([name, value, name,
// value, ...]) so that repeated headers stay repeated and in order, and names keep their
// case. RFC 9110 §7.6.1: hop-by-hop fields, and every field named in Connection, belong to
// one connection and are not forwarded.

/** Hop-by-hop fields of RFC 9110 §7.6.1, plus the non-standard Proxy-Connection. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Also dropped from requests: undici sets Host and recomputes Content-Length; Expect
 * (100-continue) was already answered by the gateway's own server. */
const REQUEST_ONLY_DROPS = new Set(['host', 'content-length', 'expect']);

/** Dropped from responses: the gateway owns CORS and the request id on its side. */
const RESPONSE_ONLY_DROPS = new Set(['x-request-id']);

/** Whether a request header of this lowercase name is never forwarded: hop-by-hop, or
 * one undici sets itself (a proxy's whole list but the fields named in Connection). */
export function isDroppedFromRequest(lowerName: string): boolean {
  return HOP_BY_HOP.has(lowerName) || REQUEST_ONLY_DROPS.has(lowerName);
}

function connectionNamedFields(raw: readonly string[]): Set<string> | undefined {
  let named: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if ((raw[i] as string).length === 10 && (raw[i] as string).toLowerCase() === 'connection') {
      const value = raw[i + 1] as string;
      // Nearly every Connection header (vLLM's on each answer) says only this: it names
      // no field that is not dropped anyway.
      if (value === 'keep-alive' || value === 'close') continue;
      named ??= new Set();
      for (const token of value.split(',')) {
        const name = token.trim().toLowerCase();
        if (name.length > 0) named.add(name);
      }
    }
  }
  return named;
}

export interface RequestHeaderOptions {
  /** Bearer key to inject when the client sent no Authorization. */
  readonly apiKey: string | undefined;
  /** The request id to send upstream (the client's, or one the gateway made). */
  readonly requestId: string;
  /** Whether the client's x-request-id header is to be replaced (it was not usable). */
  readonly replaceRequestId: boolean;
  /** Extra lowercase names to drop (e.g. accept-encoding where the gateway reads the body). */
  readonly drop?: ReadonlySet<string> | undefined;
  /** Drop the client's Authorization and send the upstream key instead (gateway keys on). */
  readonly replaceAuthorization?: boolean;
}

/**
 * The headers to send to vLLM: the client's, minus hop-by-hop and connection-scoped
 * fields, plus the upstream key when the client sent no Authorization of its own.
 */
export function filterRequestHeaders(raw: readonly string[], options: RequestHeaderOptions): string[] {
  const named = connectionNamedFields(raw);
  const out: string[] = [];
  let hasAuthorization = false;
  let hasRequestId = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (isDroppedFromRequest(lower)) continue;
    if (named?.has(lower) === true || options.drop?.has(lower) === true) continue;
    if (lower === 'authorization') {
      if (options.replaceAuthorization === true) continue;
      hasAuthorization = true;
    }
    else if (lower === 'x-request-id') {
      if (options.replaceRequestId || hasRequestId) continue;
      hasRequestId = true;
    }
    out.push(name, raw[i + 1] as string);
  }
  if (!hasAuthorization && options.apiKey !== undefined) {
    out.push('authorization', `Bearer ${options.apiKey}`);
  }
  if (!hasRequestId) out.push('x-request-id', options.requestId);
  return out;
}

/**
 * The headers to send to the client from vLLM's raw response headers: minus hop-by-hop,
 * connection-scoped, CORS (the gateway sets its own) and x-request-id (likewise), and
 * minus Content-Length when the gateway changes the body.
 */
export function filterResponseHeaders(
  raw: readonly (Buffer | string)[],
  keepContentLength: boolean,
): string[] {
  const strings = raw.map((part) => (typeof part === 'string' ? part : part.toString('latin1')));
  const named = connectionNamedFields(strings);
  const out: string[] = [];
  for (let i = 0; i < strings.length; i += 2) {
    const name = strings[i] as string;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || RESPONSE_ONLY_DROPS.has(lower)) continue;
    if (named?.has(lower) === true) continue;
    if (lower.startsWith('access-control-')) continue;
    if (!keepContentLength && lower === 'content-length') continue;
    out.push(name, strings[i + 1] as string);
  }
  return out;
}

/** The value of the first header with this lowercase name in a flat raw array. */
export function findHeader(raw: readonly (Buffer | string)[], lowerName: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as Buffer | string;
    if (name.length !== lowerName.length) continue;
    const text = typeof name === 'string' ? name : name.toString('latin1');
    if (text.toLowerCase() === lowerName) {
      const value = raw[i + 1] as Buffer | string;
      return typeof value === 'string' ? value : value.toString('latin1');
    }
  }
  return undefined;
}
