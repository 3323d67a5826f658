// npm run demo: the gateway (the real CLI, as a child process) in front of the simulated
// vLLM, exercised with the official openai SDK; prints what a client sees.
import { spawn } from 'node:child_process';
import OpenAI from 'openai';
import { startSimVllm } from '../sim/vllm-sim.ts';

const ROOT = new URL('../', import.meta.url).pathname;

function heading(text: string): void {
  console.log(`\n\x1b[1m== ${text}\x1b[0m`);
}

const sim = await startSimVllm({ model: 'Qwen/Qwen3-8B', chunkDelayMs: 15 });
const args = ['--llm-api-base', `${sim.url}/v1`, '--gateway-host', '127.0.0.1', '--gateway-port', '0'];
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

  heading('POST /v1/chat/completions (forwarded as is)');
  const chat = await client.chat.completions.create({
    model: 'Qwen/Qwen3-8B',
    messages: [{ role: 'user', content: 'Hello!' }],
  });
  console.log(`assistant: ${chat.choices[0]?.message.content ?? ''}`);

  heading('GET /metrics (excerpt)');
  const metrics = await (await fetch(`${baseUrl}/metrics`)).text();
  for (const line of metrics.split('\n')) {
    if (line.startsWith('gateway_http_requests_total') || line.startsWith('gateway_stream_time_to_first_byte_seconds_count')) {
      console.log(line);
    }
  }
} finally {
  heading('stopping (SIGTERM)');
  gateway.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => gateway.once('exit', resolve));
  console.log(`gateway exited with code ${String(code)}`);
  await sim.close();
}
