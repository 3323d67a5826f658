// The `responses-gateway` command as users run it: flags, environment, validation,
// `serve` with a stand-in vLLM, signals, and --workers.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FLAG_SPECS } from '../src/config/flags.ts';
import { findExecutable } from '../src/cli/vllm-process.ts';
import { startSimVllm, type SimVllm } from '../sim/vllm-sim.ts';
import { fakeVllmBin, freePort, killLeftovers, portOf, REPO_ROOT, runCli, toolSkip, type CliRun } from './helpers/cli.ts';
import { ChunkReader, openRequest, parseSse, postJson, send } from './helpers/http.ts';

after(killLeftovers);

/** Starts a slow stream through a gateway the CLI started, sends SIGTERM once it has
 * begun, and returns every event the client received. */
async function sigtermDuringStream(run: CliRun, serving: 'standalone' | 'serve'): Promise<ReturnType<typeof parseSse>> {
  const port = portOf(await run.waitForLog('gateway listening'));
  // serve: the gateway listens before vLLM is up; requests for vLLM wait for it.
  if (serving === 'serve') await run.waitForLog('vLLM is healthy');
  const res = await openRequest(`http://127.0.0.1:${port}/v1/responses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-sim': 'slow=30;deltas=20' },
    body: '{"model":"m","input":"x","stream":true}',
  });
  const reader = new ChunkReader(res);
  const first = await reader.until('response.created');
  run.child.kill('SIGTERM');
  return parseSse(first + (await reader.rest()));
}

/** Whether `pid` is gone within `withinMs` (it is not our child: no exit event to await). */
async function processGone(pid: number, withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

describe('flags and validation', () => {
  it('--help lists every flag with its variable and default', { timeout: 30_000 }, async () => {
    const run = runCli(['--help']);
    assert.equal((await run.exited).code, 0);
    for (const spec of FLAG_SPECS) {
      assert.ok(run.stdout().includes(`--${spec.name}`), `--${spec.name} missing from --help`);
      assert.ok(run.stdout().includes(spec.env), `${spec.env} missing from --help`);
    }
  });

  it('without an upstream, stops with one line naming --llm-api-base and exit code 2', { timeout: 30_000 }, async () => {
    const run = runCli([]);
    assert.equal((await run.exited).code, 2);
    const lines = run.stderr().trim().split('\n');
    assert.equal(lines.length, 1);
    assert.match(lines[0] as string, /--llm-api-base/);
    assert.doesNotMatch(run.stderr(), /at .*\.ts:\d+/, 'no stack trace');
  });

  it('names the flag, or its variable, that holds a bad value', { timeout: 30_000 }, async () => {
    const badPort = runCli(['--llm-api-base', 'http://127.0.0.1:1', '--gateway-port', '99999']);
    assert.equal((await badPort.exited).code, 2);
    assert.match(badPort.stderr(), /--gateway-port/);
    const badEnv = runCli([], { GATEWAY_LLM_API_BASE: 'http://127.0.0.1:1', GATEWAY_UPSTREAM_IDLE_TIMEOUT: '-5' });
    assert.equal((await badEnv.exited).code, 2);
    assert.match(badEnv.stderr(), /--upstream-idle-timeout \(from GATEWAY_UPSTREAM_IDLE_TIMEOUT\)/);
  });
});

describe('standalone', () => {
  let sim: SimVllm;
  before(async () => {
    sim = await startSimVllm();
  });
  after(() => sim?.close());

  it('serves in front of a running vLLM (environment beats nothing, flag beats environment)', { timeout: 30_000 }, async () => {
    const run = runCli(['--gateway-port', '0', '--gateway-host', '127.0.0.1', '--llm-api-base', `${sim.url}/v1/`], {
      GATEWAY_LLM_API_BASE: 'http://127.0.0.1:9',
    });
    const listening = await run.waitForLog('gateway listening');
    assert.equal(listening['upstream'], sim.url, 'the flag won over the variable; /v1/ is dropped');
    const res = await postJson(`http://127.0.0.1:${portOf(listening)}/v1/responses`, { model: 'm', input: 'hi' });
    assert.equal(res.status, 200);
    run.child.kill('SIGTERM');
    assert.equal((await run.exited).code, 0);
  });

  it('on SIGTERM lets a stream in flight finish, then exits 0', { timeout: 20_000 }, async () => {
    const run = runCli(['--gateway-port', '0', '--gateway-host', '127.0.0.1', '--llm-api-base', sim.url]);
    const events = await sigtermDuringStream(run, 'standalone');
    assert.equal(events.at(-2)?.event, 'response.completed');
    assert.equal(events.at(-1)?.data, '[DONE]');
    assert.equal((await run.exited).code, 0);
  });

  it('exits when its stdout reader has gone away', { timeout: 20_000 }, async (t) => {
    // `responses-gateway | collector`, the collector dead: log lines left at exit meet a
    // broken pipe. pino's sonic-boom 4 retried that write forever; the process never exited.
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/log-at-exit.ts'], {
      cwd: REPO_ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    t.after(() => child.kill('SIGKILL'));
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = once(child, 'exit');
    child.stdout.destroy();
    await once(child.stdout, 'close');
    child.stdin.write('go\n');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0);
    assert.equal(stderr, '', 'no stack trace for a broken log pipe');
  });

  it('--workers 2: two processes serve one port', { timeout: 30_000 }, async () => {
    const run = runCli(['--gateway-port', '0', '--gateway-host', '127.0.0.1', '--workers', '2', '--llm-api-base', sim.url]);
    const port = portOf(await run.waitForLog('gateway listening'));
    for (let i = 0; i < 20; i++) {
      const res = await postJson(`http://127.0.0.1:${port}/v1/responses`, { model: 'm', input: `n${i}` });
      assert.equal(res.status, 200);
    }
    const metrics = await send(`http://127.0.0.1:${port}/metrics`);
    assert.match(metrics.text(), /gateway_http_requests_total\{route="\/v1\/responses",method="POST",status="200"\} 20/,
      'metrics are summed over the workers');
    const served = await run.waitForLogs((line) => line['path'] === '/v1/responses', 20);
    const servedBy = new Set(served.map((line) => line['pid']));
    assert.equal(servedBy.size, 2, 'both workers served requests');
    run.child.kill('SIGTERM');
    assert.equal((await run.exited).code, 0);
  });
});

