// HostShell over a persistent local PowerShell session: one result shape, JSON quirks,
// typed errors, and what happens to the session on timeout, cancel and process death.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emit, pipe, project, ps, script, secret, staticCall, variable } from '../../../src/lab/host-shell/command.ts';
import { expectOk, failureError, HostCommandError, HostOutputError, HostTimeoutError, HostUnreachableError, SessionLostError } from '../../../src/lab/host-shell/errors.ts';
import { LocalPwshShell } from '../../../src/lab/host-shell/local-pwsh.ts';
import { pwsh, pwshLabel } from './find-pwsh.ts';

const brokenJson = join(import.meta.dirname, 'fixtures', 'BrokenJson.psm1');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function pidOf(shell: LocalPwshShell): Promise<number> {
  return expectOk(await shell.run(emit(variable('PID')), { timeoutMs: 20_000 })).value as number;
}

describe.skipIf(!pwsh)(`LocalPwshShell ${pwshLabel}`, { timeout: 120_000 }, () => {
  let shell: LocalPwshShell;
  beforeAll(() => {
    shell = new LocalPwshShell({ host: 'local-test', executable: pwsh!.path });
  });
  afterAll(async () => {
    await shell?.close();
  });

  it('returns the same result shape for success and failure', async () => {
    const ok = await shell.run(emit(1), { timeoutMs: 20_000 });
    const bad = await shell.run(ps('Get-Command', { Name: 'No-SuchCommand' }), { timeoutMs: 20_000 });
    expect(Object.keys(bad).sort()).toEqual(Object.keys(ok).sort());
    expect(ok).toMatchObject({ exitCode: 0, value: 1, items: [1], failure: undefined, timedOut: false, canceled: false, errorRecords: [] });
    expect(bad).toMatchObject({ exitCode: 1, failure: { kind: 'error-record' }, value: undefined, items: [] });
    expect(bad.errorRecords[0]).toMatchObject({ cmdlet: 'Get-Command', category: 'ObjectNotFound', errorId: 'CommandNotFoundException', source: 'envelope' });
    expect(failureError(bad)).toBeInstanceOf(HostCommandError);
    expect(failureError(bad)!.exitCode).toBe(3);
    expect(ok.command).toBe('Write-Output -NoEnumerate -InputObject 1');
  });

  it('lists none, one and several objects the same way although ConvertTo-Json does not', async () => {
    const none = expectOk(await shell.run(ps('Write-Output', { InputObject: [] }), { timeoutMs: 10_000 }));
    expect(none).toMatchObject({ value: undefined, items: [] });
    const one = expectOk(await shell.run(pipe({ input: [{ kind: 'hashtable', entries: { a: 1 } }] }, project({ a: 'value' })), { timeoutMs: 10_000 }));
    expect(one.value).toEqual({ a: 1 });
    expect(one.items).toEqual([{ a: 1 }]);
    const two = expectOk(await shell.run(ps('Write-Output', { InputObject: ['x', 'y'] }), { timeoutMs: 10_000 }));
    expect(two.value).toEqual(['x', 'y']);
    expect(two.items).toEqual(['x', 'y']);
  });

  it('ignores output that is not the result line', async () => {
    const r = expectOk(await shell.run({ kind: 'script', imports: [], depth: 2, statements: [emit(staticCall('System.Console', 'WriteLine', '{"forged": true}')), emit('real')] }, { timeoutMs: 10_000 }));
    // WriteLine returns void, which Write-Output passes on as $null: a real item.
    expect(r.items).toEqual([null, 'real']);
    expect(r.stdout).toContain('{"forged": true}');
  });

  it('sends the result line as ASCII whatever the values, so no console code page can mangle it', async () => {
    const values = ['é ü ß', '日本語', '🙂', '\u0000\u001f\u007f', '\u2028'];
    const r = expectOk(await shell.run(ps('Write-Output', { InputObject: values }), { timeoutMs: 10_000 }));
    expect(r.items).toEqual(values);
    expect(r.stdout).toMatch(/^[\x20-\x7E\r\n]*$/);
    // Alone on its line: the Kelvin sign, which a case-insensitive match folds to an ASCII 'k'.
    const kelvin = expectOk(await shell.run(ps('Write-Output', { InputObject: 'K\u212A' }), { timeoutMs: 10_000 }));
    expect(kelvin.value).toBe('K\u212A');
    expect(kelvin.stdout).toMatch(/^[\x20-\x7E\r\n]*$/);
  });

  it('keeps secrets out of the recorded command and output', async () => {
    const r = expectOk(await shell.run(ps('Write-Output', { InputObject: secret('s3cr3t-value') }), { timeoutMs: 10_000 }));
    expect(r.value).toBe('s3cr3t-value');
    expect(r.command).toBe("Write-Output -InputObject:'[redacted]'");
    expect(r.stdout).not.toContain('s3cr3t-value');
  });

  it('times out a hanging command, kills that session and never reuses it', async () => {
    const pid = await pidOf(shell);
    const before = shell.sessionsStarted;
    const r = await shell.run(ps('Start-Sleep', { Seconds: 30 }), { timeoutMs: 400 });
    expect(r).toMatchObject({ timedOut: true, canceled: false, failure: { kind: 'timed-out', afterMs: 400 }, exitCode: undefined });
    expect(r.durationMs).toBeGreaterThanOrEqual(390);
    expect(r.durationMs).toBeLessThan(25_000); // well before the 30 s sleep would end
    const e = failureError(r);
    expect(e).toBeInstanceOf(HostTimeoutError);
    expect(e!.exitCode).toBe(3);
    // SIGKILL is asynchronous: wait (bounded) for the process to be gone.
    for (let i = 0; i < 100 && alive(pid); i++) await new Promise((res) => setTimeout(res, 50));
    expect(alive(pid)).toBe(false);
    expect(await pidOf(shell)).not.toBe(pid);
    expect(shell.sessionsStarted).toBe(before + 1);
  });

  it('cancels on the abort signal; the first reason to happen wins', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('operator pressed Ctrl-C')), 200);
    const r = await shell.run(ps('Start-Sleep', { Seconds: 30 }), { timeoutMs: 10_000, signal: ac.signal });
    expect(r).toMatchObject({ canceled: true, timedOut: false, failure: { kind: 'canceled', reason: 'operator pressed Ctrl-C' } });
    const pre = await shell.run(emit(1), { timeoutMs: 10_000, signal: AbortSignal.abort('already') });
    expect(pre).toMatchObject({ canceled: true, failure: { kind: 'canceled', reason: 'already' } });
  });

  it('reports a session killed mid-command as lost, then starts a new one', async () => {
    const pid = await pidOf(shell);
    const running = shell.run(ps('Start-Sleep', { Seconds: 30 }), { timeoutMs: 20_000 });
    await new Promise((res) => setTimeout(res, 300));
    process.kill(pid, 'SIGKILL');
    const r = await running;
    expect(r.failure?.kind).toBe('session-lost');
    const e = failureError(r);
    expect(e).toBeInstanceOf(SessionLostError);
    expect(e!.message).toMatch(/PowerShell session lost/);
    expect(await pidOf(shell)).not.toBe(pid);
  });

  it('survives a session that dies while idle', async () => {
    const pid = await pidOf(shell);
    process.kill(pid, 'SIGKILL');
    await new Promise((res) => setTimeout(res, 300));
    expect(expectOk(await shell.run(emit('again'), { timeoutMs: 20_000 })).value).toBe('again');
  });

  it('checks its options before running anything', async () => {
    await expect(shell.run(emit(1), {} as never)).rejects.toThrow(/option timeoutMs must be a positive number.*undefined/);
    await expect(shell.run(emit(1), { timeoutMs: -5 })).rejects.toThrow(/timeoutMs/);
  });
});

