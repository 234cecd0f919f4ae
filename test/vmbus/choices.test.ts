// The table of undocumented behaviours (src/vmbus/choices.ts): every choice is listed once,
// with its source and options, and the defaults are among the options.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CHOICES, GAP_CHOICES, resolveChoices } from '../../src/vmbus/choices.ts';

describe('gap choices', () => {
  it('lists every choice exactly once, with the default among its options and a SPEC-NOTES source', () => {
    expect(GAP_CHOICES.map((c) => c.key).sort()).toEqual(Object.keys(DEFAULT_CHOICES).sort());
    for (const c of GAP_CHOICES) {
      expect(c.options).toContain(DEFAULT_CHOICES[c.key]);
      expect(c.source).toMatch(/^SPEC-NOTES \d/);
      expect(c.question.length).toBeGreaterThan(10);
      // The default is listed first, and says which source (or inference) it follows.
      expect(c.options[0]).toBe(DEFAULT_CHOICES[c.key]);
      expect(c.defaultSource).toMatch(/\[(H|D|L|O|I)\]/);
    }
  });

  it('are all in the README table, default first, with the source for the default', () => {
    const readme = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');
    for (const c of GAP_CHOICES) {
      const row = readme.split('\n').find((l) => l.startsWith(`| \`${c.key}\` |`));
      expect(row, c.key).toBeDefined();
      expect(row!.split('|')[2]!.trim().startsWith(`\`${String(c.options[0])}\``), c.key).toBe(true);
      expect(row!.split('|').length, `${c.key}: a column for the default's source`).toBeGreaterThanOrEqual(6);
    }
  });

  it('merges a partial set over the defaults without changing the defaults', () => {
    const before = { ...DEFAULT_CHOICES };
    const r = resolveChoices({ saveChunking: 'packed' });
    expect(r).toEqual({ ...DEFAULT_CHOICES, saveChunking: 'packed' });
    expect(resolveChoices(undefined)).toEqual(DEFAULT_CHOICES);
    expect(DEFAULT_CHOICES).toEqual(before);
  });
});
