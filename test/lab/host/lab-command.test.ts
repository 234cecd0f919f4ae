// The real `bench lab check|cleanup` on an inventory of two stand-in hosts: one local, one
// over SSH through OpenSSH on loopback.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pipe, ps, script } from '../../../src/lab/host-shell/command.ts';
import { expectOk } from '../../../src/lab/host-shell/errors.ts';
import { HyperV } from '../../../src/lab/hyperv.ts';
import { sshdUnavailable, startSshd, type Sshd } from '../support/sshd.ts';
import { pwsh, pwshLabel, standinModule } from './find-pwsh.ts';
import { disposeHost, initHost, newStandinHost, PARENT, SWITCH, VM_ROOT, type StandinHost } from './standin.ts';

const run = promisify(execFile);
const bench = resolve(import.meta.dirname, '../../../bin/bench.js');
const reason = !pwsh ? 'no PowerShell' : sshdUnavailable();
const q = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`;

describe.skipIf(reason)(`bench lab check|cleanup ${reason ? `(skipped: ${reason})` : pwshLabel}`, { timeout: 120_000 }, () => {
  let sshd: Sshd;
  let a: StandinHost;
  let b: StandinHost;
  let inventory: string;
  let env: NodeJS.ProcessEnv;
  const work = mkdtempSync(join(tmpdir(), 'bench-lab-cli-'));

  async function benchRun(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const t0 = performance.now();
    try {
      const r = await run(process.execPath, [bench, ...args], { env, timeout: 60_000 });
      if (process.env.BENCH_TEST_TIMING) process.stderr.write(`bench ${args.join(' ')}: ${Math.round(performance.now() - t0)} ms\n`);
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (e) {
      const x = e as { code: number; stdout: string; stderr: string };
      return { code: x.code, stdout: x.stdout, stderr: x.stderr };
    }
  }

  function writeInventory(path: string, port: number): void {
    writeFileSync(path, [
      'version: 1', 'name: standin-lab', 'defaults:', `  vmRoot: ${VM_ROOT}`, `  switch: ${SWITCH}`, '  capacity: { vmSlots: 2, memoryMB: 8192 }', 'hosts:',
      '  - name: hostA', '    transport: local', '    migrationPartner: hostB',
      '  - name: hostB', '    transport: ssh', '    shell: pwsh', `    address: ${sshd.host}`, `    port: ${port}`, `    user: ${sshd.user}`,
      `    credentials: { keyFile: ${sshd.clientKeyPath} }`, `    hostKey: { fingerprint: "${sshd.hostKeyFingerprint}" }`, '    migrationPartner: hostA', '',
    ].join('\n'));
  }

  beforeAll(async () => {
    sshd = await startSshd();
    a = newStandinHost('hostA');
    b = newStandinHost('hostB');
    inventory = join(work, 'lab.yaml');
    writeInventory(inventory, sshd.port);
    env = {
      ...process.env,
      BENCH_PWSH: pwsh!.path,
      BENCH_HYPERV_MODULE: standinModule,
      BENCH_HYPERV_STATE: a.dir,
      BENCH_REMOTE_PWSH: `env BENCH_HYPERV_STATE=${q(b.dir)} ${q(pwsh!.path)}`,
    };
  });
  afterAll(async () => {
    await disposeHost(a);
    await disposeHost(b);
    await sshd?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('passes every check on well-prepared hosts, one line per check', async () => {
    await initHost(a, { peers: [b] });
    await initHost(b, { peers: [a] });
    const r = await benchRun('lab', 'check', '--lab', inventory);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.at(-1)).toBe('14 passed, 0 failed, 0 not run, of 14 checks');
    for (const host of ['hostA', 'hostB']) {
      for (const check of ['reachable', 'Hyper-V module', 'switch "bench-switch"', 'migration to', 'free memory', 'free disk D:', 'test signing']) {
        expect(lines.some((l) => l.startsWith(`ok   ${host}`) && l.includes(check)), `${host} ${check}`).toBe(true);
      }
    }
  });

  it('fails with exit 1 and says which check on which host', async () => {
    await initHost(a, { peers: [b] });
    await initHost(b, { peers: [a], switches: ['other'], testSigning: false, migrationEnabled: false });
    const r = await benchRun('lab', 'check', '--lab', inventory, '--json');
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout) as { ok: boolean; checks: Array<{ host: string; check: string; status: string; detail: string }> };
    expect(doc.ok).toBe(false);
    const failed = doc.checks.filter((c) => c.status === 'fail').map((c) => `${c.host}/${c.check}`).sort();
    expect(failed).toEqual(['hostB/migration to hostA', 'hostB/switch "bench-switch"', 'hostB/test signing']);
    expect(doc.checks.find((c) => c.check === 'test signing' && c.host === 'hostB')?.detail).toMatch(/testsigning on/);
  });

  it('exits 3 and skips the rest when a host cannot be reached', async () => {
    const other = join(work, 'lab-down.yaml');
    writeInventory(other, 1); // nothing listens on port 1
    const r = await benchRun('lab', 'check', '--lab', other);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^FAIL hostB\s+reachable\s+cannot reach hostB: .*ECONNREFUSED/m);
    expect(r.stdout).toMatch(/^skip hostB\s+test signing\s+host not reachable$/m);
    // The checks that never ran are counted apart, not as passed.
    const skipped = r.stdout.split('\n').filter((l) => l.startsWith('skip ')).length;
    expect(skipped).toBeGreaterThan(0);
    const last = /^(\d+) passed, (\d+) failed, (\d+) not run \((.*) not reachable\), of (\d+) checks$/.exec(r.stdout.trim().split('\n').at(-1)!);
    expect(last).not.toBeNull();
    const [, passed, failed, notRun, down, total] = last!;
    expect(Number(notRun)).toBe(skipped);
    expect(Number(failed)).toBe(r.stdout.split('\n').filter((l) => l.startsWith('FAIL ')).length);
    expect(Number(passed)).toBe(r.stdout.split('\n').filter((l) => l.startsWith('ok ')).length);
    expect(Number(passed) + Number(failed) + Number(notRun)).toBe(Number(total));
    expect(down).toContain('hostB');
  });

  it('cleanup counts a host it could not reach as failed, in its line and in the total', async () => {
    const other = join(work, 'lab-down-cleanup.yaml');
    writeInventory(other, 1);
    const r = await benchRun('lab', 'cleanup', '--lab', other, '--dry-run');
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^FAIL hostB: /m);
    expect(r.stdout).not.toMatch(/^hostB: .*0 failed/m);
    const failedHosts = r.stdout.split('\n').filter((l) => /^FAIL \w+: /.test(l)).length;
    expect(r.stdout.trim().split('\n').at(-1)).toMatch(new RegExp(`, ${failedHosts} host\\(s\\) failed, of 2 host\\(s\\)$`));
  });

  it('closes its connections and exits when the host\'s shell is not PowerShell', async () => {
    // The host's shell answers nothing the bench understands, then ends the session.
    const t0 = performance.now();
    const r = await run(process.execPath, [bench, 'lab', 'check', '--lab', inventory], {
      env: { ...env, BENCH_REMOTE_PWSH: 'sh -c "echo this is not PowerShell; sleep 1"' }, timeout: 90_000,
    }).catch((e: { code: number; stdout: string; killed?: boolean }) => e);
    expect((r as { killed?: boolean }).killed ?? false).toBe(false);
    expect((r as { code?: number }).code).toBe(3);
    expect(performance.now() - t0).toBeLessThan(90_000);
  });

  it('exits 2 naming the file when the inventory is bad', async () => {
    const bad = join(work, 'bad.yaml');
    writeFileSync(bad, 'version: 1\nhosts:\n  - name: x\n    transport: carrier-pigeon\n');
    const r = await benchRun('lab', 'check', '--lab', bad);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('bad.yaml');
    const usage = await benchRun('lab', 'cleanup', '--lab', bad, '--run', 'a', '--except-run', 'b');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/--run or --except-run, not both/);
  });

  it('cleans up leaked VMs of other runs on every host, never a VM the bench did not make', async () => {
    await initHost(a, { peers: [b] });
    await initHost(b, { peers: [a] });
    const hvA = new HyperV(a.ctx);
    const hvB = new HyperV(b.ctx);
    const base = { parentVhd: PARENT, vmRoot: VM_ROOT, switchName: SWITCH, generation: 2 as const, memoryMB: 1024, processors: 1, secureBoot: { enabled: false as const }, integrationServices: [], waitForGuest: false };
    await hvA.provision({ ...base, name: 'bench-old-a', runId: 'old' });
    await hvB.provision({ ...base, name: 'bench-old-b', runId: 'old' });
    await hvA.provision({ ...base, name: 'bench-current', runId: 'now' });
    expectOk(await a.shell.run(script([ps('New-VM', { Name: 'bench-not-ours', NoVHD: true }), pipe(ps('Get-VM', { Name: 'bench-not-ours' }), ps('Set-VM', { Notes: 'hand-made' }))], { imports: [standinModule] }), { timeoutMs: 15_000 }));

    const dry = await benchRun('lab', 'cleanup', '--lab', inventory, '--except-run', 'now', '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^would remove hostA bench-old-a .*\(run old, was Running\)$/m);
    expect((await a.state()).Vms).toHaveLength(3);

    const r = await benchRun('lab', 'cleanup', '--lab', inventory, '--except-run', 'now', '--json');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as { hosts: Array<{ host: string; removed: Array<{ name: string }>; untouched: number }> };
    expect(doc.hosts.map((h) => [h.host, h.removed.map((v) => v.name), h.untouched])).toEqual([['hostA', ['bench-old-a'], 1], ['hostB', ['bench-old-b'], 0]]);
    expect((await a.state()).Vms.map((v) => v.Name).sort()).toEqual(['bench-current', 'bench-not-ours']);
    expect((await b.state()).Vms).toEqual([]);
  });
});
