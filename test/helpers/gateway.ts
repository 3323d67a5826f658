// Starts the gateway in this process on an ephemeral loopback port, in front of a given
// upstream, optionally capturing its log lines (to check what is, and is not, logged).
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { configForUpstream } from '../../src/config/load-config.ts';
import { buildGateway, type BuiltGateway } from '../../src/app/build-gateway.ts';
import type { Store } from '../../src/store/store.ts';
import { startSimVllm, type SimOptions, type SimVllm } from '../../sim/vllm-sim.ts';
import { send } from './http.ts';

export interface TestGateway {
  readonly url: string;
  readonly port: number;
  readonly gateway: BuiltGateway;
  /** Parsed JSON log lines (only when started with captureLogs). */
  readonly logs: Record<string, unknown>[];
  /** Raw log text, for searching secrets. */
  logText(): string;
  close(): Promise<void>;
}

export async function startGateway(
  upstreamUrl: string,
  flags: Readonly<Record<string, string>> = {},
  options: { captureLogs?: boolean; logLevel?: 'debug' | 'info' | 'warn'; store?: Store } = {},
): Promise<TestGateway> {
  const config = configForUpstream(upstreamUrl, { 'gateway-host': '127.0.0.1', ...flags });
  const logs: Record<string, unknown>[] = [];
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString();
      for (const line of chunk.toString().split('\n')) {
        if (line.trim().length > 0) logs.push(JSON.parse(line) as Record<string, unknown>);
      }
      callback();
    },
  });
  const log = pino({ level: options.captureLogs === true ? (options.logLevel ?? 'debug') : 'silent' }, sink);
  const gateway = buildGateway(config, options.store === undefined ? { log } : { log, store: options.store });
  const address = await gateway.listen();
  return {
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    gateway,
    logs,
    logText: () => text,
    close: () => gateway.shutdown(1_000),
  };
}

/** What most suites run against: the simulated vLLM and a gateway in front of it. */
export async function startSimAndGateway(
  flags: Readonly<Record<string, string>> = {},
  simOptions: SimOptions = {},
): Promise<{ sim: SimVllm; gw: TestGateway }> {
  const sim = await startSimVllm(simOptions);
  try {
    return { sim, gw: await startGateway(sim.url, flags) };
  } catch (error) {
    await sim.close();
    throw error;
  }
}

/** Closes in the order given (a gateway before the upstream it holds connections to);
 * skips what never started, so an `after` hook works when `before` failed. */
export async function closeAll(...closables: ({ close(): Promise<void> } | undefined)[]): Promise<void> {
  for (const closable of closables) await closable?.close();
}

/** A gateway's metric (first sample with this name, labels included in `name` if any). */
export async function metricValue(baseUrl: string, name: string): Promise<number> {
  const text = (await send(`${baseUrl}/metrics`)).text();
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `)) return Number(line.slice(name.length + 1));
  }
  return Number.NaN;
}

/**
 * Resolves once a metric satisfies `ready`. The gateway has no event to wait on for
 * these (a request parked on a frozen database, an answer ended by a timer), so the
 * metric is read every 20 ms; the test's own timeout bounds the wait.
 */
export async function waitForMetric(baseUrl: string, name: string, ready: (value: number) => boolean): Promise<number> {
  for (;;) {
    const value = await metricValue(baseUrl, name);
    if (ready(value)) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
