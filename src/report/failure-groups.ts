// Failures grouped by cause, so 24 failures with one cause read as one group of 24, not 24
// cards. Pure: report.html renders what this returns.
//
// - Divergences and hangs group by their cause: the divergence class, the first failed
//   property, and the pattern of the first unexplained event (side, event and direction;
//   not its seq or transaction id, which differ from job to job). Inside a group, jobs are
//   split by host build, because "fails on every build" and "fails on one build" are
//   different findings.
// - Infrastructure errors (the job could not be judged: preflight failed, host unreachable,
//   a worker died) group by what went wrong, host names and numbers set aside, into one
//   box per cause that says which hosts, why, and what to do.
import { naturalCompare } from './matrix.ts';
import { isQuarantineLive, type JobResult } from './summary.ts';

export interface Cause {
  divergenceClass: string;
  property: string;
  pattern: string;
}

export interface BuildGroup {
  hostBuild: string;
  jobs: JobResult[];
}

export interface FailureGroup {
  /** Stable within a report: names the group's anchor. */
  id: string;
  cause: Cause;
  jobs: JobResult[];
  builds: BuildGroup[];
}

/** The pattern of a job's first unexplained event: "guest pkt.recv h2g". */
export function eventPattern(j: JobResult): string {
  const e = j.firstUnexplained?.event as (Record<string, unknown> & { side: string; ev: string }) | undefined;
  if (!e) return 'no single event (found at the end of the trace)';
  return [e.side, e.ev, typeof e.dir === 'string' ? e.dir : ''].filter(Boolean).join(' ');
}

export function causeOf(j: JobResult): Cause {
  return {
    divergenceClass: j.divergenceClass ?? j.verdict,
    property: j.failedProperties?.[0] ?? 'no property named',
    pattern: eventPattern(j),
  };
}

/**
 * Groups diverging and hanging jobs by cause: groups with a failure that counts first (not
 * every one quarantined as of `asOf`), the largest first, then by class.
 * Invariant: every given diverge / hang job is in exactly one group and one build group of it.
 */
export function groupFailures(jobs: readonly JobResult[], asOf?: string): FailureGroup[] {
  const byCause = new Map<string, { cause: Cause; jobs: JobResult[] }>();
  for (const j of jobs) {
    if (j.verdict !== 'diverge' && j.verdict !== 'hang') continue;
    const cause = causeOf(j);
    const key = JSON.stringify([cause.divergenceClass, cause.property, cause.pattern]);
    let g = byCause.get(key);
    if (!g) byCause.set(key, (g = { cause, jobs: [] }));
    g.jobs.push(j);
  }
  // Groups whose every failure is quarantined go last: they do not fail the run.
  const excused = (g: { jobs: JobResult[] }) => (g.jobs.every((j) => isQuarantineLive(j, asOf)) ? 1 : 0);
  const groups = [...byCause.values()].sort(
    (a, b) => excused(a) - excused(b) || b.jobs.length - a.jobs.length || a.cause.divergenceClass.localeCompare(b.cause.divergenceClass) || a.cause.property.localeCompare(b.cause.property) || a.cause.pattern.localeCompare(b.cause.pattern),
  );
  return groups.map((g, i) => ({ id: `group-${i + 1}`, cause: g.cause, jobs: g.jobs, builds: byBuild(g.jobs) }));
}

function byBuild(jobs: readonly JobResult[]): BuildGroup[] {
  const m = new Map<string, JobResult[]>();
  for (const j of jobs) {
    let list = m.get(j.hostBuild);
    if (!list) m.set(j.hostBuild, (list = []));
    list.push(j);
  }
  // Inside a build: by scenario, guest and seed, so one scenario's cards sit together.
  const order = (a: JobResult, b: JobResult) => naturalCompare(a.scenario, b.scenario) || naturalCompare(a.guest, b.guest) || a.seed - b.seed || naturalCompare(a.jobId, b.jobId);
  return [...m.entries()].sort(([a], [b]) => naturalCompare(a, b)).map(([hostBuild, list]) => ({ hostBuild, jobs: list.sort(order) }));
}

export interface InfraCause {
  id: string;
  /** What went wrong, with host names and numbers set aside. */
  cause: string;
  /** One message in full, as the first job of the group had it. */
  example: string;
  hosts: string[];
  jobs: JobResult[];
  advice: string;
}

/**
 * The reasons inside a job's error message. A job that found no host left says why each of
 * its hosts went out ("no host of build B is left in the run (hv-01: preflight: ...)"), and
 * that reason, not the sentence around it, is the cause.
 */
