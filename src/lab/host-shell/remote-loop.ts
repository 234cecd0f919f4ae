// What the SSH transport asks the server to run, and the one line it sends per command.
//
// The server runs our command line through its own shell: `cmd.exe /c` on Windows OpenSSH
// by default, `powershell.exe -c` (or pwsh) when the host set DefaultShell, `sh -c` on
// Linux. So the command line holds nothing any of them interprets: the program name and
// plain switches, and the loop below as `-EncodedCommand` (base64 of UTF-16LE, letters,
// digits, `+`, `/`, `=`). Whichever shell starts it, the same PowerShell loop runs.
//
// Why a loop of our own rather than `-Command -`: `-Command -` hands each stdin line to
// the console host, whose line reader differs between pwsh and Windows PowerShell 5.1
// (5.1 runs a multi-line statement only after a blank line, pwsh on Unix writes terminal
// control sequences around each read when TERM is not `dumb`). The loop reads lines with
// [Console]::In.ReadLine() and knows nothing of terminals. Starting powershell.exe with
// -EncodedCommand and feeding it on stdin is also how Ansible drives Windows over SSH.
//
// Per command, one line: `<nonce> <base64 of the UTF-8 script>`. The loop runs the script,
// then writes `<nonce>:end` to stdout and to stderr; the reply to a command is what came
// before those markers. The marker text never travels to the host (only the nonce does),
// so nothing echoed back can fake it. Invariant: the loop body is Windows PowerShell 5.1
// syntax (test/lab/host/ps51-syntax.test.ts parses it with the rest).

export type RemoteShell = 'pwsh' | 'powershell';

/** The loop, as PowerShell text. */
export const LOOP_SCRIPT = [
  `$ErrorActionPreference = 'Continue'`,
  // Plain output where PowerShell 7.2+ offers it ($PSStyle); 5.1 has none. Not relied on.
  `$__benchStyle = Get-Variable -Name PSStyle -ValueOnly -ErrorAction SilentlyContinue`,
  `if ($null -ne $__benchStyle) { $__benchStyle.OutputRendering = 'PlainText' }`,
  // UTF-8 out where the console lets us; replies are ASCII either way (render.ts).
  `try { [Console]::OutputEncoding = New-Object -TypeName System.Text.UTF8Encoding -ArgumentList $false } catch { }`,
  `for (;;) {`,
  `  $__benchLine = [Console]::In.ReadLine()`,
  `  if ($null -eq $__benchLine) { break }`,
  `  $__benchWords = $__benchLine.Trim().Split(' ')`,
  `  if ($__benchWords.Count -ne 2) { continue }`,
  `  try {`,
  `    & ([scriptblock]::Create([System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String($__benchWords[1])))) | Out-Null`,
  `  } catch {`,
  `    [Console]::Error.WriteLine([string]$_)`,
  `  }`,
  `  [Console]::Out.WriteLine($__benchWords[0] + ':end')`,
  `  [Console]::Error.WriteLine($__benchWords[0] + ':end')`,
  `}`,
].join('\n');

const PROGRAM = { pwsh: 'pwsh', powershell: 'powershell' } as const;

/**
 * The command line for the SSH exec request. `program` replaces the shell's executable
 * (a full path, or in tests `env VAR=value /path/pwsh`); it is the operator's own text.
 */
export function remoteCommandLine(shell: RemoteShell, program?: string): string {
  const encoded = Buffer.from(LOOP_SCRIPT, 'utf16le').toString('base64');
  return `${program ?? PROGRAM[shell]} -NoLogo -NoProfile -NonInteractive -EncodedCommand ${encoded}`;
}

/** The line that runs one rendered script in the loop. */
export function loopLine(nonce: string, script: string): string {
  if (!/^[A-Za-z0-9]{8,64}$/.test(nonce)) throw new TypeError('nonce must be 8-64 letters or digits');
  if (!script.isWellFormed()) throw new TypeError('script holds a lone UTF-16 surrogate');
  return `${nonce} ${Buffer.from(script, 'utf8').toString('base64')}\n`;
}

/** The marker the loop writes after a command, on stdout and on stderr. */
export function endMarker(nonce: string): string {
  return `${nonce}:end`;
}
