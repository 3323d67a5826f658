// What the gateway prints, read as its users read it: one line per request on a
// terminal, JSON lines for a collector (no field twice), probes kept out, upstream
// failures in one line, and a shutdown that says what it waits for.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { startSimVllm, type SimVllm } from '../sim/vllm-sim.ts';
import { findExecutable } from '../src/cli/vllm-process.ts';
import { fakeVllmBin, freePort, killLeftovers, portOf, REPO_ROOT, runCli, toolSkip } from './helpers/cli.ts';
import { openRequest, postJson, send } from './helpers/http.ts';

after(killLeftovers);

let sim: SimVllm;
before(async () => {
  sim = await startSimVllm();
});
after(() => sim?.close());

const local = ['--gateway-port', '0', '--gateway-host', '127.0.0.1'];
const ESCAPE = '\x1b[';

/** The keys of a JSON object's top level, repeats included (JSON.parse keeps the last). */
function topLevelKeys(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"') {
      let end = i + 1;
      while (line[end] !== '"') end += line[end] === '\\' ? 2 : 1;
      if (depth === 1 && line[end + 1] === ':') keys.push(JSON.parse(line.slice(i, end + 1)) as string);
      i = end;
    } else if (c === '{' || c === '[') depth += 1;
    else if (c === '}' || c === ']') depth -= 1;
  }
  return keys;
}

describe('--log-format pretty', () => {
  it('prints one line per request: method, path, status, duration, streamed, request id', { timeout: 30_000 }, async () => {
    const run = runCli(['--llm-api-base', sim.url, ...local, '--log-format', 'pretty']);
    const listening = await run.waitForLine(/ INFO {2}gateway listening /);
    assert.match(listening, /^\d\d:\d\d:\d\d\.\d{3} INFO {2}gateway listening url=http:\/\/127\.0\.0\.1:\d+ /);
    const url = /url=(\S+)/.exec(listening)?.[1] as string;
    await send(`${url}/health`);
    const streamed = await postJson(`${url}/v1/responses`, { model: 'm', input: 'x', stream: true }, { 'x-request-id': 'req-pretty-1' });
    assert.equal(streamed.status, 200);
    const line = await run.waitForLine(/req=req-pretty-1$/);
    assert.match(line, /^\d\d:\d\d:\d\d\.\d{3} INFO {2}POST \/v1\/responses 200 \d+(\.\d)? ms streamed req=req-pretty-1$/);
    await postJson(`${url}/v1/responses`, { model: 'm', input: 'x' }, { 'x-request-id': 'req-pretty-2' });
    assert.match(await run.waitForLine(/req=req-pretty-2$/), / POST \/v1\/responses 200 \d+(\.\d)? ms req=req-pretty-2$/);
    assert.ok(!run.stdout().includes('/health'), 'probes are not logged at info');
    assert.ok(!run.stdout().includes(ESCAPE), 'no colour when stdout is not a terminal');
    assert.ok(!run.stdout().includes('{"'), 'no JSON line');
    run.child.kill('SIGTERM');
    assert.equal((await run.exited).code, 0);
  });

  it('says an upstream failure in one WARN line: the cause, no stack trace', { timeout: 30_000 }, async () => {
    const run = runCli(['--llm-api-base', `http://127.0.0.1:${await freePort()}`, ...local, '--log-format', 'pretty']);
    const url = /url=(\S+)/.exec(await run.waitForLine(/gateway listening/))?.[1] as string;
    await postJson(`${url}/v1/responses`, { model: 'm', input: 'x' }, { 'x-request-id': 'req-down' });
    await run.waitForLine(/req=req-down$/);
    const warn = await run.waitForLine(/ WARN {2}upstream exchange failed /);
    assert.match(warn, /kind=connect_refused code=upstream_connection_refused cause="connect ECONNREFUSED 127\.0\.0\.1:\d+" hint=/);
    assert.match(await run.waitForLine(/req=req-down$/), / POST \/v1\/responses 502 .* error=upstream_connection_refused req=req-down$/);
    assert.ok(!/^\s+at /m.test(run.stdout()), 'no stack frame');
    run.child.kill('SIGTERM');
    await run.exited;
  });

  const noTerminal = toolSkip(findExecutable('script') !== undefined, 'script(1) is not installed: no pseudo-terminal to test on');
  it('is what a terminal gets by default, in colour unless NO_COLOR', { timeout: 30_000, skip: noTerminal }, async () => {
    // util-linux's script(1) runs the command on a pseudo-terminal, as a user's shell would.
    for (const noColour of [false, true]) {
      const command = `${process.execPath} --import tsx src/cli/main.ts --llm-api-base ${sim.url} --gateway-port 0 --gateway-host 127.0.0.1`;
      const child = spawn('script', ['-qfec', command, '/dev/null'], {
        cwd: REPO_ROOT,
        env: { ...process.env, DATABASE_URL: 'sqlite::memory:', NO_COLOR: noColour ? '1' : '', TERM: 'xterm' },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let out = '';
      const listening = new Promise<void>((resolve) => {
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('gateway listening')) resolve();
        });
      });
      await listening;
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      const line = out.split('\n').find((candidate) => candidate.includes('gateway listening')) as string;
      assert.ok(!line.trimStart().startsWith('{'), `a readable line, not JSON: ${line}`);
      assert.equal(line.includes(ESCAPE), !noColour, line);
    }
  });
});

