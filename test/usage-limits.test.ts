// Usage people can see and bound: tokens counted per model and tenant from what vLLM
// reported, and per-tenant requests/tokens per minute answered as OpenAI answers them
// (429, Retry-After, x-ratelimit-* headers), from flags, the key file, a SIGHUP reload,
// and across --workers.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SimVllm } from '../sim/vllm-sim.ts';
import { simForCliTests, portOf, runCli } from './helpers/cli.ts';
import { closeAll, startGateway, type TestGateway } from './helpers/gateway.ts';
import { parseSse, postJson, send, type RawResponse } from './helpers/http.ts';
import { create, createStream, type AnyJson } from './helpers/responses-api.ts';

let sim: SimVllm;
simForCliTests((started) => (sim = started));

/** Every gateway_tokens_total series, keyed `model/tenant/kind`. */
async function tokenCounters(baseUrl: string): Promise<Record<string, number>> {
  const text = (await send(`${baseUrl}/metrics`)).text();
  const counters: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const match = /^gateway_tokens_total\{model="([^"]*)",tenant="([^"]*)",kind="([^"]*)"\} (\d+)$/.exec(line);
    if (match !== null) counters[`${match[1]}/${match[2]}/${match[3]}`] = Number(match[4]);
  }
  return counters;
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe('token usage metrics', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(sim.url, { 'api-keys': 'key-alice alice, key-bob bob' });
  });
  after(() => closeAll(gw));

  it('count what each response used, by model and tenant, whichever API and whether streamed', async () => {
    // Alice: the Responses API, JSON and streamed, reasoning included.
    const json = (await create(gw.url, { model: 'model-a', input: 'hello there' }, bearer('key-alice'))).json();
    const streamed = await createStream(gw.url, { model: 'model-a', input: 'think', reasoning: { effort: 'low' } }, { ...bearer('key-alice'), 'x-sim': 'reasoning=3' });
    assert.equal(streamed.status, 200);
    const usages: AnyJson[] = [json.usage, streamed.terminal.usage];
    assert.ok(streamed.terminal.usage.output_tokens_details.reasoning_tokens > 0, 'the stream had reasoning tokens to count');

    // Bob: Chat Completions, JSON and streamed with include_usage; embeddings.
    const chat = (await postJson(`${gw.url}/v1/chat/completions`, { model: 'model-b', messages: [{ role: 'user', content: 'hi' }] }, bearer('key-bob'))).json();
    const chatStream = await postJson(
      `${gw.url}/v1/chat/completions`,
      { model: 'model-b', stream: true, stream_options: { include_usage: true, continuous_usage_stats: true }, messages: [{ role: 'user', content: 'more words here' }] },
      bearer('key-bob'),
    );
    const chunks = parseSse(chatStream.text()).filter((event) => event.data !== '[DONE]').map((event) => JSON.parse(event.data));
    const finalChatUsage = chunks.at(-1).usage;
    assert.ok(chunks.length > 2 && chunks.every((chunk) => chunk.usage !== undefined), 'usage on every chunk (continuous stats)');

    const counters = await tokenCounters(gw.url);
    const sum = (field: (usage: AnyJson) => number, list: AnyJson[]): number => list.reduce((total, usage) => total + field(usage), 0);
    assert.equal(counters['model-a/alice/input'], sum((u) => u.input_tokens, usages));
    assert.equal(counters['model-a/alice/output'], sum((u) => u.output_tokens, usages));
    assert.equal(counters['model-a/alice/reasoning'], sum((u) => u.output_tokens_details.reasoning_tokens, usages));
    assert.equal(counters['model-a/alice/cached'], 0);
    // The last usage of the chat stream counts, not the sum of its running totals.
    assert.equal(counters['model-b/bob/input'], chat.usage.prompt_tokens + finalChatUsage.prompt_tokens);
    assert.equal(counters['model-b/bob/output'], chat.usage.completion_tokens + finalChatUsage.completion_tokens);
    assert.equal(Object.keys(counters).filter((key) => key.includes('/alice/') && key.startsWith('model-b')).length, 0);
  });

  it('count a stream whose connection broke after its terminal event: the response was complete', async () => {
    const direct = await postJson(`${sim.url}/v1/responses`, { model: 'model-d', input: 'x', stream: true }, { 'x-sim': 'deltas=3' });
    const upstreamEvents = parseSse(direct.text()).filter((event) => event.data !== '[DONE]').length;
    const before = await tokenCounters(gw.url);
    const streamed = await createStream(gw.url, { model: 'model-d', input: 'x' }, { ...bearer('key-alice'), 'x-sim': `deltas=3;reset-after=${upstreamEvents}` });
    assert.equal(streamed.status, 200);
    assert.equal(streamed.terminal.status, 'completed');
    const counters = await tokenCounters(gw.url);
    assert.equal(before['model-d/alice/output'], undefined);
    assert.equal(counters['model-d/alice/output'], streamed.terminal.usage.output_tokens);
    assert.equal(counters['model-d/alice/input'], streamed.terminal.usage.input_tokens);
  });

  it('count nothing for an answer that failed', async () => {
    const before = await tokenCounters(gw.url);
    const failed = await postJson(`${gw.url}/v1/responses`, { model: 'model-c', input: 'x' }, { ...bearer('key-alice'), 'x-sim': 'status=500' });
    assert.equal(failed.status, 500);
    assert.deepEqual(await tokenCounters(gw.url), before);
  });
});

