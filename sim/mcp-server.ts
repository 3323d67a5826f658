// A real MCP server for the tests, the benchmark and trying the gateway's tools, built with
// the official TypeScript SDK and served on loopback: Streamable HTTP (sessions, as most
// servers run it) or the older HTTP+SSE transport. Its tools: typed arguments (add,
// echo), read-only annotations, a slow tool, a failing tool, a tool with a huge result.
// Run as a command (`node --import tsx sim/mcp-server.ts [--port N] [--sse]`) it prints
// its URL, then `call <tool>` as each call begins, and serves until killed (a test kills
// it in the middle of a call: a server that dies for real); GET /health answers 200.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

export interface ToolCallRecord {
  readonly name: string;
  readonly args: Record<string, unknown>;
  readonly headers: IncomingMessage['headers'];
}

export interface TestMcpServer {
  /** The URL clients name (Streamable HTTP: /mcp; SSE: /sse). */
  readonly url: string;
  readonly calls: ToolCallRecord[];
  /** tools/list requests received. */
  readonly listings: number;
  /** initialize requests received: one per session a client opened. */
  readonly initializations: number;
  /** Headers of every HTTP request received. */
  readonly requestHeaders: IncomingMessage['headers'][];
  /** Resolves when `slow` has been called this many times (a call is in progress). */
  slowCalls(count: number): Promise<void>;
  /** Ends every slow call in progress. */
  releaseSlow(): void;
  /** Resolves when this many calls were cancelled by their client (MCP's notifications/cancelled). */
  cancelledCalls(count: number): Promise<void>;
  /** Calls cancelled so far. */
  readonly cancelled: number;
  close(): Promise<void>;
}

/** Above any timeout the tests set; `slow` waits for releaseSlow() or this. */
const SLOW_MAX_MS = 30_000;

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString();
      try {
        resolve(text.length === 0 ? undefined : JSON.parse(text));
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
    req.on('error', reject);
  });
}

