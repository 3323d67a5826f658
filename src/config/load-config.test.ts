import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseCommandLine, type Config } from './load-config.ts';

function run(argv: string[], env: Record<string, string> = {}): Config {
  const command = parseCommandLine(argv, env);
  assert.equal(command.kind, 'run');
  return (command as { config: Config }).config;
}

function problem(argv: string[], env: Record<string, string> = {}): string {
  try {
    parseCommandLine(argv, env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    assert.ok(!error.message.includes('\n'), 'the message is one line');
    return error.message;
  }
  assert.fail('expected a ConfigError');
}

describe('command line', () => {
  it('takes the upstream with or without /v1 and a trailing slash', () => {
    for (const base of ['http://h:8000', 'http://h:8000/', 'http://h:8000/v1', 'http://h:8000/v1/']) {
      const config = run(['--llm-api-base', base]);
      assert.equal(config.upstream.origin, 'http://h:8000');
      assert.equal(config.upstream.basePath, '');
    }
    assert.equal(run(['--llm-api-base', 'http://h/prefix/v1']).upstream.basePath, '/prefix');
  });

  it('has the documented defaults', () => {
    const config = run(['--llm-api-base', 'http://h:8000']);
    assert.equal(config.server.host, '0.0.0.0');
    assert.equal(config.server.port, 9000);
    assert.equal(config.server.workers, 1);
    assert.equal(config.server.maxBodyBytes, 10 * 1024 * 1024);
    assert.deepEqual(config.server.corsOrigins, ['*']);
    assert.equal(config.server.shutdownTimeoutMs, 30_000);
    assert.equal(config.upstream.connectTimeoutMs, 10_000);
    assert.equal(config.upstream.headersTimeoutMs, 600_000);
    assert.equal(config.upstream.idleTimeoutMs, 300_000);
    assert.equal(config.upstream.apiKey, undefined);
    assert.equal(config.logLevel, 'info');
    assert.ok(Object.isFrozen(config.server));
  });

  it('reads environment variables and lets a flag beat its variable', () => {
    const env = { GATEWAY_LLM_API_BASE: 'http://env:1', GATEWAY_PORT: '9100', OPENAI_API_KEY: ' sk-env ' };
    const fromEnv = run([], env);
    assert.equal(fromEnv.upstream.origin, 'http://env:1');
    assert.equal(fromEnv.server.port, 9100);
    assert.equal(fromEnv.upstream.apiKey, 'sk-env', 'the key is trimmed');
    const flagWins = run(['--gateway-port=9200', '--llm-api-base', 'http://flag:2', '--openai-api-key', 'sk-flag'], env);
    assert.equal(flagWins.server.port, 9200);
    assert.equal(flagWins.upstream.origin, 'http://flag:2');
    assert.equal(flagWins.upstream.apiKey, 'sk-flag');
  });

  it('treats an empty key as no key', () => {
    assert.equal(run(['--llm-api-base', 'http://h'], { OPENAI_API_KEY: '   ' }).upstream.apiKey, undefined);
  });

  it('parses durations and sizes with units', () => {
    const config = run([
      '--llm-api-base', 'http://h',
      '--upstream-idle-timeout', '1.5',
      '--upstream-connect-timeout', '250ms',
      '--shutdown-timeout', '2m',
      '--max-body-size', '512KiB',
    ]);
    assert.equal(config.upstream.idleTimeoutMs, 1500);
    assert.equal(config.upstream.connectTimeoutMs, 250);
    assert.equal(config.server.shutdownTimeoutMs, 120_000);
    assert.equal(config.server.maxBodyBytes, 512 * 1024);
  });

  it('names the flag in every validation message', () => {
    assert.match(problem([]), /--llm-api-base/);
    assert.match(problem(['--llm-api-base', 'not a url']), /--llm-api-base/);
    assert.match(problem(['--llm-api-base', 'ftp://h']), /--llm-api-base/);
    assert.match(problem(['--llm-api-base', 'http://h', '--gateway-port', '70000']), /--gateway-port.*70000/);
    assert.match(problem(['--llm-api-base', 'http://h', '--gateway-port', 'abc']), /--gateway-port/);
    for (const bad of ['0', '-1', 'abc', '']) {
      assert.match(problem(['--llm-api-base', 'http://h', '--upstream-idle-timeout', bad]), /--upstream-idle-timeout/);
    }
    assert.match(problem(['--llm-api-base', 'http://h', '--workers', '0']), /--workers/);
    assert.match(problem(['--llm-api-base', 'http://h', '--max-body-size', '10 parsecs']), /--max-body-size/);
    assert.match(problem(['--llm-api-base', 'http://h', '--log-level', 'loud']), /--log-level/);
    assert.match(problem(['--llm-api-base', 'http://h', '--bogus']), /--bogus/);
    assert.match(problem(['--llm-api-base', 'http://h', '--gateway-port']), /--gateway-port needs a value/);
  });

  it('says which environment variable held a bad value', () => {
    assert.match(problem(['--llm-api-base', 'http://h'], { GATEWAY_PORT: '99999' }), /--gateway-port \(from GATEWAY_PORT\)/);
  });

  it('serve: passes vLLM flags through and points itself at vLLM\'s port', () => {
    const config = run([
      'serve', 'Qwen/Qwen3-8B', '--port', '8123', '--tensor-parallel-size', '2',
      '--gateway-port', '9001', '--enable-auto-tool-choice', '--max-model-len=4096',
    ]);
    assert.equal(config.mode, 'serve');
    assert.equal(config.serve?.model, 'Qwen/Qwen3-8B');
    assert.equal(config.serve?.port, 8123);
    assert.deepEqual(config.serve?.vllmArgs, ['--tensor-parallel-size', '2', '--enable-auto-tool-choice', '--max-model-len=4096']);
    assert.equal(config.server.port, 9001);
    assert.equal(config.upstream.origin, 'http://127.0.0.1:8123');
    assert.equal(config.serve?.readyIntervalMs, 2000);
    assert.equal(config.serve?.readyTimeoutMs, 600_000);
    assert.equal(config.serve?.vllmBin, 'vllm');
  });

  it('serve: defaults vLLM to port 8000 and uses its --api-key upstream', () => {
    const config = run(['serve', 'm', '--api-key', 'sk-vllm']);
    assert.equal(config.upstream.origin, 'http://127.0.0.1:8000');
    assert.equal(config.upstream.apiKey, 'sk-vllm');
    assert.deepEqual(config.serve?.vllmArgs, ['--api-key', 'sk-vllm']);
  });

  it('serve: needs a model, a valid port, and no --llm-api-base', () => {
    assert.match(problem(['serve']), /serve needs a model/);
    assert.match(problem(['serve', 'm', '--port', '0']), /--port/);
    assert.match(problem(['serve', 'm', '--llm-api-base', 'http://h']), /--llm-api-base/);
  });

  it('answers --help and --version', () => {
    assert.deepEqual(parseCommandLine(['--help'], {}), { kind: 'help' });
    assert.deepEqual(parseCommandLine(['serve', 'm', '-h'], {}), { kind: 'help' });
    assert.deepEqual(parseCommandLine(['--version'], {}), { kind: 'version' });
  });
});

describe('--upstream-api', () => {
  it('is auto by default, responses under serve, and takes responses or chat', () => {
    assert.equal(run(['--llm-api-base', 'http://h:8000']).upstream.api, 'auto');
    assert.equal(run(['serve', 'some/model']).upstream.api, 'responses', 'serve starts vLLM: no need to ask');
    assert.equal(run(['serve', 'some/model', '--upstream-api', 'chat']).upstream.api, 'chat');
    assert.equal(run(['--llm-api-base', 'http://h:8000', '--upstream-api', 'CHAT']).upstream.api, 'chat');
    assert.equal(run(['--llm-api-base', 'http://h:8000'], { GATEWAY_UPSTREAM_API: 'responses' }).upstream.api, 'responses');
  });

  it('refuses other values, and chat with --passthrough-raw', () => {
    assert.match(problem(['--llm-api-base', 'http://h:8000', '--upstream-api', 'completions']), /invalid --upstream-api: "completions" is not responses, chat or auto/);
    assert.match(problem(['--llm-api-base', 'http://h:8000', '--upstream-api', 'chat', '--passthrough-raw']), /--passthrough-raw .* --upstream-api chat/);
  });
});
