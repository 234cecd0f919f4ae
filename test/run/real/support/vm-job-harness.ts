// What a VM job's lab test on the Hyper-V stand-in needs beside the C VM (c-vm.ts): the
// stand-in's Hyper-V teed into the C VM (each operation runs on both), the C VM's clock
// standing still while the stand-in works, and the HTTP bridge the stand-in's control
// tools (test/lab/standin/HyperVStandin/ControlTools.ps1, -Bridge) pass their calls
// through to the C VM's VSP. Any device's: the tools' verbs are the same shape
// (DeviceControl.tool: `vsp command LINE`, `vsp counters`, `etl2jsonl IN OUT`). And a
// test's lab around them: the stand-in host, the bridge, a real sshd and a session to it.
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HyperV } from '../../../../src/lab/hyperv.ts';
import type { HostContext, VmInfo } from '../../../../src/lab/hyperv-vm.ts';
import type { Clock } from '../../../../src/run/engine/job-pipeline.ts';
import type { VmOps } from '../../../../src/run/real/real-job.ts';
import type { CVmJob } from './c-vm.ts';
import { afterAll, beforeAll } from 'vitest';
import { GuestSsh } from '../../../../src/lab/guest-ssh.ts';
import { disposeHost, initHost, newStandinHost, type StandinHost } from '../../../lab/host/standin.ts';
import { startSshd, type Sshd } from '../../../lab/support/sshd.ts';

export const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;
export const T = { startMs: 30_000, saveMs: 30_000, stopMs: 30_000, guestReadyMs: 30_000, provisionMs: 30_000 };

/** The stand-in's Hyper-V, and then the C VM: each operation the VM's drivers live through. */
export class TeeHyperV extends HyperV {
  c: VmOps | undefined;
  /** Hyper-V operations running on the stand-in now */
  busy = 0;
  constructor(ctx: HostContext) {
    super(ctx, T);
  }
  /** Real work the C VM's clock must wait for (an SSH reconnect): counted as an operation running. */
  async busyWith<T>(f: () => Promise<T>): Promise<T> {
    this.busy++;
    try {
      return await f();
    } finally {
      this.busy--;
    }
  }
  private async both<T>(real: () => Promise<T>, onC: ((c: VmOps) => Promise<unknown>) | undefined): Promise<T> {
    this.busy++;
    try {
      const r = await real();
      if (this.c && onC) await onC(this.c);
      return r;
    } finally {
      this.busy--;
    }
  }
  override save(id: string): Promise<VmInfo> {
    return this.both(() => super.save(id), (c) => c.save(id));
  }
  override start(id: string): Promise<VmInfo> {
    return this.both(() => super.start(id), (c) => c.start(id));
  }
  override turnOff(id: string): Promise<VmInfo> {
    return this.both(() => super.turnOff(id), (c) => c.turnOff(id));
  }
  override suspend(id: string): Promise<VmInfo> {
    return this.both(() => super.suspend(id), (c) => c.suspend(id));
  }
  override resume(id: string): Promise<VmInfo> {
    return this.both(() => super.resume(id), (c) => c.resume(id));
  }
  override checkpoint(id: string, name: string): Promise<void> {
    return this.both(() => super.checkpoint(id, name), (c) => c.checkpoint(id, name));
  }
  /**
   * The C VM follows the state the stand-in's VM comes back in: the C VM leaves the
   * checkpoint's copy Saved for a Start-VM, so a VM the stand-in brings back Running
   * (its model of a running VM's standard checkpoint) is started on the C VM at once.
   */
  override restoreCheckpoint(id: string, name: string): Promise<VmInfo> {
    return this.both(() => super.restoreCheckpoint(id, name), async (c) => {
      await c.restoreCheckpoint(id, name);
      const now = await super.getVm(id);
      if (now?.state === 'Running') await c.start(id);
    });
  }
}

/**
 * The C VM's virtual clock, standing still while a Hyper-V operation runs on the stand-in
 * (the VM is frozen then): real-job races each operation against a sleep as long as its
 * deadline, which virtual time would otherwise win at once.
 */
export function stillWhileBusy(inner: Clock, hv: TeeHyperV): Clock {
  return {
    now: () => inner.now(),
    sleep: async (ms, signal) => {
      while (hv.busy > 0) {
        if (signal?.aborted) throw signal.reason;
        await new Promise((r) => setTimeout(r, 10));
      }
      return inner.sleep(ms, signal);
    },
  };
}

/** A control tool's calls, answered by the C VM's VSP (counters' trace seq, commands, the converted trace); `calls` gets each call's tool and arguments. */
export function bridge(c: () => CVmJob, calls: string[][], tools: Array<{ tool: string; args: string[] }> = []): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString('utf8')));
    req.on('end', () => {
      void (async () => {
        const { tool, args } = JSON.parse(body) as { tool: string; args: string[] };
        calls.push(args);
        tools.push({ tool, args });
        const lab = c().lab;
        let answer: { output: string[]; exitCode: number; stderr?: string[]; file?: string; content?: string };
        try {
          if (args[0] === 'vsp' && args[1] === 'command') {
            await lab.vsp.command(args[2]!);
            answer = { output: [], exitCode: 0 };
          } else if (args[0] === 'vsp' && args[1] === 'counters') answer = { output: [`trace_seq=${await lab.vsp.traceSeq()}`], exitCode: 0 };
          else if (args[0] === 'etl2jsonl') answer = { output: [], exitCode: 0, file: args[2]!, content: await lab.vsp.readTrace() };
          else answer = { output: [], exitCode: 2, stderr: [`not a verb of ${tool}'s VSP: ${args.join(' ')}`] };
        } catch (e) {
          answer = { output: [], exitCode: 2, stderr: [(e as Error).message] };
        }
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(answer));
      })();
    });
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` })));
}


/** A describe block's stand-in host, bridge and SSH session (useStandinLab); set in its beforeAll. */
export interface StandinLab {
  host: StandinHost;
  /** the bridge the stand-in's control tools post to (Set-StandinSampleDrivers -Bridge) */
  url: string;
  /** a session to a real sshd: the VM's guest OS as a lab reaches it */
  ssh: GuestSsh;
  /** every tool call's arguments, and with the tool's name, in order */
  calls: string[][];
  tools: Array<{ tool: string; args: string[] }>;
}

/**
 * Registers the describe block's beforeAll and afterAll: a stand-in host named `name` with
 * the files `staged` (a VSP package's INF), the bridge to the VSP of the C VM `c()` runs
 * now, a real sshd and an SSH session to it; all torn down after.
 */
export function useStandinLab(name: string, staged: string[], c: () => CVmJob): StandinLab {
  const lab = { calls: [], tools: [] } as unknown as StandinLab;
  let server: Server | undefined;
  let sshd: Sshd | undefined;
  beforeAll(async () => {
    lab.host = newStandinHost(name);
    await initHost(lab.host, { files: staged });
    let url: string;
    ({ server, url } = await bridge(c, lab.calls, lab.tools));
    lab.url = url;
    sshd = await startSshd();
    lab.ssh = await GuestSsh.connect({
      name: 'linux-guest', host: sshd.host, port: sshd.port, user: sshd.user,
      credential: { kind: 'key', key: { kind: 'file', path: sshd.clientKeyPath } }, hostKey: { kind: 'fingerprint', sha256: sshd.hostKeyFingerprint },
    });
  });
  afterAll(async () => {
    server?.close();
    lab.ssh?.close();
    await sshd?.stop();
    await disposeHost(lab.host);
  });
  return lab;
}
