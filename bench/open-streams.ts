// Memory with many streams open at the same moment: a fresh gateway in front of a
// simulator that emits one event per 100 ms, N streams of 600 deltas (a minute each)
// opened by a separate process and held while the gateway's memory is sampled. The
// gateway's own `gateway_open_streams` is read during the sampling, so the figure is
// known to be taken with N streams open; VmHWM (the peak the kernel saw) beside VmRSS;
// then the streams are closed and RSS is watched once the gateway counts none open, until it
// is back within 10 % of idle (V8's memory reducer) or a minute has passed.
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { request } from 'undici';
import { hwmMiB, rssMiB } from './proc.ts';
import { killOnExit, ROOT, startBenchSim, type Started } from './processes.ts';

/** Long enough to outlast the sampling: 600 events at one per 100 ms. */
const DELTAS_PER_STREAM = 600;
/** The simulator's pace for held streams: one event per this many ms (a model's pace). */
export const EVENT_INTERVAL_MS = 100;
const SAMPLES = 30;
const SAMPLE_MS = 100;
/** How long the gateway gets to count the closed streams gone. */
const CLOSE_WAIT_MS = 15_000;
/**
 * RSS after the streams ended: its lowest until it is back within AFTER_TARGET of idle, or
 * over this window. V8 gives memory back once its memory reducer runs a full collection,
 * which it starts some seconds after allocation slows only if a full collection during the
 * load armed it (19–58 s in most runs, never in some: bench/README.md, "Targets not met");
 * a window of 3 s, as until 2026-12-02, read the heap's garbage as kept.
 */
const AFTER_WINDOW_MS = 60_000;
/** Back within 10 % of idle: the target, and where watching can stop. */
const AFTER_TARGET = 1.1;

export interface OpenStreamsResult {
  readonly streams: number;
  readonly idleMiB: number;
  /** gateway_open_streams as read while sampling: lowest and highest. */
  readonly openSeen: { readonly min: number; readonly max: number };
  readonly peakRssMiB: number;
  readonly hwmMiB: number;
  /** (peak RSS - idle) per open stream. */
  readonly perStreamKiB: number;
  readonly afterMiB: number;
  /** Seconds from the gateway counting no stream open (the holder's exit, for the floor)
   * to RSS back within 10 % of idle; undefined if it was not within the window. */
  readonly backAfterS: number | undefined;
}

async function openStreams(baseUrl: string): Promise<number> {
  const response = await request(`${baseUrl}/metrics`);
  const text = await response.body.text();
  const line = text.split('\n').find((candidate) => candidate.startsWith('gateway_open_streams '));
  return line === undefined ? Number.NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Streams held open by a separate process (bench/streams-client.ts). */
export interface HeldStreams {
  /** How many had their first bytes when the holder reported. */
  readonly opened: number;
  /** Ends them all; resolves once the holder has exited. */
  close(): Promise<void>;
}

/** The simulated vLLM emitting one event per EVENT_INTERVAL_MS: what held streams stand in front of. */
export function startPacedSim(logDir: string): Promise<Started> {
  return startBenchSim(logDir, ['--chunk-delay-ms', String(EVENT_INTERVAL_MS)]);
}

/**
 * Opens `streams` streams of DELTAS_PER_STREAM deltas at `baseUrl` from a separate process
 * and holds them; resolves once every one has its first bytes. The holder is killed if
 * the harness exits first.
 */
export async function holdOpenStreams(baseUrl: string, streams: number): Promise<HeldStreams> {
  const job = { url: `${baseUrl}/v1/responses`, body: JSON.stringify({ model: 'm', input: 'x', stream: true, store: false }), streams, headers: { 'x-sim': `deltas=${DELTAS_PER_STREAM}` } };
  const holder = fork(join(ROOT, 'bench/streams-client.ts'), [JSON.stringify(job)], { execArgv: ['--import', 'tsx'], cwd: ROOT });
  killOnExit(holder);
  const opened = await new Promise<number>((resolve) => holder.once('message', (message: { open?: number }) => resolve(message.open ?? 0)));
  return {
    opened,
    close: async () => {
      holder.send('close');
      await new Promise((resolve) => holder.once('exit', resolve));
    },
  };
}

/**
 * `counted`: the process reports gateway_open_streams (the gateway). The node floor does
 * not: what is open is what the holding client saw start, and its streams outlast the
 * sampling by a minute.
 */
export async function measureOpenStreams(
  gateway: { readonly url: string; readonly pid: number },
  streams: number,
  counted = true,
): Promise<OpenStreamsResult> {
  await sleep(500);
  const idleSamples: number[] = [];
  for (let i = 0; i < 5; i++) {
    idleSamples.push(rssMiB(gateway.pid));
    await sleep(SAMPLE_MS);
  }
  const idleMiB = idleSamples.sort((a, b) => a - b)[2] as number;
  const held = await holdOpenStreams(gateway.url, streams);
  const openNow = async (): Promise<number> => (counted ? openStreams(gateway.url) : held.opened);
  let peakRssMiB = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = 0;
  for (let i = 0; i < SAMPLES; i++) {
    peakRssMiB = Math.max(peakRssMiB, rssMiB(gateway.pid));
    const open = await openNow();
    min = Math.min(min, open);
    max = Math.max(max, open);
    await sleep(SAMPLE_MS);
  }
  const hwm = hwmMiB(gateway.pid);
  await held.close();
  const deadline = Date.now() + CLOSE_WAIT_MS;
  while (counted && Date.now() < deadline && (await openStreams(gateway.url)) > 0) await sleep(SAMPLE_MS);
  let afterMiB = Number.POSITIVE_INFINITY;
  let backAfterS: number | undefined;
  const ended = Date.now();
  while (Date.now() - ended < AFTER_WINDOW_MS) {
    afterMiB = Math.min(afterMiB, rssMiB(gateway.pid));
    if (afterMiB <= idleMiB * AFTER_TARGET) {
      backAfterS = (Date.now() - ended) / 1000;
      break;
    }
    await sleep(SAMPLE_MS);
  }
  return { streams, idleMiB, openSeen: { min, max }, peakRssMiB, hwmMiB: hwm, perStreamKiB: ((peakRssMiB - idleMiB) * 1024) / streams, afterMiB, backAfterS };
}

/** RSS after the streams ended, over idle, in %. */
export function afterOverIdle(result: OpenStreamsResult): number {
  return (result.afterMiB / result.idleMiB - 1) * 100;
}

/** When RSS was back within 10 % of idle after the streams ended, or that it was not. */
export function backWhen(result: OpenStreamsResult): string {
  return result.backAfterS === undefined ? 'not back within 10 % of idle in 60 s' : `back within 10 % of idle ${result.backAfterS.toFixed(1)} s after they ended`;
}
