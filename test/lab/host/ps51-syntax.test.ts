// Everything the bench sends to a host stays within Windows PowerShell 5.1, the shell a
// Hyper-V host has out of the box. Every operation that runs host commands is driven once
// against the stand-in host through a shell that records each command; each recorded
// command is rendered (envelope included) and parsed by the real pwsh parser, whose AST is
// walked for constructs 5.1 lacks (test/lab/host/fixtures/Ps51Syntax.psm1). A failure names
// the operation that built the command. The SSH read loop, the envelope (a string in each
// command) and the serial reader's script, which are not PsCommands, are parsed too.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ps, script, type PsCommand } from '../../../src/lab/host-shell/command.ts';
import { expectOk } from '../../../src/lab/host-shell/errors.ts';
import { LOOP_SCRIPT } from '../../../src/lab/host-shell/remote-loop.ts';
import { ENVELOPE_SCRIPT, render } from '../../../src/lab/host-shell/render.ts';
import type { HostShell, RunOptions, ShellResult } from '../../../src/lab/host-shell/types.ts';
import * as artefacts from '../../../src/lab/artefacts.ts';
import * as cleanup from '../../../src/lab/cleanup.ts';
import * as deployDrivers from '../../../src/lab/deploy-drivers.ts';
import * as deployVsp from '../../../src/lab/deploy-vsp.ts';
import { loadHostDrivers } from '../../../src/lab/driver-package.ts';
import { HyperV, type ProvisionSpec } from '../../../src/lab/hyperv.ts';
import * as hypervVm from '../../../src/lab/hyperv-vm.ts';
import { hostContext } from '../../../src/lab/hyperv-vm.ts';
import * as migration from '../../../src/lab/migration.ts';
import * as preflight from '../../../src/lab/preflight.ts';
import * as serialLog from '../../../src/lab/serial-log.ts';
import { pwsh, pwshLabel, standinModule } from './find-pwsh.ts';
import { disposeHost, initHost, newStandinHost, PARENT, SWITCH, VM_ROOT, type StandinHost } from './standin.ts';

const detector = join(import.meta.dirname, 'fixtures', 'Ps51Syntax.psm1');
const NONCE = 'abcdef0123456789abcdef01';

/** Forwards to a real shell and keeps every command, labelled with the operation running. */
class RecordingShell implements HostShell {
  readonly commands: Array<{ label: string; cmd: PsCommand }> = [];
  label = 'unlabelled';
  readonly inner: HostShell;
  constructor(inner: HostShell) {
    this.inner = inner;
  }
  get host(): string { return this.inner.host; }
  get transport(): 'local' | 'ssh' { return this.inner.transport; }
  run(cmd: PsCommand, options: RunOptions): Promise<ShellResult> {
    this.commands.push({ label: this.label, cmd });
    return this.inner.run(cmd, options);
  }
  close(): Promise<void> { return this.inner.close(); }
}

const spec = (name: string): ProvisionSpec => ({
  name, runId: 'run-51', parentVhd: PARENT, vmRoot: VM_ROOT, switchName: SWITCH, generation: 2, memoryMB: 1024,
  processors: 1, secureBoot: { enabled: true, template: 'MicrosoftUEFICertificateAuthority' }, integrationServices: ['Heartbeat'], waitForGuest: true,
});

/** Every operation that sends host commands: HyperV's public methods and the lab modules' exported async functions. */
function expectedOperations(): string[] {
  const methods = Object.getOwnPropertyNames(HyperV.prototype).filter((m) => m !== 'constructor' && m !== 'host').map((m) => `HyperV.${m}`);
  const modules = { artefacts, cleanup, deployVsp, hypervVm, migration, preflight, serialLog };
  const fns = Object.entries(modules).flatMap(([mod, exports]) => Object.entries(exports)
    .filter(([, v]) => typeof v === 'function' && v.constructor.name === 'AsyncFunction')
    .map(([name]) => `${mod}.${name}`));
  return [...methods, ...fns].sort();
}

