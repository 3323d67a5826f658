// Protections that need the real process: key files and SIGHUP, secrets in what the
// command prints, graceful shutdown under load.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { SimVllm } from '../sim/vllm-sim.ts';
import { simForCliTests, portOf, runCli } from './helpers/cli.ts';
import { checkStream } from './helpers/conformance.ts';
import { ChunkReader, openRequest, postJson } from './helpers/http.ts';
import { getJson, type AnyJson } from './helpers/responses-api.ts';

let sim: SimVllm;
simForCliTests((started) => (sim = started));

const dir = mkdtempSync(join(tmpdir(), 'rg-hardening-'));
const base = (): string[] => ['--gateway-port', '0', '--gateway-host', '127.0.0.1', '--llm-api-base', sim.url];

describe('keys from a file', () => {
  it('are re-read on SIGHUP: a new key works, a removed one stops working', { timeout: 30_000 }, async () => {
    const keysFile = join(dir, 'keys');
    writeFileSync(keysFile, '# gateway keys\nfirst-key\n');
    const run = runCli([...base(), '--api-keys', `@${keysFile}`]);
    const listening = await run.waitForLog('gateway listening');
    assert.equal(listening['client_keys'], '1 key from --api-keys (1 tenant) guard /v1/*');
    const url = `http://127.0.0.1:${portOf(listening)}/v1/responses`;
    const ask = (key: string) => postJson(url, { model: 'm', input: 'x' }, { authorization: `Bearer ${key}` });
    assert.equal((await ask('first-key')).status, 200);
    assert.equal((await ask('second-key')).status, 401);

    writeFileSync(keysFile, 'second-key\n');
    run.child.kill('SIGHUP');
    await run.waitForLog('reloaded the API keys');
    assert.equal((await ask('second-key')).status, 200);
    assert.equal((await ask('first-key')).status, 401);

    writeFileSync(keysFile, '\n# nothing\n');
    run.child.kill('SIGHUP');
    await run.waitForLog('API keys not reloaded; the previous keys stay in force');
    assert.equal((await ask('second-key')).status, 200);

    run.child.kill('SIGTERM');
    assert.equal((await run.exited).code, 0);
    assert.ok(!run.stdout().includes('second-key') && !run.stdout().includes('first-key'), 'no key in the log');
  });

  it('a missing key file stops startup with one line', async () => {
    const run = runCli([...base(), '--api-keys', `@${join(dir, 'missing')}`]);
    assert.equal((await run.exited).code, 2);
    assert.match(run.stderr().trim(), /^responses-gateway: cannot read the --api-keys file .*missing \(ENOENT\)$/);
  });
});

describe('the --mcp-servers file', () => {
  it('is named on the startup line, and a wrong one stops startup with one line naming the field', async () => {
    const good = join(dir, 'mcp-good.json');
    writeFileSync(good, JSON.stringify({ docs: { url: 'http://127.0.0.1:1/mcp', headers: { authorization: 'Bearer ${RG_DOCS_TOKEN}' } } }));
    const run = runCli([...base(), '--mcp-servers', good, '--mcp-allow', 'none'], { RG_DOCS_TOKEN: 'tok-secret' });
    const listening = await run.waitForLog('gateway listening');
    assert.equal(listening['mcp'], `servers of ${good}; no client URL (--mcp-allow none)`);
    run.child.kill('SIGTERM');
    assert.equal((await run.exited).code, 0);
    assert.ok(!run.stdout().includes('tok-secret'));

    const cases: Array<[string, RegExp]> = [
      ['{"docs": {"url": "ftp://x"}}', /^responses-gateway: --mcp-servers .*: docs\.url: must be an http\(s\) URL$/],
      ['{"docs": {"url": "http://x", "require_approval": "sometimes"}}', /^responses-gateway: --mcp-servers .*: docs\.require_approval: Invalid 'require_approval'/],
      ['{"docs": {"url": "http://x", "headers": {"a": "${RG_NOT_SET}"}}}', /^responses-gateway: --mcp-servers .*: docs\.headers\.a: environment variable RG_NOT_SET is not set$/],
      ['not json', /^responses-gateway: --mcp-servers .*: not JSON/],
    ];
    for (const [text, expected] of cases) {
      const file = join(dir, 'mcp-bad.json');
      writeFileSync(file, text);
      const bad = runCli([...base(), '--mcp-servers', file]);
      assert.equal((await bad.exited).code, 1, text);
      assert.match(bad.stderr().trim(), expected);
    }
  });
});

