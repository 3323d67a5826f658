// The real Codex CLI (@openai/codex, pinned in devDependencies), run non-interactively
// against the gateway in front of the simulated vLLM, with the config.toml the README
// gives and the model catalog it points to: over HTTP and over WebSocket, one turn that
// edits a file with apply_patch (a custom tool with a grammar) and runs a shell command
// (exec_command), with the encrypted reasoning, developer messages and hosted tools Codex
// sends; and once more over HTTP in front of a chat-only server (llama.cpp's dialect,
// --upstream-api chat). The simulated model follows the prompt's script (sim/help.ts).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startSimVllm, type SimVllm } from '../sim/vllm-sim.ts';
import { closeAll, startGateway, type TestGateway } from './helpers/gateway.ts';
import type { AnyJson } from './helpers/responses-api.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CODEX_BIN = join(ROOT, 'node_modules', '.bin', 'codex');
const CATALOG = join(ROOT, 'docs', 'codex', 'model-catalog.json');
const API_KEY = 'codex-test-key';
/** Codex gives up on its own long before; this only bounds a hang. */
const CODEX_TIMEOUT_MS = 120_000;

const PROMPT = [
  'use apply_patch then exec_command',
  '~~~apply_patch',
  '*** Begin Patch',
  '*** Add File: hello.txt',
  '+hello from the patch',
  '*** End Patch',
  '~~~',
  '~~~exec_command',
  'cat hello.txt',
  '~~~',
].join('\n');