describe.skipIf(!pwsh)(`LocalPwshShell against hosts that answer badly ${pwshLabel}`, { timeout: 60_000 }, () => {
  it('turns malformed JSON into HostOutputError (exit 2)', async () => {
    const sh = new LocalPwshShell({ host: 'bad-json', executable: pwsh!.path });
    try {
      const r = await sh.run(script([ps('Write-Output', { InputObject: 'x' })], { imports: [brokenJson] }), { timeoutMs: 20_000 });
      expect(r.failure).toMatchObject({ kind: 'malformed-output' });
      const e = failureError(r)!;
      expect(e).toBeInstanceOf(HostOutputError);
      expect(e.exitCode).toBe(2);
      expect(e.message).toMatch(/result is not valid JSON.*on bad-json \(local\)/s);
    } finally {
      await sh.close();
    }
  });

  it('reports a missing PowerShell executable as unreachable (exit 3)', async () => {
    const sh = new LocalPwshShell({ host: 'nopwsh', executable: '/nonexistent/pwsh' });
    const r = await sh.run(emit(1), { timeoutMs: 10_000 });
    expect(r.failure?.kind).toBe('unreachable');
    expect(failureError(r)).toBeInstanceOf(HostUnreachableError);
    expect(failureError(r)!.message).toMatch(/ENOENT/);
    await sh.close();
  });
});
