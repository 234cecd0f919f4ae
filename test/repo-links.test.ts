// A clone of the repository is all a user has: no document or source file may point at,
// or read, the design notes and references that sit beside the working copy on the
// developers' machine, and every relative link in the Markdown documents must lead to a
// file (and heading) that exists in the repository.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const REPO = resolve('.');
const SKIP_DIRS = new Set(['.git', 'node_modules', 'results', 'test-artifacts']);

/** The repository's files: git's list when there is one, else a walk of the tree. */
function repoFiles(): string[] {
  try {
    return execFileSync('git', ['ls-files', '-z'], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\0')
      .filter((f) => f.length > 0 && existsSync(join(REPO, f)));
  } catch {
    const walk = (dir: string): string[] =>
      readdirSync(join(REPO, dir)).flatMap((n) => {
        const rel = dir ? `${dir}/${n}` : n;
        if (SKIP_DIRS.has(n)) return [];
        return statSync(join(REPO, rel)).isDirectory() ? walk(rel) : [rel];
      });
    return walk('');
  }
}

/** Text files only (a NUL byte marks binary data such as saved-VM blobs). */
function textOf(file: string): string | null {
  const buf = readFileSync(join(REPO, file));
  return buf.includes(0) ? null : buf.toString('utf8');
}

const files = repoFiles();

// A relative path that climbs out of the repository to the sibling folder, or names
// one of that folder's documents as if it were at hand, or builds that path in code.
const OUTSIDE = /(?:\.\.[\\/])+shared[\\/]|\bshared[\\/](?:reference|DESIGN\.md|STYLE\.md)\b|['"]\.\.['"]\s*,\s*['"]shared['"]/;

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of stripFences(markdown).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = m[1]!.toLowerCase().replace(/`/g, '').replace(/[^\p{L}\p{N}\s_-]/gu, '').trim().replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Markdown without fenced code blocks (where a `#` line is no heading). */
function stripFences(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
}

/** Markdown without fenced code blocks and code spans, where brackets are not links. */
function stripCode(markdown: string): string {
  return stripFences(markdown).replace(/`[^`\n]*`/g, '');
}

/** The targets of inline links and images, and of reference definitions. */
function linksOf(markdown: string): string[] {
  const text = stripCode(markdown);
  const inline = [...text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!);
  const defs = [...text.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)].map((m) => m[1]!);
  return [...inline, ...defs];
}

describe('the repository stands alone', () => {
  it('has files to check (the walk found the repository)', () => {
    expect(files).toContain('README.md');
    expect(files.some((f) => f.endsWith('.md') && f !== 'README.md')).toBe(true);
  });

  it('no document, source, script or test points at or reads the folder beside the repository', () => {
    const bad: string[] = [];
    for (const f of files) {
      const text = textOf(f);
      if (text === null) continue;
      text.split('\n').forEach((line, i) => {
        if (OUTSIDE.test(line)) bad.push(`${f}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(bad).toEqual([]);
  });

  it('every relative link in the Markdown documents leads to a file in the repository, and to a heading that exists', () => {
    const bad: string[] = [];
    const anchors = new Map<string, Set<string>>();
    const anchorsIn = (file: string): Set<string> => {
      let a = anchors.get(file);
      if (!a) anchors.set(file, (a = anchorsOf(readFileSync(file, 'utf8'))));
      return a;
    };
    let checked = 0;
    for (const f of files.filter((x) => x.endsWith('.md'))) {
      const from = join(REPO, f);
      for (const link of linksOf(readFileSync(from, 'utf8'))) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // https:, mailto: and the like
        checked++;
        const [path, fragment] = link.split('#', 2) as [string, string | undefined];
        const target = path === '' ? from : path.startsWith('/') ? join(REPO, decodeURIComponent(path)) : resolve(dirname(from), decodeURIComponent(path));
        if (relative(REPO, target).startsWith('..')) {
          bad.push(`${f}: ${link} leaves the repository`);
        } else if (!existsSync(target)) {
          bad.push(`${f}: ${link} does not exist`);
        } else if (fragment && target.endsWith('.md') && !anchorsIn(target).has(fragment.toLowerCase())) {
          bad.push(`${f}: ${link} names no heading of ${relative(REPO, target)}`);
        }
      }
    }
    expect(bad).toEqual([]);
    expect(checked).toBeGreaterThan(0);
  });
});
