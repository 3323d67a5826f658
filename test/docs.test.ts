// The generated parts of the docs match the code they come from, and their links lead
// somewhere on a code host.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
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

/** Markdown links and images: [text](target) and ![alt](target), the target without a title. */
function linksIn(markdown: string): string[] {
  const withoutCode = markdown.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  return [...withoutCode.matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((match) => match[1] as string);
}

describe('links in the docs', () => {
  const files = execFileSync('git', ['ls-files', '*.md'], { cwd: REPO_ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);

  it('point at files of the repository, by relative paths a code host resolves', () => {
    assert.ok(files.includes('README.md') && files.includes('ARCHITECTURE.md'));
    const tracked = new Set(execFileSync('git', ['ls-files'], { cwd: REPO_ROOT, encoding: 'utf8' }).split('\n').filter(Boolean));
    const broken: string[] = [];
    let checked = 0;
    for (const file of files) {
      for (const target of linksIn(readFileSync(REPO_ROOT + file, 'utf8'))) {
        if (/^(https?:|mailto:|#)/.test(target)) continue;
        checked += 1;
        const path = posix.normalize(posix.join(posix.dirname(file), decodeURIComponent(target.split('#')[0] as string))).replace(/\/$/, '');
        // A link to a folder works on a code host when the folder holds tracked files.
        const exists = tracked.has(path) || [...tracked].some((candidate) => candidate.startsWith(`${path}/`));
        if (target.startsWith('/') || path.startsWith('..') || !exists) broken.push(`${file}: ${target}`);
      }
    }
    assert.deepEqual(broken, []);
    assert.ok(checked > 10, `${checked} relative links checked`);
  });
});
