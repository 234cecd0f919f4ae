// Checks the sshd harness itself with OpenSSH's own client, so that a fault in the
// harness is not mistaken for a fault in src/lab (and the reverse).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSshd, sshdUnavailable, type Sshd } from './sshd.ts';

const reason = sshdUnavailable() ?? (existsSync('/usr/bin/ssh') ? undefined : '/usr/bin/ssh (openssh-client) not installed');

function ssh(sshd: Sshd, command: string, strict = true): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(
    '/usr/bin/ssh',
    [
      '-i', sshd.clientKeyPath, '-p', String(sshd.port),
      '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'ConnectTimeout=5',
      '-o', `UserKnownHostsFile=${sshd.knownHostsPath}`, '-o', `StrictHostKeyChecking=${strict ? 'yes' : 'no'}`,
      '-o', 'FingerprintHash=sha256', '-v',
      `${sshd.user}@${sshd.host}`, command,
    ],
    { encoding: 'utf8', timeout: 15_000 },
  );
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(reason)(`sshd test harness${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let sshd: Sshd;
  beforeAll(async () => {
    sshd = await startSshd();
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  it('accepts the generated client key and presents the advertised host key', () => {
    const r = ssh(sshd, 'echo hello; exit 7');
    expect(r.stdout).toBe('hello\n');
    expect(r.status).toBe(7);
    expect(r.stderr).toContain(sshd.hostKeyFingerprint);
  });

  it('drops live sessions on kill and serves again after restart', async () => {
    const { spawn } = await import('node:child_process');
    const long = spawn('/usr/bin/ssh', [
      '-i', sshd.clientKeyPath, '-p', String(sshd.port), '-o', 'BatchMode=yes',
      '-o', `UserKnownHostsFile=${sshd.knownHostsPath}`, `${sshd.user}@${sshd.host}`, 'echo started; sleep 60',
    ]);
    await new Promise<void>((resolve) => long.stdout.once('data', () => resolve()));
    const ended = new Promise<number | null>((resolve) => long.once('exit', (code) => resolve(code)));
    await sshd.kill();
    expect(await ended).toBe(255); // ssh's own code for a lost connection
    expect(ssh(sshd, 'true').status).toBe(255);
    await sshd.restart();
    expect(ssh(sshd, 'echo back').stdout).toBe('back\n');
  });
});
