// lab/SETUP.md is the one place that lists the environment: every variable the bench's
// sources read must be in its table, and the README must link the guide.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : /\.(ts|js)$/.test(n) ? [p] : [];
  });
}

describe('lab/SETUP.md', () => {
  it('lists every environment variable read in src/ and bin/', () => {
    const read = new Set<string>();
    for (const f of [...files('src'), ...files('bin')]) {
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/\b(?:process\.)?env\.([A-Z][A-Z0-9_]+)|\benv\[['"]([A-Z][A-Z0-9_]+)['"]\]|['"]([A-Z][A-Z0-9_]+)['"]\s+in\s+process\.env/g)) read.add(m[1] ?? m[2] ?? m[3]!);
    }
    expect(read.size).toBeGreaterThan(4);
    const table = readFileSync('lab/SETUP.md', 'utf8').split('## 9. Environment variables')[1] ?? '';
    const listed = new Set([...table.matchAll(/^\| `([A-Z][A-Z0-9_]+)`/gm)].map((m) => m[1]!));
    expect([...read].filter((v) => !listed.has(v)).sort()).toEqual([]);
  });

  it('is linked from the README, and the nightly units\' lab/lab.yaml exists', () => {
    expect(readFileSync('README.md', 'utf8')).toContain('(lab/SETUP.md)');
    for (const unit of ['lab/nightly/bench-nightly.service', 'lab/nightly/bench-nightly.xml']) expect(readFileSync(unit, 'utf8')).toMatch(/lab[\\/]lab\.yaml/);
    expect(statSync('lab/lab.yaml').isFile()).toBe(true);
  });
});
