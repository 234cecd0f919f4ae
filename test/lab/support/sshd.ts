// A real OpenSSH server for lab tests, run as a child process on a loopback port.
//
// Why real sshd and not an in-process ssh2 server: the lab talks to Debian's/Windows'
// OpenSSH in production, and what we must get right (host keys, key auth, exit codes,
// sftp, dropped connections) is exactly where a fake would agree with our own mistakes.
//
// API (kept small on purpose; other lab tests use it too):
//
//   const why = sshdUnavailable();          // string reason, or undefined when usable
//   const sshd = await startSshd();         // fresh temp dir, host key, client key, port
//   await startSshd({ extraConfig: ['Subsystem powershell /usr/bin/pwsh -sshs -NoLogo'] })
//                                           // extra sshd_config lines, placed first so they win
//                                           //   (sshd keeps a keyword's first value); no Match blocks
//   sshd.host, sshd.port, sshd.user         // '127.0.0.1', free port, current user (root in CI)
//   sshd.clientKeyPath                      // private key (OpenSSH ed25519, no passphrase)
//   sshd.hostKeyFingerprint                 // 'SHA256:...' as `ssh-keygen -lf` prints it (current key)
//   sshd.knownHostsPath                     // known_hosts file holding the host key for [host]:port
//   sshd.dir                                // temp dir (scratch space for tests is fine)
//   await sshd.kill()                       // SIGKILL the listener AND every session it forked:
//                                           //   all client TCP connections die (simulated drop)
//   await sshd.restart()                    // same port, same keys, listening again
//   await sshd.restart({ newHostKey: true }) // ...but presenting a fresh host key (a reinstalled
//                                           //   guest, or a man in the middle); known_hosts is NOT updated
//   sshd.freeze() / sshd.thaw()             // SIGSTOP/SIGCONT the whole tree: connections go
//                                           //   silent without any FIN/RST (a migrating VM)
//   await sshd.stop()                       // kill + remove the temp dir (call in afterAll)
//
// Typical use:
//   const reason = sshdUnavailable();
//   describe.skipIf(reason)(`... ${reason ? `(skipped: ${reason})` : ''}`, () => {
//     let sshd: Sshd; beforeAll(async () => { sshd = await startSshd(); }); afterAll(() => sshd?.stop());
//   });
//
// The server runs `sshd -D -e -f <config>`: no daemonising, logs on stderr (kept in
// `sshd.log()` for failing tests). It accepts public-key auth only; as root it needs
// `PermitRootLogin prohibit-password`, and `StrictModes no` because the temp dir's modes
// are not sshd's business here. Scripts/test-deps.d/21-sshd.sh installs openssh-server.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { descendants } from '../../../src/lab/host-shell/process-tree.ts';

const SSHD = '/usr/sbin/sshd';
const SSH_KEYGEN = '/usr/bin/ssh-keygen';
const SFTP_SERVER_CANDIDATES = ['/usr/lib/openssh/sftp-server', '/usr/libexec/openssh/sftp-server', '/usr/libexec/sftp-server'];

export interface Sshd {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly clientKeyPath: string;
  readonly hostKeyFingerprint: string;
  readonly knownHostsPath: string;
  readonly dir: string;
  /** Everything sshd wrote on stderr since start (all restarts). */
  log(): string;
  kill(): Promise<void>;
  restart(options?: { newHostKey?: boolean }): Promise<void>;
  freeze(): void;
  thaw(): void;
  stop(): Promise<void>;
}

/** Why the harness cannot run here, or undefined when it can. */
export function sshdUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `sshd harness needs Linux (this is ${process.platform})`;
  if (!existsSync(SSHD)) return `${SSHD} not installed (scripts/test-deps.d/21-sshd.sh installs openssh-server as root)`;
  if (!existsSync(SSH_KEYGEN)) return `${SSH_KEYGEN} not installed`;
  if (process.getuid?.() !== 0) return 'sshd harness runs as root (sshd needs its privilege-separation setup)';
  return undefined;
}