/** The README's config.toml for Codex, with this test's gateway and catalog in it. */
async function readmeConfig(gatewayUrl: string, catalog: string, websocket: boolean): Promise<string> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const block = /```toml\n([\s\S]*?model_providers\.responses-gateway[\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(block !== undefined, 'the README shows a config.toml for Codex');
  let config = block.replace('http://127.0.0.1:9000/v1', `${gatewayUrl}/v1`).replace('/etc/codex/model-catalog.json', catalog);
  if (!websocket) config = config.replace(/^supports_websockets = true.*$/m, '');
  return config;
}

interface CodexRun {
  readonly code: number | null;
  readonly output: string;
  readonly workdir: string;
}

async function runCodex(gatewayUrl: string, websocket: boolean): Promise<CodexRun> {
  const home = await mkdtemp(join(tmpdir(), 'codex-home-'));
  const workdir = await mkdtemp(join(tmpdir(), 'codex-work-'));
  const catalog = JSON.parse(await readFile(CATALOG, 'utf8'));
  catalog.models[0].prefer_websockets = websocket;
  await writeFile(join(home, 'catalog.json'), JSON.stringify(catalog));
  await writeFile(join(home, 'config.toml'), await readmeConfig(gatewayUrl, join(home, 'catalog.json'), websocket));
  const args = ['exec', '--skip-git-repo-check', '--dangerously-bypass-approvals-and-sandbox', '--cd', workdir, PROMPT];
  const child = spawn(CODEX_BIN, args, {
    cwd: workdir,
    env: { PATH: process.env['PATH'] ?? '', HOME: home, CODEX_HOME: home, RESPONSES_GATEWAY_API_KEY: API_KEY, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), CODEX_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  await rm(home, { recursive: true, force: true });
  return { code, output, workdir };
}

describe('the real Codex CLI through the gateway', () => {
  let sim: SimVllm;
  let gw: TestGateway;
  before(async () => {
    sim = await startSimVllm();
    gw = await startGateway(sim.url, { 'api-keys': API_KEY, 'state-secret': 'codex test secret, long enough' }, { captureLogs: true, logLevel: 'info' });
  });
  after(() => closeAll(gw, sim));

  for (const websocket of [false, true]) {
    it(`${websocket ? 'WebSocket' : 'HTTP'}: a turn that applies a patch and runs a command`, async () => {
      const firstRequest = sim.requests.length;
      const firstLog = gw.logs.length;
      const run = await runCodex(gw.url, websocket);
      try {
        assert.equal(run.code, 0, run.output);
        assert.equal(await readFile(join(run.workdir, 'hello.txt'), 'utf8'), 'hello from the patch\n', 'apply_patch edited the file');
        assert.match(run.output, /Tool results:[\s\S]*hello from the patch/, 'the command ran and the model read its output');

        const turns = sim.requests.slice(firstRequest).filter((request) => request.url === '/v1/responses').map((request) => request.json as AnyJson);
        assert.equal(turns.length, 3, 'three model calls: the patch, the command, the answer');
        for (const turn of turns) {
          assert.equal(typeof turn.instructions, 'string', "Codex's developer messages became vLLM's instructions");
          assert.ok(!turn.input.some((item: AnyJson) => item.role === 'developer' || item.role === 'system'));
          assert.ok(!turn.tools.some((tool: AnyJson) => tool.type !== 'function'), 'vLLM is offered functions only');
        }
        const last = turns[2].input as AnyJson[];
        const patchCall = last.find((item) => item.type === 'function_call' && item.name === 'apply_patch');
        assert.ok(patchCall !== undefined, 'the custom tool call went back to vLLM as a function call');
        assert.match(JSON.parse(patchCall.arguments).input, /^\*\*\* Begin Patch/);
        const reasoning = last.filter((item) => item.type === 'reasoning');
        assert.equal(reasoning.length, 2, "Codex sent back the model's reasoning, sealed");
        for (const item of reasoning) {
          assert.equal(item.encrypted_content, undefined);
          assert.match(item.content[0].text, /^The user wrote/);
        }

        const lines = gw.logs.slice(firstLog).filter((line) => line['msg'] === 'request' && line['path'] === '/v1/responses');
        assert.ok(lines.length >= 3, JSON.stringify(lines));
        for (const line of lines) assert.equal(line['method'], websocket ? 'WS' : 'POST');
        assert.ok(lines.every((line) => line['status'] === 200), JSON.stringify(lines));
      } finally {
        await rm(run.workdir, { recursive: true, force: true });
      }
    });
  }
});

describe('the real Codex CLI through the gateway, in front of a chat-only server (llama.cpp)', () => {
  let sim: SimVllm;
  let gw: TestGateway;
  before(async () => {
    sim = await startSimVllm({ chatOnly: true, chatDialect: 'llama.cpp' });
    gw = await startGateway(sim.url, { 'api-keys': API_KEY, 'state-secret': 'codex test secret, long enough', 'upstream-api': 'chat' });
  });
  after(() => closeAll(gw, sim));

  it('HTTP: a turn that applies a patch and runs a command, every model call a chat completion', async () => {
    const run = await runCodex(gw.url, false);
    try {
      assert.equal(run.code, 0, run.output);
      assert.equal(await readFile(join(run.workdir, 'hello.txt'), 'utf8'), 'hello from the patch\n', 'apply_patch edited the file');
      assert.match(run.output, /Tool results:[\s\S]*hello from the patch/, 'the command ran and the model read its output');
      const turns = sim.requests.map((request) => request.json as AnyJson);
      assert.deepEqual(sim.requests.map((request) => request.url), Array(3).fill('/v1/chat/completions'), 'three model calls, all chat');
      for (const turn of turns) {
        assert.equal(turn.messages[0].role, 'system', "Codex's instructions and developer messages as the one system message");
        assert.ok(!turn.messages.slice(1).some((message: AnyJson) => message.role === 'system' || message.role === 'developer'));
        assert.ok(turn.tools.every((tool: AnyJson) => tool.type === 'function' && typeof tool.function.name === 'string'));
      }
      const last = turns[2].messages as AnyJson[];
      const patchCall = last.flatMap((message) => message.tool_calls ?? []).find((call: AnyJson) => call.function.name === 'apply_patch');
      assert.ok(patchCall !== undefined, 'the custom tool call went back as a tool call');
      assert.match(JSON.parse(patchCall.function.arguments).input, /^\*\*\* Begin Patch/);
      assert.ok(last.some((message) => message.role === 'tool' && message.tool_call_id === patchCall.id), "the patch's output answers its call");
      assert.ok(last.some((message) => typeof message.reasoning_content === 'string' && message.reasoning_content.startsWith('The user wrote')), 'the reasoning went back, unsealed');
    } finally {
      await rm(run.workdir, { recursive: true, force: true });
    }
  });
});
