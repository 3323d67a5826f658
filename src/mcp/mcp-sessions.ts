// Sessions with MCP servers, made with the official TypeScript SDK and kept for reuse:
// one per server URL and header set (a tool list or call of a later request reuses it),
// closed after --mcp-idle-timeout without use, and dropped when its transport fails so
// that the next use connects again. Streamable HTTP first; a server that refuses it is
// tried with the older HTTP+SSE transport.
//
// Every failure becomes an Error with a message a model and a person can read (refused,
// timed out, closed mid-call, not an MCP server); header values never appear in it.
import { createHash } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { LogSource } from '../observability/logger.ts';
import type { McpServerPolicy, McpTarget } from './server-policy.ts';
import { undiciFetcher } from './undici-fetch.ts';

/** A tool as the server lists it (OpenAI's mcp_list_tools shape). */
export interface McpToolInfo {
  readonly name: string;
  readonly description: string | null;
  readonly input_schema: unknown;
  readonly annotations: unknown;
}

export type ToolOutcome = { readonly ok: true; readonly output: string } | { readonly ok: false; readonly error: string };

export interface McpSessionOptions {
  readonly policy: McpServerPolicy;
  readonly callTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxOutputBytes: number;
  readonly clientVersion: string;
  readonly log: LogSource;
}

interface Session {
  readonly ready: Promise<Client>;
  inFlight: number;
  lastUsed: number;
  closed: boolean;
}

/** Most pages of tools read from one server (a server that pages for ever is cut). */
const MAX_TOOL_PAGES = 20;

/** Text of a tool's result: text parts as they are, other parts as JSON. */
function resultText(result: Record<string, unknown>): string {
  const content = Array.isArray(result['content']) ? (result['content'] as unknown[]) : [];
  if (content.length === 0 && result['structuredContent'] !== undefined) return JSON.stringify(result['structuredContent']);
  return content
    .map((part) => {
      if (typeof part === 'object' && part !== null && (part as { type?: unknown }).type === 'text') {
        const text = (part as { text?: unknown }).text;
        return typeof text === 'string' ? text : '';
      }
      return JSON.stringify(part);
    })
    .join('\n');
}

/** `text` cut to `maxBytes` of UTF-8 (never inside a character), with a line saying so. */
export function truncateOutput(text: string, maxBytes: number): string {
  const total = Buffer.byteLength(text);
  if (total <= maxBytes) return text;
  let kept = Buffer.from(text).subarray(0, maxBytes).toString('utf8');
  if (kept.endsWith('\uFFFD')) kept = kept.slice(0, -1);
  return `${kept}\n[output truncated by the gateway: ${Buffer.byteLength(kept)} of ${total} bytes shown]`;
}

/** The SDK's request timeout (JSON-RPC code -32001). */
function isTimeout(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === -32001;
}

function describe(error: unknown, target: McpTarget, timeoutMs: number, abandoned: boolean): string {
  const where = `MCP server '${target.label}' (${target.url.origin})`;
  // The SDK reports an abort with the timeout's code: the signal says which it was.
  if (abandoned) return `The call to ${where} was abandoned (the response was cancelled or its client left).`;
  const err = error as { code?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } } | undefined;
  const code = err?.cause?.code ?? err?.code;
  const message = typeof err?.message === 'string' ? err.message : String(error);
  if (code === 'ECONNREFUSED') return `${where} refused the connection.`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `${where}: its host name does not resolve.`;
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return `${where} closed the connection.`;
  if (isTimeout(error) || /timed out|timeout/i.test(message)) return `${where} did not answer within ${timeoutMs / 1000} s.`;
  return `${where}: ${message.slice(0, 500)}`;
}

export class McpSessions {
  readonly #options: McpSessionOptions;
  readonly #sessions = new Map<string, Session>();
  readonly #sweeper: NodeJS.Timeout;
  readonly #fetcher = undiciFetcher();

  constructor(options: McpSessionOptions) {
    this.#options = options;
    this.#sweeper = setInterval(() => this.#closeIdle(), Math.min(30_000, Math.max(1_000, options.idleTimeoutMs / 2)));
    this.#sweeper.unref();
  }

