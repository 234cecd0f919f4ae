// HostShell over a persistent local PowerShell process (node-powershell), for a bench that
// runs on the Hyper-V host itself. One process per host, reused across commands: a fresh
// pwsh costs ~0.3-1 s and the first Hyper-V cmdlet in it another ~0.4 s, a command in a
// warm session ~30 ms (reference/hyperv-timings.md).
//
// Life of a session: started on first use; restarted on the next command if it died;
// killed and forgotten after a timeout or cancellation, never reused, because it may still
// be running the old command and its output would land in the next one's.

import { PowerShell } from 'node-powershell';
import type { PsCommand } from './command.ts';
import { execute, type Exchange, type RawReply } from './execute.ts';
import { killTree } from './process-tree.ts';
import type { HostShell, RunOptions, ShellResult } from './types.ts';

export interface LocalPwshOptions {
  /** Name used in results and errors. */
  host?: string;
  /** The PowerShell executable: `pwsh` (default), `powershell`, or a path. */
  executable?: string;
  /** Extra environment for the process (the stand-in module reads its state dir from it). */
  env?: Record<string, string>;
}

interface Session {
  shell: PowerShell;
  /** Set once the process is gone, with why. */
  exited: string | undefined;
  exitedAt: Promise<void>;
}

export class LocalPwshShell implements HostShell {
  readonly host: string;
  readonly transport = 'local' as const;
  readonly #executable: string;
  readonly #env: Record<string, string> | undefined;
  #session: Session | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  /** How many processes this shell has started (tests and diagnostics). */
  sessionsStarted = 0;

  constructor(options: LocalPwshOptions = {}) {
    this.host = options.host ?? 'localhost';
    this.#executable = options.executable ?? 'pwsh';
    this.#env = options.env;
  }

  run(cmd: PsCommand, options: RunOptions): Promise<ShellResult> {
    // One command at a time per session; the deadline starts when the command does.
    const next = this.#queue.then(() => execute({ host: this.host, transport: 'local' }, cmd, options, (line) => this.#exchange(line)));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    const s = this.#session;
    this.#session = undefined;
    if (s && s.exited === undefined) await discard(s);
  }

  #exchange(line: string): Exchange {
    let session: Session;
    try {
      session = this.#current();
    } catch (e) {
      return { done: Promise.resolve({ kind: 'unreachable', detail: (e as Error).message }), abort: () => undefined };
    }
    const done = (async (): Promise<RawReply> => {
      try {
        const r = await session.shell.invoke(line);
        if (session.exited !== undefined) return { kind: 'lost', detail: session.exited, stdout: text(r.stdout), stderr: text(r.stderr) };
        return { kind: 'reply', stdout: text(r.stdout), stderr: text(r.stderr), exitCode: undefined };
      } catch (e) {
        // node-powershell rejects with "Shell process N exited" when the process dies
        // mid-command, or with ENOENT when it never started.
        await Promise.race([session.exitedAt, sleep(200)]);
        const detail = session.exited ?? (e as Error).message.split('\n')[0] ?? 'process error';
        if (/\bspawn\b.*\b(ENOENT|EACCES)\b/.test(detail)) return { kind: 'unreachable', detail: `cannot start ${this.#executable}: ${detail}` };
        return { kind: 'lost', detail, stdout: '', stderr: '' };
      }
    })();
    return {
      done,
      abort: () => {
        if (this.#session === session) this.#session = undefined;
        void discard(session);
      },
    };
  }

  #current(): Session {
    if (this.#session && this.#session.exited === undefined) return this.#session;
    this.#session = this.#start();
    return this.#session;
  }

  #start(): Session {
    this.sessionsStarted++;
    const shell = new PowerShell({
      executable: this.#executable,
      executableOptions: { '-NoProfile': true, '-NonInteractive': true },
      throwOnInvocationError: false,
      // TERM=dumb keeps pwsh on Unix from writing terminal control sequences around each
      // command; output.ts copes with them anyway, as it must over SSH.
      spawnOptions: { env: { ...process.env, TERM: 'dumb', ...this.#env } },
    });
    const session: Session = { shell, exited: undefined, exitedAt: Promise.resolve() };
    // node-powershell keeps a private promise that rejects when the process exits
    // abnormally; nothing awaits it while the session is idle, so without this handler a
    // killed idle process would be an unhandled rejection that ends the bench.
    const exitPromise = (shell as unknown as { exitPromise: Promise<void> }).exitPromise;
    session.exitedAt = exitPromise.then(
      () => { session.exited ??= 'process exited'; },
      (e: unknown) => { session.exited ??= firstLine(e); },
    );
    return session;
  }
}

async function discard(s: Session): Promise<void> {
  s.exited ??= 'discarded';
  // The spawned process may be a launcher with PowerShell as its child (process-tree.ts).
  const pid = (s.shell as unknown as { process?: { pid?: number } }).process?.pid;
  if (pid !== undefined) killTree(pid);
  try {
    await s.shell.dispose('SIGKILL');
  } catch {
    // It died as we asked.
  }
}

function text(b: Buffer | undefined): string {
  return b ? b.toString('utf8') : '';
}

function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  const sig = (e as { signalCode?: string }).signalCode;
  const code = (e as { exitCode?: number }).exitCode;
  // "Shell process N exited.\n<cause>": keep the cause (ENOENT and the like) on one line.
  const head = m.split('\n').map((l) => l.trim()).filter((l) => l && l !== 'undefined').join(' ');
  return sig ? `${head} (signal ${sig})` : code !== undefined && code !== null ? `${head} (exit code ${code})` : head;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
