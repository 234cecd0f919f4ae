// A driver package (src/lab/driver-package.ts) put into a guest over a real sshd on
// loopback (src/lab/deploy-guest-package.ts): the files it names are copied, its own
// install / uninstall / collect commands run in the package folder exactly as written
// (quotes, $, backticks and newlines reach the guest's shell intact), the binary it names
// is hashed, its trace and counters are read from where it says, and a failing command is
// reported with its exit status and output.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InfraError } from '../../../src/errors.ts';
import { installGuestPackage, readPackageCounters, readPackageTrace, uninstallGuestPackage } from '../../../src/lab/deploy-guest-package.ts';
import type { GuestDriverPackage } from '../../../src/lab/driver-package.ts';
import { GuestSsh } from '../../../src/lab/guest-ssh.ts';
import { sshdUnavailable, startSshd, type Sshd } from '../support/sshd.ts';

const reason = sshdUnavailable();
const TRACE = '{"v":1,"seq":1,"src":"hyperv","side":"guest","ev":"ch.state","ch":1,"state":"Opened"}\n';
// Every character a shell gives a meaning to, in the author's own script.
const INSTALL = `set -e
printf '%s\\n' "dir=$BENCH_PACKAGE_DIR" "pwd=$(pwd)" 'it'"'"'s $HOME \`id\`' > installed.txt
cp src/driver.c driver.ko
`;

describe.skipIf(reason)(`installing a driver package over real sshd${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let sshd: Sshd;
  let guest: GuestSsh;
  let local: string;
  let pkg: GuestDriverPackage;

  beforeAll(async () => {
    sshd = await startSshd();
    local = mkdtempSync(join(tmpdir(), 'bench-package-'));
    mkdirSync(join(local, 'src'));
    writeFileSync(join(local, 'src', 'driver.c'), 'int x;\n');
    writeFileSync(join(local, 'src', 'driver.o'), 'build output, never shipped');
    writeFileSync(join(local, 'src', 'trace.src'), TRACE);
    writeFileSync(join(local, 'NOT-INCLUDED'), 'left out by include');
    const remoteDir = join(sshd.dir, "guest dir with 'quotes' and $HOME");
    pkg = {
      files: local, include: ['src'], remoteDir, install: INSTALL, uninstall: 'rm driver.ko && echo gone > uninstalled.txt',
      sudo: false, binary: 'driver.ko', installTimeoutMs: 60_000,
      trace: { format: 'jsonl', path: join(remoteDir, 'trace.jsonl'), counters: join(remoteDir, 'counters'), collect: 'cp src/trace.src trace.jsonl && printf "trace_seq=1 trace_dropped=0\\n" > counters' },
    };
    guest = await GuestSsh.connect({
      name: 'package-guest', host: sshd.host, port: sshd.port, user: sshd.user,
      credential: { kind: 'key', key: { kind: 'file', path: sshd.clientKeyPath } },
      hostKey: { kind: 'fingerprint', sha256: sshd.hostKeyFingerprint },
    });
  });
  afterAll(async () => {
    guest?.close();
    await sshd?.stop();
    if (local) rmSync(local, { recursive: true, force: true });
  });

  it('copies the included files, runs install in the package folder as written, and hashes the binary', async () => {
    const installed = await installGuestPackage(guest, pkg);
    expect(existsSync(join(pkg.remoteDir, 'src', 'driver.c'))).toBe(true);
    expect(existsSync(join(pkg.remoteDir, 'src', 'driver.o'))).toBe(false);
    expect(existsSync(join(pkg.remoteDir, 'NOT-INCLUDED'))).toBe(false);
    expect(readFileSync(join(pkg.remoteDir, 'installed.txt'), 'utf8')).toBe(
      `dir=${pkg.remoteDir}\npwd=${pkg.remoteDir}\nit's $HOME \`id\`\n`);
    expect(installed).toEqual({ remoteDir: pkg.remoteDir, binarySha256: createHash('sha256').update('int x;\n').digest('hex').toUpperCase() });
  });

  it('reads the trace and the counters where the package says, after its collect command', async () => {
    expect(await readPackageTrace(guest, pkg)).toBe(TRACE);
    expect(await readPackageCounters(guest, pkg)).toEqual({ traceSeq: 1, traceDropped: 0 });
    await expect(readPackageTrace(guest, pkg, 10)).rejects.toThrow(/holds \d+ bytes, more than the 10-byte limit/);
    expect(await readPackageCounters(guest, { ...pkg, trace: { format: 'jsonl', path: pkg.trace.format === 'jsonl' ? pkg.trace.path : '' } })).toBeUndefined();
  });

  it('runs uninstall in the package folder', async () => {
    await uninstallGuestPackage(guest, pkg);
    expect(existsSync(join(pkg.remoteDir, 'driver.ko'))).toBe(false);
    expect(readFileSync(join(pkg.remoteDir, 'uninstalled.txt'), 'utf8')).toBe('gone\n');
  });

  it('reports a failing install with its exit status and its own message', async () => {
    const e = await installGuestPackage(guest, { ...pkg, install: 'echo "bound no channel: is the VSP offering it?" >&2; exit 7' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InfraError);
    expect((e as InfraError).exitCode).toBe(3); // the bench's exit code for an infrastructure failure
    expect((e as Error).message).toMatch(/could not install the driver package on package-guest \(exit 7\):\nbound no channel: is the VSP offering it\?/);
  });

  it('stops an install that runs past its timeout', async () => {
    const e = await installGuestPackage(guest, { ...pkg, install: 'sleep 30', installTimeoutMs: 500 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InfraError);
    expect((e as InfraError).timedOut).toBe(true);
    expect((e as Error).message).toMatch(/\(timed out\)/);
  });
});