  /** Every tool the server offers (all pages). */
  async listTools(target: McpTarget, signal: AbortSignal): Promise<McpToolInfo[]> {
    return this.#use(target, signal, async (client) => {
      const tools: McpToolInfo[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < MAX_TOOL_PAGES; page++) {
        const result = await client.listTools(cursor === undefined ? undefined : { cursor }, this.#requestOptions(signal));
        for (const tool of result.tools) {
          tools.push({
            name: tool.name,
            description: tool.description ?? null,
            input_schema: tool.inputSchema,
            annotations: tool.annotations ?? null,
          });
        }
        cursor = result.nextCursor;
        if (cursor === undefined) break;
      }
      return tools;
    });
  }

  /** Runs one tool; a tool's own error (isError) is a failed outcome, as is any failure to reach it. */
  async callTool(target: McpTarget, name: string, args: Record<string, unknown>, signal: AbortSignal): Promise<ToolOutcome> {
    try {
      return await this.#use(target, signal, async (client) => {
        const result: Record<string, unknown> = await client.callTool({ name, arguments: args }, undefined, this.#requestOptions(signal));
        // A server of the 2024-10-07 protocol answers { toolResult } instead of content.
        const text = truncateOutput('toolResult' in result ? JSON.stringify(result['toolResult']) : resultText(result), this.#options.maxOutputBytes);
        return result['isError'] === true ? { ok: false, error: text || `The tool '${name}' failed.` } : { ok: true, output: text };
      });
    } catch (error) {
      return { ok: false, error: error instanceof Error ? error.message : String(error) };
    }
  }

  #requestOptions(signal: AbortSignal): { signal: AbortSignal; timeout: number; maxTotalTimeout: number } {
    return { signal, timeout: this.#options.callTimeoutMs, maxTotalTimeout: this.#options.callTimeoutMs };
  }

  /** Runs `work` on the target's session (connecting it if needed); a failure that is the
   * transport's ends the session, and every failure is rethrown described. */
  async #use<T>(target: McpTarget, signal: AbortSignal, work: (client: Client) => Promise<T>): Promise<T> {
    const key = sessionKey(target);
    let session = this.#sessions.get(key);
    if (session === undefined || session.closed) {
      session = { ready: this.#connect(target, signal), inFlight: 0, lastUsed: Date.now(), closed: false };
      this.#sessions.set(key, session);
    }
    session.inFlight += 1;
    try {
      const client = await session.ready;
      return await work(client);
    } catch (error) {
      // A call given up (its response cancelled, or too slow) leaves the session working,
      // and the SDK is telling the server to stop (notifications/cancelled): closing now
      // would cut that message off. Anything else (refused, reset, not MCP) may have left
      // the session broken: the next use starts afresh.
      if (!signal.aborted && !isTimeout(error)) this.#drop(key, session);
      throw new Error(describe(error, target, this.#options.callTimeoutMs, signal.aborted), { cause: error });
    } finally {
      session.inFlight -= 1;
      session.lastUsed = Date.now();
    }
  }

  async #connect(target: McpTarget, signal: AbortSignal): Promise<Client> {
    await this.#options.policy.checkAddress(target);
    const requestInit: RequestInit = { headers: { ...target.headers } };
    const fetch = this.#fetcher.fetch;
    const options = this.#requestOptions(signal);
    const client = this.#newClient();
    try {
      await client.connect(new StreamableHTTPClientTransport(target.url, { requestInit, fetch }), options);
      return client;
    } catch (streamableError) {
      void client.close().catch(() => undefined);
      if (signal.aborted) throw streamableError;
      // Servers of the 2024-11-05 protocol speak only HTTP+SSE (a GET opens the stream).
      const fallback = this.#newClient();
      try {
        await fallback.connect(new SSEClientTransport(target.url, { requestInit, fetch }), options);
        this.#options.log().debug({ server_label: target.label }, 'MCP server reached over the older HTTP+SSE transport');
        return fallback;
      } catch {
        void fallback.close().catch(() => undefined);
        throw streamableError;
      }
    }
  }

  #newClient(): Client {
    return new Client({ name: 'responses-gateway', version: this.#options.clientVersion }, { capabilities: {} });
  }

  #drop(key: string, session: Session): void {
    if (session.closed) return;
    session.closed = true;
    if (this.#sessions.get(key) === session) this.#sessions.delete(key);
    session.ready.then((client) => client.close()).catch(() => undefined);
  }

  #closeIdle(): void {
    const before = Date.now() - this.#options.idleTimeoutMs;
    for (const [key, session] of this.#sessions) {
      if (session.inFlight === 0 && session.lastUsed < before) this.#drop(key, session);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    const sessions = [...this.#sessions];
    this.#sessions.clear();
    await Promise.all(
      sessions.map(async ([, session]) => {
        session.closed = true;
        try {
          await (await session.ready).close();
        } catch {
          // Never connected, or already gone.
        }
      }),
    );
    await this.#fetcher.close();
  }
}

/** One session per URL and header set; the headers are hashed, never kept as a key. */
function sessionKey(target: McpTarget): string {
  const headers = Object.entries(target.headers)
    .map(([name, value]) => [name.toLowerCase(), value])
    .sort(([a], [b]) => ((a as string) < (b as string) ? -1 : 1));
  return `${target.url.href}\n${createHash('sha256').update(JSON.stringify(headers)).digest('hex')}`;
}
