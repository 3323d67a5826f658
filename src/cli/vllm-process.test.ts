import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { findExecutable, vllmLaunch } from './vllm-process.ts';

describe('finding and launching vLLM', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rg-exec-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const runnable = join(dir, 'vllm');
  writeFileSync(runnable, '#!/bin/sh\n');
  chmodSync(runnable, 0o755);
  const notRunnable = join(dir, 'plain');
  writeFileSync(notRunnable, '');

  it('finds a command on PATH as a shell would, skipping what is not executable', () => {
    assert.equal(findExecutable('vllm', ['/no/such/dir', dir].join(delimiter)), runnable);
    assert.equal(findExecutable('plain', dir), undefined);
    assert.equal(findExecutable('vllm', ''), undefined);
    assert.equal(findExecutable(runnable, ''), runnable, 'a path is taken as it is');
    assert.equal(findExecutable(dir, ''), undefined, 'a directory is not a command');
  });

  it('starts vLLM under a parent-death signal where the platform has one', (t) => {
    const setpriv = findExecutable('setpriv');
    const launch = vllmLaunch(runnable, ['serve', 'm', '--port', '8000']);
    if (process.platform !== 'linux' || setpriv === undefined) {
      t.diagnostic('no setpriv here: vLLM starts directly');
      assert.deepEqual(launch, { file: runnable, args: ['serve', 'm', '--port', '8000'] });
      return;
    }
    assert.deepEqual(launch, { file: setpriv, args: ['--pdeathsig', 'TERM', '--', runnable, 'serve', 'm', '--port', '8000'] });
  });

  it('leaves a binary it cannot find to spawn, which reports it (see --vllm-bin)', () => {
    assert.deepEqual(vllmLaunch(join(dir, 'missing'), ['serve']), { file: join(dir, 'missing'), args: ['serve'] });
  });
});
