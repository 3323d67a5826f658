// How long a reader on another gateway process waits for a background response's events:
// two gateways on one store (PostgreSQL with BENCH_DATABASE_URL, else one SQLite file),
// the response created and streamed on A, resumed on B from its start; for each event
// produced after B subscribed, B's arrival time minus A's. A's stream is fed from
// memory as events are produced, so the difference is the store's path: the batch
// interval, the write, the notification (or SQLite's poll) and the read.
//
//   npm run build && npm run bench:background [-- --responses 20]
import { mkdtempSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBenchGateway, startProcess } from './processes.ts';
import { median, percentile } from './stats.ts';

const RESPONSES = Number(process.argv[process.argv.indexOf('--responses') + 1] ?? 0) || 20;
const dir = mkdtempSync(join(tmpdir(), 'rg-bench-bg-'));
const dbUrl = process.env['BENCH_DATABASE_URL'] ?? `sqlite:${join(dir, 'bench.db')}`;
const store = dbUrl.startsWith('postgres') ? 'PostgreSQL' : 'SQLite';

/** Streams a request, calling `onEvent` with each event's sequence number, its arrival time and its text. */
function stream(url: string, method: string, body: string | undefined, onEvent: (seq: number, at: number, event: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { 'content-type': 'application/json', 'x-sim': 'deltas=100;slow=10' }, agent: false }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => {
        const at = performance.now();
        text += chunk.toString();
        let end = text.indexOf('\n\n');
        while (end !== -1) {
          const event = text.slice(0, end);
          const match = /"sequence_number":(\d+)/.exec(event);
          if (match !== null) onEvent(Number(match[1]), at, event);
          text = text.slice(end + 2);
          end = text.indexOf('\n\n');
        }
      });
      res.on('end', resolve);
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const sim = await startProcess(['sim/cli.ts', '--no-record'], '--port', dir);
const a = await startBenchGateway(sim.url, dir, ['--db-url', dbUrl]);
const b = await startBenchGateway(sim.url, dir, ['--db-url', dbUrl]);
const delays: number[] = [];
for (let i = 0; i < RESPONSES; i++) {
  const onA = new Map<number, number>();
  const onB = new Map<number, number>();
  let subscribedAt = Number.POSITIVE_INFINITY;
  let resumed: Promise<void> | undefined;
  await stream(`${a.url}/v1/responses`, 'POST', JSON.stringify({ model: 'm', input: 'x', background: true, stream: true }), (seq, at, event) => {
    onA.set(seq, at);
    if (resumed !== undefined) return;
    const id = /"id":"(resp_[0-9a-f]+)"/.exec(event)?.[1] as string;
    subscribedAt = performance.now();
    resumed = stream(`${b.url}/v1/responses/${id}?stream=true`, 'GET', undefined, (bSeq, bAt) => onB.set(bSeq, bAt));
  });
  await resumed;
  for (const [seq, at] of onA) {
    const seen = onB.get(seq);
    if (at > subscribedAt + 50 && seen !== undefined) delays.push(seen - at);
  }
  if (onB.size !== onA.size) throw new Error(`B saw ${onB.size} events, A ${onA.size}`);
}
const fmt = (ms: number): string => ms.toFixed(1);
console.log(`Node ${process.version}, ${store}, ${RESPONSES} background responses of 100 deltas 10 ms apart, ${delays.length} events read live on B`);
console.log(`delay of another process's reader (ms): p50 ${fmt(median(delays))}, p99 ${fmt(percentile(delays, 99))}, max ${fmt(Math.max(...delays))}`);
process.exit(0);
