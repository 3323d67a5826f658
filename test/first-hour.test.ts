// The traps a new user met in their first hour, each tried with the real command: keys
// that guard less than expected, a key inherited from the shell, a gateway that answers
// nothing while vLLM loads, vLLM's port taken, flags from vLLM's command line, the real
// cause of a startup failure, and how long responses are kept.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startSimVllm, type SimVllm } from '../sim/vllm-sim.ts';
import { fakeVllmBin, freePort, killLeftovers, portOf, REPO_ROOT, runCli } from './helpers/cli.ts';
import { closeAll, metricValue, startGateway } from './helpers/gateway.ts';
import { postJson, send } from './helpers/http.ts';

after(killLeftovers);

describe('serve --api-key', () => {
  const fake = fakeVllmBin();

  it("guards the gateway with vLLM's key too, and says so at startup", { timeout: 30_000 }, async () => {
    const run = runCli([
      'serve', 'm', '--port', String(await freePort()), '--api-key', 'sk-vllm-secret',
      '--gateway-port', '0', '--gateway-host', '127.0.0.1', '--vllm-bin', fake.bin, '--upstream-ready-interval', '0.2',
    ]);
    const listening = await run.waitForLog('gateway listening');
    assert.equal(listening['client_keys'], "1 key from vLLM's --api-key (1 tenant) guard /v1/*");
    assert.equal(listening['upstream_key'], "from vLLM's --api-key");
    await run.waitForLog('vLLM is healthy');
    const url = `http://127.0.0.1:${portOf(listening)}/v1/responses`;
    const without = await postJson(url, { model: 'm', input: 'x' });
    assert.equal(without.status, 401);
    assert.equal(without.json().error.code, 'invalid_api_key');
    assert.equal((await postJson(url, { model: 'm', input: 'x' }, { authorization: 'Bearer sk-wrong' })).status, 401);
    assert.equal((await postJson(url, { model: 'm', input: 'x' }, { authorization: 'Bearer sk-vllm-secret' })).status, 200);
    run.child.kill('SIGTERM');
    assert.equal((await run.exited).code, 0);
    assert.ok(!run.stdout().includes('sk-vllm-secret'), 'the key is never logged');
  });

  it('--api-keys says otherwise', { timeout: 30_000 }, async () => {
    const run = runCli([
      'serve', 'm', '--port', String(await freePort()), '--api-key', 'sk-vllm-secret', '--api-keys', 'sk-client',
      '--gateway-port', '0', '--gateway-host', '127.0.0.1', '--vllm-bin', fake.bin, '--upstream-ready-interval', '0.2',
    ]);
    const listening = await run.waitForLog('gateway listening');
    assert.equal(listening['client_keys'], '1 key from --api-keys (1 tenant) guard /v1/*');
    await run.waitForLog('vLLM is healthy');
    const url = `http://127.0.0.1:${portOf(listening)}/v1/responses`;
    assert.equal((await postJson(url, { model: 'm', input: 'x' }, { authorization: 'Bearer sk-client' })).status, 200);
    assert.equal((await postJson(url, { model: 'm', input: 'x' }, { authorization: 'Bearer sk-vllm-secret' })).status, 401);
    run.child.kill('SIGTERM');
    assert.equal((await run.exited).code, 0);
  });
});

describe('serve, while vLLM loads its model', () => {
  const fake = fakeVllmBin();

  for (const workers of ['1', '2']) {
    it(`answers /health at once, /ready and vLLM's routes with 503 upstream_starting until it is up (--workers ${workers})`, { timeout: 30_000 }, async () => {
      const run = runCli(
        ['serve', 'm', '--port', String(await freePort()), '--gateway-port', '0', '--gateway-host', '127.0.0.1', '--workers', workers,
          '--vllm-bin', fake.bin, '--upstream-ready-interval', '0.2'],
        { SIM_STARTUP_DELAY_MS: '2500' },
      );
      const url = `http://127.0.0.1:${portOf(await run.waitForLog('gateway listening'))}`;
      assert.equal((await send(`${url}/health`)).status, 200);
      const ready = await send(`${url}/ready`);
      assert.equal(ready.status, 503);
      assert.equal(ready.json().error.code, 'upstream_starting');
      const early = await postJson(`${url}/v1/responses`, { model: 'm', input: 'too early' });
      assert.equal(early.status, 503);
      assert.equal(early.json().error.code, 'upstream_starting');
      assert.equal(early.headers['retry-after'], '5');
      await run.waitForLog('vLLM is healthy');
      // Every worker heard it: several requests, so both get some.
      for (let n = 0; n < 6; n++) assert.equal((await postJson(`${url}/v1/responses`, { model: 'm', input: `now ${n}` })).status, 200);
      assert.equal((await send(`${url}/ready`)).status, 200);
      run.child.kill('SIGTERM');
      assert.equal((await run.exited).code, 0);
    });
  }

  it("stops before spawning vLLM when its port already answers", { timeout: 30_000 }, async () => {
    const taken: Server = createServer((socket) => socket.end());
    const port = await new Promise<number>((resolve) => taken.listen(0, '127.0.0.1', () => resolve((taken.address() as { port: number }).port)));
    try {
      const argsFile = join(fake.dir, 'args-taken.json');
      const run = runCli(['serve', 'm', '--port', String(port), '--gateway-port', '0', '--vllm-bin', fake.bin], { SIM_ARGS_FILE: argsFile });
      assert.equal((await run.exited).code, 1);
      assert.match(run.stderr().trim(), new RegExp(`^responses-gateway: vLLM's port ${port} is already in use .*give vLLM another --port$`));
      assert.ok(!existsSync(argsFile), 'vLLM was never started');
    } finally {
      taken.close();
    }
  });
});

