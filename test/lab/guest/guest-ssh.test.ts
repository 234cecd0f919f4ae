// GuestSsh against a real OpenSSH server on loopback (test/lab/support/sshd.ts).
// The "guest" is this machine, so tests can check the remote side's effects directly
// on the local filesystem.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InfraError, InputError } from '../../../src/errors.ts';
import { HostKeyMismatchError } from '../../../src/lab/guest/host-key.ts';
import { sh } from '../../../src/lab/guest/posix-quote.ts';
import { GuestSsh, type GuestEndpoint } from '../../../src/lab/guest-ssh.ts';
import type { HostKeyPin } from '../../../src/lab/inventory.ts';
import { REDACTED, Redactor } from '../../../src/lab/secrets.ts';
import { keygen, sshdUnavailable, startSshd, type Sshd } from '../support/sshd.ts';

const reason = sshdUnavailable();
const TEN_MB = 10 * 1024 * 1024;

describe.skipIf(reason)(`GuestSsh over real sshd${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let sshd: Sshd;
  let guest: GuestSsh;
  const endpoint = (hostKey?: HostKeyPin, keyPath?: string): GuestEndpoint => ({
    name: 'test-guest',
    host: sshd.host,
    port: sshd.port,
    user: sshd.user,
    credential: { kind: 'key', key: { kind: 'file', path: keyPath ?? sshd.clientKeyPath } },
    hostKey: hostKey ?? { kind: 'fingerprint', sha256: sshd.hostKeyFingerprint },
  });
  const fastBackoff = { initialMs: 50, maxMs: 400, totalMs: 8_000 };

  beforeAll(async () => {
    sshd = await startSshd();
    guest = await GuestSsh.connect(endpoint(), { backoff: fastBackoff, redactor: new Redactor() });
  });
  afterAll(async () => {
    guest?.close();
    await sshd?.stop();
  });

  describe('host key pinning', () => {
    it('connects when the presented key matches the pinned SHA256 fingerprint', async () => {
      const r = await guest.exec(sh`echo ok`);
      expect(r.stdout).toBe('ok\n');
    });

    it('refuses a different key, naming the expected and the presented fingerprint', async () => {
      const wrong = `SHA256:${createHash('sha256').update('not the key').digest('base64').replace(/=+$/, '')}`;
      const e = await GuestSsh.connect(endpoint({ kind: 'fingerprint', sha256: wrong })).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(HostKeyMismatchError);
      const m = e as HostKeyMismatchError;
      expect(m.exitCode).toBe(3);
      expect(m.presented).toBe(sshd.hostKeyFingerprint);
      expect(m.message).toContain(`Expected ${wrong}`);
      expect(m.message).toContain(`presented ${sshd.hostKeyFingerprint}`);
    });

    it('accepts a key listed for [host]:port in a known_hosts file', async () => {
      const g = await GuestSsh.connect(endpoint({ kind: 'known-hosts', path: sshd.knownHostsPath }));
      expect((await g.exec(sh`true`)).exitCode).toBe(0);
      g.close();
    });

    it('accepts a hashed known_hosts entry', async () => {
      const [, type, blob] = readFileSync(sshd.knownHostsPath, 'utf8').trim().split(' ');
      const salt = randomBytes(20);
      const hash = createHmac('sha1', salt).update(`[${sshd.host}]:${sshd.port}`).digest('base64');
      const path = join(sshd.dir, 'known_hosts_hashed');
      writeFileSync(path, `|1|${salt.toString('base64')}|${hash} ${type} ${blob}\n`);
      const g = await GuestSsh.connect(endpoint({ kind: 'known-hosts', path }));
      g.close();
    });

    it('refuses when known_hosts has no entry for this host and port, or only another key', async () => {
      const other = join(sshd.dir, 'other_key');
      keygen(other);
      const path = join(sshd.dir, 'known_hosts_wrong');
      const [type, blob] = readFileSync(`${other}.pub`, 'utf8').split(' ');
      writeFileSync(path, `[${sshd.host}]:${sshd.port} ${type} ${blob}\n${sshd.host} ${readFileSync(sshd.knownHostsPath, 'utf8').split(' ').slice(1).join(' ')}`);
      const e = await GuestSsh.connect(endpoint({ kind: 'known-hosts', path })).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(HostKeyMismatchError);
      expect((e as HostKeyMismatchError).presented).toBe(sshd.hostKeyFingerprint);
      expect((e as HostKeyMismatchError).expected).toHaveLength(1); // the port-22 line does not count
    });

    it('refuses a key marked @revoked', async () => {
      const path = join(sshd.dir, 'known_hosts_revoked');
      const line = readFileSync(sshd.knownHostsPath, 'utf8').trim();
      writeFileSync(path, `${line}\n@revoked ${line}\n`);
      await expect(GuestSsh.connect(endpoint({ kind: 'known-hosts', path }))).rejects.toBeInstanceOf(HostKeyMismatchError);
    });

    it('is an InputError naming the variable when the key reference cannot be resolved', async () => {
      const e = await GuestSsh.connect({ ...endpoint(), credential: { kind: 'key', key: { kind: 'env', name: 'BENCH_TEST_UNSET_KEY' } } }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(InputError);
      expect((e as Error).message).toMatch(/environment variable BENCH_TEST_UNSET_KEY is not set/);
    });

    it('fails at once, without retrying, when the client key is not authorized', async () => {
      const stranger = join(sshd.dir, 'stranger_key');
      keygen(stranger);
      const started = Date.now();
      // A retry would wait 5 s first; margins are wide for a loaded machine.
      const e = await GuestSsh.connect(endpoint(undefined, stranger), { backoff: { initialMs: 5_000, totalMs: 20_000 } }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(InfraError);
      expect((e as Error).message).toMatch(/authentication/i);
      expect(Date.now() - started).toBeLessThan(5_000);
    });
  });

  describe('commands', () => {
    it('returns exit codes and keeps stdout and stderr apart', async () => {
      const r = await guest.exec(sh`echo out; echo err >&2; exit 3`);
      expect(r).toMatchObject({ exitCode: 3, stdout: 'out\n', stderr: 'err\n', timedOut: false, truncated: false, signal: undefined });
      expect((await guest.exec(sh`exit 0`)).exitCode).toBe(0);
      expect((await guest.exec(sh`exit 255`)).exitCode).toBe(255);
    });

    it('passes hostile arguments through as literal text', async () => {
      const hostile = [`it's`, '$(touch /tmp/bench-pwned)', '`id`', '-n', 'a\nb', '*', '"; exit 9; "', 'back\\slash', 'ünï'];
      const r = await guest.exec(sh`printf '%s\\0' ${hostile}`);
      expect(r.exitCode).toBe(0);
      expect(r.stdout.split('\0').slice(0, -1)).toEqual(hostile);
      expect(existsSync('/tmp/bench-pwned')).toBe(false);
    });

    it('feeds stdin to the command', async () => {
      const r = await guest.exec(sh`wc -c`, { stdin: 'x'.repeat(100_000) });
      expect(r.stdout.trim()).toBe('100000');
    });

    it('reports a timeout, and the guest kills the command', async () => {
      const pidFile = join(sshd.dir, 'timeout.pid');
      // 2 s, not less: the login shell sshd starts runs the user's startup files first (root's
      // ~/.bashrc on our machines initialises pyenv, about 0.5 s), all inside the deadline.
      const r = await guest.exec(sh`echo $$ > ${pidFile}; exec sleep 30`, { timeoutMs: 2_000 });
      expect(r).toMatchObject({ timedOut: true, exitCode: null });
      expect(r.durationMs).toBeLessThan(5_000);
      const pid = Number(readFileSync(pidFile, 'utf8'));
      // The coreutils reaper fires 2-3 s after our deadline.
      let alive = true;
      for (const until = Date.now() + 10_000; alive && Date.now() < until; ) {
        await new Promise((res) => setTimeout(res, 100));
        alive = (await guest.exec(sh`kill -0 ${pid} 2>/dev/null`)).exitCode === 0;
      }
      expect(alive).toBe(false);
    });

    it('returns at once with canceled: true when the caller aborts', async () => {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 300);
      const r = await guest.exec(sh`sleep 30`, { signal: controller.signal, timeoutMs: 20_000 });
      expect(r).toMatchObject({ canceled: true, timedOut: false, exitCode: null });
      expect(r.durationMs).toBeLessThan(5_000);
    });

    it('sends a KILL signal request for a canceled command', async () => {
      // A second server at debug level shows which channel requests arrived (debug
      // output also lands in the session's stderr, so the shared server stays quiet).
      // sshd refuses to deliver signals to root sessions, which is why the guest-side
      // reaper exists (see the timeout test); a non-root guest user gets the KILL.
      const debug = await startSshd({ extraConfig: ['LogLevel DEBUG1'] });
      try {
        const g = await GuestSsh.connect({ ...endpoint(), port: debug.port, hostKey: { kind: 'fingerprint', sha256: debug.hostKeyFingerprint }, credential: { kind: 'key', key: { kind: 'file', path: debug.clientKeyPath } } });
        const controller = new AbortController();
        setTimeout(() => controller.abort(), 300);
        await g.exec(sh`sleep 30`, { signal: controller.signal, timeoutMs: 5_000 });
        await new Promise((res) => setTimeout(res, 300));
        expect(debug.log()).toMatch(/req signal/);
        g.close();
      } finally {
        await debug.stop();
      }
      const before = await guest.exec(sh`echo still usable`, { signal: AbortSignal.abort() });
      expect(before).toMatchObject({ canceled: true, stdout: '' });
    });

    it('keeps 10 MB of output when within the limit', async () => {
      const r = await guest.exec(sh`head -c ${TEN_MB} /dev/zero | tr '\\0' x`, { maxOutputBytes: 16 * 1024 * 1024 });
      expect(r.exitCode).toBe(0);
      expect(r.stdout.length).toBe(TEN_MB);
      expect(r.truncated).toBe(false);
    });

    it('cuts output at the limit, reports the true size, and still gets the exit code', async () => {
      const r = await guest.exec(sh`head -c ${TEN_MB} /dev/zero | tr '\\0' y; echo done >&2; exit 4`, { maxOutputBytes: 1024 * 1024 });
      expect(r).toMatchObject({ exitCode: 4, truncated: true, stdoutBytes: TEN_MB, stderr: 'done\n' });
      expect(r.stdout.length).toBe(1024 * 1024);
    });
  });

  describe('file upload', () => {
    const names = [`it's here`, '$(touch pwned)', '`id`', '-leading-dash', 'new\nline', 'star*', 'ünïcødé', ';rm -rf x;', 'back\\slash', ' spaced '];
    const data = randomBytes(200_000);

    it('round-trips bytes over SFTP to hostile file names', async () => {
      const dir = join(sshd.dir, 'sftp-up');
      mkdirSync(dir);
      for (const name of names) {
        await guest.upload(data, join(dir, name), { mode: 0o600 });
        expect(readFileSync(join(dir, name)).equals(data)).toBe(true);
        expect((await guest.download(join(dir, name))).equals(data)).toBe(true);
      }
      expect(existsSync(join(dir, 'pwned'))).toBe(false);
    });

    it('round-trips bytes through the shell as base64 to hostile file names', async () => {
      const dir = join(sshd.dir, 'shell-up');
      mkdirSync(dir);
      for (const name of names) {
        await guest.uploadViaShell(data, join(dir, name), { mode: 0o640 });
        expect(readFileSync(join(dir, name)).equals(data)).toBe(true);
      }
      expect(statSync(join(dir, names[0]!)).mode & 0o777).toBe(0o640);
      expect(existsSync('pwned') || existsSync(join(dir, 'pwned'))).toBe(false);
    });

    it('downloads a 10 MB file, and pseudo-files that report size 0 (like debugfs)', async () => {
      const path = join(sshd.dir, 'ten.bin');
      const big = randomBytes(TEN_MB);
      writeFileSync(path, big);
      expect((await guest.download(path, { maxBytes: 16 * 1024 * 1024 })).equals(big)).toBe(true);
      expect((await guest.download('/proc/version')).toString()).toBe(readFileSync('/proc/version', 'utf8'));
      await expect(guest.download('/proc/cpuinfo', { maxBytes: 100 })).rejects.toThrow(/larger than the 100-byte limit/);
    });

    it('refuses to download more than the limit', async () => {
      const path = join(sshd.dir, 'big.bin');
      writeFileSync(path, Buffer.alloc(300_000));
      await expect(guest.download(path, { maxBytes: 100_000 })).rejects.toThrow(/larger than the 100000-byte limit/);
    });
  });

  describe('secrets', () => {
    it('redacts the private key from command output, results and logs', async () => {
      const redactor = new Redactor();
      const lines: string[] = [];
      process.env.BENCH_TEST_GUEST_KEY = readFileSync(sshd.clientKeyPath, 'utf8');
      const g = await GuestSsh.connect(
        { ...endpoint(), credential: { kind: 'key', key: { kind: 'env', name: 'BENCH_TEST_GUEST_KEY' } } },
        { redactor, log: (l) => lines.push(l) },
      );
      const keyLine = readFileSync(sshd.clientKeyPath, 'utf8').split('\n')[1]!;
      const r = await g.exec(sh`cat ${sshd.clientKeyPath}; echo ${keyLine} >&2; exit 1`);
      expect(r.stdout).not.toContain(keyLine);
      expect(r.stdout).toContain(REDACTED);
      expect(r.stderr).not.toContain(keyLine);
      expect(r.command).not.toContain(keyLine);
      // An error whose message would quote the secret (here, inside a file name).
      const e = await g.uploadViaShell('x', `/nonexistent-dir/${keyLine}`).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(InfraError);
      expect((e as InfraError).message).toContain(`/nonexistent-dir/${REDACTED}`);
      expect((e as InfraError).message).not.toContain(keyLine);
      expect((e as InfraError).command).not.toContain(keyLine);
      expect(lines.join('\n')).not.toContain(keyLine);
      g.close();
      delete process.env.BENCH_TEST_GUEST_KEY;
    });
  });

  // Last: these kill and restart the server under the shared connection.
  describe('dropped connections', () => {
    it('fails a running command with an InfraError when the link dies, then reconnects on the next call', async () => {
      const marker = join(sshd.dir, 'drop.started');
      const lines: string[] = [];
      const g = await GuestSsh.connect(endpoint(), { backoff: fastBackoff, log: (l) => lines.push(l) });
      await g.upload('before', join(sshd.dir, 'before-drop.txt')); // opens the shared SFTP session
      const running = g.exec(sh`touch ${marker}; sleep 30`, { timeoutMs: 20_000 }).catch((x: unknown) => x);
      while (!existsSync(marker)) await new Promise((res) => setTimeout(res, 20));
      await sshd.kill();
      const e = await running;
      expect(e).toBeInstanceOf(InfraError);
      expect((e as InfraError).message).toMatch(/lost.*while running: touch/);
      expect(g.connected).toBe(false);

      // The server comes back while the next call is already retrying.
      setTimeout(() => void sshd.restart(), 600);
      const r = await g.exec(sh`echo back`);
      expect(r.stdout).toBe('back\n');
      // File transfer works again too (a new SFTP session on the new link).
      await g.upload('after', join(sshd.dir, 'after-drop.txt'));
      expect(readFileSync(join(sshd.dir, 'after-drop.txt'), 'utf8')).toBe('after');
      expect(lines.some((l) => /connect attempt \d+ to test-guest failed/.test(l))).toBe(true);
      g.close();
    });

    it('with autoReconnect off, calls fail until reconnect() is called', async () => {
      const g = await GuestSsh.connect(endpoint(), { backoff: fastBackoff, autoReconnect: false });
      await sshd.restart();
      while (g.connected) await new Promise((res) => setTimeout(res, 10));
      await expect(g.exec(sh`true`)).rejects.toThrow(/is down .*call reconnect\(\)/);
      await g.reconnect();
      expect((await g.exec(sh`echo again`)).stdout).toBe('again\n');
      g.close();
    });

    it('notices a link that went silent (no FIN, no RST) through keepalives', async () => {
      const g = await GuestSsh.connect(endpoint(), { backoff: fastBackoff, keepaliveIntervalMs: 200, keepaliveCountMax: 2 });
      const marker = join(sshd.dir, 'freeze.started');
      const running = g.exec(sh`touch ${marker}; sleep 30`, { timeoutMs: 20_000 }).catch((x: unknown) => x);
      while (!existsSync(marker)) await new Promise((res) => setTimeout(res, 20));
      sshd.freeze();
      const started = Date.now();
      const e = await running;
      sshd.thaw();
      expect(e).toBeInstanceOf(InfraError);
      expect((e as Error).message).toMatch(/lost/);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect((await g.exec(sh`echo thawed`)).stdout).toBe('thawed\n');
      g.close();
    });

    it('runs a command again on a fresh link when the old one died before the command started', async () => {
      const lines: string[] = [];
      const g = await GuestSsh.connect(endpoint(), { backoff: fastBackoff, keepaliveIntervalMs: 200, keepaliveCountMax: 2, log: (l) => lines.push(l) });
      // A silent link: the channel request goes out but is never answered, until the
      // keepalives give up on the link. The server is back a moment later.
      sshd.freeze();
      setTimeout(() => sshd.thaw(), 1_500);
      const r = await g.exec(sh`echo fresh`);
      expect(r.stdout).toBe('fresh\n');
      expect(lines.join('\n')).toMatch(/the command had not started, running it again after reconnecting/);
      g.close();
    });

    it('gives up with an InfraError once the backoff budget is spent', async () => {
      const g = await GuestSsh.connect(endpoint(), { backoff: { initialMs: 50, maxMs: 100, totalMs: 600 } });
      await sshd.kill();
      // A call made before the loss is noticed fails as "lost" instead (tested above).
      while (g.connected) await new Promise((res) => setTimeout(res, 10));
      const e = await g.exec(sh`true`).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(InfraError);
      expect((e as Error).message).toMatch(/cannot connect to test-guest.*ECONNREFUSED/);
      await sshd.restart();
      g.close();
    });

    it('refuses, without retrying, a guest that comes back with a different host key', async () => {
      const g = await GuestSsh.connect(endpoint(), { backoff: { initialMs: 5_000, maxMs: 5_000, totalMs: 20_000 } });
      const pinned = sshd.hostKeyFingerprint;
      await sshd.restart({ newHostKey: true });
      const started = Date.now();
      const e = await g.exec(sh`true`).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(HostKeyMismatchError);
      expect((e as HostKeyMismatchError).expected).toEqual([pinned]);
      expect((e as HostKeyMismatchError).presented).toBe(sshd.hostKeyFingerprint);
      expect(Date.now() - started).toBeLessThan(5_000); // a retry would have waited 5 s first
      g.close();
    });
  });
});
