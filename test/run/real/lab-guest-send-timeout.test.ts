// A real lab job's Linux guest whose send gives up (src/lab/guest/control-write.ts,
// src/run/real/real-job.ts): the driver traces `pkt.timeout` and its debugfs control
// write fails with EAGAIN. Over a real sshd and the guest's real shell and coreutils, the
// lab recognises that failure from what the write tool prints, and the job's send step
// ends there, as the emulator's C guest does; any other write failure stays an error.
// The job then cuts the drivers' files with a bench.mark, and bench check passes its
// merged trace (without the mark, the same files are refused as spurious). The job's
// settles are the default 2-s quiet, shorter than the VSP's 10-s holds: each settle step
// ends with a cut, where check's replay ends its settle (without those cuts the files
// diverge as lost), and the scenario's last settle waits for the guest's counters to show
// no request without its completion.
//
// A plain file cannot fail a write with the driver's errno, so the guest's `sudo -n` (the
// package asks for root, as blockq's and the sample's do) is a stand-in put first on the
// session's PATH by sshd's SetEnv: when the test has armed it with an errno, it runs the
// command under strace, which makes the write syscall on the control file return that
// errno, as the kernel returns the driver's write handler's -EAGAIN from a debugfs write.
// Everything else (sh, env, printf's message, the exit status, ssh) is the real thing.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleControl } from '../../../devices/sample/control.ts';
import { InfraError } from '../../../src/errors.ts';
import type { GuestDriverPackage } from '../../../src/lab/driver-package.ts';
import { ControlWriteAgain } from '../../../src/lab/guest/control-write.ts';
import { GuestSsh } from '../../../src/lab/guest-ssh.ts';
import type { VmTemplate } from '../../../src/lab/template.ts';
import { labGuestControl } from '../../../src/run/real/lab-guest.ts';
import { DEFAULT_REAL_JOB, mergeTraces, outstandingOf, runRealJob, type GuestControl } from '../../../src/run/real/real-job.ts';
import { checkTraces } from '../../../src/run/commands/check-trace.ts';
import { linuxGuestSends } from '../../../src/check/replay.ts';
import { stalledOn } from '../../check/support/send-timeout-scenario.ts';
import { sshdUnavailable, startSshd, type Sshd } from '../../lab/support/sshd.ts';
import { connectToSshd } from '../../lab/support/sshd-guest.ts';
import { cVmJob, type CVmJob } from './support/c-vm.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;
const strace = spawnSync('strace', ['-V']).status === 0;
const sshReason = sshdUnavailable();
const template = (driver: GuestDriverPackage) => ({ guest: { os: 'linux', driver } }) as unknown as VmTemplate;

/** The check's own give-up scenario (test/check/replay-send-timeout.test.ts). */
const stalled = stalledOn();

