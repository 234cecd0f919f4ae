// The COM1 reader with a real .NET named-pipe client: on Linux .NET maps pipe "X" to the
// Unix socket /tmp/CoreFxPipe_X, so the test plays Hyper-V's pipe server with node:net,
// drops the connection as a VM reset would, and comes back.
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readHostFile } from '../../../src/lab/artefacts.ts';
import { assign, ps } from '../../../src/lab/host-shell/command.ts';
import { expectOk } from '../../../src/lab/host-shell/errors.ts';
import { HyperV } from '../../../src/lab/hyperv.ts';
import { cmd, hostContext } from '../../../src/lab/hyperv-vm.ts';
import { LocalPwshShell } from '../../../src/lab/host-shell/local-pwsh.ts';
import { readerScript, startSerialCapture, stopSerialCapture } from '../../../src/lab/serial-log.ts';
import { pwsh, pwshLabel } from './find-pwsh.ts';

const onLinux = process.platform === 'linux';

function pipeServer(name: string): { server: Server; next: () => Promise<Socket> } {
  const waiting: Array<(s: Socket) => void> = [];
  const server = createServer((s) => waiting.shift()?.(s));
  server.listen(join('/tmp', `CoreFxPipe_${name}`));
  return { server, next: () => new Promise((resolve) => waiting.push(resolve)) };
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
}

describe.skipIf(!pwsh || !onLinux)(`serial console capture ${pwshLabel}`, { timeout: 120_000 }, () => {
  let shell: LocalPwshShell;
  let dir: string;
  beforeAll(() => {
    shell = new LocalPwshShell({ host: 'serial-host', executable: pwsh!.path });
    dir = mkdtempSync(join(tmpdir(), 'bench-serial-'));
  });
  afterAll(async () => {
    await shell?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('quotes every value it puts in the reader script', () => {
    expect(readerScript("a'b", 'C:\\x\u2019y.log', 'z', 5)).toContain("$pipe = 'a''b'; $log = 'C:\\x\u2019\u2019y.log'");
  });

  it('appends what the VM writes, across a dropped pipe, until stopped', async () => {
    const hv = new HyperV(hostContext(shell));
    const name = `bench-serial-${process.pid}-${Date.now()}`;
    const log = join(dir, 'com1.log');
    const pipe = pipeServer(name);
    try {
      const capture = await startSerialCapture(hv, 'unused', log, { pipeName: name, giveUpAfterS: 30 });
      expect(capture.pid).toBeGreaterThan(0);
      const first = await pipe.next();
      first.end(Buffer.from('boot: hello\r\n\u0000\u00ff', 'latin1'));
      const second = await pipe.next(); // the reader came back after the drop
      second.write('after reset\n');
      await until(() => existsSync(log) && readFileSync(log, 'latin1').endsWith('after reset\n'));
      expect(readFileSync(log, 'latin1')).toBe('boot: hello\r\n\u0000\u00ffafter reset\n');
      await stopSerialCapture(hv, capture);
      second.destroy();
      let alive = true;
      await until(() => {
        try { process.kill(capture.pid, 0); } catch { alive = false; }
        return !alive;
      });
      expect(alive).toBe(false);
    } finally {
      pipe.server.close();
    }
  });
  // Issue 14: the reader is another process, without the session's PowerShell drives. It
  // is handed the path the session resolves, so it writes the file readHostFile reads and
  // the stop request reaches it.
  it('writes a log named on a PowerShell drive where the session and readHostFile see it', async () => {
    const hv = new HyperV(hostContext(shell));
    expectOk(await shell.run(cmd(hv.ctx, [assign('drive', ps('New-PSDrive', { Name: 'BenchSerial', PSProvider: 'FileSystem', Root: dir, Scope: 'Global' }))]), { timeoutMs: 30_000 }));
    const name = `bench-serial-drive-${process.pid}-${Date.now()}`;
    const pipe = pipeServer(name);
    try {
      const capture = await startSerialCapture(hv, 'unused', 'BenchSerial:\\vm\\..\\com1-drive.log', { pipeName: name, giveUpAfterS: 30 });
      const s = await pipe.next();
      s.write('on the drive\n');
      const real = join(dir, 'com1-drive.log');
      await until(() => existsSync(real) && readFileSync(real, 'utf8') === 'on the drive\n');
      expect(readFileSync(real, 'utf8')).toBe('on the drive\n');
      expect((await readHostFile(hv, capture.logPath))?.toString()).toBe('on the drive\n');
      await stopSerialCapture(hv, capture);
      expect(existsSync(join(dir, 'com1-drive.log.stop'))).toBe(true);
      s.destroy();
    } finally {
      pipe.server.close();
    }
  });
});

