// Putting a VSP's INF package on a Hyper-V host, and taking it off again (DESIGN.md "The lab":
// VSP via pnputil on the host, test signing checked first). The driver is test-signed, so
// a host without test signing would refuse it with a certificate error that does not say
// what to do; the bench checks first and says it.
//
// bcdedit and pnputil are native programs; their output is text, parsed here. Their exit
// codes matter: pnputil returns 3010 for "added, reboot needed", which is success.

import { InfraError } from '../errors.ts';
import { native, type PsValue } from './host-shell/command.ts';
import { expectOk } from './host-shell/errors.ts';
import type { HyperV } from './hyperv.ts';
import { cmd } from './hyperv-vm.ts';

export interface NativeResult {
  output: string[];
  exitCode: number;
  /** What the program wrote to stderr, by line (a tool's reason for a refusal: sample-ctl's "error N"). */
  stderr: string[];
}

/** A native program on the host (or a Windows guest's shell: anything with a HostContext). */
export async function runNative(hv: Pick<HyperV, 'ctx'>, program: string, args: PsValue[], timeoutMs = hv.ctx.queryTimeoutMs): Promise<NativeResult> {
  const r = expectOk(await hv.ctx.shell.run(cmd(hv.ctx, [native(program, args)]), { timeoutMs }));
  const o = (r.items[0] ?? {}) as { output?: unknown; exitCode?: unknown };
  const lines = Array.isArray(o.output) ? o.output.map(String) : typeof o.output === 'string' ? [o.output] : [];
  return { output: lines, exitCode: typeof o.exitCode === 'number' ? o.exitCode : -1, stderr: r.stderr.split(/\r?\n/).filter((l) => l.trim() !== '') };
}

export type TestSigning = { enabled: true } | { enabled: false; reason: string };

/**
 * Reads `bcdedit /enum {current}`: the boot entry lists `testsigning Yes` when it is on,
 * and nothing (or `No`) when it is off. Needs an elevated session.
 */
export function parseTestSigning(lines: readonly string[]): TestSigning {
  for (const l of lines) {
    const m = /^\s*testsigning\s+(\S+)/i.exec(l);
    if (m) return m[1]!.toLowerCase() === 'yes' ? { enabled: true } : { enabled: false, reason: `bcdedit shows testsigning ${m[1]}` };
  }
  return { enabled: false, reason: 'bcdedit shows no testsigning entry (off)' };
}

export async function checkTestSigning(hv: HyperV): Promise<TestSigning> {
  const r = await runNative(hv, 'bcdedit', ['/enum', '{current}']);
  if (r.exitCode !== 0) {
    return { enabled: false, reason: `bcdedit failed with exit code ${r.exitCode} (is the session elevated?): ${r.output.join(' ').trim().slice(0, 200)}` };
  }
  return parseTestSigning(r.output);
}

export class VspDeployError extends InfraError {
  constructor(host: string, message: string) {
    super(`VSP deployment on ${host}: ${message}`, { host });
    this.name = 'VspDeployError';
  }
}

export interface DeployedVsp {
  host: string;
  /** The name the driver store gave the package (oemNN.inf); removal goes by it. */
  publishedName: string;
  rebootRequired: boolean;
}

/** `Published Name: oem12.inf` from pnputil /add-driver or /enum-drivers output. */
export function publishedNames(lines: readonly string[]): string[] {
  return lines.map((l) => /^\s*Published Name\s*:\s*(\S+\.inf)\s*$/i.exec(l)?.[1]).filter((x): x is string => x !== undefined);
}

export async function deployVsp(hv: HyperV, infPath: string): Promise<DeployedVsp> {
  const signing = await checkTestSigning(hv);
  if (!signing.enabled) {
    throw new VspDeployError(hv.host, `test signing is off (${signing.reason}); run "bcdedit /set testsigning on" on the host and reboot it`);
  }
  const add = await runNative(hv, 'pnputil', ['/add-driver', infPath, '/install'], 300_000);
  if (add.exitCode !== 0 && add.exitCode !== 3010) {
    throw new VspDeployError(hv.host, `pnputil /add-driver exited with ${add.exitCode}: ${add.output.filter((l) => l.trim()).slice(-2).join(' ')}`);
  }
  const publishedName = publishedNames(add.output)[0];
  if (!publishedName) throw new VspDeployError(hv.host, `pnputil reported success but no published name: ${add.output.join(' ').slice(0, 200)}`);
  const list = await runNative(hv, 'pnputil', ['/enum-drivers']);
  if (!publishedNames(list.output).includes(publishedName)) {
    throw new VspDeployError(hv.host, `${publishedName} is not in the driver store after installation`);
  }
  return { host: hv.host, publishedName, rebootRequired: add.exitCode === 3010 };
}

/** Uninstalls the package; one that is already gone is fine. */
export async function removeVsp(hv: HyperV, publishedName: string): Promise<void> {
  if (!/^oem\d+\.inf$/i.test(publishedName)) throw new VspDeployError(hv.host, `refusing to delete ${JSON.stringify(publishedName)}: not a driver-store name (oemNN.inf)`);
  const before = publishedNames((await runNative(hv, 'pnputil', ['/enum-drivers'])).output);
  if (!before.includes(publishedName)) return;
  const r = await runNative(hv, 'pnputil', ['/delete-driver', publishedName, '/uninstall', '/force'], 300_000);
  if (r.exitCode !== 0 && r.exitCode !== 3010) throw new VspDeployError(hv.host, `pnputil /delete-driver ${publishedName} exited with ${r.exitCode}: ${r.output.slice(-2).join(' ')}`);
}
