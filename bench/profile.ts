// npm run bench:profile -- <case> [--seconds 10] [--connections 32] [gateway flags]   (case: json-1k | json-100k | stream-1 | stream-100 | stream-1000 | json-1k-store | stream-100-store | stream-100-background)
//
// Runs the compiled gateway under node --cpu-prof in front of the fast simulator, drives
// one case at c=32 for a while, then prints where the gateway's CPU went: by function
// (self time) and by package. The .cpuprofile is kept for a flame graph (Chrome DevTools,
// speedscope).
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findLoadTool, runLoad } from './load.ts';
import { bodyFor, requestCase } from './cases.ts';
import { printProfileSummary } from './profile-summary.ts';
import { ROOT, startBenchGateway, startBenchSim } from './processes.ts';

const argv = process.argv.slice(2);
const caseName = argv[0] ?? 'json-1k';
const secondsAt = argv.indexOf('--seconds');
const seconds = secondsAt === -1 ? 10 : Number(argv[secondsAt + 1]);
const dir = mkdtempSync(join(tmpdir(), 'rg-profile-'));

const job = requestCase(caseName);

if (spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' }).status !== 0) throw new Error('build failed');
const sim = await startBenchSim(dir);
const connectionsAt = argv.indexOf('--connections');
const connections = connectionsAt === -1 ? 32 : Number(argv[connectionsAt + 1]);
const OWN_OPTIONS = new Set(['--seconds', '--connections']);
const extra = argv.slice(1).filter((arg, i, all) => !OWN_OPTIONS.has(arg) && !OWN_OPTIONS.has(all[i - 1] as string));
const gateway = await startBenchGateway(sim.url, dir, ['--db-url', `sqlite:${join(dir, 'p.db')}`, ...extra], ROOT, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
const gatewayUrl = gateway.url;
const tool = findLoadTool((line) => console.error(line));
const load = runLoad(tool, { url: `${gatewayUrl}/v1/responses`, body: await bodyFor(job, gatewayUrl), headers: job.headers, connections, seconds, scratchDir: dir });
console.log(`${caseName}: ${load.requests} requests, ${load.rps.toFixed(0)}/s, ${load.errors} errors`);
gateway.child.kill('SIGTERM');
await new Promise((resolve) => gateway.child.once('exit', resolve));
sim.child.kill('SIGTERM');

printProfileSummary(dir);
