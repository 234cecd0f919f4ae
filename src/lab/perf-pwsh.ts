// `bench perf` figures for the host shell: the median round trip of a trivial command
// (`Write-Output 1`, envelope and JSON included) on a warm session, for a local pwsh and
// for pwsh over SSH to an OpenSSH server this starts on loopback. Targets: below 10 ms
// local, below 20 ms over SSH (report/perf-table.ts, the one list of targets). Printed
// beside the targets, never asserted in tests.
//
// The SSH figure needs what the lab tests need: OpenSSH's sshd and ssh-keygen, and root
// (sshd's privilege separation). Without them the figure is left out and progress says why.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir, userInfo } from 'node:os';
import { delimiter, join } from 'node:path';
import { emit } from './host-shell/command.ts';
import { expectOk } from './host-shell/errors.ts';
import { LocalPwshShell } from './host-shell/local-pwsh.ts';
import { fingerprint, SshPwshShell } from './host-shell/ssh-pwsh.ts';
import type { HostShell } from './host-shell/types.ts';


/** pwsh from BENCH_PWSH, PATH or ~/.dotnet/tools (where the global tool goes). */
export function findPwshExecutable(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.BENCH_PWSH && existsSync(env.BENCH_PWSH)) return env.BENCH_PWSH;
  for (const d of [...(env.PATH ?? '').split(delimiter), join(homedir(), '.dotnet', 'tools')]) {
    const p = join(d, process.platform === 'win32' ? 'pwsh.exe' : 'pwsh');
    if (d && existsSync(p)) return p;
  }
  return undefined;
}

/** Median of `n` round trips after `warm` unmeasured ones. */
export async function medianRoundTripMs(shell: HostShell, n = 40, warm = 5): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < warm + n; i++) {
    const t0 = performance.now();
    expectOk(await shell.run(emit(1), { timeoutMs: 60_000 }));
    if (i >= warm) times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const mid = Math.floor(times.length / 2);
  return times.length % 2 === 1 ? times[mid]! : (times[mid - 1]! + times[mid]!) / 2;
}

export async function benchmarkPwshRoundTrips(progress: (what: string) => void): Promise<Record<string, number>> {
  const pwsh = findPwshExecutable();
  if (!pwsh) {
    progress('pwsh round trips skipped: no pwsh on PATH or in ~/.dotnet/tools');
    return {};
  }
  const fig: Record<string, number> = {};
  const local = new LocalPwshShell({ host: 'perf-local', executable: pwsh });
  try {
    fig.pwshLocalRoundTripMedianMs = round(await medianRoundTripMs(local));
  } finally {
    await local.close();
  }
  const why = sshdMissing();
  if (why) {
    progress(`pwsh over SSH skipped: ${why}`);
    return fig;
  }
  const sshd = await startLoopbackSshd();
  const remote = new SshPwshShell({
    host: 'perf-ssh', address: '127.0.0.1', port: sshd.port, user: userInfo().username,
    auth: { kind: 'key', privateKey: readFileSync(sshd.clientKey, 'utf8') },
    hostKey: { kind: 'fingerprint', sha256: sshd.hostFingerprint }, shell: 'pwsh', remoteProgram: pwsh,
  });
  try {
    fig.pwshSshRoundTripMedianMs = round(await medianRoundTripMs(remote));
  } finally {
    await remote.close();
    sshd.stop();
  }
  return fig;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

const SSHD = '/usr/sbin/sshd';
const KEYGEN = '/usr/bin/ssh-keygen';

function sshdMissing(): string | undefined {
  if (process.platform !== 'linux') return `loopback sshd runs on Linux only (this is ${process.platform})`;
  if (!existsSync(SSHD) || !existsSync(KEYGEN)) return `${SSHD} or ${KEYGEN} not installed (openssh-server)`;
  if (process.getuid?.() !== 0) return 'loopback sshd needs root';
  return undefined;
}

/** A throwaway OpenSSH server on 127.0.0.1 with fresh keys, key auth only. */
async function startLoopbackSshd(): Promise<{ port: number; clientKey: string; hostFingerprint: string; stop(): void }> {
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = mkdtempSync(join(tmpdir(), 'bench-perf-sshd-'));
  const hostKey = join(dir, 'host_ed25519');
  const clientKey = join(dir, 'client_ed25519');
  for (const k of [hostKey, clientKey]) {
    const r = spawnSync(KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-f', k], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
  }
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${clientKey}.pub`));
  const port = await freePort();
  writeFileSync(join(dir, 'sshd_config'), [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${hostKey}`, `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    `PidFile ${join(dir, 'sshd.pid')}`, 'PermitRootLogin prohibit-password', 'StrictModes no', 'PasswordAuthentication no',
    'KbdInteractiveAuthentication no', 'UsePAM no', 'UseDNS no', 'PrintMotd no', '',
  ].join('\n'));
  const proc = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`sshd did not start within 10 s: ${seen}`)), 10_000);
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (d: string) => {
      seen += d;
      if (seen.includes('Server listening')) { clearTimeout(timer); resolve(); }
    });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`sshd exited (code ${code}): ${seen}`)); });
  });
  const blob = Buffer.from(readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/)[1] ?? '', 'base64');
  return {
    port, clientKey, hostFingerprint: fingerprint(blob),
    stop: () => {
      proc.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      server.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}
