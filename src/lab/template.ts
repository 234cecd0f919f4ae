// VM templates (`vm-templates/*.yaml`): what a test VM is made of. A template names a
// cached parent disk (each job gets a differencing disk on top of it), the VM's shape,
// the guest OS with the driver package it runs (driver-package.ts: files, install and
// uninstall commands, where the trace is), and how the guest is provisioned on first
// boot (cloud-init for Linux, unattend.xml for Windows).
//
// The guest's SSH host key is generated on first boot, so it cannot always be pinned in
// the template. When `guest.hostKey` is absent, the run layer pins the key the guest
// printed during provisioning (cloud-init writes its host key fingerprints to the serial
// console, which the host reads), never whatever key the first connection presents.

import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { z } from 'zod';
import { InputError } from '../errors.ts';
import { ATTACH_MODES } from './attach.ts';
import { guestPackageSchema, resolveGuestPackage, type GuestDriverPackage } from './driver-package.ts';
import { credentialsSchema, refuseInlineSecrets, SHA256_FINGERPRINT, toCredential, type Credential, type HostKeyPin } from './inventory.ts';
import { checkProvisioningFile } from './provisioning-check.ts';
import { problemsToError, readYamlFile, validate, type Problem, type YamlSource } from './yaml-input.ts';

const guestSchema = z.strictObject({
  os: z.enum(['linux', 'windows']),
  /** A label for reports, e.g. "Ubuntu 24.04" or "Windows Server 2025". */
  osName: z.string().min(1),
  /** The guest driver: its files, install and uninstall commands and trace (driver-package.ts). */
  driver: guestPackageSchema,
  user: z.string().min(1),
  credentials: credentialsSchema,
  hostKey: z.strictObject({
    fingerprint: z.string().regex(SHA256_FINGERPRINT, { message: 'must be an OpenSSH SHA256 fingerprint ("SHA256:" + 43 base64 characters)' }),
  }).optional(),
  sshPort: z.number().int().min(1).max(65535).optional(),
});

const provisioningSchema = z.strictObject({
  cloudInit: z.string().min(1).optional(),
  unattend: z.string().min(1).optional(),
});

export const templateSchema = z.strictObject({
  version: z.literal(1).optional(),
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, { message: 'must be letters, digits, "_", "." or "-"' }).optional(),
  parentDisk: z.string().regex(/^[A-Za-z]:[\\/].+\.vhdx?$/i, { message: 'must be an absolute Windows path to a .vhdx or .vhd file on the host' }),
  generation: z.union([z.literal(1), z.literal(2)], { message: 'must be 1 or 2' }),
  // Hyper-V takes startup memory in MB that are a multiple of 2.
  memoryMB: z.number().int().min(512).max(12 * 1024 * 1024).refine((n) => n % 2 === 0, { message: 'must be a multiple of 2 (Hyper-V rounds nothing for you)' }),
  processors: z.number().int().min(1).max(240),
  secureBoot: z.boolean(),
  guest: guestSchema,
  provisioning: provisioningSchema,
  /** A VM template's driver runs in a VM: vm-handle is the only mode it can pair with. */
  attach: z.enum(ATTACH_MODES).optional(),
});

export interface VmTemplate {
  file: string;
  name: string;
  parentDisk: string;
  generation: 1 | 2;
  memoryMB: number;
  processors: number;
  secureBoot: boolean;
  guest: {
    os: 'linux' | 'windows';
    osName: string;
    driver: GuestDriverPackage;
    user: string;
    credential: Credential;
    hostKey: HostKeyPin | undefined;
    sshPort: number;
  };
  /** Absolute path of the provisioning file, checked to exist. */
  provisioning: { kind: 'cloud-init'; file: string } | { kind: 'unattend'; file: string };
}

export async function loadTemplate(path: string): Promise<VmTemplate> {
  return templateFromSource(await readYamlFile(path));
}

