// `bench lab probe`: the first-contact kit. A short series of experiments on one real host
// answers the design's open questions (DESIGN.md "The sample devices"; lab/SETUP.md
// "First contact") in minutes instead of leaving them to failing jobs. Each experiment
// ends pass, fail or unsupported, with what that means for the lab.
//
//   shell          the host shell answers and the Hyper-V module is there
//   test-signing   bcdedit shows testsigning on
//   vsp-loads      the staged VSP and client builds install, and the VSP answers its control tool
//   loopback-offer a loopback `open` of a channel is accepted
//   client-binds   the client driver in the host opened the loopback channel
//   traffic        a request and a host transaction complete, both ways
//   save-continue  `save` then `resume` of the channel: traffic still completes afterwards
//   restore-open   save, `detach`, `restore` onto a new server channel with the client open, resume
//   force-new-channel  the same with an `open` asking for FORCE_NEW_CHANNEL (the flag 0x8): is the
//                  offer taken, and does the client keep its channel or get a new one
//                  (its counters start again) when the server channel is restored
//   rescind-order  a loopback channel with traffic in flight is rescinded and the control tool
//                  sends on it at once: did KMCL suspend and close the client before PnP removed
//                  its device (the order the test-only removal race cGuestRemovalRace assumes),
//                  and was the command refused with STATUS_INVALID_DEVICE_STATE
//   choice:<key>   for each documented-gap choice, which option the host's traces fit
//
// An experiment whose prerequisite failed is `unsupported` ("not tried: ...") so that the
// findings always list every question.
//
// The drivers are the instrument: the probe drives the device the host runs (its
// inventory `device`, default the sample) through its module's control (DeviceControl:
// the control tool's verbs, channel lines, counters), loaded by path like any module.

import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../errors.ts';
import { loopbackNotApplicable } from '../../lab/attach.ts';
import { openHyperV, type ConnectConfig } from '../../lab/host-connect.ts';
import { loadInventory } from '../../lab/inventory.ts';
import { writeFileAtomic } from '../../report/atomic-file.ts';
import { loadScenarioPaths } from '../../scenario/loader.ts';
import { checkTestSigning } from '../../lab/deploy-vsp.ts';
import { ensureHostDrivers, hostPackages } from '../../lab/deploy-drivers.ts';
import { loadHostDrivers } from '../../lab/driver-package.ts';
import { readHostFacts, type HostFacts } from '../../lab/host-facts.ts';
import { pipe, project, ps } from '../../lab/host-shell/command.ts';
import { failureError } from '../../lab/host-shell/errors.ts';
import type { HyperV } from '../../lab/hyperv.ts';
import { cmd } from '../../lab/hyperv-vm.ts';
import type { LabHost } from '../../lab/inventory.ts';
import type { Scenario } from '../../scenario/model.ts';
import { GAP_CHOICES } from '../../vmbus/choices.ts';
import { fittingChoices } from '../commands/check-trace.ts';
import type { Clock } from '../engine/job-pipeline.ts';
import { loopbackJobLab, makeWorkDir, runTool, toolDrivers, vspProvider, type LoopbackDrivers, type LoopbackLabOptions } from './loopback-lab.ts';
import { hostDevice } from './lab-run.ts';
import { loadDevice } from '../../device-api/load.ts';
import { hasTool, noLabControl, type DeviceControl, type ToolControl } from '../../device-api/device-module.ts';
import { runRealJob } from './real-job.ts';
import { rescindOrder } from './probe-rescind.ts';

export type ProbeStatus = 'pass' | 'fail' | 'unsupported';

export interface ProbeFinding {
  id: string;
  title: string;
  status: ProbeStatus;
  /** What was seen. */
  detail: string;
  /** What it means for the lab. */
  meaning: string;
}

export interface ProbeReport {
  version: 1;
  host: string;
  at: string;
  facts: HostFacts | undefined;
  findings: ProbeFinding[];
}

