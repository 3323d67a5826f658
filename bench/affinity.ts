// npm run bench:affinity [-- --chains 24 --turns 8 --rounds 3 --prefill-us 20 --out DIR]
//
// What chain affinity gives over three replicas: a multi-turn workload (chains of
// previous_response_id turns, each turn adding about 2 KiB of input, several chains at
// once) through a gateway with --upstream-affinity on and one with it off, in alternating
// rounds, in front of the same three simulated vLLMs. The simulators keep a prefix cache as
// vLLM does and charge prefill time for the input tokens it does not hold
// (--prefill-us-per-token): the hit rate is read from their /metrics
// (vllm:prefix_cache_hits_total / vllm:prefix_cache_queries_total), the latency of
// continuations (turns 2 on) at the client.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { request } from 'node:http';
import { ROOT, startBenchGateway, startProcess, type Started } from './processes.ts';
import { median, percentile } from './stats.ts';

const argv = process.argv.slice(2);
const option = (name: string, fallback: number): number => {
  const at = argv.indexOf(`--${name}`);
  return at === -1 ? fallback : Number(argv[at + 1]);
};
const CHAINS = option('chains', 24);
const TURNS = option('turns', 8);
const ROUNDS = option('rounds', 3);
const PREFILL_US = option('prefill-us', 20);
/** Chains in flight at once (each chain's turns one after another, as a client's are). */
const PARALLEL = 8;
const TURN_TEXT = 'The quick brown fox jumps over the lazy dog. '.repeat(45);

const dir = mkdtempSync(join(tmpdir(), 'rg-bench-affinity-'));

function post(url: string, body: object): Promise<{ status: number; json: Record<string, unknown>; ms: number }> {
  const payload = JSON.stringify(body);
  const started = performance.now();
  return new Promise((done, fail) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => done({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>, ms: performance.now() - started }));
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end(payload);
  });
}

async function prefixCounters(sims: readonly Started[]): Promise<{ hits: number; queries: number }> {
  let hits = 0;
  let queries = 0;
  for (const sim of sims) {
    const text = await (await fetch(`${sim.url}/metrics`)).text();
    hits += Number(/^vllm:prefix_cache_hits_total\{[^}]*\} (\d+)/m.exec(text)?.[1] ?? 0);
    queries += Number(/^vllm:prefix_cache_queries_total\{[^}]*\} (\d+)/m.exec(text)?.[1] ?? 0);
  }
  return { hits, queries };
}

/** One round: every chain's turns through `gateway`; continuation latencies and the hit rate. */
async function round(gateway: Started, sims: readonly Started[], label: string): Promise<{ latencies: number[]; hitRate: number }> {
  const before = await prefixCounters(sims);
  const latencies: number[] = [];
  let next = 0;
  const chain = async (): Promise<void> => {
    for (let c = next++; c < CHAINS; c = next++) {
      let previous: unknown;
      for (let turn = 0; turn < TURNS; turn++) {
        const answer = await post(`${gateway.url}/v1/responses`, {
          model: 'm',
          input: `${label} chain ${c} turn ${turn}: ${TURN_TEXT}`,
          ...(previous === undefined ? {} : { previous_response_id: previous }),
        });
        if (answer.status !== 200) throw new Error(`turn answered ${answer.status}: ${JSON.stringify(answer.json)}`);
        if (turn > 0) latencies.push(answer.ms);
        previous = answer.json['id'];
      }
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, chain));
  const after = await prefixCounters(sims);
  return { latencies, hitRate: (after.hits - before.hits) / (after.queries - before.queries) };
}

const sims = await Promise.all([0, 1, 2].map(() => startProcess(['sim/cli.ts', '--no-record', '--coalesce', '--prefill-us-per-token', String(PREFILL_US)], '--port', dir)));
const upstream = sims.map((sim) => sim.url).join(',');
const gateways = {
  on: await startBenchGateway(upstream, dir, ['--db-url', `sqlite:${join(dir, 'on.db')}`]),
  off: await startBenchGateway(upstream, dir, ['--db-url', `sqlite:${join(dir, 'off.db')}`, '--upstream-affinity', 'off']),
};
// A warm-up round each (JIT, connections), not counted.
for (const mode of ['on', 'off'] as const) await round(gateways[mode], sims, `warm-${mode}`);
const results = { on: [] as { latencies: number[]; hitRate: number }[], off: [] as { latencies: number[]; hitRate: number }[] };
for (let r = 0; r < ROUNDS; r++) {
  for (const mode of ['on', 'off'] as const) {
    process.stderr.write(`affinity ${mode}: round ${r + 1}/${ROUNDS}\n`);
    results[mode].push(await round(gateways[mode], sims, `r${r}-${mode}`));
  }
}
for (const started of [gateways.on, gateways.off, ...sims]) started.child.kill('SIGTERM');

const cell = (values: number[], digits = 1): string => `${median(values).toFixed(digits)} (${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)})`;
const row = (mode: 'on' | 'off'): string => {
  const rounds = results[mode];
  return `| ${mode} | ${cell(rounds.map((r) => r.hitRate * 100))} % | ${cell(rounds.map((r) => median(r.latencies)))} ms | ${cell(rounds.map((r) => percentile(r.latencies, 99)))} ms |`;
};
const date = new Date();
const report = [
  `# Affinity over three replicas: ${date.toISOString().slice(0, 16)}Z`,
  '',
  `- Node ${process.version}, ${cpus().length} cores; \`npm run bench:affinity${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}\``,
  `- ${CHAINS} chains of ${TURNS} turns (previous_response_id, store: true, about ${Math.round(TURN_TEXT.length / 1024)} KiB of new input a turn), ${PARALLEL} chains at once, through one gateway process in front of three simulated vLLMs charging ${PREFILL_US} µs of prefill per input token not in their prefix cache. ${ROUNDS} rounds, affinity on and off alternating; median (min–max) over rounds.`,
  '',
  '| --upstream-affinity | prefix cache hit rate (tokens) | continuation p50 | continuation p99 |',
  '| --- | ---: | ---: | ---: |',
  row('on'),
  row('off'),
  '',
].join('\n');
process.stdout.write(report);
const at = argv.indexOf('--out');
const outDir = resolve(at === -1 ? join(ROOT, 'bench/results') : (argv[at + 1] as string));
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, `${date.toISOString().slice(0, 16).replace(':', '')}-affinity.md`), report);
process.exit(0);
