// The request target, normalized before anything routes on it: the gateway must route a
// path the way vLLM will read it, or a client could spell a path so that the gateway
// forwards it while vLLM (Starlette, which percent-decodes) serves its own stateful
// endpoints (/v1/responses..., /v1/conversations...) around the gateway's tenants and store.
//
// Normalization (RFC 3986 §6.2.2, RFC 9112 §3.2):
// - absolute-form (`GET http://host/v1/models`) becomes its path;
// - percent-encoded unreserved characters are decoded (`%72` is `r`);
// - runs of slashes become one (as nginx's merge_slashes);
// - dot segments are removed (`/v1/x/../responses` is `/v1/responses`).
// Encoded characters that would change the path's structure once a server decodes them
// (`%2F`, `%5C`, `%00`) and broken encodings are refused: no spelling of a path reaches
// vLLM as a different path than the one the gateway routed.

export type RequestTarget =
  | { readonly ok: true; readonly pathname: string; /** '' or '?...' */ readonly search: string }
  | { readonly ok: false; readonly reason: string };

const UNRESERVED = /[A-Za-z0-9\-._~]/;
const REFUSED_ENCODINGS = new Set(['2f', '5c', '00']);

/** Quick test for the common case: nothing to normalize (no %, no //, no dot segment). */
function isPlain(path: string): boolean {
  return !path.includes('%') && !path.includes('//') && !path.includes('/.') && path.startsWith('/');
}

function decodeUnreserved(path: string): string | undefined {
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const char = path[i] as string;
    if (char !== '%') {
      out += char;
      continue;
    }
    const hex = path.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined;
    if (REFUSED_ENCODINGS.has(hex.toLowerCase())) return undefined;
    const decoded = String.fromCharCode(parseInt(hex, 16));
    // Reserved and other characters stay encoded (uppercase, their normal form).
    out += UNRESERVED.test(decoded) ? decoded : `%${hex.toUpperCase()}`;
    i += 2;
  }
  return out;
}

/** RFC 3986 §5.2.4, on a path whose slashes are already single. */
function removeDotSegments(path: string): string {
  const segments = path.split('/').slice(1);
  const out: string[] = [];
  segments.forEach((segment, index) => {
    const last = index === segments.length - 1;
    if (segment === '.' || segment === '..') {
      if (segment === '..') out.pop();
      if (last) out.push('');
      return;
    }
    out.push(segment);
  });
  return `/${out.join('/')}`;
}

export function normalizeTarget(rawUrl: string): RequestTarget {
  let target = rawUrl;
  // absolute-form: the path is what follows the authority.
  if (!target.startsWith('/')) {
    const match = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(target);
    if (match === null) return { ok: false, reason: 'The request target is not a path.' };
    target = target.slice(match[0].length);
    if (!target.startsWith('/')) target = `/${target}`;
  }
  const query = target.indexOf('?');
  const path = query === -1 ? target : target.slice(0, query);
  const search = query === -1 ? '' : target.slice(query);
  if (isPlain(path)) return { ok: true, pathname: path, search };
  const decoded = decodeUnreserved(path);
  if (decoded === undefined) {
    return { ok: false, reason: 'The request path holds an encoded slash, backslash or NUL, or a broken percent-encoding.' };
  }
  return { ok: true, pathname: removeDotSegments(decoded.replace(/\/{2,}/g, '/')), search };
}
