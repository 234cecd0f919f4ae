// PowerShell over SSH: the same HostShell contract and the same Hyper-V operations, run
// through a real OpenSSH server on loopback (test/lab/support/sshd.ts) to the real engine.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emit, ps, staticCall, variable } from '../../../src/lab/host-shell/command.ts';
import { expectOk, failureError, HostCommandError, HostUnreachableError, SessionLostError } from '../../../src/lab/host-shell/errors.ts';
import { SshPwshShell, type SshHostKey } from '../../../src/lab/host-shell/ssh-pwsh.ts';
import { HyperV } from '../../../src/lab/hyperv.ts';
import { VmOperationError } from '../../../src/lab/hyperv-vm.ts';
import { sshdUnavailable, startSshd, type Sshd } from '../support/sshd.ts';
import { pwsh, pwshLabel } from './find-pwsh.ts';
import { disposeHost, initHost, newStandinHost, PARENT, SWITCH, VM_ROOT, type StandinHost } from './standin.ts';

const reason = !pwsh ? 'no PowerShell' : sshdUnavailable();
const sh = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`; // test-only: sh quoting of our own temp paths

describe.skipIf(reason)(`SshPwshShell through OpenSSH on loopback ${reason ? `(skipped: ${reason})` : pwshLabel}`, { timeout: 120_000 }, () => {
  let sshd: Sshd;
  let host: StandinHost;
  const shells: SshPwshShell[] = [];
  const open = (dir: string, hostKey?: SshHostKey, name = 'ssh-host'): SshPwshShell => {
    const s = new SshPwshShell({
      host: name, address: sshd.host, port: sshd.port, user: sshd.user,
      auth: { kind: 'key', privateKey: readFileSync(sshd.clientKeyPath, 'utf8') },
      hostKey: hostKey ?? { kind: 'fingerprint', sha256: sshd.hostKeyFingerprint },
      shell: 'pwsh', remoteProgram: `env BENCH_HYPERV_STATE=${sh(dir)} ${sh(pwsh!.path)}`,
      connectTimeoutMs: 10_000,
    });
    shells.push(s);
    return s;
  };
  beforeAll(async () => {
    sshd = await startSshd();
    host = newStandinHost('ssh-hostA', (dir) => open(dir));
  });
  afterAll(async () => {
    for (const s of shells) await s.close();
    await disposeHost(host);
    await sshd?.stop();
  });

  it('runs commands in one remote session and returns values unchanged', async () => {
    const values = ["a'b", '\u2018$(x)\u2019', 'line\r\nbreak', '`;|&', 'é🙂'];
    const r = expectOk(await host.shell.run(ps('Write-Output', { InputObject: values }), { timeoutMs: 20_000 }));
    expect(r.items).toEqual(values);
    expect(r.transport).toBe('ssh');
    const pid1 = expectOk(await host.shell.run(emit(variable('PID')), { timeoutMs: 20_000 })).value;
    const pid2 = expectOk(await host.shell.run(emit(variable('PID')), { timeoutMs: 20_000 })).value;
    expect(pid2).toBe(pid1);
  });

  it('reports PowerShell error records as typed errors', async () => {
    const r = await host.shell.run(ps('Get-Command', { Name: 'No-Such' }), { timeoutMs: 20_000 });
    expect(failureError(r)).toBeInstanceOf(HostCommandError);
    expect(r.errorRecords[0]?.errorId).toBe('CommandNotFoundException');
  });

  it('discards the remote session after a timeout', async () => {
    const s = open(host.dir);
    const pid = expectOk(await s.run(emit(variable('PID')), { timeoutMs: 20_000 })).value;
    const r = await s.run(ps('Start-Sleep', { Seconds: 30 }), { timeoutMs: 500 });
    expect(r).toMatchObject({ timedOut: true, failure: { kind: 'timed-out' } });
    expect(expectOk(await s.run(emit(variable('PID')), { timeoutMs: 20_000 })).value).not.toBe(pid);
    expect(s.sessionsStarted).toBe(2);
  });

  it('never sends a command whose deadline passed while connecting', async () => {
    const s = open(host.dir);
    const marker = join(sshd.dir, `late-${Date.now()}`);
    sshd.freeze(); // the TCP connection opens, the SSH handshake hangs
    try {
      const r = await s.run(emit(staticCall('System.IO.File', 'WriteAllText', marker, 'ran')), { timeoutMs: 700 });
      expect(r.timedOut).toBe(true);
    } finally {
      sshd.thaw();
    }
    await new Promise((res) => setTimeout(res, 2500)); // time for a late handshake and command
    expect(existsSync(marker)).toBe(false);
    expect(expectOk(await s.run(emit('fresh'), { timeoutMs: 20_000 })).value).toBe('fresh');
  });

  it('refuses a host whose key is not the pinned one', async () => {
    const s = open(host.dir, { kind: 'fingerprint', sha256: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' });
    const r = await s.run(emit(1), { timeoutMs: 20_000 });
    expect(failureError(r)).toBeInstanceOf(HostUnreachableError);
    expect(failureError(r)!.message).toContain(`host key mismatch: ${sshd.host}:${sshd.port} presented ${sshd.hostKeyFingerprint}`);
  });

  it('accepts a host key pinned through known_hosts', async () => {
    const s = open(host.dir, { kind: 'known-hosts', path: sshd.knownHostsPath });
    expect(expectOk(await s.run(emit('kh'), { timeoutMs: 20_000 })).value).toBe('kh');
    const empty = join(sshd.dir, 'empty_known_hosts');
    writeFileSync(empty, '');
    const r = await open(host.dir, { kind: 'known-hosts', path: empty }).run(emit(1), { timeoutMs: 20_000 });
    expect(r.failure?.kind).toBe('unreachable');
  });

  it('reports a dropped connection mid-command as a lost session, and reconnects after', async () => {
    const s = open(host.dir);
    expectOk(await s.run(emit(1), { timeoutMs: 20_000 }));
    const running = s.run(ps('Start-Sleep', { Seconds: 30 }), { timeoutMs: 20_000 });
    await new Promise((res) => setTimeout(res, 300));
    await sshd.kill();
    const r = await running;
    expect(failureError(r)).toBeInstanceOf(SessionLostError);
    const down = await s.run(emit(1), { timeoutMs: 20_000 });
    expect(down.failure?.kind).toBe('unreachable');
    expect(failureError(down)!.message).toMatch(/ECONNREFUSED/);
    await sshd.restart();
    expect(expectOk(await s.run(emit('back'), { timeoutMs: 20_000 })).value).toBe('back');
    // Dropped while idle, a failed reconnect, then the host is back: the shell reconnects.
    await sshd.kill();
    expect((await s.run(emit(1), { timeoutMs: 20_000 })).failure?.kind).toMatch(/unreachable|session-lost/);
    expect((await s.run(emit(1), { timeoutMs: 20_000 })).failure?.kind).toBe('unreachable');
    await sshd.restart();
    expect(expectOk(await s.run(emit('again'), { timeoutMs: 20_000 })).value).toBe('again');
  });

  it('runs the Hyper-V operations over SSH: provision, save, start, wrong state, remove', async () => {
    await initHost(host);
    const hv = new HyperV(host.ctx, { startMs: 10_000, saveMs: 10_000, stopMs: 10_000, guestReadyMs: 10_000 });
    const vm = await hv.provision({
      name: 'bench-ssh', runId: 'run-ssh', parentVhd: PARENT, vmRoot: VM_ROOT, switchName: SWITCH, generation: 2,
      memoryMB: 1024, processors: 1, secureBoot: { enabled: true, template: 'MicrosoftUEFICertificateAuthority' }, integrationServices: ['Heartbeat'], waitForGuest: true,
    });
    expect(vm.ipv4).toMatch(/^192\.168\.77\./);
    expect((await hv.save(vm.id)).state).toBe('Saved');
    const e = (await hv.suspend(vm.id).catch((x: unknown) => x)) as VmOperationError;
    expect(e.lastState).toBe('Saved');
    expect((e.cause as HostCommandError).is('InvalidState')).toBe(true);
    expect((await hv.start(vm.id)).state).toBe('Running');
    await hv.remove(vm.id);
    expect((await host.state()).Vms).toEqual([]);
  });
});
