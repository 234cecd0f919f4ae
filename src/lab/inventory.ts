// The lab inventory (`lab/*.yaml`): which Hyper-V hosts the bench may use and how to
// reach them. Validated in full before anything connects, so that a typo is an exit 2
// with file:line and not a half-run lab (DESIGN.md, "The lab").
//
// Secrets are only ever referenced here (key file, environment variable). An inline
// password or key is refused, and the refusal never repeats the value.

import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { ATTACH_MODES, type AttachMode, type HandleBroker } from './attach.ts';
import { hostDriversSchema, resolveHostDrivers, resolveHostDriversFile, type HostDrivers } from './driver-package.ts';
import { expandHome, looksLikeInlineSecret, type SecretRef } from './secrets.ts';
import { resolveDevicePath } from '../device-api/load.ts';
import { lineOf, problemsToError, readYamlFile, validate, type Problem, type YamlSource } from './yaml-input.ts';

// ---- schema (what may be written) ----------------------------------------------------

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, {
  message: 'must be 1-63 letters, digits, "_", "." or "-", starting with a letter or digit',
});
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'must be an environment variable name (letters, digits, "_")' });
const pathString = z.string().min(1, { message: 'must not be empty' });
const inlineRefusal = z.unknown().optional();

/** Credentials by reference. The refused keys exist so their message can say what to do. */
export const credentialsSchema = z.strictObject({
  keyFile: pathString.optional(),
  keyEnv: envName.optional(),
  passphraseEnv: envName.optional(),
  passwordEnv: envName.optional(),
  password: inlineRefusal,
  privateKey: inlineRefusal,
  key: inlineRefusal,
  passphrase: inlineRefusal,
});
export type CredentialsInput = z.infer<typeof credentialsSchema>;

export const SHA256_FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}=?$/;
const hostKeySchema = z.strictObject({
  fingerprint: z.string().regex(SHA256_FINGERPRINT, { message: 'must be an OpenSSH SHA256 fingerprint like "SHA256:" + 43 base64 characters (ssh-keygen -lf KEY.pub prints it)' }).optional(),
  knownHosts: pathString.optional(),
});

const capacitySchema = z.strictObject({
  vmSlots: z.number().int().min(1).max(1024),
  memoryMB: z.number().int().min(512),
});

const windowsPath = z.string().regex(/^[A-Za-z]:[\\/]/, { message: 'must be an absolute Windows path on the host, like D:\\bench\\vms (Hyper-V needs local disks)' });

const hostFields = {
  transport: z.enum(['local', 'ssh']).optional(),
  /** The PowerShell that runs the bench's commands on the host (default below). */
  shell: z.enum(['pwsh', 'powershell'], { message: 'must be pwsh (PowerShell 7) or powershell (Windows PowerShell 5.1)' }).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  user: z.string().min(1).optional(),
  credentials: credentialsSchema.optional(),
  hostKey: hostKeySchema.optional(),
  vmRoot: windowsPath.optional(),
  switch: z.string().min(1).optional(),
  capacity: capacitySchema.optional(),
  build: z.string().min(1).optional(),
  /** Attach modes the host offers (attach.ts): one, or a list. Default: loopback. */
  attach: z.union([z.enum(ATTACH_MODES), z.array(z.enum(ATTACH_MODES)).min(1)]).optional(),
  /** The command that gives the VSP a VM's VMBus handle; needed for attach vm-handle. */
  handleBroker: z.strictObject({ command: pathString, args: z.array(z.string()).optional() }).optional(),
  /** The host's driver packages, VSP and loopback client (driver-package.ts, deploy-drivers.ts). */
  drivers: hostDriversSchema.optional(),
  /** Or a file holding them (relative to the inventory), as a device ships its own: devices/blockq/c/packages.yaml. */
  driversFile: z.string().min(1).optional(),
};

const hostSchema = z.strictObject({
  name, address: z.string().min(1).optional(), migrationPartner: name.optional(),
  /** The device module whose drivers this host runs (default: the lab's `device`), relative to the inventory. */
  device: pathString.optional(),
  ...hostFields,
});
const defaultsSchema = z.strictObject(hostFields);

export const inventorySchema = z.strictObject({
  version: z.literal(1).optional(),
  name: z.string().min(1).optional(),
  /**
   * The device module of the lab (src/device-api): the drivers its hosts run, and the
   * device of scenarios that name none. A path relative to the inventory; default the sample.
   */
  device: pathString.optional(),
  defaults: defaultsSchema.optional(),
  hosts: z.array(hostSchema).min(1, { message: 'list at least one host' }),
});

// ---- resolved shape (what the rest of the bench uses) --------------------------------

export type Credential =
  | { kind: 'key'; key: SecretRef; passphrase?: SecretRef | undefined }
  | { kind: 'password'; password: SecretRef };