describe('serve <model>', () => {
  const fake = fakeVllmBin();

  it('starts vLLM with the model, its port and the flags it does not own, and waits for it', { timeout: 30_000 }, async () => {
    const vllmPort = await freePort();
    const argsFile = join(fake.dir, 'args-1.json');
    const run = runCli(
      ['serve', 'Qwen/Qwen3-0.6B', '--port', String(vllmPort), '--max-model-len', '4096', '--enforce-eager',
        '--gateway-port', '0', '--gateway-host', '127.0.0.1', '--vllm-bin', fake.bin, '--upstream-ready-interval', '0.2'],
      { SIM_STARTUP_DELAY_MS: '1500', SIM_ARGS_FILE: argsFile },
    );
    const waiting = await run.waitForLog('waiting for vLLM to become healthy');
    assert.equal(typeof waiting['last_probe'], 'string');
    await run.waitForLog('vLLM is healthy');
    const port = portOf(await run.waitForLog('gateway listening'));
    assert.deepEqual(JSON.parse(readFileSync(argsFile, 'utf8')), [
      'serve', 'Qwen/Qwen3-0.6B', '--port', String(vllmPort), '--max-model-len', '4096', '--enforce-eager',
    ]);
    const res = await postJson(`http://127.0.0.1:${port}/v1/responses`, { model: 'Qwen/Qwen3-0.6B', input: 'hi' });
    assert.equal(res.status, 200);
    run.child.kill('SIGTERM');
    assert.equal((await run.exited).code, 0);
  });

  it('gives up after --upstream-ready-timeout with one line and exit code 1, stopping vLLM', { timeout: 30_000 }, async () => {
    const sigtermFile = join(fake.dir, 'sigterm-2');
    const run = runCli(
      ['serve', 'm', '--port', String(await freePort()), '--gateway-port', '0', '--vllm-bin', fake.bin,
        '--upstream-ready-timeout', '1', '--upstream-ready-interval', '0.2'],
      { SIM_UNHEALTHY: '1', SIM_SIGTERM_FILE: sigtermFile },
    );
    assert.equal((await run.exited).code, 1);
    const lines = run.stderr().trim().split('\n');
    assert.equal(lines.length, 1);
    assert.match(lines[0] as string, /did not become healthy within 1s/);
    // The fake vLLM may be killed before its SIGTERM handler is installed (a loaded
    // machine starts it slowly): either it saw the signal or the signal killed it.
    const stopped = run.logs().find((line) => line['msg'] === 'vLLM stopped');
    assert.ok(stopped, 'the gateway says how vLLM stopped');
    assert.ok(existsSync(sigtermFile) || stopped['status'] === 'was killed by SIGTERM',
      `vLLM was sent SIGTERM (${String(stopped['status'])})`);
  });

  it('says so when the vLLM executable is missing', { timeout: 30_000 }, async () => {
    const run = runCli(['serve', 'm', '--gateway-port', '0', '--vllm-bin', join(fake.dir, 'no-such-vllm')]);
    assert.equal((await run.exited).code, 1);
    assert.match(run.stderr(), /could not start .*no-such-vllm.*not found/);
  });

  it('exits non-zero with vLLM\'s exit status when vLLM dies', { timeout: 30_000 }, async () => {
    const run = runCli(
      ['serve', 'm', '--port', String(await freePort()), '--gateway-port', '0', '--vllm-bin', fake.bin,
        '--upstream-ready-interval', '0.2'],
      { SIM_EXIT_CODE_ON_SIGUSR2: '3' },
    );
    const healthy = await run.waitForLog('vLLM is healthy');
    await run.waitForLog('gateway listening');
    process.kill(Number(healthy['vllm_pid']), 'SIGUSR2');
    const { code } = await run.exited;
    assert.notEqual(code, 0);
    assert.match(run.stderr(), /vLLM exited with code 3/);
  });

  const noSetpriv = toolSkip(
    process.platform === 'linux' && findExecutable('setpriv') !== undefined,
    'needs Linux and util-linux setpriv (the parent-death signal)',
  );
  it('when the gateway is killed with SIGKILL, vLLM is stopped too (Linux)', { timeout: 30_000, skip: noSetpriv }, async () => {
    const sigtermFile = join(fake.dir, 'sigterm-orphan');
    const run = runCli(
      ['serve', 'm', '--port', String(await freePort()), '--gateway-port', '0', '--gateway-host', '127.0.0.1',
        '--vllm-bin', fake.bin, '--upstream-ready-interval', '0.2'],
      { SIM_SIGTERM_FILE: sigtermFile },
    );
    const vllmPid = Number((await run.waitForLog('vLLM is healthy'))['vllm_pid']);
    await run.waitForLog('gateway listening');
    run.child.kill('SIGKILL'); // no handler runs: only the kernel can tell vLLM
    assert.equal((await run.exited).signal, 'SIGKILL');
    assert.equal(await processGone(vllmPid, 20_000), true, 'vLLM did not outlive the gateway');
    assert.equal(readFileSync(sigtermFile, 'utf8'), 'SIGTERM', 'vLLM was asked to stop with SIGTERM');
  });

  it('on SIGTERM finishes the request in flight, stops vLLM, and exits 0', { timeout: 30_000 }, async () => {
    const sigtermFile = join(fake.dir, 'sigterm-5');
    const run = runCli(
      ['serve', 'm', '--port', String(await freePort()), '--gateway-port', '0', '--gateway-host', '127.0.0.1',
        '--vllm-bin', fake.bin, '--upstream-ready-interval', '0.2'],
      { SIM_SIGTERM_FILE: sigtermFile },
    );
    const events = await sigtermDuringStream(run, 'serve');
    assert.equal(events.at(-2)?.event, 'response.completed', 'the stream ran to its end');
    assert.equal((await run.exited).code, 0);
    assert.equal(readFileSync(sigtermFile, 'utf8'), 'SIGTERM', 'vLLM was stopped with SIGTERM');
    assert.ok(
      run.logs().findIndex((line) => line['msg'] === 'stopping vLLM') >
        run.logs().findIndex((line) => line['path'] === '/v1/responses'),
      'vLLM was stopped after the request finished',
    );
  });
});
