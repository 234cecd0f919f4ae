// The control tools' own logic run, not only type-checked: blockq-ctl and sample-ctl (on
// lab/drivers/tool-lib) built for Linux against the stand-in Win32 headers and a fake of
// the Win32 calls they make (support/fake-win32: the "driver" is the fake's, steered by
// environment variables). What a lab relies on: the argument vector blockqControl.tool
// gives reaches the VSP's command IOCTL (the code the C VSP answers on the emulator) as the
// line's bytes; counters are printed as the driver gave them; refusals and a missing
// driver are exit 2 and 3 with a message naming what failed; bad input never reaches the
// driver. Nothing here shows the tools build or run on Windows.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { blockqControl } from '../../devices/blockq/control.ts';
import { BLOCKQ_IOCTL } from '../../devices/blockq/c/recipe.ts';
import { SAMPLE_IOCTL } from '../../devices/sample/c/control.ts';

const drivers = fileURLToPath(new URL('../../lab/drivers', import.meta.url));
const fake = fileURLToPath(new URL('./support/fake-win32', import.meta.url));
const blockqTool = fileURLToPath(new URL('../../devices/blockq/c/tool/blockq-ctl.c', import.meta.url));
const haveClang = spawnSync('clang', ['--version']).status === 0;

/** Builds a tool from its main file with the tool library and the fake Win32; the executable's path. */
function build(dir: string, name: string, main: string, include: string[]): string {
  const resource = spawnSync('clang', ['-print-resource-dir'], { encoding: 'utf8' }).stdout.trim();
  const objects: string[] = [];
  const cc = (file: string, args: string[]) => {
    const out = join(dir, `${name}-${objects.length}.o`);
    const r = spawnSync('clang', [...args, '-c', file, '-o', out], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${file}: ${r.stderr}`);
    objects.push(out);
  };
  // -fms-extensions and -fshort-wchar: what the MSVC target gives the same sources (__int64, 16-bit L"").
  const win = ['-fms-extensions', '-fshort-wchar', '-Wall', '-Wextra', '-Werror', '-Wno-ignored-attributes', '-nostdlibinc',
    '-isystem', join(drivers, 'wdk-standin', 'um'), '-isystem', join(resource, 'include'), ...include.flatMap((i) => ['-I', i])];
  for (const f of [main, join(drivers, 'tool-lib', 'control-tool.c'), join(drivers, 'tool-lib', 'etl2jsonl.c'), join(fake, 'fake-win32.c')]) cc(f, win);
  cc(join(fake, 'iob.c'), []);
  const exe = join(dir, name);
  const r = spawnSync('clang', ['-o', exe, ...objects], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return exe;
}

describe.skipIf(!haveClang)('the control tools on the tool library, run against a fake Win32', () => {
  let dir: string;
  let blockqCtl: string;
  let sampleCtl: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'control-tool-'));
    blockqCtl = build(dir, 'blockq-ctl', blockqTool, [join(drivers, 'tool-lib')]);
    sampleCtl = build(dir, 'sample-ctl', join(drivers, 'vsp', 'tool', 'sample-ctl.c'), []);
  }, 120_000);

  /** Runs the tool; `log` holds each IOCTL the fake driver got: code, input bytes (hex), output size. */
  const run = (exe: string, args: string[], env: Record<string, string> = {}) => {
    const log = join(dir, `log-${Math.random().toString(36).slice(2)}`);
    const r = spawnSync(exe, args, { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', FAKE_LOG: log, ...env } });
    const ioctls = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').map((l) => {
      const m = /^ioctl=0x([0-9a-f]+) in=([0-9a-f]*) out=(\d+)$/.exec(l)!;
      return { code: parseInt(m[1]!, 16), input: Buffer.from(m[2]!, 'hex'), outSize: Number(m[3]) };
    }) : [];
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, ioctls };
  };

  it('sends a command line, as blockqControl.tool gives it, to the VSP\'s command IOCTL as its bytes', () => {
    const line = 'event 3 200 15 ch=2';
    const argv = blockqControl.tool.args({ verb: 'command', who: 'vsp', line });
    const r = run(blockqCtl, argv);
    expect(r.status, r.stderr).toBe(0);
    expect(r.ioctls).toHaveLength(1);
    expect(r.ioctls[0]!.code).toBe(BLOCKQ_IOCTL.command);
    expect(r.ioctls[0]!.input.toString('latin1')).toBe(line);
  });

  it('prints the counters as the driver gave them, which blockqControl.counters reads', () => {
    const text = 'trace_seq=41\nch=0 requests_received=2 events_sent=7 replies=6\n';
    const r = run(blockqCtl, blockqControl.tool.args({ verb: 'counters', who: 'vsp' }), { FAKE_COUNTERS: text });
    expect(r.status, r.stderr).toBe(0);
    expect(r.ioctls.map((x) => x.code)).toEqual([BLOCKQ_IOCTL.counters]);
    expect(r.stdout).toBe(text);
    expect(blockqControl.counters('vsp', r.stdout.split('\n'))).toEqual({ traceSeq: 41, channels: new Map([[0, { sent: 7, completed: 6 }]]) });
  });

  it('a command the VSP refuses as malformed is exit 2, another failure exit 3, each naming the line', () => {
    const bad = run(blockqCtl, ['vsp', 'command', 'event 1 64 0 ch=9'], { FAKE_REFUSE: '87' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('blockq-ctl: the driver refused "event 1 64 0 ch=9" (error 87)');
    const down = run(blockqCtl, ['vsp', 'command', 'event 1 64 0 ch=9'], { FAKE_REFUSE: '31' });
    expect(down.status).toBe(3);
  });

  it('without the driver: exit 3, naming the control device', () => {
    const r = run(blockqCtl, ['vsp', 'counters'], { FAKE_NO_DEVICE: '1' });
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('cannot open \\\\.\\BlockqVsp (error 2): is the driver installed?');
  });

  it('bad usage never reaches the driver: exit 2 (a guest verb, which blockq has no driver for; unknown verbs; a line too long; a bad channel)', () => {
    for (const args of [[], ['vsp'], ['guest', 'counters'], ['vsp', 'frobnicate'], ['vsp', 'command'], ['vsp', 'command', ''], ['vsp', 'command', 'x'.repeat(257)], ['vsp', 'export', 'x', join(dir, 'o')], ['sample', 'counters']]) {
      const r = run(blockqCtl, args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.ioctls, args.join(' ')).toEqual([]);
      expect(r.stderr, args.join(' ')).toMatch(/^(usage: blockq-ctl|blockq-ctl: )/);
    }
    expect(run(blockqCtl, ['guest', 'counters']).stderr).toContain('blockq has no Windows guest driver');
  });

  it('exports a channel\'s state, growing its buffer until the state fits, and imports a file whole', () => {
    const out = join(dir, 'state.bin');
    const r = run(blockqCtl, ['vsp', 'export', '3', out], { FAKE_STATE_SIZE: '200000' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.ioctls.map((x) => [x.code, x.outSize])).toEqual([[BLOCKQ_IOCTL.export, 65536], [BLOCKQ_IOCTL.export, 131072], [BLOCKQ_IOCTL.export, 262144]]);
    expect(r.ioctls[0]!.input).toEqual(Buffer.from([3, 0, 0, 0])); // struct blockq_state_ref: the channel
    expect(statSync(out).size).toBe(200000);
    const imported = run(blockqCtl, ['vsp', 'import', out]);
    expect(imported.status, imported.stderr).toBe(0);
    expect(imported.ioctls.map((x) => [x.code, x.input.length])).toEqual([[BLOCKQ_IOCTL.import, 200000]]);
    // A file shorter than the state header is refused before the driver sees it.
    const short = join(dir, 'short.bin');
    writeFileSync(short, Buffer.alloc(16));
    const refused = run(blockqCtl, ['vsp', 'import', short]);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('is not a saved state (16 bytes)');
    expect(refused.ioctls).toEqual([]);
  });

  it('etl2jsonl of a capture it cannot open: exit 2, naming the file, and no output file', () => {
    const jsonl = join(dir, 'vsp.jsonl');
    const r = run(blockqCtl, blockqControl.tool.args({ verb: 'convert-etl', etl: join(dir, 'missing.etl'), jsonl }));
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`blockq-ctl: cannot open ${join(dir, 'missing.etl')} as an ETW trace`);
    expect(existsSync(jsonl)).toBe(false);
  });

  it('sample-ctl, on the same library, sends its own IOCTLs and names itself', () => {
    const r = run(sampleCtl, ['vsp', 'command', 'transact 1 64 0 ch=0']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.ioctls.map((x) => [x.code, x.input.toString('latin1')])).toEqual([[SAMPLE_IOCTL.command, 'transact 1 64 0 ch=0']]);
    const e = run(sampleCtl, ['vsp', 'export', '1', join(dir, 's.bin')], { FAKE_STATE_SIZE: '100' });
    expect(e.ioctls.map((x) => x.code)).toEqual([SAMPLE_IOCTL.vspExport]);
    expect(run(sampleCtl, ['vsp', 'counters'], { FAKE_NO_DEVICE: '1' }).stderr).toContain('sample-ctl: cannot open \\\\.\\VmbusSampleVsp');
  });
});
