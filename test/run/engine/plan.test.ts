// The plan: a pure function of inventory x scenarios x matrix, with ids built from a job's
// coordinates, migration jobs on host pairs, and what cannot be placed said with a reason.
import { describe, expect, it } from 'vitest';
import { formatPlan, jobIdOf, makePlan, planJson, type PlanHost, type PlanInput, type PlanTemplate } from '../../../src/run/engine/plan.ts';
import type { Scenario } from '../../../src/scenario/model.ts';

const scenario = (name: string, steps: Scenario['steps'], seed?: number): Scenario => ({
  name, seed, channels: [{ id: 0, g2hPages: 4, h2gPages: 4, quota: 0 }], saveBufferSize: 4096, host: 'host-a', choices: {}, steps,
});
const save = scenario('save', [{ op: 'save' }, { op: 'restore' }]);
const migrate = scenario('migrate', [{ op: 'migrate', to: 'host-b' }, { op: 'migrate', to: 'host-a' }]);
const threeHosts = scenario('three', [{ op: 'migrate', to: 'host-b' }, { op: 'migrate', to: 'host-c' }]);
const hosts: PlanHost[] = [
  { name: 'hv-a', build: '26100', migrationPartner: 'hv-b', capacity: { vmSlots: 4, memoryMB: 16384 } },
  { name: 'hv-b', build: '26100', migrationPartner: 'hv-a', capacity: { vmSlots: 4, memoryMB: 16384 } },
  { name: 'small', build: '26200', migrationPartner: undefined, capacity: { vmSlots: 1, memoryMB: 2048 } },
];
const templates: PlanTemplate[] = [
  { name: 'ubuntu', parentDisk: 'D:\\p\\u.vhdx', memoryMB: 2048, guest: { osName: 'Ubuntu 24.04' } },
  { name: 'win', parentDisk: 'D:\\p\\w.vhdx', memoryMB: 4096, guest: { osName: 'Windows Server 2025' } },
];
const input: PlanInput = { lab: 'lab', hosts, templates, scenarios: [save, migrate, threeHosts], matrix: { seeds: [1, 2] } };

describe('makePlan', () => {
  it('gives the same plan.json, byte for byte, for the same inputs in a fresh call', () => {
    expect(planJson(makePlan(input))).toBe(planJson(makePlan(structuredClone(input))));
    expect(makePlan(input).digest).toMatch(/^[0-9a-f]{32}$/);
  });

  it('changes the digest when a scenario changes, and only keeps ids unique per coordinates', () => {
    const changed = { ...input, scenarios: [scenario('save', [{ op: 'save' }, { op: 'restore' }, { op: 'save' }]), migrate] };
    expect(makePlan(changed).digest).not.toBe(makePlan(input).digest);
    const ids = makePlan(input).jobs.map((j) => j.jobId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toContain(jobIdOf('save', 'ubuntu', 'hv-a', undefined, 1));
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_@+=.-]+$/);
  });

  it('expands hosts x templates x scenarios x seeds where each fits the host', () => {
    const plan = makePlan(input);
    const saves = plan.jobs.filter((j) => j.scenario === 'save');
    // hv-a, hv-b: 2 templates x 2 seeds; small: ubuntu only (win needs 4096 MB).
    expect(saves).toHaveLength(2 * 2 * 2 + 2);
    expect(plan.unplaced).toContainEqual(expect.objectContaining({ scenario: 'save', template: 'win', host: 'small' }));
    expect(saves.every((j) => j.partner === undefined && j.affinity === `${j.host}|${j.template}`)).toBe(true);
  });

  it('puts migration scenarios on host pairs, maps the scenario hosts, and never reuses their VMs', () => {
    const plan = makePlan(input);
    const pairs = plan.jobs.filter((j) => j.scenario === 'migrate');
    expect(pairs.map((j) => `${j.host}>${j.partner}`).sort()).toEqual(['hv-a>hv-b', 'hv-a>hv-b', 'hv-a>hv-b', 'hv-a>hv-b', 'hv-b>hv-a', 'hv-b>hv-a', 'hv-b>hv-a', 'hv-b>hv-a']);
    expect(pairs[0]!.hostMap).toEqual({ 'host-a': pairs[0]!.host, 'host-b': pairs[0]!.partner });
    expect(pairs.every((j) => j.affinity === undefined && j.locks.includes(`host:${j.partner}`))).toBe(true);
    expect(plan.unplaced).toContainEqual(expect.objectContaining({ scenario: 'migrate', host: 'small', reason: expect.stringMatching(/migrationPartner/) }));
    expect(plan.unplaced).toContainEqual(expect.objectContaining({ scenario: 'three', reason: expect.stringMatching(/3 hosts/) }));
  });

  it('orders the longest jobs first so the run ends on short ones', () => {
    const est = makePlan(input).jobs.map((j) => j.estimateS);
    expect(est).toEqual([...est].sort((a, b) => b - a));
  });

  it('uses the scenario seed when the matrix names none, and prints itself for --dry-run', () => {
    const plan = makePlan({ ...input, scenarios: [scenario('s', [{ op: 'save' }], 42)], matrix: { hosts: ['hv-a'] } });
    expect(plan.jobs.map((j) => j.seed)).toEqual([42, 42]);
    expect(plan.jobs.every((j) => j.host === 'hv-a')).toBe(true);
    expect(formatPlan(plan)).toMatch(/2 job\(s\)/);
  });
});
