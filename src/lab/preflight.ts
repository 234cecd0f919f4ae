// `bench lab check`: can each host run the bench? One check, one line, in the order a
// person would fix them. A host that cannot be reached gets its other checks marked as
// not run, with that reason, rather than a cascade of confusing failures.

import { emit, pipe, project, ps } from './host-shell/command.ts';
import { failureError } from './host-shell/errors.ts';
import type { HyperV } from './hyperv.ts';
import { cmd } from './hyperv-vm.ts';
import { migrationFindings } from './host-facts.ts';
import { checkTestSigning } from './deploy-vsp.ts';

export type CheckStatus = 'pass' | 'fail' | 'not-run';

export interface CheckResult {
  host: string;
  check: string;
  status: CheckStatus;
  detail: string;
  durationMs: number;
}

/** What the check needs to know about a host; the CLI fills it from the inventory. */
export interface PreflightTarget {
  name: string;
  hv: HyperV;
  switchName: string;
  vmRoot: string;
  /** Memory the bench may use on the host (inventory capacity.memoryMB). */
  memoryMB: number;
  migrationPartner: string | undefined;
  /** Parent disks the templates in use need on this host. */
  parentDisks: string[];
  minFreeDiskGB: number;
}

const HYPERV_CMDLETS = ['Get-VM', 'New-VM', 'Start-VM', 'Stop-VM', 'Save-VM', 'Checkpoint-VM', 'Restore-VMSnapshot', 'Compare-VM', 'Move-VM', 'New-VHD'];
const GB = 1024 ** 3;

type Verdict = { ok: boolean; detail: string };

