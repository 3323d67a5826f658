// The generated parts of the docs match the code they come from.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { GENERATED, replaceSection } from '../scripts/render-docs.ts';
import { REPO_ROOT } from './helpers/cli.ts';

describe('generated docs', () => {
  for (const { file, section, render } of GENERATED) {
    it(`${file} has the current ${section} table (run npm run docs)`, () => {
      const text = readFileSync(REPO_ROOT + file, 'utf8');
      assert.equal(text, replaceSection(text, section, render()));
    });
  }

  it('the README shows the two set-up commands', () => {
    const readme = readFileSync(`${REPO_ROOT}README.md`, 'utf8');
    assert.match(readme, /npm install && npm run demo/);
    assert.match(readme, /^npm test/m);
  });
});
