// The schema's reference page (src/trace/TRACE-SCHEMA.md) is the contract a driver author
// writes to: every event the bench reads has its row there, with each field the JSON
// Schema requires of it, and every property the checker tests has its row.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EVENT_SIDES } from '../../src/trace/schema.ts';
import type { PropertyName } from '../../src/check/properties.ts';

const page = readFileSync(new URL('../../src/trace/TRACE-SCHEMA.md', import.meta.url), 'utf8');
const jsonSchema = JSON.parse(readFileSync(new URL('../../src/trace/trace-v1.schema.json', import.meta.url), 'utf8')) as {
  allOf: Array<{ if?: { properties?: { ev?: { const?: string } } }; then?: { required?: string[] } }>;
};

/** The table row that names `ev` in its first cell (alone or beside others, "`a`, `b`"). */
function rowOf(ev: string): string | undefined {
  return page.split('\n').find((l) => l.startsWith('| ') && l.split('|')[1]!.includes(`\`${ev}\``));
}

describe('TRACE-SCHEMA.md', () => {
  it('has a row for every event, naming every field the JSON Schema requires of it', () => {
    for (const ev of Object.keys(EVENT_SIDES)) {
      const row = rowOf(ev);
      expect(row, `no row for ${ev}`).toBeDefined();
      const rule = jsonSchema.allOf.find((r) => r.if?.properties?.ev?.const === ev);
      for (const field of rule?.then?.required ?? []) {
        // ch/tx/dir are named once in the section heading rather than in each row.
        if (['ch', 'tx', 'dir'].includes(field)) continue;
        expect(row, `${ev} row lacks ${field}`).toContain(`\`${field}\``);
      }
    }
  });

  it('lists every property the checker tests', () => {
    const properties: Record<PropertyName, true> = {
      'exactly-once-completion': true, 'exactly-once-delivery': true, payload: true, 'saved-and-restored': true,
      'status-rule': true, 'state-machine': true, checkpoint: true, progress: true, 'ring-format': true, 'kmcl-rules': true,
    };
    for (const p of Object.keys(properties)) expect(page, p).toMatch(new RegExp(`^\\| \`${p}\` \\|`, 'm'));
  });
});