export async function startMcpServer(
  options: { transport?: 'streamable' | 'sse'; port?: number; onCall?: (name: string) => void } = {},
): Promise<TestMcpServer> {
  const transport = options.transport ?? 'streamable';
  const calls: ToolCallRecord[] = [];
  const requestHeaders: IncomingMessage['headers'][] = [];
  let listings = 0;
  let initializations = 0;
  const slowWaiters: Array<{ count: number; resolve: () => void }> = [];
  const slowReleases = new Set<() => void>();
  let slowCount = 0;
  let cancelledCount = 0;
  const cancelWaiters: Array<{ count: number; resolve: () => void }> = [];
  const noteCancelled = (): void => {
    cancelledCount += 1;
    for (const waiter of cancelWaiters.splice(0)) {
      if (cancelledCount >= waiter.count) waiter.resolve();
      else cancelWaiters.push(waiter);
    }
  };
  let currentHeaders: IncomingMessage['headers'] = {};

  const build = (): McpServer => {
    const server = new McpServer({ name: 'test-tools', version: '1.0.0' });
    const record = (name: string, args: Record<string, unknown>): void => {
      calls.push({ name, args, headers: currentHeaders });
      options.onCall?.(name);
    };
    server.registerTool(
      'add',
      { description: 'Adds two numbers.', inputSchema: { a: z.number(), b: z.number() }, annotations: { readOnlyHint: true } },
      ({ a, b }) => {
        record('add', { a, b });
        return { content: [{ type: 'text', text: String(a + b) }] };
      },
    );
    server.registerTool(
      'echo',
      { description: 'Says the text back.', inputSchema: { text: z.string() }, annotations: { readOnlyHint: true } },
      ({ text }) => {
        record('echo', { text });
        return { content: [{ type: 'text', text: `echo: ${text}` }] };
      },
    );
    server.registerTool('delete_everything', { description: 'Deletes everything (it does not).', inputSchema: { really: z.boolean() } }, ({ really }) => {
      record('delete_everything', { really });
      return { content: [{ type: 'text', text: 'deleted nothing' }] };
    });
    server.registerTool('slow', { description: 'Waits a long time.', inputSchema: { seconds: z.number() } }, async ({ seconds }, extra) => {
      record('slow', { seconds });
      slowCount += 1;
      for (const waiter of slowWaiters.splice(0)) {
        if (slowCount >= waiter.count) waiter.resolve();
        else slowWaiters.push(waiter);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, SLOW_MAX_MS);
        function done(): void {
          clearTimeout(timer);
          slowReleases.delete(done);
          resolve();
        }
        slowReleases.add(done);
        // The client gave up on the call (it cancelled, or its response was cancelled).
        extra.signal.addEventListener('abort', () => {
          noteCancelled();
          done();
        });
      });
      return { content: [{ type: 'text', text: 'slow done' }] };
    });
    server.registerTool('fail', { description: 'Always fails.', inputSchema: { why: z.string() } }, ({ why }) => {
      record('fail', { why });
      return { isError: true, content: [{ type: 'text', text: `the tool failed on purpose: ${why.slice(0, 20)}` }] };
    });
    server.registerTool('huge', { description: 'Returns a large text.', inputSchema: { kib: z.number() } }, ({ kib }) => {
      record('huge', { kib });
      return { content: [{ type: 'text', text: 'x'.repeat(Math.min(kib, 4096) * 1024) }] };
    });
    return server;
  };

  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const sseSessions = new Map<string, SSEServerTransport>();

  const countListing = (body: unknown): void => {
    const messages = Array.isArray(body) ? body : [body];
    for (const message of messages) {
      const method = (message as { method?: unknown } | undefined)?.method;
      if (method === 'tools/list') listings += 1;
      if (method === 'initialize') initializations += 1;
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    requestHeaders.push(req.headers);
    currentHeaders = req.headers;
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'GET' && url.pathname === '/health') {
      res.writeHead(200, { 'content-length': 0 }).end();
      return;
    }
    if (transport === 'sse') {
      if (req.method === 'GET' && url.pathname === '/sse') {
        const sse = new SSEServerTransport('/messages', res);
        sseSessions.set(sse.sessionId, sse);
        res.on('close', () => sseSessions.delete(sse.sessionId));
        await build().connect(sse);
        return;
      }
      if (req.method === 'POST' && url.pathname === '/messages') {
        const sse = sseSessions.get(url.searchParams.get('sessionId') ?? '');
        if (sse === undefined) {
          res.writeHead(404).end();
          return;
        }
        const body = await readJson(req);
        countListing(body);
        await sse.handlePostMessage(req, res, body);
        return;
      }
      // A Streamable HTTP POST to an SSE-only server: refused, as such servers do.
      res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    if (url.pathname !== '/mcp') {
      res.writeHead(404).end();
      return;
    }
    const sessionId = req.headers['mcp-session-id'];
    const body = req.method === 'POST' ? await readJson(req) : undefined;
    countListing(body);
    let session = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
    if (session === undefined) {
      if (req.method !== 'POST' || !isInitializeRequest(body)) {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: 'No session' }, id: null }));
        return;
      }
      const created: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id: string): void => {
          sessions.set(id, created);
        },
      });
      created.onclose = () => {
        if (created.sessionId !== undefined) sessions.delete(created.sessionId);
      };
      await build().connect(created);
      session = created;
    }
    await session.handleRequest(req, res, body);
  };

  const http: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(error));
    });
  });
  await new Promise<void>((resolve) => http.listen(options.port ?? 0, '127.0.0.1', resolve));
  const port = (http.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/${transport === 'sse' ? 'sse' : 'mcp'}`,
    calls,
    get listings() {
      return listings;
    },
    get initializations() {
      return initializations;
    },
    requestHeaders,
    slowCalls(count) {
      if (slowCount >= count) return Promise.resolve();
      return new Promise((resolve) => slowWaiters.push({ count, resolve }));
    },
    releaseSlow() {
      for (const release of [...slowReleases]) release();
    },
    get cancelled() {
      return cancelledCount;
    },
    cancelledCalls(count) {
      if (cancelledCount >= count) return Promise.resolve();
      return new Promise((resolve) => cancelWaiters.push({ count, resolve }));
    },
    async close() {
      for (const release of [...slowReleases]) release();
      for (const session of sessions.values()) await session.close().catch(() => undefined);
      for (const sse of sseSessions.values()) await sse.close().catch(() => undefined);
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

// As a command: serve until killed; print the URL on the first line, then `call <tool>`
// as each call begins (so that a test can kill it in the middle of one).
if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const args = process.argv.slice(2);
  const portAt = args.indexOf('--port');
  const server = await startMcpServer({
    transport: args.includes('--sse') ? 'sse' : 'streamable',
    port: portAt === -1 ? 0 : Number(args[portAt + 1]),
    onCall: (name) => process.stdout.write(`call ${name}\n`),
  });
  process.stdout.write(`${server.url}\n`);
}
