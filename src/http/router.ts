// A small router: exact paths by map lookup (the hot path is one Map.get), patterns with
// `:param` segments by a short scan. Enough for a gateway with a dozen routes.

export type Params = readonly string[];

export interface RouteMatch<H> {
  readonly handler: H;
  readonly label: string;
  readonly params: Params;
}

export type RouteLookup<H> =
  | { readonly kind: 'match'; readonly match: RouteMatch<H> }
  | { readonly kind: 'method-not-allowed'; readonly allow: readonly string[] }
  | { readonly kind: 'none' };

interface PatternRoute<H> {
  readonly method: string;
  readonly segments: readonly (string | null)[];
  readonly label: string;
  readonly handler: H;
}

const NO_PARAMS: Params = Object.freeze([]);

export class Router<H> {
  readonly #exact = new Map<string, RouteMatch<H>>();
  readonly #exactMethods = new Map<string, string[]>();
  readonly #patterns: PatternRoute<H>[] = [];

  add(method: string, path: string, handler: H): this {
    if (!path.includes(':')) {
      this.#exact.set(`${method} ${path}`, { handler, label: path, params: NO_PARAMS });
      const methods = this.#exactMethods.get(path) ?? [];
      methods.push(method);
      this.#exactMethods.set(path, methods);
      return this;
    }
    const segments = path
      .split('/')
      .slice(1)
      .map((segment) => (segment.startsWith(':') ? null : segment));
    this.#patterns.push({ method, segments, label: path, handler });
    return this;
  }

  find(method: string, pathname: string): RouteLookup<H> {
    const exact = this.#exact.get(`${method} ${pathname}`);
    if (exact !== undefined) return { kind: 'match', match: exact };
    const exactMethods = this.#exactMethods.get(pathname);
    if (exactMethods !== undefined) return { kind: 'method-not-allowed', allow: exactMethods };
    if (this.#patterns.length === 0) return { kind: 'none' };

    const parts = pathname.split('/').slice(1);
    const allow: string[] = [];
    for (const route of this.#patterns) {
      const params = matchSegments(route.segments, parts);
      if (params === undefined) continue;
      if (route.method === method) {
        return { kind: 'match', match: { handler: route.handler, label: route.label, params } };
      }
      allow.push(route.method);
    }
    return allow.length > 0 ? { kind: 'method-not-allowed', allow } : { kind: 'none' };
  }
}

function matchSegments(segments: readonly (string | null)[], parts: readonly string[]): string[] | undefined {
  if (segments.length !== parts.length) return undefined;
  const params: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    const expected = segments[i];
    const actual = parts[i] as string;
    if (expected === null) {
      if (actual.length === 0) return undefined;
      let decoded: string;
      try {
        decoded = decodeURIComponent(actual);
      } catch {
        return undefined;
      }
      params.push(decoded);
    } else if (expected !== actual) {
      return undefined;
    }
  }
  return params;
}