describe('the upstream key', () => {
  let sim: SimVllm;
  before(async () => {
    sim = await startSimVllm();
  });
  after(() => sim?.close());

  it('inherited from the shell is named at startup (never shown), and goes to vLLM', async () => {
    const run = runCli(['--llm-api-base', sim.url, '--gateway-port', '0', '--gateway-host', '127.0.0.1'], { OPENAI_API_KEY: 'sk-from-the-shell' });
    const listening = await run.waitForLog('gateway listening');
    assert.equal(listening['upstream_key'], 'from OPENAI_API_KEY in the environment');
    assert.equal(listening['client_keys'], 'none: /v1/* is open to anyone who reaches the port (see --api-keys)');
    const arrived = sim.nextRequest();
    await postJson(`http://127.0.0.1:${portOf(listening)}/v1/responses`, { model: 'm', input: 'x', store: false });
    assert.equal((await arrived).headers.authorization, 'Bearer sk-from-the-shell');
    run.child.kill('SIGTERM');
    await run.exited;
    assert.ok(!run.stdout().includes('sk-from-the-shell') && !run.stderr().includes('sk-from-the-shell'));
  });

  it('is none when nothing gives one', async () => {
    const run = runCli(['--llm-api-base', sim.url, '--gateway-port', '0', '--gateway-host', '127.0.0.1']);
    const listening = await run.waitForLog('gateway listening');
    assert.equal(listening['upstream_key'], "none (clients' Authorization goes to vLLM)");
    run.child.kill('SIGTERM');
    await run.exited;
  });
});

describe('startup', () => {
  it('suggests the flag meant: --port and --host are vLLM\'s', async () => {
    for (const [flag, meant] of [['--port', '--gateway-port'], ['--host', '--gateway-host'], ['--workrs', '--workers']] as const) {
      const run = runCli(['--llm-api-base', 'http://127.0.0.1:1', flag, '1']);
      assert.equal((await run.exited).code, 2);
      assert.equal(run.stderr().trim(), `responses-gateway: unknown option ${flag} (did you mean ${meant}?)`);
    }
  });

  it('names the store when its path cannot be created, and stops at once', async () => {
    const run = runCli(['--llm-api-base', 'http://127.0.0.1:1', '--gateway-port', '0', '--db-url', 'sqlite:/proc/self/no/such/responses.db']);
    assert.equal((await run.exited).code, 1);
    const line = run.stderr().trim();
    assert.match(line, /^responses-gateway: cannot open the store at sqlite:\/proc\/self\/no\/such\/responses\.db: .+ \(see --db-url\)$/);
    assert.ok(!line.includes('listen'), 'not blamed on the port');
  });

  it('names the default store under an unwritable home', async () => {
    const run = runCli(['--llm-api-base', 'http://127.0.0.1:1', '--gateway-port', '0'], { HOME: '/proc/self/nohome', DATABASE_URL: undefined });
    assert.equal((await run.exited).code, 1);
    assert.match(run.stderr().trim(), /^responses-gateway: cannot open the store at sqlite:\/proc\/self\/nohome\/\.responses-gateway\/responses\.db: .+ \(see --db-url\)$/);
  });

  it('says how long stored responses are kept: 30 days unless told', async () => {
    for (const [ttl, said] of [[undefined, '30 days (--store-ttl)'], ['0', 'forever (--store-ttl 0)'], ['7d', '7 days (--store-ttl)']] as const) {
      const run = runCli(['--llm-api-base', 'http://127.0.0.1:1', '--gateway-port', '0', '--gateway-host', '127.0.0.1', ...(ttl === undefined ? [] : ['--store-ttl', ttl])]);
      assert.equal((await run.waitForLog('gateway listening'))['retention'], said);
      run.child.kill('SIGTERM');
      await run.exited;
    }
  });
});

