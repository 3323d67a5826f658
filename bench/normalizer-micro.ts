// npm run bench:normalizer [-- --reasoning] [--baseline DIR]: the stream normalizer alone,
// in this process, no sockets. A 100-delta vLLM stream is framed and normalized many times,
// cut three ways: three chunks per event (as vLLM writes them), one chunk per event (what
// the gateway gets from the fast simulator, under load too: 76 body chunks for 108 events
// at c=32), the whole stream in one chunk (the least framing can cost). Prints µs of CPU per stream, the output's encoding for the socket
// included.
//
// --baseline DIR: the normalizer of an earlier checkout (DIR, with node_modules) is loaded
// beside this one and both run in alternating rounds, so machine noise falls on both: the
// medians, their min–max and the median of per-round ratios. For quick iterations on the
// per-event work; the real figures come from npm run bench.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { StreamNormalizer } from '../src/responses/stream-normalizer.ts';
import { joinParts } from '../src/upstream/relay.ts';
import { SseBoundary } from '../src/upstream/sse-boundary.ts';
import { REAL_VLLM_QUIRKS, eventChunks, makeIds, planGeneration, streamEvents } from '../sim/wire.ts';
import { median, spread } from './stats.ts';

const argv = process.argv.slice(2);
const baselineAt = argv.indexOf('--baseline');
const baselineDir = baselineAt === -1 ? undefined : resolve(argv[baselineAt + 1] ?? '.');

const body = { model: 'm', input: 'x', stream: true };
const plan = planGeneration(body, { deltas: 100, reasoning: argv.includes('--reasoning') });
const events = streamEvents(body, plan, makeIds(plan, REAL_VLLM_QUIRKS), 1).map((event, seq) => eventChunks(event, seq));
const CUTS: Record<string, Buffer[]> = {
  'three chunks per event': events.flatMap((chunks) => chunks.map((chunk) => Buffer.from(chunk))),
  'one chunk per event': events.map((chunks) => Buffer.from(chunks.join(''))),
  'one chunk per stream': [Buffer.from(events.map((chunks) => chunks.join('')).join(''))],
};
const facts = { id: 'resp_x', request: body, store: false, background: false, previousResponseId: null, conversationId: null, keepRawFields: false };
const log = (): never => {
  throw new Error('no logging expected');
};

type Normalizer = typeof StreamNormalizer;
/** Stands for the socket's write buffer. */
const SOCKET = Buffer.allocUnsafe(1 << 20);

/** One stream through a new normalizer, framed as the relay frames it; the bytes emitted. */
function oneStream(Normalizer: Normalizer, chunks: readonly Buffer[]): number {
  const normalizer = new Normalizer(facts, { finish: () => undefined }, log);
  const boundary = new SseBoundary();
  let pending: Buffer[] = [];
  let bytes = 0;
  // The output reaches the socket as ResponseSink.write sends it: joined into one string,
  // which the write encodes (a byte-level normalizer would be spared that: count it).
  const emit = (output: unknown): void => {
    const parts = (typeof output === 'string' || Buffer.isBuffer(output) ? [output] : (output ?? [])) as (string | Buffer)[];
    if (parts.length === 0) return;
    const joined = joinParts(parts);
    bytes += typeof joined === 'string' ? SOCKET.write(joined) : joined.length;
  };
  for (const chunk of chunks) {
    const end = boundary.push(chunk);
    if (end === -1) {
      pending.push(chunk);
      continue;
    }
    pending.push(end === chunk.length ? chunk : chunk.subarray(0, end));
    const parts = pending;
    pending = end === chunk.length ? [] : [chunk.subarray(end)];
    void normalizer.onEvents(parts, emit);
  }
  return bytes;
}

/** µs of CPU per stream over `streams` streams. */
function round(Normalizer: Normalizer, chunks: readonly Buffer[], streams: number): number {
  const before = process.cpuUsage();
  for (let i = 0; i < streams; i++) oneStream(Normalizer, chunks);
  const cpu = process.cpuUsage(before);
  return (cpu.user + cpu.system) / streams;
}

const range = (values: number[]): string => `${median(values).toFixed(0)} µs (${spread(values)})`;

const candidates: [string, Normalizer][] = [['this checkout', StreamNormalizer]];
if (baselineDir !== undefined) {
  const module = (await import(pathToFileURL(resolve(baselineDir, 'src/responses/stream-normalizer.ts')).href)) as { StreamNormalizer: Normalizer };
  candidates.unshift(['baseline', module.StreamNormalizer]);
}
const ROUNDS = 15;
const STREAMS = 300;
console.log(`node ${process.version}, ${events.length} events per stream, ${ROUNDS} rounds of ${STREAMS} streams${baselineDir === undefined ? '' : `, baseline ${baselineDir}`}`);
for (const [cut, chunks] of Object.entries(CUTS)) {
  for (const [, Normalizer] of candidates) for (let i = 0; i < STREAMS; i++) oneStream(Normalizer, chunks); // warm-up
  const rounds = candidates.map((): number[] => []);
  for (let r = 0; r < ROUNDS; r++) candidates.forEach(([, Normalizer], i) => rounds[i]?.push(round(Normalizer, chunks, STREAMS)));
  const cells = candidates.map(([label], i) => `${label} ${range(rounds[i] as number[])}`);
  if (candidates.length === 2) {
    const [before, after] = rounds as [number[], number[]];
    cells.push(`ratio ${median(after.map((value, i) => value / (before[i] as number))).toFixed(2)}`);
  }
  console.log(`${cut}: ${cells.join(', ')} CPU per stream`);
}