export interface ProbeOptions {
  hv: HyperV;
  host: LabHost;
  /** The control of the device the host runs (its module's), and where its tool is on the host. */
  control: ToolControl;
  program: string;
  clock: Clock;
  /** Scenarios run as loopback jobs for the documented-gap choices (the inapplicable are left out). */
  scenarios: readonly Scenario[];
  /** The drivers of those jobs (default: the control tool on the host); tests pass an emulator's. */
  drivers?: (o: LoopbackLabOptions, scenario: Scenario) => LoopbackDrivers & { clock?: Clock };
  /** The probe's own channel number (default 0x7e00, out of the way of scenarios). */
  channel?: number;
  /** How long traffic may take to complete (default 10 s). */
  waitMs?: number;
}

export async function probeHost(o: ProbeOptions): Promise<ProbeReport> {
  const findings: ProbeFinding[] = [];
  const ch = o.channel ?? 0x7e00;
  const waitMs = o.waitMs ?? 10_000;
  const tool = { hv: o.hv, host: o.host.name, control: o.control, program: o.program };
  const { control } = o;
  /** One line to a driver's control interface through the tool. */
  const say = (who: 'vsp' | 'guest', line: string) => runTool(tool, { verb: 'command', who, line });
  const vspSays = (op: Parameters<DeviceControl['channel']>[0]) => say('vsp', control.channel(op));
  const open = (on: number, forceNewChannel: boolean) => vspSays({ op: 'open', ch: on, instance: control.channelInstance(on), ringPages: 4, loopback: true, forceNewChannel });
  const add = (id: string, title: string, status: ProbeStatus, detail: string, meaning: string) => {
    findings.push({ id, title, status, detail, meaning });
    return status === 'pass';
  };
  const notTried = (id: string, title: string, needs: string) => add(id, title, 'unsupported', `not tried: needs ${needs}`, `answer ${needs} first`);
  const attempt = async (body: () => Promise<ProbeStatus | [ProbeStatus, string]>): Promise<[ProbeStatus, string]> => {
    try {
      const r = await body();
      return Array.isArray(r) ? r : [r, ''];
    } catch (e) {
      return ['fail', (e as Error).message.split('\n')[0]!];
    }
  };
  const counters = async (who: 'vsp' | 'guest') => control.counters(who, await runTool(tool, { verb: 'counters', who })).channels;
  const completions = async (on: number) => ({ vsp: (await counters('vsp')).get(on)?.completed ?? 0, client: (await counters('guest')).get(on)?.completed ?? 0 });
  /** Sends 4 each way on channel `on` and waits for their completions; the detail says what came back. */
  const trafficOn = async (on: number): Promise<[ProbeStatus, string]> => {
    const before = await completions(on);
    for (const step of [
      { op: 'guest-send', channel: on, count: 4, size: 64, mode: 'inline', hold: 0 },
      { op: 'host-send', channel: on, count: 4, size: 64, hold: 0 },
    ] as const) {
      const c = control.command(step);
      await say(c.to, c.line);
    }
    const until = o.clock.now() + waitMs;
    for (;;) {
      const now = await completions(on);
      const got = { g2h: now.client - before.client, h2g: now.vsp - before.vsp };
      if (got.g2h >= 4 && got.h2g >= 4) return ['pass', `4 requests and 4 host transactions completed`];
      if (o.clock.now() >= until) return ['fail', `after ${waitMs} ms: ${got.g2h} of 4 requests and ${got.h2g} of 4 host transactions completed`];
      await o.clock.sleep(200);
    }
  };
  const traffic = () => trafficOn(ch);

  // 1. shell and Hyper-V module
  const shell = await attempt(async () => {
    const r = await o.hv.ctx.shell.run(cmd(o.hv.ctx, [pipe(ps('Get-VMHost'), project({ Name: 'string' }))]), { timeoutMs: o.hv.ctx.queryTimeoutMs });
    const e = failureError(r);
    return e ? ['fail', e.message.split('\n')[0]!] : ['pass', `${o.hv.ctx.shell.transport} PowerShell answers; Get-VMHost: ${String((r.items[0] as { Name?: unknown } | undefined)?.Name ?? '?')}`];
  });
  const reached = add('shell', 'the shell and the Hyper-V module', shell[0], shell[1], shell[0] === 'pass' ? 'the bench can drive this host' : 'fix SSH, the shell or the Hyper-V module before anything else (lab/SETUP.md "Host prerequisites")');
  const facts = reached ? await readHostFacts(o.hv).catch(() => undefined) : undefined;

  // 2. test signing
  let signed = false;
  if (!reached) notTried('test-signing', 'test signing', 'the shell');
  else {
    const s = await attempt(async () => {
      const t = await checkTestSigning(o.hv);
      return t.enabled ? ['pass', 'bcdedit shows testsigning Yes'] : ['fail', t.reason];
    });
    signed = add('test-signing', 'test signing', s[0], s[1], s[0] === 'pass' ? 'test-signed drivers can load' : 'run "bcdedit /set testsigning on" and reboot; no test-signed driver can load until then');
  }

  // 3. the VSP (and the client) load
  let loaded = false;
  if (!signed) notTried('vsp-loads', 'the VSP loads', 'test signing');
  else {
    const v = await attempt(async () => {
      const d = await ensureHostDrivers(o.hv, hostPackages(o.host.drivers ?? loadHostDrivers(), ['loopback']));
      if (!d.ok) return ['fail', d.reason];
      await runTool(tool, { verb: 'counters', who: 'vsp' });
      return ['pass', `installed ${d.drivers.map((x) => `${x.name} ${x.fileVersion ?? ''} ${x.sha256.slice(0, 12)}`.replace(/ +/g, ' ')).join(', ')}; the VSP answers its control tool`];
    });
    loaded = add('vsp-loads', 'the VSP loads', v[0], v[1], v[0] === 'pass' ? 'the VSP is in place for every job' : 'see pnputil /enum-devices /drivers and the System event log; no job can run');
  }

  // 4. a loopback offer
  let offered = false;
  if (!loaded) notTried('loopback-offer', 'a loopback offer is created', 'the VSP');
  else {
    const l = await attempt(async () => {
      const out = await open(ch, false).catch((e: Error) => e);
      return out instanceof Error ? ['unsupported', out.message] : ['pass', `channel ${ch} offered with VMBUS_SERVER_CHANNEL_INIT_FLAG_LOOPBACK_OFFER`];
    });
    offered = add('loopback-offer', 'a loopback offer is created', l[0], l[1], l[0] === 'pass' ? 'loopback jobs are possible on this host' : 'the host refuses loopback offers: only attach vm-handle can work here');
  }

  // 5. the client binds in the host
  let bound = false;
  if (!offered) notTried('client-binds', 'the client binds in the host', 'a loopback offer');
  else {
    const b = await attempt(async () => {
      const until = o.clock.now() + waitMs;
      for (;;) {
        if ((await counters('guest').catch(() => new Map())).has(ch)) return ['pass', `the client driver opened channel ${ch} on the offer's device interface`];
        if (o.clock.now() >= until) return ['fail', `no client opened channel ${ch} within ${waitMs} ms`];
        await o.clock.sleep(250);
      }
    });
    bound = add('client-binds', 'the client binds in the host', b[0], b[1], b[0] === 'pass' ? 'the first open question is answered yes: loopback jobs can run' : 'loopback jobs cannot run here: the client does not bind to a loopback offer in the host');
  }

  /**
   * Offers channel `fc` with the flag, waits for the client, saves and restores it with the
   * client open, and says whether the client kept its channel (its counters go on) or got
   * a new one (they start again), and whether traffic flows after.
   */
  const forceNewChannel = async (fc: number): Promise<[ProbeStatus, string]> => {
    const opened = await open(fc, true).catch((e: Error) => e);
    if (opened instanceof Error) return ['fail', `the offer with the flag was refused: ${opened.message}`];
    const bindUntil = o.clock.now() + waitMs;
    while (!(await counters('guest').catch(() => new Map<number, { sent: number; completed: number }>())).has(fc)) {
      if (o.clock.now() >= bindUntil) return ['fail', `the flagged offer was made, but no client opened channel ${fc} within ${waitMs} ms`];
      await o.clock.sleep(250);
    }
    const flowsOn = async (what: string): Promise<string | undefined> => {
      const t = await trafficOn(fc);
      return t[0] === 'pass' ? undefined : `${what}: ${t[1]}`;
    };
    const before = await flowsOn('before the save');
    if (before) return ['fail', before];
    const sentBefore = (await counters('guest')).get(fc)?.sent ?? 0;
    await vspSays({ op: 'save', ch: fc });
    // The saved object is given up first: the VSP's restore refuses a live one (REVIEW D4).
    await vspSays({ op: 'detach', ch: fc });
    const restored = await vspSays({ op: 'restore', ch: fc }).then(() => vspSays({ op: 'resume', ch: fc })).catch((e: Error) => e);
    if (restored instanceof Error) return ['fail', `the save was taken, the restore with the flag was refused: ${restored.message}`];
    // The client's counters right after the restore, before any new traffic.
    const after = (await counters('guest').catch(() => new Map<number, { sent: number; completed: number }>())).get(fc);
    const kept = after !== undefined && after.sent >= sentBefore;
    const flowing = await flowsOn('after the restore');
    const what = kept ? 'the client kept its channel across the restore (its counters went on)' : 'the client got a new channel at the restore (its counters started again)';
    return flowing ? ['fail', `${what}; ${flowing}`] : ['pass', `with FORCE_NEW_CHANNEL: the offer is taken, ${what}, and traffic flows after`];
  };

  // 6-8. traffic, save and continue, restore with the client open
  let flows = false;
  if (!bound) notTried('traffic', 'traffic both ways', 'a bound client');
  else {
    const t = await attempt(traffic);
    flows = add('traffic', 'traffic both ways', t[0], t[1], t[0] === 'pass' ? 'the protocol works end to end on the real KMCL' : 'the protocol path is broken: look at both drivers\' traces');
  }
  if (!flows) notTried('save-continue', 'save and continue at channel level', 'traffic');
  else {
    const s = await attempt(async () => {
      await vspSays({ op: 'save', ch });
      await vspSays({ op: 'resume', ch });
      return traffic();
    });
    add('save-continue', 'save and continue at channel level', s[0], s[1], s[0] === 'pass' ? 'a channel goes on after SaveBegin/SaveContinue/SaveEnd' : 'a saved channel does not resume: channel-level saves are not usable as planned');
  }
  if (!flows) notTried('restore-open', 'restore onto a new server channel, client open', 'traffic');
  else {
    const r = await attempt(async () => {
      await vspSays({ op: 'save', ch });
      // detach gives up the saved object (the VSP's restore refuses a live one, REVIEW D4),
      // restore makes the new server channel, resume offers and starts it (ChannelOp).
      await vspSays({ op: 'detach', ch });
      await vspSays({ op: 'restore', ch });
      await vspSays({ op: 'resume', ch });
      return traffic();
    });
    add('restore-open', 'restore onto a new server channel, client open', r[0], r[1], r[0] === 'pass' ? 'the second open question is answered yes: loopback save/restore jobs can run' : 'loopback jobs that save and restore will fail here: the channel cannot be restored while its client stays open');
  }
  if (offered) await vspSays({ op: 'close', ch }).catch(() => undefined);

  // 9. FORCE_NEW_CHANNEL, on a channel of its own
  if (!flows) notTried('force-new-channel', 'what FORCE_NEW_CHANNEL does', 'traffic');
  else {
    const fc = ch + 1;
    const f = await attempt(() => forceNewChannel(fc));
    add('force-new-channel', 'what FORCE_NEW_CHANNEL does', f[0], f[1], f[0] === 'pass'
      ? 'answered: use it (or not) in the VSP as the detail says; a job never sets it'
      : 'the flag breaks a loopback offer or its restore on this host: keep it off');
    await vspSays({ op: 'close', ch: fc }).catch(() => undefined);
  }

  // 10. how a rescinded client is torn down, on channels of its own (probe-rescind.ts)
  const rescindTitle = 'the order of a rescinded client\'s close and its removal';
  if (!flows) notTried('rescind-order', rescindTitle, 'traffic');
  else {
    const workDir = `${o.host.vmRoot}\\probe-rescind-order`;
    const r = await (async () => {
      const drivers = toolDrivers({ ...tool, clock: o.clock, workDir, session: 'bench-probe-rescind-order', vspProvider: vspProvider(o.host) });
      return rescindOrder({ tool, clock: o.clock, waitMs, workDir, drivers, keep: ch + 2, rescinded: ch + 3 }, control);
    })().catch((e: Error) => ({ status: 'fail' as const, detail: e.message.split('\n')[0]!, meaning: 'the experiment broke off: the removal order stays unanswered' }));
    add('rescind-order', rescindTitle, r.status, r.detail, r.meaning);
  }

  // 11. documented-gap choices, from loopback jobs of targeted scenarios
  await probeChoices(o, flows, add);
  return { version: 1, host: o.host.name, at: new Date(o.clock.now()).toISOString(), facts, findings };
}

