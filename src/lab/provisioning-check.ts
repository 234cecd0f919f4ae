// The provisioning files a template names (cloud-init user-data, unattend.xml), checked
// when the template is loaded, so that `bench run --dry-run` refuses an empty or garbage
// file instead of a guest that never comes up an hour later.
//
// What is checked is what the guest's first boot needs to read the file at all:
//   cloud-init  line 1 is "#cloud-config" (cloud-init ignores user-data without it, or
//               takes it for a script), and the rest is a YAML mapping;
//   unattend    an XML declaration or the root element first, the root element
//               <unattend> in Windows Setup's namespace, and its end tag.
// The unattend check is structural only: the bench's dependencies hold no XML parser,
// and Windows Setup is the one that validates the answers themselves.
import { InputError } from '../errors.ts';
import { statInputSync } from '../input-files.ts';
import { readFileSync } from 'node:fs';
import { parseYamlText } from './yaml-input.ts';

export const UNATTEND_NAMESPACE = 'urn:schemas-microsoft-com:unattend';

export function checkProvisioningFile(kind: 'cloud-init' | 'unattend', file: string): void {
  statInputSync(file);
  const text = readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
  if (text.trim() === '') throw new InputError(`the ${kind === 'cloud-init' ? 'cloud-init user-data' : 'unattend.xml'} file is empty`, { file, line: 1 });
  if (kind === 'cloud-init') checkCloudInit(text, file);
  else checkUnattend(text, file);
}

function checkCloudInit(text: string, file: string): void {
  const first = text.split(/\r?\n/, 1)[0]!.trimEnd();
  if (first !== '#cloud-config') {
    throw new InputError('cloud-init user-data must start with "#cloud-config" on its first line', { file, line: 1 }, {
      hint: 'without it cloud-init does not read the file as cloud-config',
    });
  }
  // Syntax errors and aliases come back with their line (yaml-input.ts).
  const { data } = parseYamlText(text, file);
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new InputError('cloud-init user-data must be a YAML mapping (users:, packages:, runcmd: ...)', { file, line: 2 });
  }
}

function checkUnattend(text: string, file: string): void {
  const lineAt = (i: number): number => text.slice(0, i).split('\n').length;
  // Comments may stand before the root; the first element must be <unattend>.
  const body = text.replace(/<!--[\s\S]*?-->/g, (c) => c.replace(/[^\n]/g, ' '));
  const start = body.search(/\S/);
  if (!body.startsWith('<', start)) throw new InputError('unattend.xml is not XML: it must start with "<?xml" or "<unattend"', { file, line: lineAt(start) });
  const root = /<([A-Za-z_][\w.:-]*)[\s>/]/g;
  let m: RegExpExecArray | null;
  let name: string | undefined;
  let at = 0;
  while ((m = root.exec(body)) !== null) {
    if (body[m.index + 1] === '?' || body[m.index + 1] === '!') continue;
    name = m[1];
    at = m.index;
    break;
  }
  if (name !== 'unattend') {
    throw new InputError(`unattend.xml's root element is ${name ? `<${name}>` : 'missing'}, not <unattend>`, { file, line: lineAt(at) });
  }
  const tag = body.slice(at, body.indexOf('>', at) + 1);
  if (!tag.includes(`xmlns="${UNATTEND_NAMESPACE}"`)) {
    throw new InputError(`<unattend> must declare xmlns="${UNATTEND_NAMESPACE}"`, { file, line: lineAt(at) }, { hint: 'Windows Setup ignores settings outside its namespace' });
  }
  if (!/<\/unattend>\s*$/.test(body)) throw new InputError('unattend.xml does not end with </unattend> (cut short?)', { file, line: lineAt(body.length) });
}