describe.skipIf(sshReason || !strace)(`a Linux guest's control write that fails ${sshReason ? `(skipped: ${sshReason})` : strace ? '' : '(skipped: no strace)'}`, { timeout: 600_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), 'lab-guest-eagain-'));
  const bin = join(work, 'bin');
  // The debugfs folder stand-in, and the errno the next privileged write gets (absent: none).
  const dir = join(work, 'debugfs');
  const control = join(dir, 'control');
  const arm = join(work, 'inject');
  let sshd: Sshd;
  let ssh: GuestSsh;
  beforeAll(async () => {
    mkdirSync(bin);
    mkdirSync(dir);
    writeFileSync(join(bin, 'sudo'), [
      '#!/bin/sh',
      '# stand-in for sudo -n: runs the command; armed, with the control write failing with the armed errno',
      '[ "$1" = -n ] && shift',
      `if [ -e '${arm}' ]; then err=$(cat '${arm}'); rm -f '${arm}'; exec strace -o /dev/null -f -P '${control}' -e trace=write -e inject=write:error="$err" "$@"; fi`,
      'exec "$@"', '',
    ].join('\n'));
    chmodSync(join(bin, 'sudo'), 0o755);
    sshd = await startSshd({ extraConfig: [`SetEnv PATH=${bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`] });
    ssh = await connectToSshd(sshd);
  });
  afterAll(async () => {
    ssh?.close();
    await sshd?.stop();
  });
  const pkg: GuestDriverPackage = {
    files: dir, include: undefined, remoteDir: dir, install: '', uninstall: '', sudo: true, binary: undefined, installTimeoutMs: 60_000,
    trace: { format: 'jsonl', path: join(dir, 'trace'), counters: join(dir, 'counters') },
  };
  const guest = () => labGuestControl({ os: 'linux', ssh }, template(pkg), { ...sampleControl, linuxGuest: { controlFile: control } });

  it('EAGAIN from the write is a send given up (ControlWriteAgain, naming the line and the errno); EIO is an error naming it; unarmed, the line is written', async () => {
    await guest().command('send 1 64 0 0 ch=0');
    expect(readFileSync(control, 'utf8')).toBe('send 1 64 0 0 ch=0');
    writeFileSync(arm, 'EAGAIN');
    const again = await guest().command('send 2 64 0 0 ch=0').then(() => null, (e: unknown) => e);
    expect(again).toBeInstanceOf(ControlWriteAgain);
    expect((again as Error).message).toMatch(/refused "send 2 64 0 0 ch=0" .* with EAGAIN[\s\S]*exit 1[\s\S]*printf: write error: Resource temporarily unavailable/);
    expect(existsSync(arm)).toBe(false); // the stand-in really ran armed
    writeFileSync(arm, 'EIO');
    const io = await guest().command('send 3 64 0 0 ch=0').then(() => null, (e: unknown) => e);
    expect(io).toBeInstanceOf(InfraError);
    expect(io).not.toBeInstanceOf(ControlWriteAgain);
    expect((io as Error).message).toMatch(/could not send "send 3 64 0 0 ch=0"[\s\S]*Input\/output error/);
  });

  it.skipIf(!toolchain)('a VM job whose C Linux guest gives a send up on the full ring: the step ends with pkt.timeout in the merged trace, and the job runs on', async () => {
    const c: CVmJob = cVmJob(stalled, 'hv');
    const overSsh = guest();
    const writes: string[] = [];
    const refused: string[] = [];
    // The guest driver's control file over SSH: the C guest runs each line (as the kernel
    // runs the driver's write handler during the write); its EAGAIN arms the stand-in so
    // the real write over SSH fails with it.
    const viaSsh: GuestControl = {
      command: async (line) => {
        try {
          await c.lab.guest.command(line);
        } catch (e) {
          if (!(e instanceof ControlWriteAgain)) throw e;
          refused.push(line);
          writeFileSync(arm, 'EAGAIN');
        }
        await overSsh.command(line);
        writes.push(readFileSync(control, 'utf8'));
        rmSync(control);
      },
      // The counters straight from the C guest: the job's settle polls them every 500 ms
      // of the VSP's 10-s holds, and a round trip to this sshd costs a second or two on a
      // loaded machine (lab-guest.test.ts reads them over SSH). The write and the trace
      // still go over SSH.
      traceSeq: () => c.lab.guest.traceSeq(),
      // Its requests sent without a completion, from the same counters (the sample's
      // `requests_sent` and `completions`): the scenario's last settle waits for none.
      outstanding: async () => outstandingOf(sampleControl.counters('guest', c.guestFile('counters').split('\n'))),
      readTrace: async () => {
        writeFileSync(join(dir, 'trace'), c.guestFile('trace'));
        return overSsh.readTrace();
      },
      reconnect: () => overSsh.reconnect(),
    };
    const outDir = mkdtempSync(join(tmpdir(), 'lab-guest-eagain-out-'));
    // The job's settle is the default one: the drivers quiet for 2 s, far shorter than
    // the VSP's 10-s holds, so it ends with requests still held, and the next step's sends
    // race the host's reads of them. The job cuts the files at each settle's end (a
    // bench.mark), and check's replay ends its settle there (src/check/replay.ts, SettleCuts).
    const out = await runRealJob({ scenario: stalled, seed: 1, hostMap: { [stalled.host]: 'hv' } }, { ...c.lab, guest: viaSsh }, outDir, new AbortController().signal, { ...DEFAULT_REAL_JOB, opTimeoutMs: 60_000 });
    expect(out, JSON.stringify(out).slice(0, 600)).toMatchObject({ kind: 'ran' });
    if (out.kind !== 'ran') return;
    // The first send step was refused (and its write really failed over SSH); the second went through.
    const sends = [...refused, ...writes].filter((l) => /^send /.test(l));
    expect(refused).toEqual([sends[0]]);
    expect(writes.filter((l) => /^send /.test(l))).toHaveLength(1);
    const events = readFileSync(out.traces[0]!, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.filter((e) => e.ev === 'pkt.timeout')).toEqual([expect.objectContaining({ side: 'guest', ch: 0, tx: 19, len: 256 })]);
    expect(events.filter((e) => e.ev === 'pkt.send' && e.side === 'guest')).toHaveLength(20);
    // The job cut the files right after the failed write (a bench.mark with both drivers'
    // seqs), so the merged trace has the host's later reads of the ring (10 s after the
    // give-up) after the guest's pkt.timeout, and at the end of each of the two settles;
    // bench check, as the lab's checker runs it (the Linux guest's sends wait for room),
    // passes it.
    const mark = events.findIndex((e) => e.ev === 'bench.mark');
    expect(events.filter((e) => e.ev === 'bench.mark')).toHaveLength(3);
    expect(mark).toBeGreaterThan(events.findIndex((e) => e.ev === 'pkt.timeout'));
    // The first settle ended with the VSP still holding every request it took: the host's
    // first completion comes after that settle's cut, as does the next step's first send.
    const settleCut = events.findIndex((e, i) => i > mark && e.ev === 'bench.mark');
    const nextSend = events.findIndex((e) => e.ev === 'pkt.send' && e.side === 'guest' && e.len === 64);
    expect(nextSend).toBeGreaterThan(settleCut);
    expect(events.findIndex((e) => e.ev === 'pkt.complete' && e.side === 'host')).toBeGreaterThan(settleCut);
    const check = (trace: string) => checkTraces(stalled, [trace], { guestSends: linuxGuestSends(sampleControl), minimise: false });
    const marked = await check(out.traces[0]!);
    expect(marked.result, JSON.stringify(marked.result).slice(0, 800)).toMatchObject({ verdict: 'pass', failedProperties: [] });
    // And the job's three files as `bench check --trace ... --align FILE=KEY` takes them:
    // merged by check itself, host against guest ordered by the merge, not by their lines.
    const [hostFile, guestFile] = [out.evidence.hostTrace!, out.evidence.guestTrace!];
    const files = await checkTraces(stalled, [join(outDir, 'bench.jsonl'), hostFile, guestFile], { guestSends: linuxGuestSends(sampleControl), minimise: false, align: new Map([[hostFile, 'host'], [guestFile, 'guest']]) });
    expect(files.result, JSON.stringify(files.result).slice(0, 800)).toMatchObject({ verdict: 'pass', failedProperties: [] });
    // The same job's files merged without the mark: the merge puts the host's later reads
    // before the give-up, and check calls it spurious, as it did before the job wrote the
    // mark. (So the pass above is the mark's doing.)
    const benchFile = join(outDir, 'bench.jsonl');
    const benchLines = readFileSync(benchFile, 'utf8').split('\n');
    const unmarked = join(outDir, 'bench-unmarked.jsonl');
    writeFileSync(unmarked, benchLines.filter((l) => !l.includes('"bench.mark"')).join('\n'));
    const merged = await mergeTraces(unmarked, hostFile, guestFile, join(outDir, 'trace-unmarked.jsonl'));
    const withoutMark = await check(merged);
    expect(withoutMark.result).toMatchObject({ verdict: 'diverge', class: 'spurious', firstUnexplained: { event: expect.objectContaining({ ev: 'pkt.timeout' }) } });
    // With the give-up's cut but not the settles': the replay's settle runs on into what
    // the host did after the job's settle ended, and check parts from the trace, as it did
    // before the job cut its settles. (So the pass above is the settles' cuts' doing too.)
    const marks = benchLines.flatMap((l, i) => (l.includes('"bench.mark"') ? [i] : []));
    const giveUpOnly = join(outDir, 'bench-give-up-only.jsonl');
    writeFileSync(giveUpOnly, benchLines.filter((_, i) => !marks.slice(1).includes(i)).join('\n'));
    const withoutSettleCuts = await check(await mergeTraces(giveUpOnly, hostFile, guestFile, join(outDir, 'trace-give-up-only.jsonl')));
    expect(withoutSettleCuts.result, JSON.stringify(withoutSettleCuts.result).slice(0, 800)).toMatchObject({ verdict: 'diverge', class: 'lost', firstUnexplained: { event: expect.objectContaining({ side: 'guest', ev: 'pkt.completion' }) } });
  });
});
