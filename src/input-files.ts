// Opening a file the user named as input (a scenario, a lab file, a trace, a key file).
//
// Every such path is looked at before it is read, so the error says what is wrong with
// it: a symbolic link loop is not "no such file", and a FIFO or a device is refused
// (reading a FIFO nobody writes to blocks for ever). Shared by every layer, like errors.ts.
import { statSync, type Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { InputError, type InputLocation } from './errors.ts';

/** What a file-system error means for an input path, in words. */
export function describeFsError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'ELOOP':
      return 'symbolic link loop (the link points back at itself)';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    case 'ENAMETOOLONG':
      return 'the path is too long';
    default:
      return `cannot read (${code ?? (e as Error).message})`;
  }
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isDirectory()) return 'a directory';
  return 'not a regular file';
}

function check(st: Stats, allowDir: boolean, where: InputLocation): Stats {
  if (st.isFile() || (allowDir && st.isDirectory())) return st;
  throw new InputError(`not a regular file (it is ${kindOf(st)})${st.isDirectory() ? '' : '; the bench reads only regular files'}`, where);
}

/** Stats of an input path that must be a regular file (or, with `allowDir`, a directory). */
export async function statInput(file: string, opts: { allowDir?: boolean; where?: InputLocation } = {}): Promise<Stats> {
  const where = opts.where ?? { file };
  let st: Stats;
  try {
    st = await stat(file);
  } catch (e) {
    throw new InputError(describeFsError(e), where, { cause: e });
  }
  return check(st, opts.allowDir === true, where);
}

export function statInputSync(file: string, opts: { allowDir?: boolean; where?: InputLocation } = {}): Stats {
  const where = opts.where ?? { file };
  let st: Stats;
  try {
    st = statSync(file);
  } catch (e) {
    throw new InputError(describeFsError(e), where, { cause: e });
  }
  return check(st, opts.allowDir === true, where);
}

/** The text of an input file, refused with an InputError when it is not a readable regular file. */
export async function readInputText(file: string, where: InputLocation = { file }): Promise<string> {
  await statInput(file, { where });
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new InputError(describeFsError(e), where, { cause: e });
  }
}
