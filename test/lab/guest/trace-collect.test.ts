import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../../src/errors.ts';
import { guestDriverLayout } from '../../../src/lab/deploy-guest.ts';
import { GuestSsh } from '../../../src/lab/guest-ssh.ts';
import { REDACTED, Redactor } from '../../../src/lab/secrets.ts';
import { collectGuestTrace, collectLocalTrace, storeTrace, validateTraceText } from '../../../src/lab/trace-collect.ts';
import { sshdUnavailable, startSshd, type Sshd } from '../support/sshd.ts';

const fixtures = 'test/fixtures/lab/traces';
const runDir = mkdtempSync(join(tmpdir(), 'bench-run-'));
afterAll(() => rmSync(runDir, { recursive: true, force: true }));

describe('trace validation', () => {
  it('accepts a v1 JSON Lines trace and counts its events, with or without the final newline', () => {
    expect(validateTraceText(readFileSync(join(fixtures, 'guest-ok.jsonl'), 'utf8'), 'x')).toBe(3);
    expect(validateTraceText(readFileSync(join(fixtures, 'no-final-newline.jsonl'), 'utf8'), 'x')).toBe(3);
    expect(validateTraceText('', 'x')).toBe(0);
  });

  const cases: Array<[file: string, line: number, says: RegExp]> = [
    ['malformed-line-2.jsonl', 2, /not JSON/],
    ['cut-last-line.jsonl', 3, /not JSON.*cut while being written/],
    ['seq-goes-back.jsonl', 3, /seq 2 does not increase \(previous 3\)/],
    ['array-line.jsonl', 2, /not a JSON object/],
    ['blank-line.jsonl', 2, /empty line/],
    ['future-version.jsonl', 1, /unsupported trace version 2/],
  ];
  it.each(cases)('%s: InputError naming the file and line %i', async (file, line, says) => {
    const source = join(fixtures, file);
    const e = await collectLocalTrace(source, runDir, `${file}.copy`).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InputError);
    expect((e as InputError).exitCode).toBe(2);
    expect((e as InputError).location).toMatchObject({ file: source, line });
    expect((e as Error).message.startsWith(`${source}:${line}`)).toBe(true);
    expect((e as Error).message).toMatch(says);
    // Nothing half-written is left behind.
    expect(readdirSync(runDir).filter((f) => f.startsWith(file) || f.includes(`${file}.copy`))).toEqual([]);
  });
});

describe('storing traces', () => {
  it('copies a host trace into the run directory byte for byte', async () => {
    const source = join(fixtures, 'guest-ok.jsonl');
    const c = await collectLocalTrace(source, join(runDir, 'job-1'));
    expect(c).toMatchObject({ path: join(runDir, 'job-1', 'host.trace.jsonl'), events: 3, origin: source });
    expect(readFileSync(c.path).equals(readFileSync(source))).toBe(true);
    expect(readdirSync(join(runDir, 'job-1'))).toEqual(['host.trace.jsonl']);
  });

  it('scrubs known secret values from a stored trace', async () => {
    const redactor = new Redactor();
    redactor.add('hunter2-secret-value');
    const text = '{"v":1,"seq":1,"src":"hyperv","side":"guest","ev":"ch.state","ch":1,"state":"hunter2-secret-value"}\n';
    const c = await storeTrace(join(runDir, 'job-s'), 'guest.trace.jsonl', text, 'x', undefined, redactor);
    expect(readFileSync(c.path, 'utf8')).toBe(text.replace('hunter2-secret-value', REDACTED));
  });

  it('refuses a name that would leave the run directory', async () => {
    await expect(storeTrace(runDir, '../escape.jsonl', '', 'x')).rejects.toBeInstanceOf(InputError);
    expect(existsSync(join(runDir, '..', 'escape.jsonl'))).toBe(false);
  });
});

const reason = sshdUnavailable();
describe.skipIf(reason)(`collecting the guest trace over real sshd${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let sshd: Sshd;
  let guest: GuestSsh;
  beforeAll(async () => {
    sshd = await startSshd();
    guest = await GuestSsh.connect({
      name: 'vm-1', host: sshd.host, port: sshd.port, user: sshd.user,
      credential: { kind: 'key', key: { kind: 'file', path: sshd.clientKeyPath } },
      hostKey: { kind: 'fingerprint', sha256: sshd.hostKeyFingerprint },
    });
  });
  afterAll(async () => {
    guest?.close();
    await sshd?.stop();
  });

  it('reads the trace and the dropped count from the driver\'s debugfs files', async () => {
    const debugfsDir = join(sshd.dir, 'debugfs', 'vmbus_sample_guest');
    mkdirSync(debugfsDir, { recursive: true });
    writeFileSync(join(debugfsDir, 'trace'), readFileSync(join(fixtures, 'guest-ok.jsonl')));
    writeFileSync(join(debugfsDir, 'counters'), 'trace_seq=3 trace_dropped=2\nch=1\n');
    const layout = guestDriverLayout('vmbus_sample_guest', { debugfsDir, privilege: 'root' });
    const c = await collectGuestTrace(guest, layout, join(runDir, 'job-2'));
    expect(c).toMatchObject({ events: 3, dropped: 2, origin: `guest vm-1:${debugfsDir}/trace` });
    expect(readFileSync(c.path, 'utf8')).toBe(readFileSync(join(fixtures, 'guest-ok.jsonl'), 'utf8'));
  });

  it('is an InputError when the counters file does not say how many lines were dropped', async () => {
    const debugfsDir = join(sshd.dir, 'debugfs-odd-counters');
    mkdirSync(debugfsDir, { recursive: true });
    writeFileSync(join(debugfsDir, 'trace'), readFileSync(join(fixtures, 'guest-ok.jsonl')));
    writeFileSync(join(debugfsDir, 'counters'), 'seq: 3\n');
    const e = await collectGuestTrace(guest, guestDriverLayout('vmbus_sample_guest', { debugfsDir, privilege: 'root' }), join(runDir, 'job-4')).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InputError);
    expect((e as Error).message).toBe(`guest vm-1:${debugfsDir}/counters:1: does not start with "trace_seq=N trace_dropped=N": "seq: 3\\n"`);
    expect(existsSync(join(runDir, 'job-4', 'guest.trace.jsonl'))).toBe(false);
  });

  it('names the guest and the line when the guest trace is malformed', async () => {
    const debugfsDir = join(sshd.dir, 'debugfs-bad');
    mkdirSync(debugfsDir, { recursive: true });
    writeFileSync(join(debugfsDir, 'trace'), readFileSync(join(fixtures, 'malformed-line-2.jsonl')));
    writeFileSync(join(debugfsDir, 'counters'), 'trace_seq=3 trace_dropped=0\n');
    const e = await collectGuestTrace(guest, guestDriverLayout('vmbus_sample_guest', { debugfsDir, privilege: 'root' }), join(runDir, 'job-3')).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InputError);
    expect((e as Error).message).toMatch(new RegExp(`^guest vm-1:${debugfsDir}/trace:2: not JSON`));
    expect(existsSync(join(runDir, 'job-3', 'guest.trace.jsonl'))).toBe(false);
  });
});
