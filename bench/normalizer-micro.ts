// npm run bench:normalizer: the stream normalizer alone, in this process, no sockets.
// A 100-delta vLLM stream (three chunks per event, as vLLM writes them) is framed and
// normalized many times; prints µs of CPU per stream. For quick iterations on the
// per-event work; the real figures come from npm run bench.
import { StreamNormalizer } from '../src/responses/stream-normalizer.ts';
import { SseBoundary } from '../src/upstream/sse-boundary.ts';
import { REAL_VLLM_QUIRKS, eventChunks, makeIds, planGeneration, streamEvents } from '../sim/wire.ts';

const body = { model: 'm', input: 'x', stream: true };
const plan = planGeneration(body, { deltas: 100, reasoning: process.argv.includes('--reasoning') });
const chunks = streamEvents(body, plan, makeIds(plan, REAL_VLLM_QUIRKS), 1).flatMap((event, seq) => eventChunks(event, seq).map((part) => Buffer.from(part)));
const facts = { id: 'resp_x', request: body, store: false, background: false, previousResponseId: null, conversationId: null, keepRawFields: false };
const log = (): never => {
  throw new Error('no logging expected');
};

function oneStream(): number {
  const normalizer = new StreamNormalizer(facts, { finish: () => undefined }, log);
  const boundary = new SseBoundary();
  let pending: Buffer[] = [];
  let bytes = 0;
  const emit = (output: unknown): void => {
    if (typeof output === 'string') bytes += output.length;
    else if (Array.isArray(output)) for (const part of output as string[]) bytes += part.length;
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

for (let i = 0; i < 500; i++) oneStream();
const runs = 3000;
const cpuBefore = process.cpuUsage();
const started = process.hrtime.bigint();
for (let i = 0; i < runs; i++) oneStream();
const wallUs = Number(process.hrtime.bigint() - started) / 1000 / runs;
const cpu = process.cpuUsage(cpuBefore);
console.log(`${chunks.length} chunks per stream: ${wallUs.toFixed(1)} µs wall, ${((cpu.user + cpu.system) / runs).toFixed(1)} µs CPU per stream (node ${process.version})`);
