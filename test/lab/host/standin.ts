// Test hosts backed by the Hyper-V stand-in: a state directory per host and a persistent
// local PowerShell session pointed at it. Two hosts name each other as migration peers.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashtable, ps, script, type PsValue } from '../../../src/lab/host-shell/command.ts';
import { expectOk } from '../../../src/lab/host-shell/errors.ts';
import { LocalPwshShell } from '../../../src/lab/host-shell/local-pwsh.ts';
import type { HostShell } from '../../../src/lab/host-shell/types.ts';
import { hostContext, type HostContext } from '../../../src/lab/hyperv-vm.ts';
import { HyperV } from '../../../src/lab/hyperv.ts';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { pwsh, standinModule } from './find-pwsh.ts';

export const PARENT = 'D:\\bench\\parents\\ubuntu-24.04.vhdx';
export const SWITCH = 'bench-switch';
export const VM_ROOT = 'D:\\bench\\vms';

export interface StandinHost {
  name: string;
  dir: string;
  shell: HostShell;
  ctx: HostContext;
  /** Runs a stand-in set-up cmdlet (faults, delays) on this host. */
  setup(name: string, params: Record<string, PsValue | undefined>): Promise<void>;
  state(): Promise<{ Vms: Array<{ Id: string; Name: string; State: string; Notes: string }>; Files: string[]; Drivers: string[] }>;
}

export function newStandinHost(name: string, shell?: (dir: string) => HostShell): StandinHost {
  const dir = mkdtempSync(join(tmpdir(), `standin-${name}-`));
  const sh = shell ? shell(dir) : new LocalPwshShell({ host: name, executable: pwsh!.path, env: { BENCH_HYPERV_STATE: dir } });
  // Generous deadlines: the first command of a session pays pwsh's start and the module
  // import, which take 10 s and more on a loaded 2-core machine.
  const ctx = hostContext(sh, { modules: [standinModule], pollMs: 25, queryTimeoutMs: 60_000 });
  const run = async (n: string, params: Record<string, PsValue | undefined>) => expectOk(await sh.run(script([ps(n, params)], { imports: [standinModule], depth: 5 }), { timeoutMs: 60_000 }));
  return {
    name, dir, shell: sh, ctx,
    async setup(n, params) { await run(n, params); },
    async state() { return (await run('Get-StandinState', {})).value as Awaited<ReturnType<StandinHost['state']>>; },
  };
}

/**
 * A Windows path on a stand-in host as the real file behind it (DriverFiles.ps1: the `C:`
 * drive is <state dir>/C), and that file's SHA-256 as Get-FileHash prints it.
 */
export function hostFile(h: Pick<StandinHost, 'dir'>, path: string): string {
  const m = /^([A-Za-z]):\\(.*)$/.exec(path);
  if (!m) throw new Error(`not a drive path: ${path}`);
  return join(h.dir, m[1]!.toUpperCase(), ...m[2]!.split('\\').filter(Boolean));
}

export function hostFileSha256(h: Pick<StandinHost, 'dir'>, path: string): string {
  return createHash('sha256').update(readFileSync(hostFile(h, path))).digest('hex').toUpperCase();
}

export interface HostSetup {
  migrationEnabled?: boolean;
  peers?: StandinHost[];
  testSigning?: boolean;
  files?: string[];
  bootMilliseconds?: number;
  freeMemoryBytes?: number;
  switches?: string[];
}

export async function initHost(h: StandinHost, s: HostSetup = {}): Promise<void> {
  const peers: Record<string, PsValue> = {};
  for (const p of s.peers ?? []) peers[p.name] = p.dir;
  await h.setup('Initialize-StandinHost', {
    Name: h.name, Switches: s.switches ?? [SWITCH], MigrationEnabled: s.migrationEnabled ?? true, Peers: hashtable(peers),
    TestSigning: s.testSigning ?? true, Files: [PARENT, ...(s.files ?? [])], BootMilliseconds: s.bootMilliseconds ?? 0,
    FreeMemoryBytes: s.freeMemoryBytes,
  });
}

export async function disposeHost(h: StandinHost | undefined): Promise<void> {
  if (!h) return;
  await h.shell.close();
  rmSync(h.dir, { recursive: true, force: true });
}

export interface PeeredHosts {
  a: StandinHost;
  b: StandinHost;
  hvA: HyperV;
  hvB: HyperV;
}

/**
 * Two stand-in hosts that name each other as migration peers, each with a HyperV on it:
 * made before the suite, initialised afresh before each test, disposed after the suite.
 * The fields are filled in by the suite's first hook.
 */
export function usePeeredStandinHosts(names: [string, string], timeouts: ConstructorParameters<typeof HyperV>[1]): PeeredHosts {
  const p = {} as PeeredHosts;
  beforeAll(() => {
    p.a = newStandinHost(names[0]);
    p.b = newStandinHost(names[1]);
    p.hvA = new HyperV(p.a.ctx, timeouts);
    p.hvB = new HyperV(p.b.ctx, timeouts);
  });
  beforeEach(async () => {
    await initHost(p.a, { peers: [p.b] });
    await initHost(p.b, { peers: [p.a] });
  });
  afterAll(async () => {
    await disposeHost(p.a);
    await disposeHost(p.b);
  });
  return p;
}
