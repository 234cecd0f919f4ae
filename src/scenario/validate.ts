// Rules a scenario must follow beyond its schema: what may come after what.
//
// A saved VM can only be restored; a paused VM only resumed (or saved); a checkpoint
// must exist before it is applied; channel references must exist. Each rule reports
// the step index, so the loader can name the line.

import { cGuestOf, usesCDrivers, type Scenario } from './model.ts';
import type { DeviceModule } from '../device-api/device-module.ts';
import { PAGE_SIZE, inBandFootprint } from '../vmbus/ring-layout.ts';

export interface RuleViolation {
  step: number;
  field: string;
  message: string;
}

export function checkRules(s: Scenario): RuleViolation[] {
  const out: RuleViolation[] = [];
  const ids = new Set<number>();
  s.channels.forEach((c, i) => {
    if (ids.has(c.id)) out.push({ step: -1, field: `channels[${i}].id`, message: `channel id ${c.id} is used twice` });
    ids.add(c.id);
  });
  let vm: 'running' | 'paused' | 'saved' = 'running';
  let host = s.host;
  const checkpoints = new Set<string>();
  /** channels rescinded with reopen: false or closed by the guest, not opened since; a checkpoint keeps its own copy */
  let closed = new Set<number>();
  const closedAt = new Map<string, Set<number>>();
  s.steps.forEach((step, i) => {
    const bad = (field: string, message: string): void => {
      out.push({ step: i, field: `steps[${i}]${field ? `.${field}` : ''}`, message });
    };
    if ('channel' in step && !ids.has(step.channel)) bad('channel', `no channel ${step.channel}; channels are ${[...ids].join(', ')}`);
    if ('size' in step && 'channel' in step) {
      // A packet larger than its ring could ever hold would wait in the library forever.
      const c = s.channels.find((x) => x.id === step.channel);
      const toHost = step.op === 'guest-send' || (step.op === 'notify' && step.dir === 'g2h');
      const pages = c ? (toHost ? c.g2hPages : c.h2gPages) : 0;
      if (c && inBandFootprint(step.size) > pages * PAGE_SIZE - 8) {
        bad('size', `a ${step.size}-byte message needs ${inBandFootprint(step.size)} bytes of ring, more than the ${pages}-page ${toHost ? 'g2h' : 'h2g'} ring of channel ${c.id} can hold; use more ${toHost ? 'g2hPages' : 'h2gPages'}`);
      }
    }
    if (vm === 'saved' && step.op !== 'restore') {
      bad('op', `the VM is saved here; only "restore" can follow "save", not "${step.op}"`);
      return;
    }
    switch (step.op) {
      case 'save':
        vm = 'saved';
        break;
      case 'restore':
        if (vm !== 'saved') bad('op', '"restore" needs a "save" before it');
        (step.fail ?? []).forEach((ch, k) => {
          if (!ids.has(ch)) bad(`fail[${k}]`, `no channel ${ch}; channels are ${[...ids].join(', ')}`);
        });
        vm = 'running';
        break;
      case 'rescind':
        if (vm !== 'running') bad('op', 'rescind a channel of a running VM (resume it first)');
        if (closed.has(step.channel)) bad('channel', `channel ${step.channel} is closed already; "guest-open" it first`);
        if (!step.reopen) closed.add(step.channel);
        break;
      case 'guest-open':
        if (vm !== 'running') bad('op', 'a paused guest cannot open a channel');
        if (!closed.has(step.channel)) bad('channel', `channel ${step.channel} is open; "guest-open" follows a "guest-close" or a "rescind" with "reopen: false"`);
        closed.delete(step.channel);
        break;
      case 'guest-close':
        if (vm !== 'running') bad('op', 'a paused guest cannot close a channel');
        if (closed.has(step.channel)) bad('channel', `channel ${step.channel} is closed already; "guest-open" it first`);
        closed.add(step.channel);
        break;
      case 'pause':
        if (vm === 'paused') bad('op', 'the VM is already paused');
        vm = 'paused';
        break;
      case 'resume':
        if (vm !== 'paused') bad('op', '"resume" needs a "pause" before it');
        vm = 'running';
        break;
      case 'checkpoint':
        if (vm !== 'running') bad('op', 'take checkpoints of a running VM');
        checkpoints.add(step.name);
        closedAt.set(step.name, new Set(closed));
        break;
      case 'apply-checkpoint':
        if (!checkpoints.has(step.name)) bad('name', `no checkpoint "${step.name}" was taken before this step`);
        closed = new Set(closedAt.get(step.name) ?? []);
        vm = 'running';
        break;
      case 'migrate':
        if (vm !== 'running') bad('op', 'migrate a running VM (resume it first)');
        if (step.to === host) bad('to', `the VM is already on "${host}"`);
        host = step.to;
        break;
      case 'guest-send':
      case 'notify':
        if (vm !== 'running' && (step.op === 'guest-send' || step.dir === 'g2h')) bad('op', 'a paused guest cannot send');
        if (closed.has(step.channel) && (step.op === 'guest-send' || step.dir === 'g2h')) bad('channel', `the guest has channel ${step.channel} closed; "guest-open" it first`);
        break;
      default:
        break;
    }
  });
  // A run that ends saved or paused leaves every packet in flight unfinished, which the
  // checker could only call lost: refuse it here, at the last step's line.
  const last = s.steps.length - 1;
  if ((vm as string) === 'saved') out.push({ step: last, field: `steps[${last}]`, message: 'the scenario ends with the VM saved; add a "restore"' });
  if (closed.size > 0) out.push({ step: last, field: `steps[${last}]`, message: `the scenario ends with channel ${[...closed].join(', ')} offered and not opened; add a "guest-open"` });
  if ((vm as string) === 'paused') out.push({ step: last, field: `steps[${last}]`, message: 'the scenario ends with the VM paused; add a "resume"' });
  return out;
}

/** The rules a scenario's steps must follow for its device (its module's declarations). */
export function checkDeviceRules(s: Scenario, m: DeviceModule): RuleViolation[] {
  const out: RuleViolation[] = [];
  const { min, max } = m.messageSize;
  s.steps.forEach((step, i) => {
    const bad = (field: string, message: string): void => void out.push({ step: i, field: `steps[${i}].${field}`, message });
    if ('size' in step && (step.size < min || step.size > max)) bad('size', `device ${m.name} sends messages of ${min} to ${max} bytes; ${step.size} is outside`);
    if (step.op === 'guest-send' && !m.completions.guestSend && step.mode !== 'inline') bad('mode', `device ${m.name}'s guest requests want no completion, so the VSP has none to defer or hold`);
    if (step.op === 'host-send' && !m.completions.hostSend && step.hold > 0) bad('hold', `device ${m.name}'s host transactions want no completion, so the guest has none to hold`);
  });
  if (usesCDrivers(s.devices) && !m.emulator?.cHost) out.push({ step: -1, field: 'devices', message: `device ${m.name} has no C VSP built for the emulator (its module has no emulator.cHost)` });
  if (cGuestOf(s.devices) && !m.emulator?.cGuest) out.push({ step: -1, field: 'devices', message: `device ${m.name} has no C guest driver built for the emulator (its module has no emulator.cGuest)` });
  return out;
}