export type HostKeyPin = { kind: 'fingerprint'; sha256: string } | { kind: 'known-hosts'; path: string };

export type HostTransport =
  | { kind: 'local' }
  | { kind: 'ssh'; address: string; port: number; user: string; credential: Credential; hostKey: HostKeyPin };

/**
 * The shell when an inventory does not name one: Windows PowerShell 5.1, which every
 * Hyper-V host has out of the box; pwsh must be installed first.
 */
export const DEFAULT_HOST_SHELL = 'powershell';

export interface LabHost {
  name: string;
  transport: HostTransport;
  /** `pwsh` (PowerShell 7) or `powershell` (Windows PowerShell 5.1). */
  shell: 'pwsh' | 'powershell';
  vmRoot: string;
  switchName: string;
  migrationPartner: string | undefined;
  capacity: { vmSlots: number; memoryMB: number };
  build: string | undefined;
  /** Attach modes the host offers, in a fixed order (loopback first). Absent: loopback. */
  attach?: AttachMode[];
  /** Set exactly when `attach` holds vm-handle (refused otherwise, at load). */
  handleBroker?: HandleBroker | undefined;
  /** The host's driver packages; absent: lab/drivers/packages.yaml (loadHostDrivers). */
  drivers?: HostDrivers | undefined;
  /**
   * The device module (absolute path) whose drivers the host runs, and where it is named
   * (for errors); absent: the lab's, else the sample device.
   */
  device?: { path: string; line: number | undefined; field: string } | undefined;
  /** Where the host is written, for later messages about it. */
  source: { file: string; line: number | undefined };
}

export interface Inventory {
  file: string;
  name: string;
  /** The lab's device module (absolute path) and its line; absent: the sample device. */
  device?: { path: string; line: number | undefined; field: string } | undefined;
  hosts: LabHost[];
}

export async function loadInventory(path: string): Promise<Inventory> {
  return inventoryFromSource(await readYamlFile(path));
}

export function inventoryFromSource(src: YamlSource): Inventory {
  refuseInlineSecrets(src);
  const raw = validate(src, inventorySchema);
  const baseDir = dirname(resolve(src.file));
  const problems: Problem[] = [];
  const defaults = raw.defaults ?? {};
  if (defaults.hostKey?.fingerprint !== undefined) {
    problems.push({ path: ['defaults', 'hostKey', 'fingerprint'], message: 'a host key fingerprint belongs to one host', hint: 'move it to the host, or use defaults.hostKey.knownHosts' });
  }
  const labDevice = raw.device === undefined ? undefined : { path: resolveDevicePath(raw.device, src.file), line: lineOf(src, ['device']), field: 'device' };
  /** A host's (or the defaults') packages: written in `drivers`, or in the file `driversFile` names; not both. */
  const packagesOf = (o: { drivers?: z.infer<typeof hostDriversSchema> | undefined; driversFile?: string | undefined }, at: PropertyKey[]): HostDrivers | undefined => {
    if (o.drivers !== undefined && o.driversFile !== undefined) {
      problems.push({ path: [...at, 'driversFile'], message: 'give drivers or driversFile, not both' });
      return undefined;
    }
    if (o.driversFile !== undefined) return resolveHostDriversFile(o.driversFile, baseDir, [...at, 'driversFile'], problems);
    return o.drivers !== undefined ? resolveHostDrivers(o.drivers, [...at, 'drivers'], problems) : undefined;
  };
  const defaultDrivers = packagesOf(defaults, ['defaults']);
  const seen = new Map<string, number>();
  const hosts: LabHost[] = [];
  raw.hosts.forEach((h, i) => {
    const at = (...rest: PropertyKey[]): PropertyKey[] => ['hosts', i, ...rest];
    const previous = seen.get(h.name);
    if (previous !== undefined) problems.push({ path: at('name'), message: `host name "${h.name}" is already used by hosts[${previous}]`, hint: 'host names must be unique' });
    seen.set(h.name, i);
    const merged = { ...defaults, ...h };
    const need = <T>(value: T | undefined, field: string, hint: string): T | undefined => {
      if (value === undefined) problems.push({ path: at(), message: `missing ${field}`, hint });
      return value;
    };
    const vmRoot = need(merged.vmRoot, 'vmRoot', 'set it on the host or in defaults, e.g. vmRoot: D:\\bench\\vms');
    const switchName = need(merged.switch, 'switch', 'name the Hyper-V virtual switch, on the host or in defaults');
    const capacity = need(merged.capacity, 'capacity', 'e.g. capacity: { vmSlots: 4, memoryMB: 16384 }');
    const transport = resolveTransport(merged, h, at, baseDir, problems);
    if (h.migrationPartner === h.name) problems.push({ path: at('migrationPartner'), message: 'a host cannot migrate to itself' });
    const attach = resolveAttach(merged, h, at, problems);
    // Packages written in defaults are resolved (and their problems reported) once, there.
    const own = h.drivers !== undefined || h.driversFile !== undefined;
    const driversAt = own ? at(h.drivers !== undefined ? 'drivers' : 'driversFile') : ['defaults', defaults.drivers !== undefined ? 'drivers' : 'driversFile'];
    const drivers = own ? packagesOf(h, at()) : defaultDrivers;
    if ((merged.drivers !== undefined || merged.driversFile !== undefined) && drivers && !drivers.client && (attach?.attach ?? ['loopback']).includes('loopback')) {
      problems.push({ path: driversAt, message: `host ${h.name} offers loopback, so it runs the client driver too: describe it in drivers.client` });
    }
    if (vmRoot && switchName && capacity && transport && attach) {
      hosts.push({
        name: h.name, transport, shell: merged.shell ?? DEFAULT_HOST_SHELL, vmRoot, switchName, capacity,
        migrationPartner: h.migrationPartner, build: merged.build, ...attach, drivers,
        device: h.device === undefined ? labDevice : { path: resolveDevicePath(h.device, src.file), line: lineOf(src, ['hosts', i, 'device']), field: `hosts[${i}].device` },
        source: { file: src.file, line: src.lines.linePos(nodeStart(src, ['hosts', i])).line },
      });
    }
  });
  raw.hosts.forEach((h, i) => {
    if (h.migrationPartner !== undefined && h.migrationPartner !== h.name && !seen.has(h.migrationPartner)) {
      problems.push({ path: ['hosts', i, 'migrationPartner'], message: `no host named "${h.migrationPartner}" in this inventory`, hint: `known hosts: ${[...seen.keys()].join(', ')}` });
    }
  });
  if (problems.length > 0) throw problemsToError(src, problems);
  return { file: src.file, name: raw.name ?? src.file, device: labDevice, hosts };
}

