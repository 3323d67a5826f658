// What the MCP SDK's client costs per request with the fetch the gateway gives it
// (src/mcp/undici-fetch.ts: undici's request() on a keep-alive Agent) and with Node's
// global fetch: client CPU per listTools and per callTool against the MCP server of
// sim/mcp-server.ts (its own process), alternating rounds, the first round a warm-up.
//
//   npm run bench:mcp-client [-- --rounds 7 --requests 300]
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { undiciFetcher } from '../src/mcp/undici-fetch.ts';
import { toolArgs } from './args.ts';
import { startProcess } from './processes.ts';
import { median } from './stats.ts';

const args = toolArgs();
const ROUNDS = Number(args.option('rounds') ?? 7);
const REQUESTS = Number(args.option('requests') ?? 300);
const dir = mkdtempSync(join(tmpdir(), 'rg-bench-mcp-'));
const server = await startProcess(['sim/mcp-server.ts'], '--port', dir);
const fetcher = undiciFetcher();

const clients = new Map<string, Client>();
for (const name of ['global fetch', 'undici (the gateway)']) {
  const client = new Client({ name: 'bench', version: '1' }, { capabilities: {} });
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), name.startsWith('undici') ? { fetch: fetcher.fetch } : {});
  await client.connect(transport);
  clients.set(name, client);
}
const results = new Map<string, number[]>();
for (let round = 0; round <= ROUNDS; round++) {
  const names = [...clients.keys()];
  for (const name of round % 2 === 0 ? names : names.reverse()) {
    const client = clients.get(name) as Client;
    for (const what of ['listTools', 'callTool']) {
      const before = process.cpuUsage();
      for (let i = 0; i < REQUESTS; i++) {
        if (what === 'listTools') await client.listTools();
        else await client.callTool({ name: 'add', arguments: { a: 1, b: 2 } });
      }
      const used = process.cpuUsage(before);
      // Round 0 warms both up.
      if (round > 0) results.set(`${name}|${what}`, [...(results.get(`${name}|${what}`) ?? []), (used.user + used.system) / REQUESTS]);
    }
  }
}
for (const client of clients.values()) await client.close();
await fetcher.close();
const spread = (values: readonly number[]): string => `${Math.round(median(values))} (${Math.round(Math.min(...values))}–${Math.round(Math.max(...values))})`;
console.log(`Node ${process.version}; ${ROUNDS} rounds of ${REQUESTS} requests (after a warm-up round); client CPU µs per request, median (min–max)`);
console.log('| client fetch | listTools | callTool |');
console.log('| --- | ---: | ---: |');
for (const name of clients.keys()) console.log(`| ${name} | ${spread(results.get(`${name}|listTools`) ?? [])} | ${spread(results.get(`${name}|callTool`) ?? [])} |`);
process.exit(0);