describe.skipIf(!pwsh)(`every script the bench renders parses as Windows PowerShell 5.1 ${pwshLabel}`, { timeout: 300_000 }, () => {
  let a: StandinHost;
  let b: StandinHost;
  let rec: RecordingShell;
  beforeAll(() => {
    a = newStandinHost('ps51-a');
    b = newStandinHost('ps51-b');
  });
  afterAll(async () => {
    await disposeHost(a);
    await disposeHost(b);
  });

  /** Violations per script, by the real parser. */
  async function violations(scripts: string[]): Promise<string[][]> {
    const r = expectOk(await a.shell.run(script([ps('Find-Ps51Violation', { Base64: scripts.map((s) => Buffer.from(s, 'utf8').toString('base64')) })], { imports: [detector] }), { timeoutMs: 60_000 }));
    return r.items.map((o) => ((o as { found?: string[] | string }).found === undefined ? [] : [(o as { found: string[] | string }).found].flat()));
  }

  it('the detector flags each construct 5.1 lacks and passes 5.1 script', async () => {
    const bad = [
      '$a ? 1 : 2', '$a ?? 1', '$a ??= 1', '${a}?.B', '${a}?.B()', '${a}?[0]', 'Get-Item x && Get-Item y', 'Get-Item x || Get-Item y',
      '1..3 | ForEach-Object -Parallel { $_ }', '1..3 | % -Parallel { $_ }', '@(1) | ConvertTo-Json -AsArray', 'ConvertTo-Json -InputObject 1 -EnumsAsStrings',
      "'{}' | ConvertFrom-Json -AsHashtable", "'{}' | ConvertFrom-Json -AsHash", '1,2 | Join-String', 'Get-Error', "Test-Json -Json '{}'",
      'Get-Content x -AsByteStream', 'Start-Sleep 1 &', '$IsWindows', '"`u{2195}"', '1uy', '0b101', 'Get-Random -Shuffle -InputObject 1,2',
      'Where-Object -Not -Property x', 'Get-Uptime', 'Split-Path -LeafBase x', 'function f { clean { 1 } }', '$x = (',
    ];
    const good = ['$a = if ($b) { 1 } else { 2 }', '@(1) | ConvertTo-Json -Depth 3 -Compress', '1..3 | ForEach-Object { $_ }', '[pscustomobject][ordered]@{ a = 1 }', '$x = 5l; $y = 1kb', '"`n"', "Get-Content -Encoding Byte -Path 'x'"];
    const seen = await violations([...bad, ...good]);
    bad.forEach((text, i) => expect(seen[i], text).not.toEqual([]));
    good.forEach((text, i) => expect(seen[bad.length + i], text).toEqual([]));
  });

  it('covers every command builder, and none uses a construct 5.1 lacks', async () => {
    rec = new RecordingShell(a.shell);
    const ctx = hostContext(rec, { modules: [standinModule], pollMs: 25, queryTimeoutMs: 60_000 });
    const hv = new HyperV(ctx, { startMs: 10_000, saveMs: 10_000, stopMs: 10_000, pauseMs: 10_000, checkpointMs: 10_000, guestReadyMs: 10_000, provisionMs: 10_000, migrateMs: 20_000 });
    const hvB = new HyperV(b.ctx, { migrateMs: 20_000 });
    const seen = new Set<string>();
    const step = async <T>(label: string, body: () => Promise<T>): Promise<T | undefined> => {
      seen.add(label);
      rec.label = label;
      try {
        return await body();
      } catch {
        return undefined; // failures are fine here: what they sent is what is checked
      }
    };
    await initHost(a, { peers: [b], bootMilliseconds: 0, files: ['D:\\drivers\\vsp.inf'] });
    await initHost(b, { peers: [a] });

    const vm = await step('HyperV.provision', () => hv.provision(spec('bench-ps51')));
    const id = vm!.id;
    await step('HyperV.getVm', () => hv.getVm(id));
    await step('hypervVm.getVm', () => hypervVm.getVm(ctx, id));
    await step('hypervVm.listVms', () => hypervVm.listVms(ctx));
    await step('hypervVm.vmEvents', () => hypervVm.vmEvents(ctx, id, new Date(Date.now() - 60_000)));
    await step('hypervVm.describeFailure', () => hypervVm.describeFailure(ctx, 'test', id, new Date(), 'why'));
    await step('hypervVm.waitForState', () => hypervVm.waitForState(ctx, id, ['Running'], 5000, 'test'));
    await step('HyperV.waitForGuest', () => hv.waitForGuest(id));
    await step('HyperV.suspend', () => hv.suspend(id));
    await step('HyperV.resume', () => hv.resume(id));
    await step('HyperV.save', () => hv.save(id));
    await step('HyperV.start', () => hv.start(id));
    await step('HyperV.saveAndRestore', () => hv.saveAndRestore(id));
    await step('HyperV.checkpoint', () => hv.checkpoint(id, 'base'));
    await step('HyperV.checkpoints', () => hv.checkpoints(id));
    await step('HyperV.restoreCheckpoint', () => hv.restoreCheckpoint(id, 'base'));
    await step('HyperV.removeCheckpoint', () => hv.removeCheckpoint(id, 'base'));
    await step('HyperV.diskPaths', () => hv.diskPaths(id));
    await step('serialLog.startSerialCapture', async () => {
      const c = await serialLog.startSerialCapture(hv, id, join(a.dir, 'com1.log'), { giveUpAfterS: 2 });
      seen.add('serialLog.stopSerialCapture');
      rec.label = 'serialLog.stopSerialCapture';
      await serialLog.stopSerialCapture(hv, c);
    });
    await step('artefacts.readHostFile', () => artefacts.readHostFile(hv, 'D:\\bench\\nothing.log'));
    await step('artefacts.collectArtefacts', () => artefacts.collectArtefacts(hv, id, join(a.dir, 'artefacts'), { since: new Date(Date.now() - 60_000) }));
    await step('deployVsp.runNative', () => deployVsp.runNative(hv, 'bcdedit', ['/enum', '{current}']));
    await step('deployVsp.checkTestSigning', () => deployVsp.checkTestSigning(hv));
    const deployed = await step('deployVsp.deployVsp', () => deployVsp.deployVsp(hv, 'D:\\drivers\\vsp.inf'));
    await step('deployVsp.removeVsp', () => deployVsp.removeVsp(hv, deployed?.publishedName ?? 'oem0.inf'));
    await step('deployDrivers.runPackageCommand', () => deployDrivers.runPackageCommand(hv, loadHostDrivers().vsp, 'uninstall'));
    await step('preflight.preflightHost', () => preflight.preflightHost({ name: 'ps51-a', hv, switchName: SWITCH, vmRoot: VM_ROOT, memoryMB: 4096, migrationPartner: 'ps51-b', parentDisks: [PARENT], minFreeDiskGB: 1 }));
    await step('migration.compareMigration', () => migration.compareMigration(hv, id, 'ps51-b', 'D:\\bench\\vms\\moved'));
    await step('migration.migrateRoundTrip', () => migration.migrateRoundTrip(hv, hvB, id, 'D:\\bench\\vms\\on-b', 'D:\\bench\\vms\\on-a', { a: 'ps51-a', b: 'ps51-b' }));
    await step('migration.migrate', () => migration.migrate(hv, hvB, id, { destinationStoragePath: 'D:\\bench\\vms\\on-b', destinationHost: 'ps51-b' }));
    await step('migration.migrate', () => migration.migrate(hvB, hv, id, { destinationStoragePath: 'D:\\bench\\vms\\on-a', destinationHost: 'ps51-a' }));
    await step('HyperV.turnOff', () => hv.turnOff(id));
    await step('cleanup.benchVms', () => cleanup.benchVms(hv));
    await step('HyperV.remove', () => hv.remove(id));
    const second = await step('HyperV.provision', () => hv.provision(spec('bench-ps51-b')));
    await step('HyperV.removeQuietly', () => hv.removeQuietly(second!.id));
    await step('cleanup.sweep', () => cleanup.sweep(hv, { exceptRunId: 'other' }));
    await step('cleanup.cleanupRun', () => cleanup.cleanupRun(hv, 'run-51'));
    // The private paths: a New-VM that fails finds its VM by name; a VM stuck in Saving
    // is turned off by killing its worker process.
    await a.setup('Set-StandinFault', { Operation: 'New-VM', Mode: 'fail' });
    await step('HyperV.provision (New-VM failed)', () => hv.provision(spec('bench-ps51-fail')));
    await a.setup('Set-StandinFault', { Operation: 'New-VM', Mode: 'none' });
    const stuck = await step('HyperV.provision', () => hv.provision(spec('bench-ps51-stuck')));
    await a.setup('Set-StandinFault', { Operation: 'Save-VM', Mode: 'hang' });
    await step('HyperV.save (hangs)', () => new HyperV(ctx, { saveMs: 1500 }).save(stuck!.id));
    await step('HyperV.remove (kills the worker)', () => hv.remove(stuck!.id));

    // Every operation that sends commands was driven here.
    const missing = expectedOperations().filter((op) => !seen.has(op));
    expect(missing, 'operations this test does not drive; add them').toEqual([]);

    const scripts = rec.commands.map((c) => ({ label: c.label, text: render(c.cmd, NONCE).script }));
    scripts.push({ label: 'remote-loop LOOP_SCRIPT', text: LOOP_SCRIPT });
    // The envelope travels as a quoted string in every command, so it is parsed on its own too.
    scripts.push({ label: 'render ENVELOPE_SCRIPT', text: ENVELOPE_SCRIPT });
    scripts.push({ label: 'serial-log readerScript', text: serialLog.readerScript("pipe'1", 'D:\\l.log', 'D:\\l.stop', 5) });
    const texts = [...new Map(scripts.map((s) => [s.text, s])).values()];
    const found = await violations(texts.map((s) => s.text));
    const problems = texts.flatMap((s, i) => (found[i] ?? []).map((f) => `${s.label}: ${f}`));
    expect(problems).toEqual([]);
    expect(new Set(rec.commands.map((c) => c.label)).size).toBeGreaterThan(30);
  });
});
