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
  /** PowerShell for `transport: local` hosts (default `pwsh`). */
  localPwsh: string;
  /** What SSH hosts run (default: pwsh reading script from stdin). */
  remoteCommand?: string | undefined;
  /** Modules to import before Hyper-V cmdlets; empty on real hosts (the stand-in in tests). */
  modules: string[];
  timeouts?: Partial<Timeouts>;
  queryTimeoutMs?: number;
}

export async function openShell(host: LabHost, cfg: ConnectConfig): Promise<HostShell> {
  const t = host.transport;
  if (t.kind === 'local') return new LocalPwshShell({ host: host.name, executable: cfg.localPwsh });
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
    remoteCommand: cfg.remoteCommand,
  });
}

export async function openHyperV(host: LabHost, cfg: ConnectConfig): Promise<HyperV> {
  const shell = await openShell(host, cfg);
  return new HyperV(hostContext(shell, { modules: cfg.modules, queryTimeoutMs: cfg.queryTimeoutMs ?? 60_000 }), cfg.timeouts);
}
