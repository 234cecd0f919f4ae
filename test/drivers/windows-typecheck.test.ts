// The Windows drivers (lab/drivers/vsp, lab/drivers/guest-windows, blockq's devices/blockq/c) and the user-mode tools
// (sample-ctl, blockq-ctl, on lab/drivers/tool-lib)
// type-check with clang for a Windows target, -Wall -Wextra -Werror, against the stand-in
// declarations in lab/drivers/wdk-standin (NOT the WDK: see its README). This checks call
// shapes, types and flag values on every change; it does not show that the drivers build
// with the real WDK, and nothing here claims that.

import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { blockqVspRecipe } from '../../devices/blockq/c/recipe.ts';
import { loadHostDrivers } from '../../src/lab/driver-package.ts';

const drivers = fileURLToPath(new URL('../../lab/drivers', import.meta.url));
const clang = spawnSync('clang', ['--version'], { encoding: 'utf8' });
const haveClang = clang.status === 0;

const cFiles = (dir: string) =>
  readdirSync(join(drivers, dir)).filter((f) => f.endsWith('.c')).map((f) => join(dir, f));

/** clang -fsyntax-only for x86_64 Windows with only the stand-in headers of `world` visible. */
const clangFor = (world: 'km' | 'um'): string[] => [
  '--target=x86_64-pc-windows-msvc', '-fsyntax-only', '-Wall', '-Wextra', '-Werror',
  // Hide the Linux libc headers; clang's own (stddef.h, stdarg.h) stay visible.
  '-nostdlibinc', '-isystem', join(drivers, 'wdk-standin', world),
];