describe('secrets in what the command prints', () => {
  it('a database password never appears, not even when the database is down', async () => {
    const run = runCli([...base(), '--openai-api-key', 'sk-very-secret'], { DATABASE_URL: 'postgres://app:pa55w0rd-secret@127.0.0.1:1/db' });
    assert.equal((await run.exited).code, 1);
    const printed = run.stdout() + run.stderr();
    assert.match(run.stderr(), /cannot open the store at postgres:\/\/app:\*\*\*@127\.0\.0\.1:1\/db/);
    assert.ok(!printed.includes('pa55w0rd-secret'));
    assert.ok(!printed.includes('sk-very-secret'));
  });
});

describe('graceful shutdown under load', () => {
  it('SIGTERM: every stream in flight finishes and is stored; nothing is half-written', { timeout: 60_000 }, async () => {
    const db = `sqlite:${join(dir, 'shutdown.db')}`;
    const run = runCli([...base(), '--db-url', db]);
    const port = portOf(await run.waitForLog('gateway listening'));
    const streams = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        openRequest(`http://127.0.0.1:${port}/v1/responses`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-sim': 'slow=20;deltas=30' },
          body: JSON.stringify({ model: 'm', input: `stream ${i}`, stream: true }),
        }),
      ),
    );
    const readers = streams.map((res) => new ChunkReader(res));
    const starts = await Promise.all(readers.map((reader) => reader.until('response.created')));
    run.child.kill('SIGTERM');
    const terminals: AnyJson[] = [];
    for (const [i, reader] of readers.entries()) terminals.push(checkStream(starts[i] + (await reader.rest())).terminal);
    assert.deepEqual(new Set(terminals.map((terminal) => terminal.status)), new Set(['completed']));
    assert.equal((await run.exited).code, 0);

    // A new process on the same database finds every one of them, whole.
    const again = runCli([...base(), '--db-url', db]);
    const url = `http://127.0.0.1:${portOf(await again.waitForLog('gateway listening'))}`;
    for (const terminal of terminals) assert.deepEqual((await getJson(`${url}/v1/responses/${String(terminal.id)}`)).body, terminal);
    again.child.kill('SIGTERM');
    assert.equal((await again.exited).code, 0);
  });

  it('past the grace period, streams still running end as failed (server_shutting_down) and are stored so', { timeout: 60_000 }, async () => {
    const db = `sqlite:${join(dir, 'grace.db')}`;
    const run = runCli([...base(), '--db-url', db, '--shutdown-timeout', '0.5']);
    const port = portOf(await run.waitForLog('gateway listening'));
    const res = await openRequest(`http://127.0.0.1:${port}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-sim': 'slow=200;deltas=200' },
      body: JSON.stringify({ model: 'm', input: 'too long', stream: true }),
    });
    const reader = new ChunkReader(res);
    const start = await reader.until('response.output_text.delta');
    run.child.kill('SIGTERM');
    const { terminal, events } = checkStream(start + (await reader.rest()));
    assert.equal(terminal.status, 'failed');
    assert.equal(events.find((event) => event.data.type === 'error')?.data.error.code, 'server_shutting_down');
    assert.equal((await run.exited).code, 0);

    const again = runCli([...base(), '--db-url', db]);
    const url = `http://127.0.0.1:${portOf(await again.waitForLog('gateway listening'))}`;
    assert.deepEqual((await getJson(`${url}/v1/responses/${String(terminal.id)}`)).body, terminal);
    again.child.kill('SIGTERM');
    await again.exited;
  });
});
