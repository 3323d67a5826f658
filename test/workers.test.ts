// --workers N under real deaths: the primary keeps serving whatever happens to its
// workers, and gives up with a clear line and a failure status only when they die in a loop.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { SimVllm } from '../sim/vllm-sim.ts';
import { simForCliTests, portOf, runCli } from './helpers/cli.ts';
import { send } from './helpers/http.ts';

/** The processes `pid` started (Linux). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Resolves with the primary's workers once it has `count` of them, none of `dead`.
 * There is no event for a fork to wait on, so /proc is read every 20 ms. */
async function workersOf(pid: number, count: number, dead: ReadonlySet<number> = new Set()): Promise<number[]> {
  for (;;) {
    const workers = childrenOf(pid).filter((child) => !dead.has(child));
    if (workers.length === count) return workers;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

let sim: SimVllm;
simForCliTests((started) => (sim = started), { record: false });

describe('--workers', () => {
  it('all workers killed at once: the primary starts new ones and serves again', { timeout: 60_000 }, async () => {
    const run = runCli(['--gateway-port', '0', '--gateway-host', '127.0.0.1', '--workers', '2', '--llm-api-base', sim.url]);
    const url = `http://127.0.0.1:${portOf(await run.waitForLog('gateway listening'))}`;
    const primary = run.child.pid as number;
    const first = await workersOf(primary, 2);
    for (const pid of first) process.kill(pid, 'SIGKILL');
    const replaced = await workersOf(primary, 2, new Set(first));
    assert.equal(replaced.filter((pid) => first.includes(pid)).length, 0);
    assert.equal(run.child.exitCode, null, 'the primary is still running');
    // The new workers serve, on the same port (the primary chose it once for all of them).
    for (;;) {
      const health = await send(`${url}/health`).catch(() => undefined);
      if (health?.status === 200) break;
    }
    assert.equal((await send(`${url}/v1/models`)).status, 200);
    run.child.kill('SIGTERM');
    assert.equal((await run.exited).code, 0);
  });

  it('workers that keep dying: the primary exits non-zero with one clear line', { timeout: 90_000 }, async () => {
    const run = runCli(['--gateway-port', '0', '--gateway-host', '127.0.0.1', '--workers', '2', '--llm-api-base', sim.url]);
    await run.waitForLog('gateway listening');
    const primary = run.child.pid as number;
    const dead = new Set<number>();
    let rounds = 0;
    // Kill every worker as soon as it appears, until the primary gives up (bounded).
    while (run.child.exitCode === null && rounds < 20) {
      const workers = await Promise.race([workersOf(primary, 2, dead), run.exited.then(() => [])]);
      for (const pid of workers) {
        dead.add(pid);
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Gone already.
        }
      }
      rounds += 1;
    }
    const exit = await run.exited;
    assert.notEqual(exit.code, 0);
    assert.equal(exit.code, 1);
    const lines = run.stderr().trim().split('\n');
    assert.equal(lines.length, 1, run.stderr());
    assert.match(lines[0] as string, /^responses-gateway: gateway workers keep dying \(\d+ in the last 60 s, the last killed by SIGKILL\); giving up$/);
  });
});