function typecheck(world: 'km' | 'um', files: string[]) {
  const r = spawnSync('clang', [...clangFor(world), ...files], { cwd: drivers, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

const skip = haveClang ? '' : ' (skipped: clang not installed; scripts/test-deps.d/30-drivers.sh installs it)';
describe.skipIf(!haveClang)(`Windows code type-checks against the WDK stand-in${skip}`, () => {
  const common = ['common/sample-protocol.c', 'common/sample-command.c'];

  it('the VSP (kernel mode, KMCL server interface)', () => {
    const files = cFiles('vsp');
    expect(files.length).toBeGreaterThanOrEqual(5);
    const r = typecheck('km', [...files, ...common, 'common/vsp-save-helper.c']);
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
  });

  it('the Windows guest driver (kernel mode, KMCL client interface)', () => {
    const files = cFiles('guest-windows');
    expect(files.length).toBeGreaterThanOrEqual(3);
    const r = typecheck('km', [...files, ...common]);
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
  });

  it('blockq\'s VSP (devices/blockq/c: kernel mode, KMCL server interface, the trace library by <...>)', () => {
    const dir = join(drivers, '..', '..', 'devices', 'blockq', 'c');
    const files = readdirSync(dir).filter((f) => f.endsWith('.c')).map((f) => join(dir, f));
    expect(files.length).toBeGreaterThanOrEqual(8);
    const r = typecheck('km', ['-I', join(drivers, 'trace-lib'), '-I', join(drivers, 'common'), ...files, 'common/vsp-save-helper.c']);
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
  });

  it('blockq\'s VSP project compiles what its emulator recipe does, and its package names the provider its control header defines', () => {
    const dir = join(drivers, '..', '..', 'devices', 'blockq', 'c');
    const project = readFileSync(join(dir, 'vmbus_blockq_vsp.vcxproj'), 'utf8');
    const compiled = [...project.matchAll(/<ClCompile Include="([^"]+)"/g)].map((m) => resolve(dir, m[1]!.replace(/\\/g, '/')));
    const recipe = blockqVspRecipe();
    expect(compiled.sort()).toEqual(recipe.sources.map((f) => resolve(dir, f)).sort());
    const includes = /<AdditionalIncludeDirectories>([^<]+)/.exec(project)![1]!.split(';').filter((x) => !x.startsWith('%')).map((x) => resolve(dir, x.replace(/\\/g, '/')));
    expect(includes.sort()).toEqual([join(drivers, 'common'), join(drivers, 'trace-lib')]);
    expect(project).toContain('<Inf Include="vmbus_blockq_vsp.inf" />');
    // The provider GUID: blockq-control.h's fields, as packages.yaml gives it to logman.
    const fields = /BLOCKQ_VSP_PROVIDER_GUID_FIELDS \\\s*([^\n]+)\\\s*([^\n]+)/.exec(readFileSync(join(dir, 'blockq-control.h'), 'utf8'))!;
    const hex = `${fields[1]}, ${fields[2]}`.split(',').map((x) => x.trim()).filter(Boolean).map((x) => x.replace(/^0x/, ''));
    const guid = `{${hex[0]}-${hex[1]}-${hex[2]}-${hex.slice(3, 5).join('')}-${hex.slice(5).join('')}}`;
    expect(loadHostDrivers(join(dir, 'packages.yaml')).vsp.trace).toEqual({ format: 'etw', provider: guid });
  });

  const toolLib = cFiles('tool-lib');

  it('the tool library both control tools are built on (Win32, ETW consumer, TDH)', () => {
    expect(toolLib.map((f) => f.split('/').pop()).sort()).toEqual(['control-tool.c', 'etl2jsonl.c']);
    const r = typecheck('um', toolLib);
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
  });

  it('the sample\'s user-mode tool, sample-ctl, with the tool library', () => {
    const r = typecheck('um', [...cFiles('vsp/tool'), ...toolLib]);
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
  });

  it('blockq\'s user-mode tool, blockq-ctl (devices/blockq/c/tool), with the tool library by <...> as its project names it', () => {
    const tool = join(drivers, '..', '..', 'devices', 'blockq', 'c', 'tool');
    const r = typecheck('um', ['-I', join(drivers, 'tool-lib'), join(tool, 'blockq-ctl.c'), ...toolLib]);
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
    // Its project compiles the same three files with the same include folder.
    const project = readFileSync(join(tool, 'blockq-ctl.vcxproj'), 'utf8');
    const compiled = [...project.matchAll(/<ClCompile Include="([^"]+)"/g)].map((m) => resolve(tool, m[1]!.replace(/\\/g, '/')));
    expect(compiled.sort()).toEqual([join(tool, 'blockq-ctl.c'), ...toolLib.map((f) => join(drivers, f))].sort());
    const includes = /<AdditionalIncludeDirectories>([^;<]+)/.exec(project)?.[1];
    expect(resolve(tool, includes!.replace(/\\/g, '/'))).toBe(join(drivers, 'tool-lib'));
  });

  it('a tool calling the library with a wrong argument type does not type-check', () => {
    const r = spawnSync('clang', [...clangFor('um'), '-I', join(drivers, 'tool-lib'), '-x', 'c', '-'], {
      input: '#include <control-tool.h>\nint f(HANDLE h) { return ctl_command(h, 1u, 7, 256u); }\n', encoding: 'utf8',
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/incompatible integer to pointer conversion/);
  });

  // The check is only worth something if the stand-in rejects what the WDK would.
  it('rejects a KMCL call with a missing argument and a wrong pointer type', () => {
    const probe = (body: string) =>
      spawnSync('clang', [...clangFor('km'), '-x', 'c', '-'], { input: `#include <vmbuskernelmodeclientlibapi.h>\n${body}\n`, encoding: 'utf8' });
    const ok = probe('void f(PKMCL_SERVER_INTERFACE_V1 k, VMBCHANNEL c, PVOID b) { ULONG f1, r; (void)k->VmbChannelSaveContinue(c, b, 64, &f1, &r); }');
    expect(ok.status, ok.stderr).toBe(0);
    const missing = probe('void f(PKMCL_SERVER_INTERFACE_V1 k, VMBCHANNEL c, PVOID b) { ULONG f1; (void)k->VmbChannelSaveContinue(c, b, 64, &f1); }');
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toMatch(/too few arguments/);
    const wrongType = probe('void f(PKMCL_SERVER_INTERFACE_V1 k, VMBCHANNEL c, PVOID p) { UINT32 n; (void)k->VmbChannelSaveContinue(c, p, 64, &n, &n); }');
    expect(wrongType.status).not.toBe(0);
    expect(wrongType.stderr).toMatch(/incompatible pointer types/);
  });
});