function headerOf(res: RawResponse, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

describe('rate limits', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(sim.url, {
      'api-keys': 'key-alice alice, key-bob bob, key-carol carol rpm=none, key-tina tina rpm=none tpm=10',
      'rate-limit-rpm': '3',
    });
  });
  after(() => closeAll(gw));
  const ask = (key: string, body: object = { model: 'm', input: 'x' }) => postJson(`${gw.url}/v1/responses`, body, bearer(key));

  it('answer a tenant over its requests per minute with 429, Retry-After and OpenAI headers', async () => {
    const admitted: RawResponse[] = [];
    for (let i = 0; i < 3; i++) admitted.push(await ask('key-alice'));
    assert.deepEqual(admitted.map((res) => res.status), [200, 200, 200]);
    assert.deepEqual(admitted.map((res) => headerOf(res, 'x-ratelimit-remaining-requests')), ['2', '1', '0']);
    assert.equal(headerOf(admitted[0] as RawResponse, 'x-ratelimit-limit-requests'), '3');
    assert.match(headerOf(admitted[0] as RawResponse, 'x-ratelimit-reset-requests') ?? '', /^\d+(\.\d+)?m?s$|^\d+ms$/);

    const refused = await ask('key-alice');
    assert.equal(refused.status, 429);
    const error = refused.json().error;
    assert.equal(error.code, 'rate_limit_exceeded');
    assert.equal(error.type, 'requests');
    assert.match(error.message, /^Rate limit reached for tenant alice on requests per min \(RPM\): Limit 3, Used 3, Requested 1\. Please try again in [\d.]+s\.$/);
    const retryAfter = Number(headerOf(refused, 'retry-after'));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 20, `Retry-After ${String(retryAfter)}`);
    assert.equal(headerOf(refused, 'x-ratelimit-remaining-requests'), '0');

    // Every route of the API counts (as OpenAI's limits do), the gateway's own too.
    assert.equal((await send(`${gw.url}/v1/models`, { headers: bearer('key-alice') })).status, 429);
    // Another tenant has its own budget; a tenant whose entry says rpm=none has none.
    assert.equal((await ask('key-bob')).status, 200);
    const unlimited = await ask('key-carol');
    assert.equal(unlimited.status, 200);
    assert.equal(headerOf(unlimited, 'x-ratelimit-limit-requests'), undefined);
    // Probes are not the API: never limited.
    assert.equal((await send(`${gw.url}/health`)).status, 200);
  });

  it("take a response's tokens once vLLM reported them: the next request waits for the debt", async () => {
    const first = await ask('key-tina');
    assert.equal(first.status, 200);
    assert.equal(headerOf(first, 'x-ratelimit-limit-tokens'), '10');
    const used = (first.json()).usage.total_tokens as number;
    assert.ok(used > 10, `the first response (${used} tokens) goes over the budget`);

    const refused = await ask('key-tina');
    assert.equal(refused.status, 429);
    assert.equal(refused.json().error.type, 'tokens');
    assert.match(refused.json().error.message, new RegExp(`tokens per min \\(TPM\\): Limit 10, Used ${used}\\. `));
    assert.equal(headerOf(refused, 'x-ratelimit-remaining-tokens'), '0');
    // The debt (used - 10) and one token more, at 10 a minute: 6 s a token.
    const expectedSeconds = Math.ceil(((used - 10 + 1) * 6_000) / 1000);
    const retryAfter = Number(headerOf(refused, 'retry-after'));
    assert.ok(retryAfter <= expectedSeconds && retryAfter >= expectedSeconds - 6, `Retry-After ${retryAfter}, about ${expectedSeconds}`);
  });
});

