// Memory with many streams open at the same moment: a fresh gateway in front of a
// simulator that emits one event per 100 ms, N streams of 600 deltas (a minute each)
// opened by a separate process and held while the gateway's memory is sampled. The
// gateway's own `gateway_open_streams` is read during the sampling, so the figure is
// known to be taken with N streams open; VmHWM (the peak the kernel saw) beside VmRSS;
// then the streams are closed and RSS is read again once the gateway counts none open.
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { request } from 'undici';
import { hwmMiB, rssMiB } from './proc.ts';
import { ROOT } from './processes.ts';

/** Long enough to outlast the sampling: 600 events at one per 100 ms. */
const DELTAS_PER_STREAM = 600;
const SAMPLES = 30;
const SAMPLE_MS = 100;
/** How long the gateway gets to count the closed streams gone. */
const CLOSE_WAIT_MS = 15_000;
/** RSS after the streams ended: its lowest over this window. */
const AFTER_WINDOW_MS = 3_000;

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
}

async function openStreams(baseUrl: string): Promise<number> {
  const response = await request(`${baseUrl}/metrics`);
  const text = await response.body.text();
  const line = text.split('\n').find((candidate) => candidate.startsWith('gateway_open_streams '));
  return line === undefined ? Number.NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `counted`: the process reports gateway_open_streams (the gateway). The node floor does
 * not: what is open is what the holding client saw start, and its streams outlast the
 * sampling by a minute.
 */
export async function measureOpenStreams(
  gateway: { readonly url: string; readonly pid: number },
  streams: number,
  started: ChildProcess[],
  counted = true,
): Promise<OpenStreamsResult> {
  const openNow = async (): Promise<number> => (counted ? openStreams(gateway.url) : opened);
  let opened = 0;
  await sleep(500);
  const idleSamples: number[] = [];
  for (let i = 0; i < 5; i++) {
    idleSamples.push(rssMiB(gateway.pid));
    await sleep(SAMPLE_MS);
  }
  const idleMiB = idleSamples.sort((a, b) => a - b)[2] as number;
  const job = { url: `${gateway.url}/v1/responses`, body: JSON.stringify({ model: 'm', input: 'x', stream: true, store: false }), streams, headers: { 'x-sim': `deltas=${DELTAS_PER_STREAM}` } };
  const holder = fork(join(ROOT, 'bench/streams-client.ts'), [JSON.stringify(job)], { execArgv: ['--import', 'tsx'], cwd: ROOT });
  started.push(holder);
  await new Promise<void>((resolve) =>
    holder.once('message', (message: { open?: number }) => {
      opened = message.open ?? 0;
      resolve();
    }),
  );
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
  holder.send('close');
  await new Promise((resolve) => holder.once('exit', resolve));
  const deadline = Date.now() + CLOSE_WAIT_MS;
  while (counted && Date.now() < deadline && (await openStreams(gateway.url)) > 0) await sleep(SAMPLE_MS);
  let afterMiB = Number.POSITIVE_INFINITY;
  for (let waited = 0; waited < AFTER_WINDOW_MS; waited += SAMPLE_MS) {
    afterMiB = Math.min(afterMiB, rssMiB(gateway.pid));
    await sleep(SAMPLE_MS);
  }
  return { streams, idleMiB, openSeen: { min, max }, peakRssMiB, hwmMiB: hwm, perStreamKiB: ((peakRssMiB - idleMiB) * 1024) / streams, afterMiB };
}