export async function preflightHost(t: PreflightTarget): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const { hv } = t;
  const run = async (check: string, body: () => Promise<Verdict>): Promise<boolean> => {
    const t0 = performance.now();
    let v: Verdict;
    try {
      v = await body();
    } catch (e) {
      v = { ok: false, detail: e instanceof Error ? e.message.split('\n')[0]! : String(e) };
    }
    out.push({ host: t.name, check, status: v.ok ? 'pass' : 'fail', detail: v.detail, durationMs: performance.now() - t0 });
    return v.ok;
  };
  const query = async (statements: Parameters<typeof cmd>[1]): Promise<{ items: unknown[]; error?: string }> => {
    const r = await hv.ctx.shell.run(cmd(hv.ctx, statements), { timeoutMs: hv.ctx.queryTimeoutMs });
    const e = failureError(r);
    return e ? { items: [], error: e.message.split('\n')[0]! } : { items: r.items };
  };
  const field = (items: unknown[], k: string): unknown => (items[0] as Record<string, unknown> | undefined)?.[k];

  const reachable = await run('reachable', async () => {
    const r = await query([emit('ok')]);
    return r.error ? { ok: false, detail: r.error } : { ok: true, detail: `${hv.ctx.shell.transport} PowerShell answers` };
  });
  const rest: Array<[string, () => Promise<Verdict>]> = [
    ['Hyper-V module', async () => {
      const r = await query([pipe(ps('Get-Command', { Name: HYPERV_CMDLETS, ErrorAction: 'SilentlyContinue' }), project({ Name: 'string' }))]);
      if (r.error) return { ok: false, detail: r.error };
      const have = new Set(r.items.map((o) => String((o as Record<string, unknown>).Name)));
      const missing = HYPERV_CMDLETS.filter((c) => !have.has(c));
      return missing.length ? { ok: false, detail: `missing cmdlets: ${missing.join(', ')} (install the Hyper-V PowerShell module)` } : { ok: true, detail: `${HYPERV_CMDLETS.length} cmdlets present` };
    }],
    [`switch "${t.switchName}"`, async () => {
      const r = await query([pipe(ps('Get-VMSwitch', { Name: t.switchName }), project({ Name: 'string' }))]);
      return r.error || r.items.length === 0 ? { ok: false, detail: r.error ?? 'not found' } : { ok: true, detail: 'exists' };
    }],
  ];
  if (t.migrationPartner !== undefined) {
    rest.push([`migration to ${t.migrationPartner}`, async () => {
      const r = await query([pipe(ps('Get-VMHost'), project({ VirtualMachineMigrationEnabled: 'value', VirtualMachineMigrationAuthenticationType: 'string', UseAnyNetworkForMigration: 'value' }))]);
      if (r.error) return { ok: false, detail: r.error };
      const nets = await query([pipe(ps('Get-VMMigrationNetwork', { ErrorAction: 'SilentlyContinue' }), project({ Subnet: 'string' }))]);
      const any = field(r.items, 'UseAnyNetworkForMigration');
      // What a Move-VM started over SSH still needs (host-facts.ts); delegation is always named.
      const f = migrationFindings({
        enabled: field(r.items, 'VirtualMachineMigrationEnabled') === true,
        authentication: (field(r.items, 'VirtualMachineMigrationAuthenticationType') as string | undefined) || undefined,
        useAnyNetwork: typeof any === 'boolean' ? any : undefined,
        networks: nets.items.map((n) => String((n as Record<string, unknown>).Subnet)),
      });
      return f.missing.length ? { ok: false, detail: `${f.missing.join('; ')}. ${f.note}` } : { ok: true, detail: `live migration enabled with Kerberos; ${f.note}` };
    }]);
  }
  rest.push(['free memory', async () => {
    const r = await query([pipe(ps('Get-CimInstance', { ClassName: 'Win32_OperatingSystem' }), project({ FreePhysicalMemory: 'value' }))]);
    if (r.error) return { ok: false, detail: r.error };
    const freeMB = Math.floor(Number(field(r.items, 'FreePhysicalMemory') ?? 0) / 1024);
    return { ok: freeMB >= t.memoryMB, detail: `${freeMB} MB free, inventory capacity ${t.memoryMB} MB` };
  }]);
  const drive = /^([A-Za-z]):/.exec(t.vmRoot)?.[1]?.toUpperCase() ?? 'C';
  rest.push([`free disk ${drive}:`, async () => {
    const r = await query([pipe(ps('Get-CimInstance', { ClassName: 'Win32_LogicalDisk', Filter: `DeviceID='${drive}:'` }), project({ FreeSpace: 'value' }))]);
    if (r.error) return { ok: false, detail: r.error };
    const free = Number(field(r.items, 'FreeSpace') ?? 0);
    return { ok: free >= t.minFreeDiskGB * GB, detail: `${(free / GB).toFixed(1)} GB free, need ${t.minFreeDiskGB} GB` };
  }]);
  for (const disk of t.parentDisks) {
    rest.push([`parent disk ${disk}`, async () => {
      const r = await query([pipe(ps('Get-VHD', { Path: disk }), project({ VhdType: 'string' }))]);
      if (r.error) return { ok: false, detail: r.error };
      const type = String(field(r.items, 'VhdType') ?? '');
      return type === 'Differencing' ? { ok: false, detail: 'is itself a differencing disk; use a full parent' } : { ok: true, detail: `${type} disk present` };
    }]);
  }
  rest.push(['test signing', async () => {
    const s = await checkTestSigning(hv);
    return s.enabled ? { ok: true, detail: 'on' } : { ok: false, detail: `${s.reason}; the test-signed VSP cannot load (bcdedit /set testsigning on, reboot)` };
  }]);

  for (const [name, body] of rest) {
    if (!reachable) out.push({ host: t.name, check: name, status: 'not-run', detail: 'host not reachable', durationMs: 0 });
    else await run(name, body);
  }
  return out;
}

/** One line per check, aligned, for the terminal. */
export function formatCheck(c: CheckResult, widths: { host: number; check: number }): string {
  const tag = c.status === 'pass' ? 'ok  ' : c.status === 'fail' ? 'FAIL' : 'skip';
  return `${tag} ${c.host.padEnd(widths.host)}  ${c.check.padEnd(widths.check)}  ${c.detail}`;
}