/** Every `*.yaml` template in `dir`; two templates with one name are an error. */
export async function loadTemplates(dir: string): Promise<VmTemplate[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
  } catch (e) {
    throw new InputError(`cannot read the templates folder (${(e as NodeJS.ErrnoException).code ?? 'error'})`, { file: dir });
  }
  const templates: VmTemplate[] = [];
  const byName = new Map<string, string>();
  for (const name of names) {
    const t = await loadTemplate(join(dir, name));
    const other = byName.get(t.name);
    if (other !== undefined) {
      throw new InputError(`template name "${t.name}" is also used by ${other}`, { file: t.file, field: 'name' }, { hint: 'template names must be unique' });
    }
    byName.set(t.name, t.file);
    templates.push(t);
  }
  return templates;
}

export function templateFromSource(src: YamlSource): VmTemplate {
  refuseInlineSecrets(src);
  const raw = validate(src, templateSchema);
  const baseDir = dirname(resolve(src.file));
  const problems: Problem[] = [];
  const { guest } = raw;

  if (raw.secureBoot && raw.generation === 1) {
    problems.push({ path: ['secureBoot'], message: 'secure boot needs a generation 2 VM', hint: 'set generation: 2 or secureBoot: false' });
  }
  const driver = resolveGuestPackage(guest.driver, guest.os, baseDir, ['guest', 'driver'], problems);
  if (guest.credentials.passwordEnv !== undefined && guest.os === 'linux') {
    problems.push({ path: ['guest', 'credentials', 'passwordEnv'], message: 'Linux guests are reached with a key only', hint: 'use keyFile or keyEnv; the cloud-init user-data installs the public key' });
  }
  if (raw.attach === 'loopback') {
    problems.push({ path: ['attach'], message: 'a guest driver in a VM cannot be the peer of a loopback offer (its client end is in the host)', hint: 'remove attach (VM templates are vm-handle); loopback jobs need no template: every host with attach: loopback gets them' });
  }
  const credential = toCredential(guest.credentials, ['guest', 'credentials'], baseDir, problems);

  const provisioning = resolveProvisioning(raw.provisioning, guest.os, baseDir, problems);
  if (problems.length > 0 || !credential || !provisioning || !driver) throw problemsToError(src, problems);
  return {
    file: src.file,
    name: raw.name ?? basename(src.file, extname(src.file)),
    parentDisk: raw.parentDisk,
    generation: raw.generation,
    memoryMB: raw.memoryMB,
    processors: raw.processors,
    secureBoot: raw.secureBoot,
    guest: {
      os: guest.os, osName: guest.osName, driver, user: guest.user, credential,
      hostKey: guest.hostKey ? { kind: 'fingerprint', sha256: guest.hostKey.fingerprint.replace(/=$/, '') } : undefined,
      sshPort: guest.sshPort ?? 22,
    },
    provisioning,
  };
}

function resolveProvisioning(p: z.infer<typeof provisioningSchema>, os: 'linux' | 'windows', baseDir: string, problems: Problem[]): VmTemplate['provisioning'] | undefined {
  const wanted = os === 'linux' ? 'cloudInit' : 'unattend';
  const other = os === 'linux' ? 'unattend' : 'cloudInit';
  if (p[other] !== undefined) {
    problems.push({ path: ['provisioning', other], message: `a ${os} guest is provisioned with ${wanted}, not ${other}` });
    return undefined;
  }
  const given = p[wanted];
  if (given === undefined) {
    problems.push({ path: ['provisioning'], message: `missing ${wanted}`, hint: `name the ${os === 'linux' ? 'cloud-init user-data' : 'unattend.xml'} file, relative to the template` });
    return undefined;
  }
  const file = resolve(baseDir, given);
  if (!existsSync(file)) {
    problems.push({ path: ['provisioning', wanted], message: `file not found: ${file}`, hint: 'paths are relative to the template file' });
    return undefined;
  }
  const kind = os === 'linux' ? 'cloud-init' : 'unattend';
  // Its content too, not only that it exists (provisioning-check.ts).
  checkProvisioningFile(kind, file);
  return { kind, file };
}