type RawHost = z.infer<typeof hostSchema>;

/**
 * The host's attach modes. A host offering vm-handle must name its handle broker, and a
 * broker on a host that never attaches to a VM is a mistake worth saying: both refused
 * here, with the field, so no job is planned that could only fail.
 */
function resolveAttach(merged: MergedHost, own: RawHost, at: (...r: PropertyKey[]) => PropertyKey[], problems: Problem[]): { attach: AttachMode[]; handleBroker: HandleBroker | undefined } | undefined {
  const given = merged.attach === undefined ? ['loopback' as const] : Array.isArray(merged.attach) ? merged.attach : [merged.attach];
  const attach = ATTACH_MODES.filter((m) => given.includes(m));
  const where = (f: 'attach' | 'handleBroker'): PropertyKey[] => (own[f] !== undefined ? at(f) : ['defaults', f]);
  const broker = merged.handleBroker;
  if (attach.includes('vm-handle') && !broker) {
    problems.push({ path: where('attach'), message: 'attach vm-handle needs a handleBroker on the host', hint: 'add handleBroker: { command: C:\\bench\\handle-broker.exe } (lab/SETUP.md, "Handle broker"), or use attach: loopback' });
    return undefined;
  }
  if (!attach.includes('vm-handle') && broker) {
    problems.push({ path: where('handleBroker'), message: 'handleBroker is used only with attach vm-handle', hint: 'add vm-handle to attach, or remove handleBroker' });
    return undefined;
  }
  return { attach, handleBroker: broker ? { command: broker.command, args: broker.args ?? [] } : undefined };
}
type MergedHost = z.infer<typeof defaultsSchema> & Partial<RawHost>;

function resolveTransport(merged: MergedHost, own: RawHost, at: (...r: PropertyKey[]) => PropertyKey[], baseDir: string, problems: Problem[]): HostTransport | undefined {
  const kind = merged.transport ?? (own.address !== undefined ? 'ssh' : undefined);
  if (kind === undefined) {
    problems.push({ path: at(), message: 'missing transport', hint: 'transport: local (the bench runs on this host) or transport: ssh with an address' });
    return undefined;
  }
  if (kind === 'local') {
    for (const f of ['address', 'credentials', 'hostKey', 'port', 'user'] as const) {
      if (own[f] !== undefined) problems.push({ path: at(f), message: `not used with transport local`, hint: 'remove it, or set transport: ssh' });
    }
    return { kind: 'local' };
  }
  const before = problems.length;
  if (own.address === undefined) problems.push({ path: at(), message: 'missing address', hint: 'transport ssh needs the host name or IP address' });
  if (merged.user === undefined) problems.push({ path: at(), message: 'missing user', hint: 'set user on the host or in defaults' });
  const credential = merged.credentials ? toCredential(merged.credentials, own.credentials ? at('credentials') : ['defaults', 'credentials'], baseDir, problems) : undefined;
  if (!merged.credentials) problems.push({ path: at(), message: 'missing credentials', hint: 'credentials: { keyFile: PATH } or { keyEnv: VAR } (never inline)' });
  const hostKey = merged.hostKey ? toPin(merged.hostKey, own.hostKey ? at('hostKey') : ['defaults', 'hostKey'], baseDir, problems) : undefined;
  if (!merged.hostKey) problems.push({ path: at(), message: 'missing hostKey', hint: 'pin the host key: hostKey: { fingerprint: SHA256:... } or { knownHosts: PATH }; unpinned hosts are refused' });
  if (problems.length > before || !credential || !hostKey || own.address === undefined || merged.user === undefined) return undefined;
  return { kind: 'ssh', address: own.address, port: merged.port ?? 22, user: merged.user, credential, hostKey };
}