export function errorReasons(j: JobResult): { host: string; reason: string }[] {
  const msg = j.message ?? 'no message';
  const m = /^no host of build .* is left in the run \((.*)\)$/s.exec(msg);
  if (m) {
    const parts = m[1]!.split(/; (?=[\w.@+=-]+: )/);
    const out = parts.map((p) => {
      const at = p.indexOf(': ');
      return at > 0 ? { host: p.slice(0, at), reason: p.slice(at + 2) } : { host: j.host, reason: p };
    });
    if (out.length > 0) return out;
  }
  return [{ host: j.host, reason: msg }];
}

/** An error message with what varies from host to host and try to try replaced. */
export function normaliseReason(reason: string, host: string): string {
  let r = reason;
  if (host) r = r.split(host).join('<host>');
  return r
    .replace(/\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b/g, '<address>')
    .replace(/\s*\(after \d+(?:\.\d+)? ?m?s\)/g, '')
    .replace(/\b\d+(?:\.\d+)? ?(ms|s|MB|GB|min)\b/g, 'N $1')
    .replace(/\battempt \d+\b/g, 'attempt N')
    .trim();
}

const ADVICE: ReadonlyArray<[RegExp, string]> = [
  [/authenticat|permission denied|publickey|password/i, 'The host refused the bench\'s login. Check the user and key file the inventory names for it, and that the key\'s public half is in the host\'s authorized keys.'],
  [/host key|fingerprint|known.?hosts/i, 'The host\'s SSH key is not the one the inventory pins. If the host was reinstalled, pin its new key; otherwise find out who answered in its place.'],
  [/unreachable|cannot reach|not reachable|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|timed out|\breachable\b/i, 'The bench could not reach the host. Check that it is on, that its OpenSSH server listens on the address and port in the inventory, and that nothing between blocks it.'],
  [/Hyper-V module|missing cmdlets|Hyper-V/i, 'Hyper-V or its PowerShell module is missing: install the Hyper-V role with its management tools on the host.'],
  [/test ?signing/i, 'Test signing is off, so the test-signed VSP cannot load: run `bcdedit /set testsigning on` on the host and restart it.'],
  [/free disk|disk space|ENOSPC/i, 'The host is short of disk space in its VM folder: free some, or point vmRoot in the inventory at a larger volume.'],
  [/free memory|no host has room/i, 'Not enough memory for the planned VMs: free memory on the host, or lower its capacity in the inventory so fewer jobs run at once.'],
  [/switch/i, 'The virtual switch the inventory names is missing on the host: create it (New-VMSwitch) or correct the name.'],
  [/migration/i, 'Live migration is not enabled between the paired hosts: run Enable-VMMigration on both and check their migration networks.'],
  [/parent disk|differencing/i, 'A template\'s parent disk is missing or is itself a differencing disk: put a full VHDX at the path the template names.'],
  [/internal error|worker/i, 'The bench itself failed on this job (not the host). Finish the run with --resume; if it happens again, file an issue with the run\'s journal.jsonl.'],
];

export function adviceFor(cause: string): string {
  return ADVICE.find(([re]) => re.test(cause))?.[1] ?? 'Run `bench lab check --lab LAB.yaml` to see which check fails on these hosts.';
}

/**
 * One entry per cause of infrastructure errors; the largest first. A job whose hosts went
 * out for different reasons counts under each of them.
 */
export function groupInfraErrors(jobs: readonly JobResult[]): InfraCause[] {
  const byCause = new Map<string, { example: string; hosts: Set<string>; ids: Set<string>; jobs: JobResult[] }>();
  for (const j of jobs) {
    if (j.verdict !== 'error') continue;
    for (const { host, reason } of errorReasons(j)) {
      const cause = normaliseReason(reason, host);
      let g = byCause.get(cause);
      if (!g) byCause.set(cause, (g = { example: reason, hosts: new Set(), ids: new Set(), jobs: [] }));
      g.hosts.add(host);
      if (!g.ids.has(j.jobId)) {
        g.ids.add(j.jobId);
        g.jobs.push(j);
      }
    }
  }
  return [...byCause.entries()]
    .sort(([a, x], [b, y]) => y.jobs.length - x.jobs.length || a.localeCompare(b))
    .map(([cause, g], i) => ({ id: `infra-${i + 1}`, cause, example: g.example, hosts: [...g.hosts].sort(naturalCompare), jobs: g.jobs, advice: adviceFor(cause) }));
}
