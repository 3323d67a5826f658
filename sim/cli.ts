// Runs the simulated vLLM as a process; `--help` lists every switch (sim/help.ts).
import { writeFileSync } from 'node:fs';
import { CHAT_DIALECTS, type ChatDialect } from './chat-wire.ts';
import { SIM_HELP } from './help.ts';
import { startSimVllm } from './vllm-sim.ts';

const argv = process.argv.slice(2);
const env = process.env;
if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(SIM_HELP);
  process.exit(0);
}

function flag(name: string): string | undefined {
  const index = argv.indexOf(`--${name}`);
  if (index !== -1) return argv[index + 1];
  const inline = argv.find((arg) => arg.startsWith(`--${name}=`));
  return inline?.slice(name.length + 3);
}

const asVllm = argv[0] === 'serve';
const dialect = flag('chat-dialect');
if (dialect !== undefined && !(CHAT_DIALECTS as readonly string[]).includes(dialect)) {
  process.stderr.write(`--chat-dialect: "${dialect}" is not one of ${CHAT_DIALECTS.join(', ')}\n`);
  process.exit(2);
}
if (env['SIM_ARGS_FILE']) writeFileSync(env['SIM_ARGS_FILE'], JSON.stringify(argv));

const sim = await startSimVllm({
  port: Number(flag('port') ?? 8000),
  host: flag('host') ?? '127.0.0.1',
  model: asVllm ? argv[1] : flag('model'),
  chunkDelayMs: Number(flag('chunk-delay-ms') ?? 0),
  prefillUsPerToken: Number(flag('prefill-us-per-token') ?? 0),
  coalesceEvents: argv.includes('--coalesce'),
  fast: argv.includes('--fast'),
  record: !argv.includes('--no-record'),
  chatOnly: argv.includes('--chat-only'),
  ...(dialect !== undefined ? { chatDialect: dialect as ChatDialect } : {}),
  ...(flag('api-key') !== undefined ? { apiKey: flag('api-key') as string } : {}),
});

const startupDelay = Number(env['SIM_STARTUP_DELAY_MS'] ?? 0);
if (startupDelay > 0 || env['SIM_UNHEALTHY'] === '1') {
  sim.setHealthy(false);
  if (env['SIM_UNHEALTHY'] !== '1') setTimeout(() => sim.setHealthy(true), startupDelay);
}
if (env['SIM_EXIT_AFTER_MS'] !== undefined) {
  setTimeout(() => process.exit(Number(env['SIM_EXIT_CODE'] ?? 3)), Number(env['SIM_EXIT_AFTER_MS']));
}

const stop = (signal: NodeJS.Signals): void => {
  if (env['SIM_SIGTERM_FILE']) writeFileSync(env['SIM_SIGTERM_FILE'], signal);
  if (env['SIM_IGNORE_SIGTERM'] === '1' && signal === 'SIGTERM') return;
  void sim.close().then(() => process.exit(0));
};
process.on('SIGTERM', () => stop('SIGTERM'));
if (env['SIM_EXIT_CODE_ON_SIGUSR2'] !== undefined) {
  process.on('SIGUSR2', () => process.exit(Number(env['SIM_EXIT_CODE_ON_SIGUSR2'])));
}
process.on('SIGINT', () => stop('SIGINT'));
process.stdout.write(`simulated ${argv.includes('--chat-only') ? `chat-only server (${dialect ?? 'vllm'})` : 'vLLM'} listening on ${sim.url}\n`);