async function probeChoices(o: ProbeOptions, flows: boolean, add: (id: string, title: string, status: ProbeStatus, detail: string, meaning: string) => boolean): Promise<void> {
  const fits = new Map<string, Map<string, Set<string>>>(); // choice -> scenario -> options that fit
  const broken: string[] = [];
  // A loopback job is checked against the emulator's loopback topology (lab-run.ts inTopology).
  const runnable = o.scenarios.filter((s) => !loopbackNotApplicable(s)).map((s): Scenario => ({ ...s, topology: 'loopback' }));
  if (flows) {
    for (const s of runnable) {
      const dir = mkdtempSync(join(tmpdir(), `probe-${s.name}-`));
      const lo: LoopbackLabOptions = {
        hv: o.hv, host: o.host.name, control: o.control, program: o.program, clock: o.clock,
        workDir: `${o.host.vmRoot}\\probe-${s.name}`, session: `bench-probe-${s.name}`.slice(0, 60), vspProvider: vspProvider(o.host),
      };
      const made = await makeWorkDir(o.hv, lo.workDir).then(() => true, (e: Error) => { broken.push(`${s.name}: its work folder ${lo.workDir}: ${e.message.split('\n')[0]}`); return false; });
      if (!made) continue;
      const d: LoopbackDrivers & { clock?: Clock } = (o.drivers ?? ((x) => toolDrivers(x)))(lo, s);
      // Drivers that keep their own time (the C drivers on the emulator) bring their clock.
      const lab = loopbackJobLab(d.clock ? { ...lo, clock: d.clock } : lo, d);
      const out = await runRealJob({ scenario: s, seed: s.seed ?? 1, hostMap: { [s.host]: o.host.name } }, lab, dir, new AbortController().signal).catch((e: Error) => ({ kind: 'infra' as const, message: e.message }));
      if (out.kind !== 'ran') { broken.push(`${s.name}: ${out.message}`); continue; }
      for (const f of await fittingChoices(s, out.traces)) {
        const per = fits.get(f.key) ?? new Map<string, Set<string>>();
        per.set(s.name, new Set(f.fits.map(String)));
        fits.set(f.key, per);
      }
    }
  }
  for (const c of GAP_CHOICES) {
    const title = `${c.question} (${c.source})`;
    const per = fits.get(c.key);
    if (!per) {
      add(`choice:${c.key}`, title, 'unsupported', flows ? `no scenario ran to the end${broken.length ? ` (${broken.join('; ')})` : ''}` : 'not tried: needs traffic', 'unanswered; the emulator keeps its default');
      continue;
    }
    const all = c.options.map(String);
    // The options every scenario's trace fits: the host shows one of them.
    const common = all.filter((v) => [...per.values()].every((set) => set.has(v)));
    const decided = [...per.entries()].filter(([, set]) => set.size < all.length).map(([n]) => n);
    if (common.length === 0) add(`choice:${c.key}`, title, 'fail', `no option explains every trace (${[...per.entries()].map(([n, set]) => `${n}: ${[...set].join('|') || 'none'}`).join('; ')})`, 'the host does something the emulator does not model: a divergence to report');
    else if (common.length === all.length) add(`choice:${c.key}`, title, 'unsupported', `every option fits (${[...per.keys()].join(', ')} do not tell them apart)`, 'unanswered by these scenarios; the emulator keeps its default');
    else add(`choice:${c.key}`, title, 'pass', `the host shows ${common.join(' or ')} (decided by ${decided.join(', ')})`, `run the emulator with --choice ${c.key}=${common[0]} for this host build`);
  }
}