/** Exactly one of keyFile / keyEnv / passwordEnv; paths made absolute. Shared with templates. */
export function toCredential(c: CredentialsInput, path: PropertyKey[], baseDir: string, problems: Problem[]): Credential | undefined {
  const given = (['keyFile', 'keyEnv', 'passwordEnv'] as const).filter((k) => c[k] !== undefined);
  if (given.length !== 1) {
    problems.push({ path, message: given.length === 0 ? 'no credential given' : `give one of ${given.join(', ')}, not several`, hint: 'use exactly one of keyFile, keyEnv, passwordEnv' });
    return undefined;
  }
  if (c.passphraseEnv !== undefined && c.passwordEnv !== undefined) {
    problems.push({ path: [...path, 'passphraseEnv'], message: 'passphraseEnv applies to keys only' });
    return undefined;
  }
  if (c.passwordEnv !== undefined) return { kind: 'password', password: { kind: 'env', name: c.passwordEnv } };
  const passphrase: SecretRef | undefined = c.passphraseEnv !== undefined ? { kind: 'env', name: c.passphraseEnv } : undefined;
  if (c.keyEnv !== undefined) return { kind: 'key', key: { kind: 'env', name: c.keyEnv }, passphrase };
  return { kind: 'key', key: { kind: 'file', path: absolute(c.keyFile!, baseDir) }, passphrase };
}

function toPin(k: z.infer<typeof hostKeySchema>, path: PropertyKey[], baseDir: string, problems: Problem[]): HostKeyPin | undefined {
  if ((k.fingerprint === undefined) === (k.knownHosts === undefined)) {
    problems.push({ path, message: 'give exactly one of fingerprint, knownHosts' });
    return undefined;
  }
  if (k.fingerprint !== undefined) return { kind: 'fingerprint', sha256: k.fingerprint.replace(/=$/, '') };
  return { kind: 'known-hosts', path: absolute(k.knownHosts!, baseDir) };
}

function absolute(p: string, baseDir: string): string {
  const expanded = expandHome(p);
  return isAbsolute(expanded) ? expanded : resolve(baseDir, expanded);
}

function nodeStart(src: YamlSource, path: PropertyKey[]): number {
  const node = src.doc.getIn(path, true) as { range?: [number, number, number] } | undefined;
  return node?.range?.[0] ?? 0;
}

/**
 * Inline secrets are refused before schema validation, wherever they appear under a
 * `credentials` mapping, and by shape anywhere (a PEM block pasted into any field).
 * The message names the field and the fix, never the value.
 */
export function refuseInlineSecrets(src: YamlSource): void {
  const problems: Problem[] = [];
  const walk = (v: unknown, path: PropertyKey[]): void => {
    if (typeof v === 'string') {
      if (looksLikeInlineSecret(v)) problems.push({ path, message: 'this looks like a key pasted inline; secrets may only be referenced', hint: 'save the key to a file and write keyFile: PATH, or put it in an environment variable and write keyEnv: NAME' });
      return;
    }
    if (v === null || typeof v !== 'object') return;
    for (const [k, child] of Object.entries(v as Record<string, unknown>)) {
      const here = [...path, Array.isArray(v) ? Number(k) : k];
      if (path[path.length - 1] === 'credentials' || path[path.length - 1] === 'key') {
        if (k === 'password' || k === 'passphrase') {
          problems.push({ path: here, message: `inline ${k} is not allowed`, hint: `put it in an environment variable and write ${k}Env: NAME` });
          continue;
        }
        if (k === 'privateKey' || k === 'key') {
          problems.push({ path: here, message: 'an inline private key is not allowed', hint: 'write keyFile: PATH or keyEnv: NAME' });
          continue;
        }
      }
      walk(child, here);
    }
  };
  walk(src.data, []);
  if (problems.length > 0) throw problemsToError(src, problems);
}
