// The VM's serial console (COM1) as a log file on the host. Hyper-V connects COM1 to a
// named pipe (`\\.\pipe\<vm-id>-com1`, set at provisioning) only while the VM runs, and
// drops it on reset, save and migration; a reader must reconnect, and must poll, because
// Hyper-V connects once to a pipe *server* that exists at VM start and never again
// (reference/prior-art-lab.md 3.2). So the reader is a pipe client in a loop.
//
// It runs as its own PowerShell process on the host, started from the session with the
// same executable, so it outlives a session that is discarded after a timeout (a Windows
// OpenSSH session's job object may still end it with the session; the bench restarts
// capture after reconnecting). It appends to the log file and stops when the stop file
// appears or after `giveUpAfterS` seconds without a pipe. artefacts.ts reads the file.
// The reader is another process, with no PowerShell drives and its own current directory:
// it is given the log and stop paths as the session resolves them (hostPath), so it writes
// the file that readHostFile and the stop request name.

import { emit, hostPath, member, pipe, ps, staticCall } from './host-shell/command.ts';
import { expectOk } from './host-shell/errors.ts';
import { quote } from './host-shell/quote.ts';
import type { HyperV } from './hyperv.ts';
import { cmd } from './hyperv-vm.ts';

export interface SerialCapture {
  pid: number;
  pipeName: string;
  logPath: string;
  stopPath: string;
}

/** The reader's script; every value in it goes through quote(). */
export function readerScript(pipeName: string, logPath: string, stopPath: string, giveUpAfterS: number): string {
  return [
    `$ErrorActionPreference = 'Stop'`,
    `$pipe = ${quote(pipeName)}; $log = ${quote(logPath)}; $stop = ${quote(stopPath)}`,
    `$deadline = [DateTime]::UtcNow.AddSeconds(${Math.max(1, Math.floor(giveUpAfterS))})`,
    `$buf = [byte[]]::new(4096)`,
    `while (-not [System.IO.File]::Exists($stop) -and [DateTime]::UtcNow -lt $deadline) {`,
    `  $c = [System.IO.Pipes.NamedPipeClientStream]::new('.', $pipe, [System.IO.Pipes.PipeDirection]::In)`,
    `  try { $c.Connect(500) } catch { $c.Dispose(); [System.Threading.Thread]::Sleep(100); continue }`,
    `  $f = [System.IO.File]::Open($log, [System.IO.FileMode]::Append, [System.IO.FileAccess]::Write, [System.IO.FileShare]::ReadWrite)`,
    `  try { while (($n = $c.Read($buf, 0, $buf.Length)) -gt 0) { $f.Write($buf, 0, $n); $f.Flush() } } catch { } finally { $f.Dispose(); $c.Dispose() }`,
    `  $deadline = [DateTime]::UtcNow.AddSeconds(${Math.max(1, Math.floor(giveUpAfterS))})`,
    `}`,
  ].join('\n');
}

/** pwsh's -EncodedCommand: base64 of the UTF-16LE text (no quoting on a command line). */
export function encodedCommand(script: string): string {
  return Buffer.from(script, 'utf16le').toString('base64');
}

/**
 * How to start another copy of the session's PowerShell: its process image, and the
 * arguments that must come first. powershell.exe and pwsh.exe are their own image; the
 * PowerShell global tool (`dotnet tool install --global PowerShell`) runs as
 * `dotnet <path>/pwsh.dll`, so there the image is dotnet and pwsh.dll must lead.
 */
export function selfLaunch(image: string, commandLine: readonly string[]): { program: string; leading: string } {
  const name = image.split(/[\\/]/).pop() ?? image;
  if (!/^dotnet(\.exe)?$/i.test(name)) return { program: image, leading: '' };
  const entry = commandLine[0];
  if (!entry || !/\.dll$/i.test(entry) || entry.includes('"')) throw new Error(`cannot tell which PowerShell runs under ${image} (command line starts ${JSON.stringify(entry)})`);
  return { program: image, leading: `"${entry}" ` };
}

export async function startSerialCapture(hv: HyperV, vmId: string, logPath: string, options: { giveUpAfterS?: number; pipeName?: string } = {}): Promise<SerialCapture> {
  const pipeName = options.pipeName ?? `${vmId}-com1`;
  const stopPath = `${logPath}.stop`;
  const who = expectOk(await hv.ctx.shell.run(cmd(hv.ctx, [
    emit(member(staticCall('System.Diagnostics.Process', 'GetCurrentProcess'), 'MainModule', 'FileName')),
    emit(staticCall('System.Environment', 'GetCommandLineArgs')),
    emit(hostPath(logPath)),
    emit(hostPath(stopPath)),
  ]), { timeoutMs: hv.ctx.queryTimeoutMs }));
  const [image, commandLine, logFile, stopFile] = who.items as [string, string[] | string, string, string];
  const self = selfLaunch(String(image), Array.isArray(commandLine) ? commandLine : [String(commandLine)]);
  const args = `-NoProfile -NonInteractive -EncodedCommand ${encodedCommand(readerScript(pipeName, String(logFile), String(stopFile), options.giveUpAfterS ?? 600))}`;
  const r = expectOk(await hv.ctx.shell.run(cmd(hv.ctx, [
    emit(member(staticCall('System.Diagnostics.Process', 'Start', self.program, `${self.leading}${args}`), 'Id')),
  ]), { timeoutMs: hv.ctx.queryTimeoutMs }));
  const pid = Number(r.value);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`serial capture for ${vmId} did not start (got ${JSON.stringify(r.value)})`);
  return { pid, pipeName, logPath, stopPath };
}

/**
 * Asks the reader to stop (it checks between connections), then ends its process: it may
 * be blocked reading a pipe whose VM is still running. A reader already gone is fine.
 */
export async function stopSerialCapture(hv: HyperV, c: SerialCapture): Promise<void> {
  expectOk(await hv.ctx.shell.run(cmd(hv.ctx, [emit(staticCall('System.IO.File', 'WriteAllText', hostPath(c.stopPath), 'stop'))]), { timeoutMs: hv.ctx.queryTimeoutMs }));
  await new Promise((r) => setTimeout(r, 800));
  // GetProcessById fails when the process has ended: that is the outcome we want anyway.
  await hv.ctx.shell.run(cmd(hv.ctx, [pipe({ input: staticCall('System.Diagnostics.Process', 'GetProcessById', c.pid) }, ps('ForEach-Object', { MemberName: 'Kill' }))]), { timeoutMs: hv.ctx.queryTimeoutMs });
}
