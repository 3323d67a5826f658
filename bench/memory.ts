// npm run bench:memory -- [--streams 1000] [--node-flags "--max-semi-space-size=1"] [--no-floor]
//
// The memory harness of `npm run bench` alone ("How it measures": N streams of a minute
// held open at once, RSS per open stream, RSS after they end), for the gateway and the node
// floor, each fresh, optionally with V8 flags on both: what a young generation of another
// size does to RSS a stream (measure its CPU beside it with
// `bench:ab -- … --node-b <a node wrapper with the flag>`).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toolArgs } from './args.ts';
import { afterOverIdle, backWhen, measureOpenStreams, startPacedSim, type OpenStreamsResult } from './open-streams.ts';
import { ROOT, startBenchGateway, startProcess } from './processes.ts';

const { option, flag } = toolArgs();
const STREAMS = Number(option('streams') ?? 1000);
const nodeFlags = (option('node-flags') ?? '').split(' ').filter(Boolean);

const scratch = mkdtempSync(join(tmpdir(), 'rg-memory-'));
const sim = await startPacedSim(scratch);
const results: Array<[string, OpenStreamsResult]> = [];
const gateway = await startBenchGateway(sim.url, scratch, ['--db-url', `sqlite:${join(scratch, 'memory.db')}`], ROOT, nodeFlags);
results.push(['gateway', await measureOpenStreams(gateway, STREAMS)]);
gateway.child.kill('SIGTERM');
if (!flag('no-floor')) {
  const floor = await startProcess(['bench/minimal-proxy.ts', '--llm-api-base', sim.url], '--gateway-port', scratch, nodeFlags);
  results.push(['node floor', await measureOpenStreams(floor, STREAMS, false)]);
  floor.child.kill('SIGTERM');
}
sim.child.kill('SIGTERM');
rmSync(scratch, { recursive: true, force: true });

console.log(`${STREAMS} streams open at once, Node ${process.version}${nodeFlags.length > 0 ? `, ${nodeFlags.join(' ')}` : ''}:`);
for (const [label, result] of results) {
  console.log(
    `  ${label.padEnd(10)} ${result.perStreamKiB.toFixed(1)} KiB RSS a stream (idle ${result.idleMiB.toFixed(1)} MB, peak ${result.peakRssMiB.toFixed(1)}, VmHWM ${result.hwmMiB.toFixed(1)}; open seen ${result.openSeen.min}–${result.openSeen.max}); after they ended ${afterOverIdle(result).toFixed(0)} % over idle, ${backWhen(result)}`,
  );
}
process.exit(0);
