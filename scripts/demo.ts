// npm run demo: the gateway (the real CLI, as a child process) in front of the simulated
// vLLM, exercised with the official openai SDK; prints what a client sees.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startMcpServer } from '../sim/mcp-server.ts';
import { startSimVllm } from '../sim/vllm-sim.ts';

const ROOT = new URL('../', import.meta.url).pathname;

function heading(text: string): void {
  console.log(`\n\x1b[1m== ${text}\x1b[0m`);
}

const sim = await startSimVllm({ model: 'Qwen/Qwen3-8B', chunkDelayMs: 15 });
// A real MCP server (the official SDK) for the tools example.
const mcp = await startMcpServer();
// A throwaway database: the demo leaves ~/.responses-gateway alone.
const dbUrl = `sqlite:${join(mkdtempSync(join(tmpdir(), 'responses-gateway-demo-')), 'responses.db')}`;
const args = ['--llm-api-base', `${sim.url}/v1`, '--gateway-host', '127.0.0.1', '--gateway-port', '0', '--db-url', dbUrl];
heading('starting the gateway');
console.log(`simulated vLLM on ${sim.url}`);
console.log(`$ responses-gateway ${args.join(' ')}`);
const gateway = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
  cwd: ROOT,
  stdio: ['ignore', 'pipe', 'inherit'],
});
const baseUrl = await new Promise<string>((resolve, reject) => {
  let out = '';
  gateway.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    const match = /"msg":"gateway listening"/.test(out) ? /"url":"([^"]+)"/.exec(out) : null;
    if (match !== null) resolve(match[1] as string);
  });
  gateway.once('exit', (code) => reject(new Error(`the gateway exited (${String(code)})`)));
});
console.log(`gateway listening on ${baseUrl}`);

try {
  heading('GET /health and GET /ready');
  for (const path of ['/health', '/ready']) {
    const res = await fetch(`${baseUrl}${path}`);
    console.log(`${path} -> ${res.status} ${await res.text()}`);
  }

  const client = new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey: 'not-needed' });

  heading('POST /v1/responses (non-streamed, openai SDK)');
  const response = await client.responses.create({ model: 'Qwen/Qwen3-8B', input: 'What is the capital of France?' });
  console.log(`id:          ${response.id}`);
  console.log(`status:      ${response.status}`);
  console.log(`output_text: ${response.output_text}`);
  console.log(`usage:       ${JSON.stringify(response.usage)}`);

  heading('POST /v1/responses (streamed, openai SDK)');
  const stream = await client.responses.create({
    model: 'Qwen/Qwen3-8B',
    input: 'Tell me a very short story about a lighthouse.',
    stream: true,
  });
  const seen = new Map<string, number>();
  process.stdout.write('text: ');
  for await (const event of stream) {
    seen.set(event.type, (seen.get(event.type) ?? 0) + 1);
    if (event.type === 'response.output_text.delta') process.stdout.write(event.delta);
  }
  console.log('\nevents:');
  for (const [type, count] of seen) console.log(`  ${type} x${count}`);

  heading('continuing with previous_response_id (the gateway keeps the state)');
  const followUp = await client.responses.create({
    model: 'Qwen/Qwen3-8B',
    input: 'And what is its population?',
    previous_response_id: response.id,
  });
  console.log(`id:                   ${followUp.id}`);
  console.log(`previous_response_id: ${String(followUp.previous_response_id)}`);
  console.log(`output_text:          ${followUp.output_text}`);
  const history = await client.responses.inputItems.list(followUp.id, { order: 'asc' });
  console.log('what vLLM was sent (GET /v1/responses/{id}/input_items):');
  for (const item of history.data) {
    if (item.type === 'message') {
      const text = item.content.map((part) => ('text' in part ? part.text : '')).join('');
      console.log(`  ${item.role}: ${text}`);
    }
  }
  const retrieved = await client.responses.retrieve(followUp.id);
  console.log(`GET /v1/responses/${followUp.id} -> ${retrieved.status}, ${retrieved.output_text}`);

  heading('a conversation (POST /v1/conversations, then responses in it)');
  const conversation = await client.conversations.create({ metadata: { topic: 'demo' } });
  await client.responses.create({ model: 'Qwen/Qwen3-8B', input: 'Remember the word CHERRY.', conversation: conversation.id });
  const turn = await client.responses.create({ model: 'Qwen/Qwen3-8B', input: 'Which word?', conversation: conversation.id });
  console.log(`${conversation.id}: ${turn.output_text}`);
  const items = await client.conversations.items.list(conversation.id, { order: 'asc' });
  console.log(`the conversation now holds ${items.data.length} items`);

  heading('an MCP server as a tool: the gateway lists its tools, runs the calls, answers');
  const withTools = await client.responses.create({
    model: 'Qwen/Qwen3-8B',
    input: 'Please add 20 and 22.',
    tools: [{ type: 'mcp', server_label: 'calc', server_url: mcp.url, require_approval: 'never', allowed_tools: ['add', 'echo'] }],
  });
  for (const item of withTools.output) {
    if (item.type === 'mcp_list_tools') console.log(`mcp_list_tools  ${item.server_label}: ${item.tools.map((tool) => tool.name).join(', ')}`);
    else if (item.type === 'mcp_call') console.log(`mcp_call        ${item.name}(${item.arguments}) -> ${String(item.output)}`);
    else console.log(item.type);
  }
  console.log(`output_text: ${withTools.output_text}`);

  heading('POST /v1/chat/completions (forwarded as is)');
  const chat = await client.chat.completions.create({
    model: 'Qwen/Qwen3-8B',
    messages: [{ role: 'user', content: 'Hello!' }],
  });
  console.log(`assistant: ${chat.choices[0]?.message.content ?? ''}`);

  heading('GET /metrics (excerpt)');
  const metrics = await (await fetch(`${baseUrl}/metrics`)).text();
  for (const line of metrics.split('\n')) {
    if (['gateway_http_requests_total', 'gateway_stream_time_to_first_byte_seconds_count', 'gateway_tokens_total'].some((name) => line.startsWith(name))) {
      console.log(line);
    }
  }
} finally {
  heading('stopping (SIGTERM)');
  gateway.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => gateway.once('exit', resolve));
  console.log(`gateway exited with code ${String(code)}`);
  await Promise.all([sim.close(), mcp.close()]);
}
