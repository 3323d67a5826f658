// Hostile input: seeded, bounded fuzzing of the gateway with raw HTTP bytes (methods,
// paths, header sets, framing, JSON bodies deep, huge, of the wrong types, invalid UTF-8).
// Nothing may produce a 5xx the gateway made up, crash it, hang it, or leave a request in
// flight. (Its memory under load is the soak's to measure: see scripts/soak.ts.)
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { SimVllm } from '../sim/vllm-sim.ts';
import { closeAll, startSimAndGateway, type TestGateway } from './helpers/gateway.ts';
import { send } from './helpers/http.ts';


const RUNS = 300;
const SEED = 20261126;
const ANSWER_TIMEOUT_MS = 10_000;

let sim: SimVllm;
let gw: TestGateway;
before(async () => {
  const flags = { 'max-body-size': '256KiB', 'upstream-headers-timeout': '5', 'client-headers-timeout': '1', 'client-request-timeout': '2' };
  ({ sim, gw } = await startSimAndGateway(flags, { record: false }));
});
after(() => closeAll(gw, sim));

interface Exchange {
  readonly status: number;
  readonly head: string;
  readonly body: Buffer;
}

/** Sends raw bytes, reads one answer; fails (rather than hangs) after ANSWER_TIMEOUT_MS. */
function exchange(port: number, bytes: Buffer): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${ANSWER_TIMEOUT_MS} ms to ${JSON.stringify(bytes.subarray(0, 120).toString('latin1'))}`));
    }, ANSWER_TIMEOUT_MS);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {}); // a reset after the answer is fine; no answer is caught below
    socket.on('close', () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      const split = all.indexOf('\r\n\r\n');
      const head = (split === -1 ? all : all.subarray(0, split)).toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      // The answer's body is what its Content-Length says; anything after belongs to
      // the next answer (a malformed request after the first one gets its own 400).
      const length = /\r\ncontent-length: *(\d+)/i.exec(head);
      const rest = split === -1 ? Buffer.alloc(0) : all.subarray(split + 4);
      resolve({ status, head, body: length === null ? rest : rest.subarray(0, Number(length[1])) });
    });
    // write, not end: node's server (like nginx) takes a client's FIN for the client
    // leaving, and aborts its request. Connection: close ends the exchange instead.
    socket.write(bytes);
  });
}

// --- generators -----------------------------------------------------------------------

const token = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,20}$/);
const method = fc.oneof(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'), token.map((t) => t.toUpperCase()));
const knownPath = fc.constantFrom(
  '/v1/responses',
  '/v1/responses/resp_0123456789abcdef0123456789abcdef',
  '/v1/responses/resp_x/input_items',
  '/v1/conversations',
  '/v1/conversations/conv_abc/items',
  '/v1/chat/completions',
  '/v1/models',
  '/health',
  '/ready',
  '/metrics',
  '/',
);
const segment = fc.oneof(
  token,
  fc.constantFrom('..', '.', '%2e%2e', '%00', '%ZZ', '%E0%A4%A', 'résumé', '~', '*', ';', "'", '"', '<script>'),
  fc.stringMatching(/^[\x21-\x7e]{1,40}$/),
);
const path = fc.oneof(
  knownPath,
  fc.array(segment, { minLength: 1, maxLength: 6 }).map((segments) => `/${segments.join('/')}`),
  fc.tuple(knownPath, fc.stringMatching(/^[\x21-\x7e]{0,60}$/)).map(([p, query]) => `${p}?${query}`),
  fc.integer({ min: 1000, max: 20_000 }).map((n) => `/v1/${'a'.repeat(n)}`),
);
const headerValue = fc.oneof(fc.stringMatching(/^[\x20-\x7e]{0,80}$/), fc.constantFrom('', ' ', 'Bearer', 'Bearer x', 'gzip, br', 'text/event-stream'));
const header = fc.tuple(
  fc.oneof(token, fc.constantFrom('Authorization', 'X-Request-Id', 'Origin', 'Accept-Encoding', 'Content-Type', 'Cookie', 'Expect', 'TE', 'Upgrade', 'Trailer', 'X-Sim-Nothing')),
  headerValue,
);

const anyJson = fc.jsonValue({ maxDepth: 6 });
const wrongTyped = fc.record(
  {
    model: fc.oneof(fc.string(), anyJson),
    input: fc.oneof(fc.string(), anyJson, fc.array(fc.record({ type: fc.oneof(fc.string(), anyJson), role: fc.oneof(fc.string(), anyJson), content: anyJson, call_id: anyJson, output: anyJson, id: anyJson }, { requiredKeys: [] }))),
    stream: anyJson,
    store: anyJson,
    previous_response_id: fc.oneof(fc.string(), anyJson, fc.constantFrom('resp_0123456789abcdef0123456789abcdef', 'msg_1')),
    conversation: anyJson,
    tools: anyJson,
    metadata: anyJson,
    background: anyJson,
    items: anyJson,
  },
  { requiredKeys: [] },
);
const body = fc.oneof(
  { weight: 4, arbitrary: wrongTyped.map((value) => Buffer.from(JSON.stringify(value))) },
  { weight: 2, arbitrary: anyJson.map((value) => Buffer.from(JSON.stringify(value) ?? 'null')) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 5000 }).map((depth) => Buffer.from(`{"input":${'['.repeat(depth)}${']'.repeat(depth)}}`)) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 300_000 }).map((n) => Buffer.from(`{"input":"${'x'.repeat(n)}"}`)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)) },
  { weight: 1, arbitrary: fc.constant(Buffer.from([0x7b, 0x22, 0x69, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d])) },
  { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) },
);
/** How the body is framed: honestly, with a lying Content-Length, chunked, or both. */
const framing = fc.constantFrom('length', 'chunked', 'short-length', 'long-length', 'both', 'none');

function request(m: string, p: string, headers: [string, string][], payload: Buffer, frame: string): Buffer {
  const lines = [`${m} ${p} HTTP/1.1`, 'Host: gateway.test'];
  for (const [name, value] of headers) lines.push(`${name}: ${value}`);
  let encoded = payload;
  if (frame === 'length') lines.push(`Content-Length: ${payload.length}`);
  else if (frame === 'short-length') lines.push(`Content-Length: ${Math.max(0, payload.length - 3)}`);
  else if (frame === 'long-length') lines.push(`Content-Length: ${payload.length + 3}`);
  else if (frame === 'chunked' || frame === 'both') {
    lines.push('Transfer-Encoding: chunked');
    if (frame === 'both') lines.push(`Content-Length: ${payload.length}`);
    const chunk = payload.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from(`${payload.length.toString(16)}\r\n`), payload, Buffer.from('\r\n')]);
    encoded = Buffer.concat([chunk, Buffer.from('0\r\n\r\n')]);
  } else encoded = Buffer.alloc(0);
  lines.push('Connection: close', '', '');
  return Buffer.concat([Buffer.from(lines.join('\r\n'), 'latin1'), encoded]);
}

describe('hostile input', () => {
  it(`${RUNS} seeded random requests: no made-up 5xx, no crash, no hang, nothing left in flight`, { timeout: 300_000 }, async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(method, path, fc.array(header, { maxLength: 8 }), body, framing, async (m, p, headers, payload, frame) => {
        const answer = await exchange(gw.port, request(m, p, headers, payload, frame));
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        assert.notEqual(answer.status, 0, `no answer to ${m} ${p.slice(0, 80)} (${frame})`);
        // A body shorter than its Content-Length is a client that never finished: 408.
        if (frame === 'long-length' && payload.length > 0 && answer.status === 408) return;
        assert.ok(answer.status < 500, `${answer.status} for ${m} ${p.slice(0, 80)} (${frame}): ${answer.body.subarray(0, 300).toString()}`);
        if (answer.status >= 400) assert.match(answer.head, /content-type: application\/json/i, `every error is JSON (${answer.status})`);
        if (/content-type: application\/json/i.test(answer.head) && answer.body.length > 0 && !/transfer-encoding/i.test(answer.head)) {
          assert.doesNotThrow(() => JSON.parse(answer.body.toString('utf8')), 'JSON answers are JSON');
        }
        assert.doesNotMatch(answer.body.toString('latin1'), /\n\s+at .*:\d+|<html/i, 'no stack trace, no HTML');
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    assert.equal((await send(`${gw.url}/health`)).status, 200, 'still alive');
    assert.equal(gw.gateway.inFlight(), 0, 'nothing left in flight');
    // Memory is not judged here: this process holds the test client and fast-check too.
    // The gateway's own memory under load is measured by `npm run soak` (its processes' RSS).
    console.log(`# statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);
  });
});
