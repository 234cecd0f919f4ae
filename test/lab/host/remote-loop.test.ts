// The SSH command line and the per-command line, without a server: what any server shell
// (cmd.exe, powershell.exe, pwsh, sh) would do to them. The loop itself runs in
// ssh-pwsh.test.ts and ssh-pwsh-consoles.test.ts on the real pwsh.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { endMarker, LOOP_SCRIPT, loopLine, remoteCommandLine } from '../../../src/lab/host-shell/remote-loop.ts';

describe('remote-loop', () => {
  it('starts either shell with a command line no server shell interprets, within cmd.exe\'s 8191 characters', () => {
    for (const shell of ['pwsh', 'powershell'] as const) {
      const line = remoteCommandLine(shell);
      expect(line.startsWith(`${shell} -NoLogo -NoProfile -NonInteractive -EncodedCommand `)).toBe(true);
      // cmd.exe treats ^ & | < > ( ) % ! " specially; PowerShell $ ` ' " ; { } @ ( ) #; sh most of those.
      expect(line).toMatch(/^[A-Za-z0-9 +/=-]+$/);
      expect(line.length).toBeLessThan(8191);
      const encoded = line.split(' ').at(-1)!;
      expect(Buffer.from(encoded, 'base64').toString('utf16le')).toBe(LOOP_SCRIPT);
    }
    expect(remoteCommandLine('pwsh', 'C:\\Tools\\pwsh.exe')).toMatch(/^C:\\Tools\\pwsh\.exe -NoLogo /);
  });

  it('sends each script as one line of nonce and base64, and never the end marker itself (property)', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', minLength: 1 }).filter((s) => s.isWellFormed()), (script) => {
      const nonce = 'abcdef0123456789abcdef01';
      const line = loopLine(nonce, script);
      expect(line).toMatch(/^[A-Za-z0-9]+ [A-Za-z0-9+/=]*\n$/);
      expect(line).not.toContain(endMarker(nonce));
      expect(Buffer.from(line.trim().split(' ')[1]!, 'base64').toString('utf8')).toBe(script);
    }), { numRuns: 300 });
    expect(() => loopLine('short', 'x')).toThrow(/nonce/);
    expect(() => loopLine('abcdef0123456789', '')).toThrow(/empty/);
    expect(() => loopLine('abcdef0123456789', 'a\uD800')).toThrow(/surrogate/);
  });
});
