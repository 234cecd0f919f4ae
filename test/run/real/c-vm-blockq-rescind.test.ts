// blockq's rescind and guest close in a real lab's VM job, on its real C drivers: the C
// VSP and the Linux guest module compiled to WebAssembly in one emulated VM
// (support/c-vm.ts, whose guest VMBus core removes and probes devices as Linux's does),
// driven by real-job.ts as a lab job drives them: the VSP's `rescind ch=N` and a new
// `open` (JobLab.offer, a lab's handle broker), the guest OS's unbind and bind of
// vmbus_blockq_guest (blockqControl.guestUnbind) and drivers_autoprobe. A lab plans these
// scenarios with a Linux guest (no longer not applicable), and the merged trace, with the
// host's ch.rescind and ch.offer the job writes, must pass bench check.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { blockqControl } from '../../../devices/blockq/control.ts';
import { BlockqCVsp } from '../../../devices/blockq/c/vsp.ts';
import { BLOCKQ_IOCTL, blockqGuestLinuxRecipe } from '../../../devices/blockq/c/recipe.ts';
import { vmStepNotApplicable } from '../../../src/lab/vm-steps.ts';
import { checkTraces } from '../../../src/run/commands/check-trace.ts';
import { runRealJob } from '../../../src/run/real/real-job.ts';
import { loadScenarioFile } from '../../../src/scenario/loader.ts';
import { cVmJob, type CVmDevice } from './support/c-vm.ts';
import { toolchain } from './support/vm-job-harness.ts';

const BLOCKQ: CVmDevice = { vsp: (o) => new BlockqCVsp(o), countersIoctl: BLOCKQ_IOCTL.counters, guestRecipe: blockqGuestLinuxRecipe(), control: blockqControl };
const OPTS = { opTimeoutMs: 30_000, settleQuietMs: 2_000, settleTimeoutMs: 120_000 };
const g1 = blockqControl.channelInstance(1);

async function runOnC(file: string) {
  const s = await loadScenarioFile(file);
  expect(vmStepNotApplicable(s, 'linux')).toBeUndefined();
  const c = cVmJob(s, 'hv-a', BLOCKQ);
  const dir = mkdtempSync(join(tmpdir(), 'c-vm-blockq-'));
  const out = await runRealJob({ scenario: s, seed: 1, hostMap: { [s.host]: 'hv-a' } }, c.lab, dir, new AbortController().signal, OPTS);
  expect(out, JSON.stringify(out).slice(0, 400)).toMatchObject({ kind: 'ran' });
  if (out.kind !== 'ran') throw new Error('the job did not run');
  const r = await checkTraces(s, out.traces, { minimise: false });
  expect(r.result, JSON.stringify(r.result).slice(0, 600)).toMatchObject({ verdict: 'pass' });
  const events = out.traces.flatMap((t) => readFileSync(t, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { side: string; ev: string; ch?: number }));
  const cancels = (side: string) => events.filter((e) => e.side === side && e.ev === 'pkt.cancel' && e.ch === 1).length;
  return { log: c.log, dir, cancels };
}

describe.skipIf(!toolchain)('blockq\'s rescind and guest close in a VM job on its C drivers', () => {
  it('04-rescind-and-reoffer: the VSP rescinds and offers each new instance, the guest\'s bus holds the second unbound until guest-open, the merged trace passes bench check', async () => {
    const { log, dir, cancels } = await runOnC('devices/blockq/scenarios/04-rescind-and-reoffer.yaml');
    const open1 = expect.stringMatching(new RegExp(`^vsp: open 1 ${g1} `));
    expect(log.filter((l) => /^vsp: (rescind|open 1 )/.test(l))).toEqual([open1, 'vsp: rescind ch=1', open1, 'vsp: rescind ch=1', open1]);
    expect(log.filter((l) => /^guest: (bind|unbind|drivers_autoprobe)/.test(l))).toEqual(['guest: drivers_autoprobe 0', `guest: bind ${g1}`, 'guest: drivers_autoprobe 1']);
    const host = readFileSync(join(dir, 'host.trace.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { ev: string });
    expect(host.filter((e) => e.ev === 'ch.rescind' || e.ev === 'ch.offer').map((e) => e.ev)).toEqual(['ch.rescind', 'ch.offer', 'ch.rescind', 'ch.offer']);
    // What was in flight at the rescinds ended at each sender, cancelled.
    expect(cancels('guest')).toBeGreaterThan(0);
    expect(cancels('host')).toBeGreaterThan(0);
  }, 300_000);

  it('05-guest-close-and-reopen: the guest OS unbinds vmbus_blockq_guest\'s device and binds it again, and the merged trace passes bench check', async () => {
    const { log, cancels } = await runOnC('devices/blockq/scenarios/05-guest-close-and-reopen.yaml');
    expect(log.filter((l) => /^guest: (bind|unbind|drivers_autoprobe)/.test(l))).toEqual([`guest: unbind ${g1}`, `guest: bind ${g1}`]);
    expect(log.some((l) => l.startsWith('vsp: rescind'))).toBe(false);
    expect(cancels('guest')).toBeGreaterThan(0);
    expect(cancels('host')).toBeGreaterThan(0);
  }, 300_000);
});