export async function startSshd(options: { extraConfig?: readonly string[] } = {}): Promise<Sshd> {
  const reason = sshdUnavailable();
  if (reason) throw new Error(`cannot start sshd: ${reason}`);
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // privilege separation dir
  const dir = mkdtempSync(join(tmpdir(), 'bench-sshd-'));
  const hostKey = join(dir, 'host_ed25519');
  const clientKey = join(dir, 'client_ed25519');
  keygen(hostKey);
  keygen(clientKey);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${clientKey}.pub`));
  const hostPub = readFileSync(`${hostKey}.pub`, 'utf8').trim();
  let port = 0;
  const host = '127.0.0.1';
  const knownHostsPath = join(dir, 'known_hosts');
  const sftp = SFTP_SERVER_CANDIDATES.find((p) => existsSync(p));
  const config = join(dir, 'sshd_config');
  const writeConfig = (): void => {
    writeFileSync(knownHostsPath, `[${host}]:${port} ${hostPub.split(' ').slice(0, 2).join(' ')}\n`);
    writeFileSync(
      config,
      [
        ...(options.extraConfig ?? []),
        `Port ${port}`,
        `ListenAddress ${host}`,
        `HostKey ${hostKey}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        'PermitRootLogin prohibit-password',
        'StrictModes no',
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'UseDNS no',
        'PrintMotd no',
        'ClientAliveInterval 0',
        'MaxStartups 100',
        'MaxSessions 100',
        'LogLevel VERBOSE',
        ...(sftp ? [`Subsystem sftp ${sftp}`] : []),
        '',
      ].join('\n'),
    );
  };

  let logText = '';
  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    const proc = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      const timer = setTimeout(() => fail(new Error(`sshd did not start listening within 10 s:\n${seen}`)), 10_000);
      const fail = (e: Error): void => {
        clearTimeout(timer);
        if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) safeKill(proc.pid);
        reject(e);
      };
      proc.stderr!.setEncoding('utf8');
      proc.stderr!.on('data', (chunk: string) => {
        logText += chunk;
        seen += chunk;
        if (seen.includes(`Server listening on ${host} port ${port}`)) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once('error', fail);
      proc.once('exit', (code, signal) => fail(new Error(`sshd exited early (code ${code}, signal ${signal}):\n${seen}`)));
    });
  };

  const kill = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return;
    // Per-connection sshd processes call setsid(), so a process-group kill would miss
    // them; kill the whole tree by pid instead. Everything is stopped first: otherwise a
    // session process could see its command die and send the client an exit status,
    // which is a clean end, not the dropped link this is meant to simulate.
    const tree = [proc.pid, ...descendants(proc.pid)];
    for (const pid of tree) safeKill(pid, 'SIGSTOP');
    for (const pid of descendants(proc.pid)) if (!tree.includes(pid)) (tree.push(pid), safeKill(pid, 'SIGSTOP'));
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    for (const pid of tree) safeKill(pid, 'SIGKILL');
    await exited;
  };

  const signalTree = (signal: NodeJS.Signals): void => {
    const pid = child?.pid;
    if (pid === undefined) return;
    for (const p of [pid, ...descendants(pid)]) safeKill(p, signal);
  };

  let fingerprint = fingerprintOf(hostPub);
  // The free port is only known free until it is closed again: another test file
  // running in parallel may take it first. Then pick another one.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    writeConfig();
    try {
      await launch();
      break;
    } catch (e) {
      if (attempt >= 3 || !/Address already in use/.test(String(e))) {
        rmSync(dir, { recursive: true, force: true });
        throw e;
      }
    }
  }
  return {
    host,
    port,
    user: userInfo().username,
    clientKeyPath: clientKey,
    get hostKeyFingerprint() {
      return fingerprint;
    },
    knownHostsPath,
    dir,
    log: () => logText,
    kill,
    restart: async (options = {}) => {
      await kill();
      if (options.newHostKey) {
        rmSync(hostKey, { force: true });
        rmSync(`${hostKey}.pub`, { force: true });
        keygen(hostKey);
        fingerprint = fingerprintOf(readFileSync(`${hostKey}.pub`, 'utf8'));
      }
      await launch();
    },
    freeze: () => signalTree('SIGSTOP'),
    thaw: () => signalTree('SIGCONT'),
    stop: async () => {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `SHA256:<unpadded base64>` of the key blob in an OpenSSH public key line. */
export function fingerprintOf(publicKeyLine: string): string {
  const blob = publicKeyLine.trim().split(/\s+/)[1];
  if (!blob) throw new Error(`not an OpenSSH public key line: ${publicKeyLine}`);
  return `SHA256:${createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64').replace(/=+$/, '')}`;
}

/** Generates a fresh unencrypted ed25519 key (OpenSSH format) at `path` (+ `.pub`). */
export function keygen(path: string): void {
  const r = spawnSync(SSH_KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-C', 'bench-test', '-f', path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function safeKill(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}
