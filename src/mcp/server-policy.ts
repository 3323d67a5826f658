// Which MCP server a request's `{"type": "mcp"}` tool reaches, and with which headers:
// - a label the operator defined (--mcp-servers) reaches the operator's URL with the
//   operator's headers, which clients never see;
// - a `server_url` the client names must match --mcp-allow; its headers are the client's.
//   The operator's secret headers never go to a URL the client chose, whatever its label.
// - link-local and cloud-metadata addresses are refused unless a pattern names that host
//   exactly: `*` must not turn the gateway into a way to read instance credentials.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { GatewayError } from '../errors.ts';

/** One server of the --mcp-servers file. */
export interface OperatorServer {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly description: string | undefined;
  /** The approval setting used when the client's tool gives none. */
  readonly requireApproval: unknown;
  /** The tools offered when the client's tool gives no allowed_tools. */
  readonly allowedTools: unknown;
}

/** Where one MCP tool of a request goes. */
export interface McpTarget {
  readonly label: string;
  readonly url: URL;
  /** Sent to the server; never logged, stored or returned. */
  readonly headers: Readonly<Record<string, string>>;
  /** The operator's server (its defaults apply), or undefined for a client-named URL. */
  readonly operator: OperatorServer | undefined;
}

/** What a request's mcp tool says about its server (the rest is the tool's business). */
export interface McpServerRequest {
  readonly label: string;
  readonly url: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly authorization: string | undefined;
  /** Where in the request it was, for the 400's param (e.g. tools[2]). */
  readonly param: string;
}

const METADATA_HOSTS = new Set(['metadata.google.internal', 'metadata', 'metadata.azure.internal']);

function invalid(message: string, param: string): GatewayError {
  return new GatewayError('invalid_request', message, { param });
}

/** A pattern with `*` wildcards as an anchored regular expression. */
function patternRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`, 'i');
}

/** The host a pattern names without wildcards, if it does (https://169.254.169.254/*). */
function literalHost(pattern: string): string | undefined {
  const match = /^https?:\/\/([^/:*]+|\[[^\]]+\])(?::[0-9*]+)?(?:\/|$)/i.exec(pattern);
  return match?.[1]?.toLowerCase();
}

/** 169.254.0.0/16, fe80::/10 and IPv4-mapped forms of the first. */
export function isLinkLocal(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '').toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(bare);
  const v4 = mapped?.[1] ?? bare;
  if (isIP(v4) === 4) return v4.startsWith('169.254.');
  if (isIP(bare) === 6) return /^fe[89ab][0-9a-f]:/.test(bare);
  return false;
}

export class McpServerPolicy {
  readonly #servers: ReadonlyMap<string, OperatorServer>;
  readonly #allow: readonly RegExp[];
  readonly #allowAny: boolean;
  /** Hosts a pattern names exactly: reachable even when link-local. */
  readonly #namedHosts: ReadonlySet<string>;

  constructor(servers: ReadonlyMap<string, OperatorServer>, allow: readonly string[]) {
    this.#servers = servers;
    this.#allowAny = allow.includes('*');
    this.#allow = allow.filter((pattern) => pattern !== '*').map(patternRegExp);
    const named = new Set<string>();
    for (const pattern of allow) {
      const host = literalHost(pattern);
      if (host !== undefined) named.add(host);
    }
    this.#namedHosts = named;
  }

  /** The server a request's tool reaches; 400 when it may not reach any. */
  resolve(request: McpServerRequest): McpTarget {
    const operator = this.#servers.get(request.label);
    const clientHeaders: Record<string, string> = { ...request.headers };
    if (request.authorization !== undefined) clientHeaders['Authorization'] = `Bearer ${request.authorization}`;
    if (request.url === undefined) {
      if (operator === undefined) {
        throw invalid(
          `No MCP server is configured with server_label '${request.label.slice(0, 100)}': give a server_url, or ask the operator to add it to --mcp-servers.`,
          `${request.param}.server_url`,
        );
      }
      // The operator's headers win over the client's of the same name.
      return { label: request.label, url: new URL(operator.url), headers: { ...clientHeaders, ...operator.headers }, operator };
    }
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      throw invalid(`Invalid 'server_url': '${request.url.slice(0, 200)}' is not a URL.`, `${request.param}.server_url`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw invalid("Invalid 'server_url': only http and https MCP servers are supported.", `${request.param}.server_url`);
    }
    if (operator !== undefined && sameServer(url, operator.url)) {
      return { label: request.label, url, headers: { ...clientHeaders, ...operator.headers }, operator };
    }
    if (!this.#allowed(url)) {
      throw invalid(
        `The MCP server_url '${url.origin}${url.pathname}' is not allowed by this gateway (--mcp-allow).`,
        `${request.param}.server_url`,
      );
    }
    return { label: request.label, url, headers: clientHeaders, operator: undefined };
  }

  #allowed(url: URL): boolean {
    const href = url.href;
    if (this.#allow.some((pattern) => pattern.test(href) || pattern.test(href.replace(/\/$/, '')))) return true;
    if (!this.#allowAny) return false;
    const host = url.hostname.toLowerCase();
    return !METADATA_HOSTS.has(host) && !isLinkLocal(host);
  }

  /**
   * Checked when connecting: a name that resolves to a link-local address is refused (as
   * the literal address would be), unless a pattern names the host exactly.
   */
  async checkAddress(target: McpTarget): Promise<void> {
    if (target.operator !== undefined) return;
    const host = target.url.hostname.toLowerCase().replace(/^\[|\]$/g, '');
    if (this.#namedHosts.has(host) || this.#namedHosts.has(`[${host}]`) || isIP(host) !== 0) return;
    const addresses = await lookup(host, { all: true });
    if (addresses.some((entry) => isLinkLocal(entry.address))) {
      throw new Error(`${host} resolves to a link-local address, which --mcp-allow does not name`);
    }
  }
}

function sameServer(url: URL, operatorUrl: string): boolean {
  try {
    const other = new URL(operatorUrl);
    return url.origin === other.origin && url.pathname.replace(/\/$/, '') === other.pathname.replace(/\/$/, '');
  } catch {
    return false;
  }
}