describe('a gateway pointed at itself', () => {
  it('answers 508 loop_detected at once instead of forwarding to itself until sockets run out, and is not ready', async () => {
    const port = await freePort();
    const gw = await startGateway(`http://127.0.0.1:${port}`, { 'gateway-port': String(port) });
    try {
      for (const [path, body] of [['/v1/responses', { model: 'm', input: 'x' }], ['/v1/models', undefined]] as const) {
        const answer = body === undefined ? await send(`${gw.url}${path}`) : await postJson(`${gw.url}${path}`, body);
        assert.equal(answer.status, 508, path);
        assert.equal(answer.json().error.code, 'loop_detected', path);
      }
      const ready = await send(`${gw.url}/ready`);
      assert.equal(ready.status, 503);
      assert.match(ready.json().error.message, /this gateway.*loop/);
      assert.equal(await metricValue(gw.url, 'gateway_http_requests_in_flight'), 0, 'nothing left hanging');
    } finally {
      await gw.close();
    }
  });

  it('with --workers 2, every worker knows the name: 508 whichever worker the request comes back to', { timeout: 30_000 }, async () => {
    const port = await freePort();
    // --upstream-api responses: no startup probe among the requests counted (auto's probe of itself: test/upstream-api.test.ts).
    const run = runCli(['--llm-api-base', `http://127.0.0.1:${port}`, '--gateway-port', String(port), '--gateway-host', '127.0.0.1', '--workers', '2', '--upstream-api', 'responses']);
    await run.waitForLog('gateway listening');
    for (let n = 0; n < 6; n++) {
      const answer = await postJson(`http://127.0.0.1:${port}/v1/responses`, { model: 'm', input: `x ${n}`, store: false });
      assert.equal(answer.status, 508);
      assert.equal(answer.json().error.code, 'loop_detected');
    }
    assert.equal(await requestsAnswered(`http://127.0.0.1:${port}`), 12, 'each came back once, never twice');
    run.child.kill('SIGTERM');
    assert.equal((await run.exited).code, 0);
  });

  it('and two gateways pointed at each other: 508, each request forwarded once each way', async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const a = await startGateway(`http://127.0.0.1:${portB}`, { 'gateway-port': String(portA), 'upstream-api': 'responses' });
    const b = await startGateway(`http://127.0.0.1:${portA}`, { 'gateway-port': String(portB), 'upstream-api': 'responses' });
    try {
      const answer = await postJson(`${a.url}/v1/responses`, { model: 'm', input: 'x', store: false });
      assert.equal(answer.status, 508);
      assert.equal(answer.json().error.code, 'loop_detected');
      assert.equal(await requestsAnswered(b.url), 1, 'B forwarded it once');
      assert.equal(await requestsAnswered(a.url), 2, 'A answered the client, then its own request back with 508');
    } finally {
      await closeAll(a, b);
    }
  });

  it('forwards a Via that names another gateway, adding its own', async () => {
    const sim = await startSimVllm();
    const gw = await startGateway(sim.url);
    try {
      const arrived = sim.nextRequest();
      assert.equal((await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'x', store: false }, { via: '1.1 rg-000000000000' })).status, 200);
      assert.match(String((await arrived).headers.via), /^1\.1 rg-000000000000, 1\.1 rg-[0-9a-f]{12}$/);
    } finally {
      await closeAll(gw, sim);
    }
  });
});

/** Requests a gateway has answered, every route and status. */
async function requestsAnswered(baseUrl: string): Promise<number> {
  const text = (await send(`${baseUrl}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) if (line.startsWith('gateway_http_requests_total{')) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  return total;
}

describe('the command inside the checkout', () => {
  it('npm start -- <flags> runs it', () => {
    const result = spawnSync('npm', ['start', '--silent', '--', '--version'], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.trim(), packageVersion());
  });

  it("npx responses-gateway: npm prepares the checkout in its cache without rebuilding it, keeping short the moment an interrupt could break that cache", { timeout: 120_000 }, () => {
    // Make the build current first (a no-op where it is), then watch npx not redo it.
    const prepared = spawnSync(process.execPath, ['scripts/prepare.mjs'], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.equal(prepared.status, 0, prepared.stderr);
    const stamp = join(REPO_ROOT, 'dist', '.built');
    const builtAt = statSync(stamp).mtimeMs;
    const cache = mkdtempSync(join(tmpdir(), 'rg-npx-cache-'));
    try {
      const result = spawnSync('npx', ['--offline', 'responses-gateway', '--version'], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        env: { ...process.env, npm_config_cache: cache, npm_config_update_notifier: 'false', npm_config_loglevel: 'info' },
      });
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.stdout.trim(), packageVersion());
      assert.match(result.stderr, /prepare/, 'npm ran the prepare script in its cache (if it no longer does, this test can go)');
      assert.equal(statSync(stamp).mtimeMs, builtAt, 'the build was not redone');
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });
});

function packageVersion(): string {
  return (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}
