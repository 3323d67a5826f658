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

  it('keeps 64 MiB of contexts by default; 0 keeps none, and a size that is none is refused', () => {
    assert.equal(run(['--llm-api-base', 'http://h']).state.contextCacheBytes, 64 * 1024 * 1024);
    assert.equal(run(['--llm-api-base', 'http://h', '--context-cache-size', '0']).state.contextCacheBytes, 0);
    assert.equal(run(['--llm-api-base', 'http://h'], { GATEWAY_CONTEXT_CACHE_SIZE: '8MiB' }).state.contextCacheBytes, 8 * 1024 * 1024);
    for (const bad of ['-1', 'lots', '']) {
      assert.match(problem(['--llm-api-base', 'http://h', '--context-cache-size', bad]), /--context-cache-size/);
    }
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

describe('several replicas', () => {
  it('takes --llm-api-base repeated or as a comma list, in order, and refuses one named twice', () => {
    const repeated = run(['--llm-api-base', 'http://a:8000', '--llm-api-base', 'http://b:8000/v1']);
    assert.deepEqual(repeated.upstream.replicas, [
      { origin: 'http://a:8000', basePath: '' },
      { origin: 'http://b:8000', basePath: '' },
    ]);
    assert.equal(repeated.upstream.origin, 'http://a:8000');
    assert.deepEqual(run(['--llm-api-base', 'http://a:8000, http://c:8000/p']).upstream.replicas, [
      { origin: 'http://a:8000', basePath: '' },
      { origin: 'http://c:8000', basePath: '/p' },
    ]);
    assert.equal(problem(['--llm-api-base', 'http://a:8000,http://a:8000/v1']), 'invalid --llm-api-base: "http://a:8000/v1" is named twice');
    assert.match(problem(['--llm-api-base', 'http://a:8000,ftp://b']), /must use http/);
  });

  it('has health checks every 5 s, a 30 s slow start and affinity on by default', () => {
    const { upstream } = run(['--llm-api-base', 'http://a:8000,http://b:8000']);
    assert.equal(upstream.healthIntervalMs, 5_000);
    assert.equal(upstream.slowStartMs, 30_000);
    assert.equal(upstream.affinity, true);
    assert.equal(run(['--llm-api-base', 'http://a:8000', '--upstream-affinity', 'off']).upstream.affinity, false);
  });
});

describe('--config', () => {
  const files: Record<string, string> = {
    '/etc/gw.yaml': ['llm-api-base:', '  - http://gpu1:8000', '  - http://gpu2:8000', 'max-concurrent: 512', 'upstream-affinity: false', 'cors-origins: [https://a.example, https://b.example]', 'log-level:'].join('\n'),
    '/etc/gw.toml': ['llm_api_base = ["http://gpu1:8000"]', 'db_url = "postgres://u@db/x"', 'workers = 2', 'store_ttl = "7d"'].join('\n'),
    '/etc/gw.json': JSON.stringify({ 'llm-api-base': 'http://gpu1:8000', 'api-keys': 'sk-a sk-b' }),
    '/etc/unknown.yaml': 'llm-api-bsae: http://x',
    '/etc/bad-value.yaml': 'llm-api-base: http://x\nmax-concurrent: many',
    '/etc/nested.yaml': 'llm-api-base: {url: http://x}',
    '/etc/list.yaml': '- llm-api-base',
    '/etc/broken.yaml': 'llm-api-base: [http://x',
    '/etc/gw.ini': 'llm-api-base=http://x',
  };
  const readFile = (path: string): string => {
    const text = files[path];
    if (text === undefined) throw new Error(`ENOENT: no such file, open '${path}'`);
    return text;
  };
  const load = (argv: string[], env: Record<string, string> = {}): Config => {
    const command = parseCommandLine(argv, env, readFile);
    assert.equal(command.kind, 'run');
    return (command as { config: Config }).config;
  };
  const refused = (argv: string[], env: Record<string, string> = {}): string => {
    try {
      parseCommandLine(argv, env, readFile);
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      assert.ok(!error.message.includes('\n'), error.message);
      return error.message;
    }
    return assert.fail('expected a ConfigError');
  };

  it('reads YAML, TOML and JSON files with the flags\' names (or snake_case) and values', () => {
    const yaml = load(['--config', '/etc/gw.yaml']);
    assert.deepEqual(yaml.upstream.replicas.map((replica) => replica.origin), ['http://gpu1:8000', 'http://gpu2:8000']);
    assert.equal(yaml.server.maxConcurrent, 512);
    assert.equal(yaml.upstream.affinity, false);
    assert.deepEqual(yaml.server.corsOrigins, ['https://a.example', 'https://b.example']);
    assert.equal(yaml.logLevel, 'info', 'an empty setting keeps its default');
    const toml = load(['--config', '/etc/gw.toml']);
    assert.equal(toml.server.workers, 2);
    assert.equal(toml.state.ttlMs, 7 * 86_400_000);
    assert.equal(toml.state.location.kind, 'postgres');
    const json = load([], { GATEWAY_CONFIG: '/etc/gw.json' });
    assert.equal(json.security.apiKeysOrigin, 'config-file');
  });

  it('lets flags and environment variables win over the file', () => {
    assert.equal(load(['--config', '/etc/gw.yaml', '--max-concurrent', '8']).server.maxConcurrent, 8);
    assert.equal(load(['--config', '/etc/gw.yaml'], { GATEWAY_MAX_CONCURRENT: '9' }).server.maxConcurrent, 9);
    assert.equal(load(['--config', '/etc/gw.json', '--api-keys', 'sk-c']).security.apiKeysOrigin, 'flag');
  });

  it('says what is wrong with a file, and where, in one line', () => {
    assert.equal(refused(['--config', '/etc/missing.yaml']), "cannot read --config /etc/missing.yaml: ENOENT: no such file, open '/etc/missing.yaml'");
    assert.equal(refused(['--config', '/etc/unknown.yaml']), '--config /etc/unknown.yaml: unknown setting "llm-api-bsae" (did you mean llm-api-base?)');
    assert.equal(refused(['--config', '/etc/bad-value.yaml']), 'invalid --max-concurrent (from /etc/bad-value.yaml): "many" is not a whole number >= 1');
    assert.equal(refused(['--config', '/etc/nested.yaml']), '--config /etc/nested.yaml: llm-api-base must be a string, a number, a boolean or a list of them');
    assert.match(refused(['--config', '/etc/list.yaml']), /expected settings by flag name/);
    assert.match(refused(['--config', '/etc/broken.yaml']), /^--config \/etc\/broken.yaml is not valid YAML: /);
    assert.equal(refused(['--config', '/etc/gw.ini']), '--config /etc/gw.ini: the file must end in .yaml, .yml, .json or .toml');
    assert.match(refused(['serve', 'm', '--config', '/etc/gw.yaml']), /--llm-api-base \(in \/etc\/gw.yaml\) cannot be combined with serve/);
  });
});
