// From an inventory host to a HyperV handle: pick the transport, resolve the referenced
// secrets (registered with the redactor as they are read), pin the host key.

import type { LabHost } from './inventory.ts';
import { checkPrivateKey, resolveSecret } from './secrets.ts';
import { LocalPwshShell } from './host-shell/local-pwsh.ts';
import { SshPwshShell, type SshAuth } from './host-shell/ssh-pwsh.ts';
import type { HostShell } from './host-shell/types.ts';
import { HyperV, type Timeouts } from './hyperv.ts';
import { hostContext } from './hyperv-vm.ts';

/** How the bench reaches hosts, resolved once by the CLI. */
export interface ConnectConfig {
  /** Program for `transport: local` hosts (BENCH_PWSH); default: the host's `shell`. */
  localPwsh?: string | undefined;
  /**
   * Program SSH hosts start in place of their `shell`'s (BENCH_REMOTE_PWSH), e.g. a full
   * path; the transport adds its own arguments.
   */
  remoteCommand?: string | undefined;
  /** Modules to import before Hyper-V cmdlets; empty on real hosts (the stand-in in tests). */
  modules: string[];
  timeouts?: Partial<Timeouts>;
  queryTimeoutMs?: number;
}

export async function openShell(host: LabHost, cfg: ConnectConfig): Promise<HostShell> {
  const t = host.transport;
  if (t.kind === 'local') return new LocalPwshShell({ host: host.name, executable: cfg.localPwsh ?? host.shell });
  const where = { file: host.source.file, line: host.source.line, field: `hosts[${host.name}].credentials` };
  let auth: SshAuth;
  if (t.credential.kind === 'key') {
    const privateKey = await resolveSecret(t.credential.key, { where });
    const passphrase = t.credential.passphrase ? await resolveSecret(t.credential.passphrase, { where }) : undefined;
    checkPrivateKey(privateKey, passphrase, where);
    auth = { kind: 'key', privateKey, passphrase };
  } else {
    auth = { kind: 'password', password: await resolveSecret(t.credential.password, { where }) };
  }
  return new SshPwshShell({
    host: host.name, address: t.address, port: t.port, user: t.user, auth,
    hostKey: t.hostKey.kind === 'fingerprint' ? { kind: 'fingerprint', sha256: t.hostKey.sha256 } : { kind: 'known-hosts', path: t.hostKey.path },
    shell: host.shell, remoteProgram: cfg.remoteCommand,
  });
}

export async function openHyperV(host: LabHost, cfg: ConnectConfig): Promise<HyperV> {
  const shell = await openShell(host, cfg);
  return new HyperV(hostContext(shell, { modules: cfg.modules, queryTimeoutMs: cfg.queryTimeoutMs ?? 60_000 }), cfg.timeouts);
}
