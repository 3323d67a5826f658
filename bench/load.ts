// Throughput at a given concurrency (pipelining 1): wrk when it is on the machine (C, and
// light on a 2-core machine where the load generator competes with what it measures),
// installed from Debian's packages when possible, else autocannon (a dev dependency).
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type LoadTool = { readonly kind: 'wrk'; readonly path: string } | { readonly kind: 'autocannon' };

function onPath(command: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

/** Finds wrk, or installs it (root with apt), or falls back to autocannon; says which. */
export function findLoadTool(log: (line: string) => void): LoadTool {
  let wrk = onPath('wrk');
  if (wrk === undefined && process.getuid?.() === 0 && onPath('apt-get') !== undefined) {
    log('wrk is not installed: installing it from Debian\'s packages (apt-get install wrk)');
    spawnSync('sh', ['-c', 'apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1'], { stdio: 'inherit' });
    wrk = onPath('wrk');
  }
  if (wrk !== undefined) {
    // wrk prints its version with its usage, and exits 1.
    const version = spawnSync(wrk, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0]?.trim() ?? 'wrk';
    log(`load generator: ${wrk} (${version})`);
    return { kind: 'wrk', path: wrk };
  }
  log('load generator: autocannon (wrk is not available)');
  return { kind: 'autocannon' };
}

export interface LoadResult {
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  readonly errors: number;
}

export interface LoadJob {
  readonly url: string;
  readonly body: string;
  /** Bodies sent in turn instead of `body` (continuations of many chains); wrk only. */
  readonly bodies?: readonly string[] | undefined;
  readonly headers: Record<string, string>;
  readonly connections: number;
  readonly seconds: number;
  readonly scratchDir: string;
}

/** wrk takes whole seconds only (`-d1.5s` is a usage error); the job's seconds are rounded. */
export function runLoad(tool: LoadTool, job: LoadJob): LoadResult {
  const bodyFile = join(job.scratchDir, 'body.json');
  writeFileSync(bodyFile, job.body);
  if (tool.kind === 'wrk') {
    const script = join(job.scratchDir, 'post.lua');
    const headerLines = Object.entries({ 'Content-Type': 'application/json', ...job.headers })
      .map(([name, value]) => `wrk.headers[${JSON.stringify(name)}] = ${JSON.stringify(value)}`)
      .join('\n');
    if (job.bodies !== undefined && job.bodies.length > 1) {
      // One JSON body a line (JSON.stringify writes none inside); each request takes the next.
      writeFileSync(bodyFile, `${job.bodies.join('\n')}\n`);
      writeFileSync(
        script,
        `wrk.method = "POST"\n${headerLines}\nlocal bodies = {}\nfor line in io.lines(${JSON.stringify(bodyFile)}) do bodies[#bodies + 1] = line end\n` +
          'local turn = 0\nrequest = function()\n  turn = turn % #bodies + 1\n  return wrk.format(nil, nil, nil, bodies[turn])\nend\n',
      );
    } else {
      writeFileSync(script, `wrk.method = "POST"\nlocal f = io.open(${JSON.stringify(bodyFile)}, "rb")\nwrk.body = f:read("*a")\nf:close()\n${headerLines}\n`);
    }
    const out = execFileSync(tool.path, ['-t1', `-c${job.connections}`, `-d${Math.max(1, Math.round(job.seconds))}s`, '-s', script, job.url], { encoding: 'utf8' });
    const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
    const seconds = Number(/requests in ([\d.]+)s/.exec(out)?.[1] ?? job.seconds);
    const errors = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) + Number(/Socket errors:.*?read (\d+)/.exec(out)?.[1] ?? 0);
    return { requests, seconds, rps: requests / seconds, errors };
  }
  if (job.bodies !== undefined && job.bodies.length > 1) throw new Error('bodies in turn need wrk (apt-get install wrk)');
  const args = ['autocannon', '--json', '-c', String(job.connections), '-d', String(job.seconds), '-m', 'POST', '-i', bodyFile, '-H', 'content-type=application/json'];
  for (const [name, value] of Object.entries(job.headers)) args.push('-H', `${name}=${value}`);
  args.push(job.url);
  const out = execFileSync('npx', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const result = JSON.parse(out) as { requests: { total: number }; duration: number; non2xx: number; errors: number };
  return { requests: result.requests.total, seconds: result.duration, rps: result.requests.total / result.duration, errors: result.non2xx + result.errors };
}
