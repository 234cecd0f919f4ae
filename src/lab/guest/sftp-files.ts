// File transfer over one SFTP session. GuestSsh races these against link loss; here is
// only how bytes move, with the size limit enforced before or while they arrive.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SFTPWrapper } from 'ssh2';
import { BoundedOutput } from './bounded-output.ts';

export function sftpWrite(sftp: SFTPWrapper, remotePath: string, data: Buffer | string, mode: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    sftp.writeFile(remotePath, data, { mode }, (err) => (err ? reject(err) : resolve()));
  });
}

/**
 * Reads a whole remote file, refusing more than `maxBytes` (rejecting with `tooBig()`).
 * Regular files are fetched with parallel reads (ssh2's fastGet, through a local temp
 * file): the one-request-at-a-time stream took 20x longer for 10 MB. Files that report
 * size 0 (debugfs, procfs) are streamed until EOF, counting as they come.
 */
export async function sftpRead(sftp: SFTPWrapper, remotePath: string, maxBytes: number, tooBig: () => Error): Promise<Buffer> {
  const size = await new Promise<number>((resolve, reject) => {
    sftp.stat(remotePath, (err, st) => (err ? reject(err) : resolve(st.size)));
  });
  if (size > maxBytes) throw tooBig();
  if (size > 0) {
    const dir = await mkdtemp(join(tmpdir(), 'bench-download-'));
    try {
      const local = join(dir, 'file');
      await new Promise<void>((resolve, reject) => sftp.fastGet(remotePath, local, (err) => (err ? reject(err) : resolve())));
      return await readFile(local);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  return new Promise<Buffer>((resolve, reject) => {
    const out = new BoundedOutput(maxBytes);
    const stream = sftp.createReadStream(remotePath, { highWaterMark: 256 * 1024 });
    stream.on('data', (b: Buffer) => {
      out.push(b);
      if (out.truncated) {
        stream.destroy();
        reject(tooBig());
      }
    });
    stream.on('error', reject);
    stream.on('end', () => resolve(out.toBuffer()));
  });
}
