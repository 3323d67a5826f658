// npm run bench:memory -- [--streams 1000] [--node-flags "--max-semi-space-size=1"] [--no-floor]
//
// The memory harness of `npm run bench` alone ("How it measures": N streams of a minute
// held open at once, RSS per open stream, RSS after they end), for the gateway and the node
// floor, each fresh, optionally with V8 flags on both: what a young generation of another
// size does to RSS a stream (measure its CPU beside it with
// `bench:ab -- … --node-b <a node wrapper with the flag>`).
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toolArgs } from './args.ts';
import { measureOpenStreams, type OpenStreamsResult } from './open-streams.ts';
import { ROOT, startBenchGateway, startProcess } from './processes.ts';

const { option, flag } = toolArgs();
const STREAMS = Number(option('streams') ?? 1000);
const nodeFlags = (option('node-flags') ?? '').split(' ').filter(Boolean);
/** The stream holders: killed when this tool exits, whether or not it measured (processes.ts kills the processes). */
const started: ChildProcess[] = [];
process.on('exit', () => {
  for (const holder of started) holder.kill('SIGKILL');
});

const scratch = mkdtempSync(join(tmpdir(), 'rg-memory-'));
const sim = await startProcess(['sim/cli.ts', '--fast', '--no-record', '--chunk-delay-ms', '100'], '--port', scratch);
const results: Array<[string, OpenStreamsResult]> = [];
const gateway = await startBenchGateway(sim.url, scratch, ['--db-url', `sqlite:${join(scratch, 'memory.db')}`], ROOT, nodeFlags);
results.push(['gateway', await measureOpenStreams(gateway, STREAMS, started)]);
gateway.child.kill('SIGTERM');
if (!flag('no-floor')) {
  const floor = await startProcess(['bench/minimal-proxy.ts', '--llm-api-base', sim.url], '--gateway-port', scratch, nodeFlags);
  results.push(['node floor', await measureOpenStreams(floor, STREAMS, started, false)]);
  floor.child.kill('SIGTERM');
}
sim.child.kill('SIGTERM');
rmSync(scratch, { recursive: true, force: true });

console.log(`${STREAMS} streams open at once, Node ${process.version}${nodeFlags.length > 0 ? `, ${nodeFlags.join(' ')}` : ''}:`);
for (const [label, result] of results) {
  const over = (100 * (result.afterMiB - result.idleMiB)) / result.idleMiB;
  const back = result.backAfterS === undefined ? 'not back within 10 % of idle in 60 s' : `back within 10 % of idle after ${result.backAfterS.toFixed(1)} s`;
  console.log(
    `  ${label.padEnd(10)} ${result.perStreamKiB.toFixed(1)} KiB RSS a stream (idle ${result.idleMiB.toFixed(1)} MB, peak ${result.peakRssMiB.toFixed(1)}, VmHWM ${result.hwmMiB.toFixed(1)}; open seen ${result.openSeen.min}–${result.openSeen.max}); after they ended ${over.toFixed(0)} % over idle, ${back}`,
  );
}
process.exit(0);
