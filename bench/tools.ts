// What one MCP tool round trip costs the gateway, besides the tool's own time. Three kinds
// of request, sent one at a time (c=1) in alternating rounds to the compiled gateway in
// front of the simulated vLLM and a real MCP server (sim/mcp-server.ts, the official SDK),
// each in its own process:
//
//   plain   no tools                               one vLLM call
//   listed  an MCP tool the model does not call    the tools listed, one vLLM call
//   called  an MCP tool the model calls once       the tools listed, `add` called, two vLLM calls
//
// and, measured in the same rounds, the two things a round trip is made of that are not
// the gateway's: one vLLM call made directly to the simulated vLLM, and one `add` call made
// by a bare SDK client over a kept session (the MCP server's time, the tool's included).
// Reported: medians over rounds (min–max) of each kind's p50 latency and of the gateway's
// CPU per request; the round trip (called − listed), and what is left of it once the
// direct vLLM call and the bare MCP call are taken out: the gateway's own part.
//
//   npm run build && npm run bench:tools [-- --rounds 7 --requests 100]
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { request } from 'undici';
import { toolArgs } from './args.ts';
import { cpuNs } from './proc.ts';
import { startBenchGateway, startProcess } from './processes.ts';
import { median } from './stats.ts';

const args = toolArgs();
const ROUNDS = Number(args.option('rounds') ?? 7);
const REQUESTS = Number(args.option('requests') ?? 100);
const dir = mkdtempSync(join(tmpdir(), 'rg-bench-tools-'));

const sim = await startProcess(['sim/cli.ts', '--no-record', '--coalesce'], '--port', dir);
const mcp = await startProcess(['sim/mcp-server.ts'], '--port', dir);
const gateway = await startBenchGateway(sim.url, dir, ['--db-url', 'sqlite::memory:', '--log-level', 'warn', '--access-log', 'off']);
const mcpUrl = `${mcp.url}/mcp`;
const tool = { type: 'mcp', server_label: 'calc', server_url: mcpUrl, require_approval: 'never', allowed_tools: ['add', 'echo'] };

const bodies = {
  plain: JSON.stringify({ model: 'm', input: 'add 2 and 3', store: false }),
  listed: JSON.stringify({ model: 'm', input: 'say hello', store: false, tools: [tool] }),
  called: JSON.stringify({ model: 'm', input: 'add 2 and 3', store: false, tools: [tool] }),
};
type Kind = keyof typeof bodies | 'vllm' | 'mcp';

async function post(url: string, body: string): Promise<string> {
  const res = await request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${text.slice(0, 300)}`);
  return text;
}

const bare = new Client({ name: 'bench', version: '1' }, { capabilities: {} });
await bare.connect(new StreamableHTTPClientTransport(new URL(mcpUrl)));

/** One request of a kind; its latency in µs. */
async function once(kind: Kind): Promise<number> {
  const started = performance.now();
  if (kind === 'vllm') await post(`${sim.url}/v1/responses`, bodies.plain);
  else if (kind === 'mcp') await bare.callTool({ name: 'add', arguments: { a: 2, b: 3 } });
  else {
    const text = await post(`${gateway.url}/v1/responses`, bodies[kind]);
    if (kind === 'called' && !text.includes('"output":"5"')) throw new Error(`the tool was not called: ${text.slice(0, 300)}`);
  }
  return (performance.now() - started) * 1000;
}

const KINDS: Kind[] = ['plain', 'listed', 'called', 'vllm', 'mcp'];
const p50s = new Map<Kind, number[]>(KINDS.map((kind) => [kind, []]));
const cpus = new Map<Kind, number[]>(KINDS.map((kind) => [kind, []]));
// Warm-up: connections, JIT, the gateway's session with the MCP server.
for (const kind of KINDS) for (let i = 0; i < 20; i++) await once(kind);
for (let round = 0; round < ROUNDS; round++) {
  // The order turns every round, so that no kind always follows the same one.
  const order = KINDS.map((_, i) => KINDS[(i + round) % KINDS.length] as Kind);
  for (const kind of order) {
    const latencies: number[] = [];
    const cpuBefore = cpuNs(gateway.pid);
    for (let i = 0; i < REQUESTS; i++) latencies.push(await once(kind));
    (cpus.get(kind) as number[]).push((cpuNs(gateway.pid) - cpuBefore) / 1000 / REQUESTS);
    (p50s.get(kind) as number[]).push(median(latencies));
  }
}
await bare.close();

const spread = (values: readonly number[]): string => `${Math.round(median(values))} (${Math.round(Math.min(...values))}–${Math.round(Math.max(...values))})`;
console.log(`Node ${process.version}; ${ROUNDS} rounds of ${REQUESTS} requests per kind, c=1; µs, median over rounds (min–max)`);
console.log('| request | p50 latency | gateway CPU per request |');
console.log('| --- | ---: | ---: |');
const labels: Record<Kind, string> = {
  plain: 'plain: no tools',
  listed: 'listed: MCP tool listed, not called',
  called: 'called: MCP tool listed and called once',
  vllm: 'one vLLM call, direct (no gateway)',
  mcp: 'one MCP call, bare SDK client (no gateway)',
};
for (const kind of KINDS) {
  const cpu = kind === 'vllm' || kind === 'mcp' ? '–' : spread(cpus.get(kind) as number[]);
  console.log(`| ${labels[kind]} | ${spread(p50s.get(kind) as number[])} | ${cpu} |`);
}
// Per round, so that the differences come from the same conditions.
const perRound = (f: (round: number) => number): number[] => Array.from({ length: ROUNDS }, (_, round) => f(round));
const at = (kind: Kind, round: number): number => (p50s.get(kind) as number[])[round] as number;
const cpuAt = (kind: Kind, round: number): number => (cpus.get(kind) as number[])[round] as number;
console.log('');
console.log(`listing the tools (listed − plain): ${spread(perRound((r) => at('listed', r) - at('plain', r)))} µs p50, ${spread(perRound((r) => cpuAt('listed', r) - cpuAt('plain', r)))} µs CPU`);
console.log(`one tool round trip (called − listed): ${spread(perRound((r) => at('called', r) - at('listed', r)))} µs p50, ${spread(perRound((r) => cpuAt('called', r) - cpuAt('listed', r)))} µs CPU`);
console.log(
  `  of which the gateway's own (round trip − direct vLLM call − bare MCP call): ${spread(perRound((r) => at('called', r) - at('listed', r) - at('vllm', r) - at('mcp', r)))} µs p50`,
);
process.exit(0);
