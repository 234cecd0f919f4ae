// lab/quarantine.yaml: validated with file/line/field, matched by scenario/host/template,
// excusing failures only until its date.
import { describe, expect, it } from 'vitest';
import { parseYamlText } from '../../../src/lab/yaml-input.ts';
import { loadQuarantine, quarantineFor, quarantineFromSource, quarantineWarnings } from '../../../src/run/engine/quarantine.ts';

const parse = (text: string) => quarantineFromSource(parseYamlText(text, 'lab/quarantine.yaml'));

describe('quarantine', () => {
  it('loads the repository file', async () => {
    const q = await loadQuarantine('lab/quarantine.yaml');
    expect(q.entries).toEqual([]);
  });

  it('names file, line and field for a bad date, an unknown key and an entry that covers nothing', () => {
    expect(() => parse('entries:\n  - scenario: a\n    reason: known bug\n    until: 31/12/2026\n')).toThrow(/lab\/quarantine\.yaml:4 entries\[0\]\.until: must be a date/);
    expect(() => parse('entries:\n  - scenario: a\n    reason: known bug\n    until: 2026-12-31\n    untill: 2027-01-01\n')).toThrow(/lab\/quarantine\.yaml:5 .*untill/);
    expect(() => parse('entries:\n  - reason: known bug\n    until: 2026-12-31\n')).toThrow(/:2 entries\[0\]: the entry covers nothing/);
    expect(() => parse('entries:\n  - host: a\n    reason: known bug\n    until: 2026-02-30\n')).toThrow(/not a calendar date/);
  });

  it('covers a job by every field it names, through the whole last day', () => {
    const q = parse('entries:\n  - scenario: mig\n    host: hv-b\n    reason: Move-VM drops held packets\n    issue: "#42"\n    until: 2026-12-31\n');
    const job = { scenario: 'mig', host: 'hv-a', template: 't', partner: 'hv-b' };
    expect(quarantineFor(q, job, '2026-12-31T23:00:00Z')).toEqual({ reason: 'Move-VM drops held packets [#42] (lab/quarantine.yaml:2)', until: '2026-12-31T23:59:59Z' });
    expect(quarantineFor(q, job, '2027-01-01T00:00:00Z')).toBeUndefined();
    expect(quarantineFor(q, { ...job, partner: undefined }, '2026-12-01T00:00:00Z')).toBeUndefined();
    expect(quarantineFor(q, { ...job, scenario: 'other' }, '2026-12-01T00:00:00Z')).toBeUndefined();
  });

  it('warns about expired entries and names that are not in the run', () => {
    const q = parse('entries:\n  - scenario: gone\n    reason: old bug\n    until: 2026-01-01\n');
    const w = quarantineWarnings(q, '2026-11-24T03:00:00Z', { scenarios: ['s'], hosts: ['h'], templates: ['t'] });
    expect(w.join('\n')).toMatch(/expired on 2026-01-01/);
    expect(w.join('\n')).toMatch(/scenario gone is not in this run/);
  });
});