describe('rate limits from the command line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rg-limits-'));
  const base = (): string[] => ['--gateway-port', '0', '--gateway-host', '127.0.0.1', '--llm-api-base', sim.url];

  it('come from the key file and change on SIGHUP', { timeout: 30_000 }, async () => {
    const keysFile = join(dir, 'keys');
    writeFileSync(keysFile, 'key-alice alice rpm=1\n');
    const run = runCli([...base(), '--api-keys', `@${keysFile}`, '--rate-limit-tpm', '100000']);
    const listening = await run.waitForLog('gateway listening');
    assert.equal(listening['rate_limits'], '100000 tokens/min per tenant; 1 tenant sets its own in the key entries');
    const url = `http://127.0.0.1:${portOf(listening)}/v1/responses`;
    const ask = () => postJson(url, { model: 'm', input: 'x' }, bearer('key-alice'));
    assert.equal((await ask()).status, 200);
    assert.equal((await ask()).status, 429);

    writeFileSync(keysFile, 'key-alice alice rpm=100\n');
    run.child.kill('SIGHUP');
    await run.waitForLog('reloaded the API keys');
    const after = await ask();
    assert.equal(after.status, 200);
    assert.equal(headerOf(after, 'x-ratelimit-limit-requests'), '100');
    run.child.kill('SIGTERM');
    assert.equal((await run.exited).code, 0);
  });

  it('a key file that gives one tenant two different limits is refused at startup', async () => {
    const keysFile = join(dir, 'conflict');
    writeFileSync(keysFile, 'k1 team rpm=5\nk2 team rpm=6\n');
    const run = runCli([...base(), '--api-keys', `@${keysFile}`]);
    assert.equal((await run.exited).code, 2);
    assert.match(run.stderr(), /line 2: tenant team has other limits at .*line 1; give them once/);
  });

  it('are shared by every worker of --workers 2', { timeout: 60_000 }, async () => {
    const run = runCli([...base(), '--workers', '2', '--api-keys', 'key-alice alice', '--rate-limit-rpm', '3']);
    const url = `http://127.0.0.1:${portOf(await run.waitForLog('gateway listening'))}/v1/responses`;
    // Each request on its own connection, several at once, until both workers have
    // answered some (the kernel picks the worker for each connection).
    const statuses: number[] = [];
    let workers = new Set<unknown>();
    for (let batch = 0; batch < 10 && workers.size < 2; batch++) {
      const answers = await Promise.all(Array.from({ length: 8 }, () => postJson(url, { model: 'm', input: 'x' }, bearer('key-alice'))));
      statuses.push(...answers.map((res) => res.status));
      const served = await run.waitForLogs((line) => line['msg'] === 'request', statuses.length);
      workers = new Set(served.map((line) => line['pid']));
    }
    assert.equal(workers.size, 2, 'both workers answered');
    assert.equal(statuses.filter((status) => status === 200).length, 3, `statuses ${statuses.join(' ')}`);
    assert.equal(statuses.filter((status) => status === 429).length, statuses.length - 3);
    run.child.kill('SIGTERM');
    assert.equal((await run.exited).code, 0);
  });
});