/** The findings for people, to attach to a bug report. */
export function probeMarkdown(r: ProbeReport): string {
  const esc = (t: string) => t.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const lines = [
    `# bench lab probe: ${r.host}`, '',
    `Run at ${r.at}.`,
    r.facts ? `Host build ${r.facts.osBuild ?? 'unknown'}, Hyper-V ${r.facts.hypervVersion ?? 'unknown'}, vmbkmcl.sys ${r.facts.kmclVersion ?? 'unknown'}.` : 'Host facts: not read.',
    '',
    '| experiment | result | seen | what it means |',
    '|---|---|---|---|',
    ...r.findings.map((f) => `| ${esc(f.title)} | ${f.status} | ${esc(f.detail)} | ${esc(f.meaning)} |`),
    '',
  ];
  return lines.join('\n');
}

export interface ProbeRunOptions {
  lab: string;
  /** One host of the inventory; default its first. */
  host?: string | undefined;
  /** Folder for probe.json and probe.md. */
  out: string;
  scenarios: readonly string[];
  connect: ConnectConfig;
  /** The control tool on the host, instead of the device module's `control.tool.program`. */
  controlTool?: string | undefined;
  clock: Clock;
  drivers?: ProbeOptions['drivers'];
}

/** `bench lab probe`: load, connect, probe, write probe.json and probe.md (each whole or not at all). */
export async function runProbe(o: ProbeRunOptions): Promise<{ report: ProbeReport; files: { json: string; markdown: string } }> {
  const inventory = await loadInventory(o.lab);
  const host = o.host === undefined ? inventory.hosts[0]! : inventory.hosts.find((h) => h.name === o.host);
  if (!host) throw new InputError(`no host named ${o.host} in ${inventory.file}`, { field: '--host' }, { hint: `hosts: ${inventory.hosts.map((h) => h.name).join(', ')}` });
  const device = await loadDevice(hostDevice(host), host.device ? { file: inventory.file, line: host.device.line, field: host.device.field } : { file: inventory.file, line: host.source.line });
  if (!hasTool(device.control)) {
    throw new InputError(`device ${device.name} has no control interface${noLabControl(device)}, so the probe cannot drive host ${host.name}'s drivers`, { file: inventory.file, line: host.device?.line, field: host.device?.field });
  }
  // The probe's questions are asked of a loopback client in the host (its offers, binds, restores).
  if (device.control.loopbackChannels === 0) {
    throw new InputError(`device ${device.name} has no loopback client (its control's loopbackChannels is 0), and the probe asks its questions of one, so it cannot probe host ${host.name}`, { file: inventory.file, line: host.device?.line, field: host.device?.field }, {
      hint: 'probe the host with the sample device (a host entry without device:), whose client answers them',
    });
  }
  const scenarios = await loadScenarioPaths(o.scenarios.length ? o.scenarios : ['bench/scenarios'], inventory.device ? { defaultDevice: inventory.device.path, from: { file: inventory.file, field: 'device' } } : {});
  const hv = await openHyperV(host, o.connect);
  try {
    const report = await probeHost({ hv, host, control: device.control, program: o.controlTool ?? device.control.tool.program, clock: o.clock, scenarios, drivers: o.drivers });
    mkdirSync(o.out, { recursive: true });
    const files = { json: join(o.out, 'probe.json'), markdown: join(o.out, 'probe.md') };
    await writeFileAtomic(files.json, `${JSON.stringify(report, null, 2)}\n`);
    await writeFileAtomic(files.markdown, probeMarkdown(report));
    return { report, files };
  } finally {
    await hv.ctx.shell.close().catch(() => undefined);
  }
}
