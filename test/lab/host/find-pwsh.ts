// Which PowerShell the lab tests run on: the real `pwsh` (PowerShell 7, installed by
// scripts/test-deps.d/20-pwsh.sh as the pinned global tool), and nothing else: no test may
// pass on a PowerShell this project wrote. Tests name it in their title, and are skipped
// with the reason when it is missing (the setup script fails instead when CI=true).
import { existsSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';

export interface PwshFound {
  path: string;
}

const repo = resolve(import.meta.dirname, '../../..');

export function findPwsh(env: NodeJS.ProcessEnv = process.env): PwshFound | undefined {
  if (env.BENCH_PWSH && existsSync(env.BENCH_PWSH)) return { path: env.BENCH_PWSH };
  const dirs = [...(env.PATH ?? '').split(delimiter), join(env.HOME ?? '', '.dotnet', 'tools')];
  for (const d of dirs) {
    const p = join(d, process.platform === 'win32' ? 'pwsh.exe' : 'pwsh');
    if (d && existsSync(p)) return { path: p };
  }
  return undefined;
}

export const pwsh = findPwsh();
export const pwshSkipReason = pwsh ? undefined : 'no pwsh on PATH or in ~/.dotnet/tools; run scripts/test-deps.d/20-pwsh.sh';
export const pwshLabel = pwsh ? 'on pwsh' : `(skipped: ${pwshSkipReason})`;
export const standinModule = join(repo, 'test', 'lab', 'standin', 'HyperVStandin', 'HyperVStandin.psd1');
