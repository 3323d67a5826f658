// Where a CPU profile's time went: self time by package and by function, inclusive
// time of the gateway's own functions. Used by bench:profile and stress:inputs --profile.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './processes.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
  children?: number[];
}

/** Prints the summary of the .cpuprofile written in `dir`. */
export function printProfileSummary(dir: string): void {
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
}
