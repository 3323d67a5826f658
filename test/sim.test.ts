// The simulated vLLM documents its switches: `npm run sim -- --help` names every one the
// code reads.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { DIRECTIVES } from '../sim/vllm-sim.ts';
import { STREAM_QUIRKS } from '../sim/wire.ts';
import { REPO_ROOT } from './helpers/cli.ts';

describe('the simulated vLLM', () => {
  it('lists every x-sim switch, every quirk and every flag in --help', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'sim/cli.ts', '--help'], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.equal(run.status, 0);
    for (const key of Object.keys(DIRECTIVES)) assert.match(run.stdout, new RegExp(`\\n  ${key}\\b`), `x-sim ${key}`);
    for (const quirk of STREAM_QUIRKS) assert.ok(run.stdout.includes(quirk), `quirk ${quirk}`);
    for (const flag of ['--port', '--host', '--model', '--api-key', '--chunk-delay-ms', '--coalesce', '--fast', '--no-record']) {
      assert.ok(run.stdout.includes(flag), flag);
    }
  });
});