describe('--log-format json (the default off a terminal)', () => {
  it('writes JSON lines with no field twice: startup, vLLM, requests, failures, shutdown', { timeout: 30_000 }, async () => {
    const fake = fakeVllmBin();
    const run = runCli(['serve', 'm', '--port', String(await freePort()), ...local, '--vllm-bin', fake.bin, '--upstream-ready-interval', '0.2']);
    const url = `http://127.0.0.1:${portOf(await run.waitForLog('gateway listening'))}`;
    await run.waitForLog('vLLM is healthy');
    await postJson(`${url}/v1/responses`, { model: 'm', input: 'x' });
    await postJson(`${url}/v1/responses`, { model: 'm', input: 'x' }, { 'x-sim': 'reset-before-headers' });
    await run.waitForLogs((line) => line['msg'] === 'request', 2);
    run.child.kill('SIGTERM');
    assert.equal((await run.exited).code, 0);
    // vLLM's own output shares stdout: the gateway's lines are the JSON ones.
    const lines = run.stdout().split('\n').filter((line) => line.startsWith('{'));
    const messages = lines.map((line) => (JSON.parse(line) as { msg: string }).msg);
    for (const expected of ['gateway listening', 'starting vLLM', 'vLLM is healthy', 'request', 'upstream exchange failed', 'shutting down: nothing in flight', 'gateway stopped']) {
      assert.ok(messages.includes(expected), `${expected} in ${messages.join(' | ')}`);
    }
    for (const line of lines) {
      const keys = topLevelKeys(line);
      assert.deepEqual(keys, [...new Set(keys)], `a field twice: ${line}`);
    }
  });
});

describe('--access-log and probes', () => {
  it('--access-log off leaves out request lines, and only them', { timeout: 30_000 }, async () => {
    const run = runCli(['--llm-api-base', sim.url, ...local, '--access-log', 'off']);
    const url = `http://127.0.0.1:${portOf(await run.waitForLog('gateway listening'))}`;
    assert.equal((await postJson(`${url}/v1/responses`, { model: 'm', input: 'x' }, { 'x-sim': 'status=500' })).status, 500);
    run.child.kill('SIGTERM');
    await run.exited;
    const messages = run.logs().map((line) => line['msg']);
    assert.ok(messages.includes('gateway stopped'));
    assert.ok(!messages.includes('request'), messages.join(' | '));
  });

  it('/health and /ready are logged at --log-level debug, as debug lines', { timeout: 30_000 }, async () => {
    const run = runCli(['--llm-api-base', sim.url, ...local, '--log-level', 'debug']);
    const url = `http://127.0.0.1:${portOf(await run.waitForLog('gateway listening'))}`;
    await send(`${url}/health`);
    await send(`${url}/ready`);
    const probes = await run.waitForLogs((line) => line['msg'] === 'request', 2);
    assert.deepEqual(probes.map((line) => [line['path'], line['level']]), [['/health', 20], ['/ready', 20]]);
    run.child.kill('SIGTERM');
    await run.exited;
  });
});

describe('shutdown', () => {
  for (const workers of ['1', '2']) {
    it(`says what it waits for, and a second Ctrl-C stops at once (--workers ${workers})`, { timeout: 30_000 }, async () => {
      const run = runCli(['--llm-api-base', sim.url, ...local, '--workers', workers]);
      const url = `http://127.0.0.1:${portOf(await run.waitForLog('gateway listening'))}`;
      // A stream under way that will not end by itself, and a request waiting on vLLM.
      const stream = await openRequest(`${url}/v1/responses`, {
        method: 'POST',
        body: JSON.stringify({ model: 'm', input: 'x', stream: true }),
        headers: { 'content-type': 'application/json', 'x-sim': 'stall-after=2' },
      });
      const arrived = sim.nextRequest();
      const waiting = openRequest(`${url}/v1/responses`, {
        method: 'POST',
        body: JSON.stringify({ model: 'm', input: 'x' }),
        headers: { 'content-type': 'application/json', 'x-sim': 'delay-headers=20000' },
      }).catch(() => undefined);
      assert.equal(stream.statusCode, 200);
      await arrived;
      run.child.kill('SIGINT');
      const said = await run.waitForLogs((line) => String(line['msg']).startsWith('shutting down'), 1);
      assert.equal(said[0]?.['msg'], 'shutting down: 2 requests in flight (1 stream), waiting up to 30 s; Ctrl-C again to stop now');
      run.child.kill('SIGINT');
      assert.equal((await run.exited).code, 1);
      assert.match(run.stderr(), /SIGINT again: stopping immediately/);
      stream.destroy();
      await waiting;
    });
  }
});

describe('the JSON log writer', () => {
  /** The numbers of the JSON lines a child wrote, in the order they came. */
  function numbers(out: string): number[] {
    return out
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => (JSON.parse(line) as { n: number }).n);
  }

  it('writes every line once, in order, across many batches, and flushes the rest at exit', { timeout: 30_000 }, async () => {
    // 3,000 lines are far more than one 8 KiB batch, and some are not ASCII.
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/log-lines.ts', '3000', 'exit'], { cwd: REPO_ROOT });
    let out = '';
    // Decoded as a stream: a character split between two chunks stays whole.
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => (out += chunk));
    const [code] = await Promise.all([
      new Promise<number | null>((resolve) => child.once('exit', resolve)),
      new Promise((resolve) => child.stdout.once('close', resolve)),
    ]);
    assert.equal(code, 0);
    assert.deepEqual(numbers(out), Array.from({ length: 3000 }, (_, n) => n));
  });

  it('delivers the lines of a quiet process without its exit', { timeout: 30_000 }, async () => {
    // Less than a batch: only the periodic flush sends them; the child is then killed,
    // which runs no exit hook.
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/log-lines.ts', '3', 'stay'], { cwd: REPO_ROOT });
    let out = '';
    child.stdout.setEncoding('utf8');
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (chunk: string) => {
        out += chunk;
        if (numbers(out).length === 3) resolve();
      });
    });
    child.kill('SIGKILL');
    assert.deepEqual(numbers(out), [0, 1, 2]);
  });
});

