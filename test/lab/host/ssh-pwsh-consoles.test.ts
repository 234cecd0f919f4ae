// PowerShell over SSH through what real servers put around it: a message of the day and a
// BOM before the shell starts, CLIXML progress on stderr, CRLF line ends, terminal control
// sequences, a console code page that is not UTF-8 (cp850, as a Windows console), and a
// server whose own shell is PowerShell (Windows OpenSSH with DefaultShell set runs
// `powershell.exe -c "<command>"`). The far end is always the real pwsh behind a real
// OpenSSH server on loopback; sshd's ForceCommand puts the noise around it.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emit, ps, script, variable } from '../../../src/lab/host-shell/command.ts';
import { expectOk, failureError, HostCommandError } from '../../../src/lab/host-shell/errors.ts';
import { SshPwshShell } from '../../../src/lab/host-shell/ssh-pwsh.ts';
import { sshdUnavailable, startSshd, type Sshd } from '../support/sshd.ts';
import { pwsh, pwshLabel } from './find-pwsh.ts';

const reason = !pwsh ? 'no PowerShell' : sshdUnavailable();
const sh = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`; // test-only: sh quoting of our own temp paths

// What a noisy Windows login looks like on the wire, made with sh and perl around the
// real command: BOM + MOTD on stdout, a CLIXML progress record on stderr, then every
// output line re-encoded to cp850 with CRLF and a keypad-mode control sequence in front.
const NOISY = `#!/bin/sh
printf '\\357\\273\\277Welcome to bench-host (message of the day)\\r\\n'
printf '#< CLIXML\\r\\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN><MS><I64 N="SourceId">1</I64><PR N="Record"><AV>Preparing modules for first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR><SD> </SD></PR></MS></Obj></Objs>' >&2
/bin/sh -c "$SSH_ORIGINAL_COMMAND" | perl -MEncode -e '$|=1; while (my $l = <STDIN>) { $l =~ s/\\n/\\r\\n/; print "\\e[?1h\\e[?1l", encode("cp850", decode("UTF-8", $l)); }'
`;

describe.skipIf(reason)(`SshPwshShell through noisy consoles ${reason ? `(skipped: ${reason})` : pwshLabel}`, { timeout: 120_000 }, () => {
  let noisy: Sshd;
  let psShell: Sshd;
  const dir = mkdtempSync(join(tmpdir(), 'bench-ssh-consoles-'));
  const shells: SshPwshShell[] = [];
  const open = (server: Sshd, remoteProgram: string): SshPwshShell => {
    const s = new SshPwshShell({
      host: 'noisy-host', address: server.host, port: server.port, user: server.user,
      auth: { kind: 'key', privateKey: readFileSync(server.clientKeyPath, 'utf8') },
      hostKey: { kind: 'fingerprint', sha256: server.hostKeyFingerprint },
      shell: 'pwsh', remoteProgram, connectTimeoutMs: 10_000,
    });
    shells.push(s);
    return s;
  };

  beforeAll(async () => {
    const wrapper = join(dir, 'noisy.sh');
    writeFileSync(wrapper, NOISY);
    chmodSync(wrapper, 0o755);
    writeFileSync(join(dir, 'banner'), 'Authorized use only. This banner comes before authentication.\n');
    noisy = await startSshd({ extraConfig: [`ForceCommand ${wrapper}`, `Banner ${join(dir, 'banner')}`] });
    // The server's own shell is PowerShell: it parses our command line as PowerShell.
    psShell = await startSshd({ extraConfig: [`ForceCommand ${sh(pwsh!.path)} -NoLogo -NoProfile -NonInteractive -Command "$SSH_ORIGINAL_COMMAND"`] });
  });
  afterAll(async () => {
    for (const s of shells) await s.close();
    await noisy?.stop();
    await psShell?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads replies through a banner, MOTD, BOM, CLIXML progress, CRLF, control sequences and cp850', async () => {
    const s = open(noisy, sh(pwsh!.path));
    const values = ['é ü ß', '日本語', 'line\r\nbreak', "a'b"];
    const r = expectOk(await s.run(ps('Write-Output', { InputObject: values }), { timeoutMs: 30_000 }));
    expect(r.items).toEqual(values);
    expect(r.stdout).toContain('Welcome to bench-host');
    // Text outside the envelope went through cp850: it is not UTF-8 any more, and that
    // does not matter, because the envelope is ASCII.
    const hosted = expectOk(await s.run(script([ps('Write-Host', { Object: 'café' }), emit('after')]), { timeoutMs: 30_000 }));
    expect(hosted.value).toBe('after');
    expect(hosted.stdout).toContain('caf');
    expect(hosted.stdout).not.toContain('café');
    // Error records and the session itself survive the noise too.
    const bad = await s.run(ps('Get-Command', { Name: 'No-Such' }), { timeoutMs: 30_000 });
    expect(failureError(bad)).toBeInstanceOf(HostCommandError);
    expect(bad.errorRecords[0]?.errorId).toBe('CommandNotFoundException');
    const pid1 = expectOk(await s.run(emit(variable('PID')), { timeoutMs: 30_000 })).value;
    expect(expectOk(await s.run(emit(variable('PID')), { timeoutMs: 30_000 })).value).toBe(pid1);
    expect(s.sessionsStarted).toBe(1);
  });

  it('starts the shell through a server whose own shell is PowerShell, with CLIXML streams on stderr', async () => {
    // -OutputFormat xml makes the real pwsh write its warning, error and progress streams
    // as CLIXML on stderr, as Windows PowerShell does when a PowerShell parent starts it.
    const s = open(psShell, `${pwsh!.path} -OutputFormat xml`);
    const warned = expectOk(await s.run(script([ps('Write-Warning', { Message: 'careful' }), emit('é')]), { timeoutMs: 30_000 }));
    expect(warned.value).toBe('é');
    const bad = await s.run(ps('Get-Command', { Name: 'No-Such' }), { timeoutMs: 30_000 });
    expect(bad.errorRecords[0]?.errorId).toBe('CommandNotFoundException');
    const pid1 = expectOk(await s.run(emit(variable('PID')), { timeoutMs: 30_000 })).value;
    expect(expectOk(await s.run(emit(variable('PID')), { timeoutMs: 30_000 })).value).toBe(pid1);
    expect(s.sessionsStarted).toBe(1);
  });
});
