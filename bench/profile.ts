// npm run bench:profile -- <case> [--seconds 10] [gateway flags]   (case: json-1k | stream-100 | json-1k-store | stream-100-store)
//
// Runs the compiled gateway under node --cpu-prof in front of the fast simulator, drives
// one case at c=32 for a while, then prints where the gateway's CPU went: by function
// (self time) and by package. The .cpuprofile is kept for a flame graph (Chrome DevTools,
// speedscope).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findLoadTool, runLoad } from './load.ts';
import { ROOT, startBenchGateway, startBenchSim } from './processes.ts';

const argv = process.argv.slice(2);
const caseName = argv[0] ?? 'json-1k';
const seconds = Number(argv[argv.indexOf('--seconds') + 1] || 10);
const dir = mkdtempSync(join(tmpdir(), 'rg-profile-'));

const BODIES: Record<string, { body: object; headers: Record<string, string> }> = {
  'json-1k': { body: { model: 'm', input: 'lorem ipsum '.repeat(80), store: false }, headers: {} },
  'json-1k-store': { body: { model: 'm', input: 'lorem ipsum '.repeat(80) }, headers: {} },
  'stream-100': { body: { model: 'm', input: 'x', stream: true, store: false }, headers: { 'x-sim': 'deltas=100' } },
  'stream-100-store': { body: { model: 'm', input: 'x', stream: true }, headers: { 'x-sim': 'deltas=100' } },
};
const job = BODIES[caseName];
if (job === undefined) throw new Error(`unknown case ${caseName}`);

if (spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' }).status !== 0) throw new Error('build failed');
const sim = await startBenchSim(dir);
const extra = argv.slice(1).filter((arg, i, all) => arg !== '--seconds' && all[i - 1] !== '--seconds');
const gateway = await startBenchGateway(sim.url, dir, ['--db-url', `sqlite:${join(dir, 'p.db')}`, ...extra], ROOT, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
const gatewayUrl = gateway.url;
const tool = findLoadTool((line) => console.error(line));
const load = runLoad(tool, { url: `${gatewayUrl}/v1/responses`, body: JSON.stringify(job.body), headers: job.headers, connections: 32, seconds, scratchDir: dir });
console.log(`${caseName}: ${load.requests} requests, ${load.rps.toFixed(0)}/s, ${load.errors} errors`);
gateway.child.kill('SIGTERM');
await new Promise((resolve) => gateway.child.once('exit', resolve));
sim.child.kill('SIGTERM');

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
  children?: number[];
}
const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'));
if (file === undefined) throw new Error('no profile written');
const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { nodes: ProfileNode[] };
const total = profile.nodes.reduce((sum, node) => sum + node.hitCount, 0);
const byFunction = new Map<string, number>();
const byPackage = new Map<string, number>();
for (const node of profile.nodes) {
  if (node.hitCount === 0) continue;
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url.replace(`file://${ROOT}`, '').replace(/^node:/, 'node:');
  const name = `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}`;
  byFunction.set(name, (byFunction.get(name) ?? 0) + node.hitCount);
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(where)?.[1] ?? (where.startsWith('dist/') ? `ours: ${where.split('/').slice(1, 3).join('/')}` : where.startsWith('node:') ? 'node (js)' : where === '' ? `(${functionName})` : where);
  byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + node.hitCount);
}
// Inclusive time: a node's hits plus its subtree's, counted once per function on a path.
const nodesById = new Map(profile.nodes.map((node) => [node.id, node]));
const inclusive = new Map<string, number>();
const nameOf = (node: ProfileNode): string =>
  `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.replace(`file://${ROOT}`, '')}:${node.callFrame.lineNumber + 1}`;
const walk = (node: ProfileNode, onPath: Set<string>): number => {
  const name = nameOf(node);
  let hits = node.hitCount;
  const fresh = !onPath.has(name);
  if (fresh) onPath.add(name);
  for (const childId of node.children ?? []) {
    const child = nodesById.get(childId);
    if (child !== undefined) hits += walk(child, onPath);
  }
  if (fresh) {
    onPath.delete(name);
    inclusive.set(name, (inclusive.get(name) ?? 0) + hits);
  }
  return hits;
};
const root = profile.nodes[0];
if (root !== undefined) walk(root, new Set());
const ours = new Map([...inclusive].filter(([name]) => name.includes(' dist/')));

const top = (map: Map<string, number>, n: number): string[] =>
  [...map].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, hits]) => `${((100 * hits) / total).toFixed(1).padStart(5)}%  ${name}`);
console.log(`\nself time by package (${total} samples):\n${top(byPackage, 20).join('\n')}`);
console.log(`\nself time by function:\n${top(byFunction, 40).join('\n')}`);
console.log(`\ninclusive time, our functions:\n${top(ours, 30).join('\n')}`);
console.log(`\nprofile: ${join(dir, file)}`);
