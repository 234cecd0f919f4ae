// junit.xml for CI test reporters (Jenkins, Azure Pipelines, GitHub actions that read
// JUnit). It follows the Ant JUnit format (schema: src/report/ant-junit.xsd), the
// strictest common form those readers accept:
//   <testsuites> with one <testsuite> per host / guest pair (attributes name, package, id,
//   timestamp without zone, hostname, tests, failures, errors, skipped, time), then in this
//   order: <properties>, one <testcase> per job, <system-out>, <system-err> (all required).
// Verdicts map as: diverge and hang -> <failure type="<class>">, error -> <error>,
// skipped -> <skipped>, and a failure under a live quarantine -> <skipped> that says so, so
// a quarantined problem shows in CI without failing the build. The failure text is the
// divergence message, then the evidence a person needs to start.
import { writeFileAtomic } from './atomic-file.ts';
import type { Reporter } from './reporter.ts';
import { isQuarantineLive, type JobResult, type RunSummary } from './summary.ts';
import { commandLine, reproCommands } from './repro.ts';
import { escapeXml } from './xml.ts';
import { stringifyWithIds } from '../trace/json-ids.ts';

interface Suite {
  host: string;
  hostBuild: string;
  guest: string;
  jobs: JobResult[];
}

/** Groups jobs by host / guest pair, in order of first appearance. */
function suitesOf(jobs: readonly JobResult[]): Suite[] {
  const byKey = new Map<string, Suite>();
  for (const j of jobs) {
    const key = JSON.stringify([j.host, j.guest]);
    let s = byKey.get(key);
    if (!s) byKey.set(key, (s = { host: j.host, hostBuild: j.hostBuild, guest: j.guest, jobs: [] }));
    s.jobs.push(j);
  }
  return [...byKey.values()];
}

/** Wall time of a job in seconds: the real run and the emulator run side by side, then the check. */
export function jobSeconds(j: JobResult): number {
  const d = j.durationsMs;
  return (Math.max(d.real ?? 0, d.emulator ?? 0) + (d.check ?? 0)) / 1000;
}

/** The schema's timestamp has no zone (xs:dateTime restricted to YYYY-MM-DDTHH:MM:SS): we write UTC. */
function junitTimestamp(iso: string): string {
  const t = Date.parse(iso);
  return new Date(Number.isNaN(t) ? 0 : t).toISOString().slice(0, 19);
}

/** Class names are read as package.Class by Jenkins: keep the dots ours. */
function classPart(s: string): string {
  return s.replace(/[^A-Za-z0-9_-]+/g, '_');
}

/** Test case names unique within a suite: the scenario, plus template and seed when repeated. */
function caseNames(jobs: readonly JobResult[]): string[] {
  const perScenario = new Map<string, number>();
  for (const j of jobs) perScenario.set(j.scenario, (perScenario.get(j.scenario) ?? 0) + 1);
  const names = jobs.map((j) => ((perScenario.get(j.scenario) ?? 0) > 1 ? `${j.scenario} [${j.template}, seed ${j.seed}]` : j.scenario));
  const seen = new Map<string, number>();
  for (const n of names) seen.set(n, (seen.get(n) ?? 0) + 1);
  return names.map((n, i) => ((seen.get(n) ?? 0) > 1 ? `${n} (${jobs[i]!.jobId})` : n));
}

/** The text inside <failure>, <error> or <skipped>: message first, then what to look at. */
export function failureText(j: JobResult): string {
  const lines: string[] = [j.message ?? `${j.verdict}${j.divergenceClass ? ` (${j.divergenceClass})` : ''}`];
  if (j.divergenceClass) lines.push(`divergence class: ${j.divergenceClass}`);
  if (j.failedProperties?.length) lines.push(`failed properties: ${j.failedProperties.join(', ')}`);
  if (j.notChecked?.length) lines.push('not checked (device-independent properties only):', ...j.notChecked.map((n) => `  - ${n}`));
  if (j.firstUnexplained) {
    lines.push(`first unexplained event: ${j.firstUnexplained.file}:${j.firstUnexplained.line}`);
    lines.push(`  ${stringifyWithIds(j.firstUnexplained.event)}`);
  }
  if (j.expected?.length) lines.push('expected one of:', ...j.expected.map((e) => `  - ${e}`));
  const ev = j.evidence;
  if (ev.minimizedScenario) lines.push(`minimized scenario: ${ev.minimizedScenario}`);
  for (const [label, path] of [['trace', ev.trace], ['host trace', ev.hostTrace], ['guest trace', ev.guestTrace]] as const) {
    if (path) lines.push(`${label}: ${path}`);
  }
  if (ev.artefacts?.length) lines.push(`artefacts: ${ev.artefacts.join(', ')}`);
  // The first command a failure card offers: the same verdict again, from the evidence.
  if (j.verdict === 'diverge' || j.verdict === 'hang') lines.push(`reproduce (from the run directory): ${commandLine(reproCommands(j)[0]!.argv)}`);
  if ((j.attempts ?? 1) > 1) lines.push(`attempts: ${j.attempts}`);
  lines.push(`job: ${j.jobId} (host ${j.host}, build ${j.hostBuild}, guest ${j.guest}, template ${j.template}, seed ${j.seed})`);
  return lines.join('\n');
}

function testcase(j: JobResult, name: string, classname: string, asOf: string): string {
  const head = `    <testcase name="${escapeXml(name, 'attr')}" classname="${escapeXml(classname, 'attr')}" time="${jobSeconds(j).toFixed(3)}"`;
  const msg = escapeXml(j.message ?? j.verdict, 'attr');
  const body = escapeXml(failureText(j));
  if (j.verdict === 'pass') return `${head}/>`;
  if (j.verdict === 'skipped') return `${head}>\n      <skipped message="${msg}">${body}</skipped>\n    </testcase>`;
  if (isQuarantineLive(j, asOf)) {
    const q = j.quarantined!;
    const qmsg = escapeXml(`quarantined until ${q.until}: ${q.reason} | ${j.message ?? j.verdict}`, 'attr');
    return `${head}>\n      <skipped message="${qmsg}">${body}</skipped>\n    </testcase>`;
  }
  if (j.verdict === 'error') return `${head}>\n      <error message="${msg}" type="infrastructure">${body}</error>\n    </testcase>`;
  const type = escapeXml(j.divergenceClass ?? j.verdict, 'attr');
  return `${head}>\n      <failure message="${msg}" type="${type}">${body}</failure>\n    </testcase>`;
}

/** Builds the whole document. Pure: same summary, same bytes. */
export function buildJunitXml(summary: RunSummary): string {
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>', '<testsuites>'];
  const timestamp = junitTimestamp(summary.startedAt);
  suitesOf(summary.jobs).forEach((s, id) => {
    const names = caseNames(s.jobs);
    const pkg = `bench.${classPart(s.host)}_${classPart(s.hostBuild)}`;
    const classname = `${pkg}.${classPart(s.guest)}`;
    let failures = 0;
    let errors = 0;
    let skipped = 0;
    for (const j of s.jobs) {
      const excused = j.verdict !== 'pass' && j.verdict !== 'skipped' && isQuarantineLive(j, summary.startedAt);
      if (j.verdict === 'skipped' || excused) skipped++;
      else if (j.verdict === 'error') errors++;
      else if (j.verdict !== 'pass') failures++;
    }
    const time = s.jobs.reduce((t, j) => t + jobSeconds(j), 0);
    const attr = (v: string) => escapeXml(v, 'attr');
    out.push(
      `  <testsuite name="${attr(`${s.host} (${s.hostBuild}) / ${s.guest}`)}" package="${attr(pkg)}" id="${id}"` +
        ` timestamp="${timestamp}" hostname="${attr(s.host)}"` +
        ` tests="${s.jobs.length}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${time.toFixed(3)}">`,
      '    <properties>',
      `      <property name="runId" value="${attr(summary.runId)}"/>`,
      `      <property name="lab" value="${attr(summary.lab)}"/>`,
      `      <property name="host" value="${attr(s.host)}"/>`,
      `      <property name="hostBuild" value="${attr(s.hostBuild)}"/>`,
      `      <property name="guest" value="${attr(s.guest)}"/>`,
      '    </properties>',
      ...s.jobs.map((j, i) => testcase(j, names[i]!, classname, summary.startedAt)),
      `    <system-out>${escapeXml(s.jobs.map((j) => `${j.jobId}: ${j.verdict}${j.notChecked?.length ? ' (device-independent properties only; payload and status rules not checked)' : ''}${j.evidence.trace ? ` (${j.evidence.trace})` : ''}`).join('\n'))}</system-out>`,
      '    <system-err></system-err>',
      '  </testsuite>',
    );
  });
  out.push('</testsuites>', '');
  return out.join('\n');
}

/** Writes junit.xml at the end of the run (temp file, then rename). */
export class JunitReporter implements Reporter {
  private readonly file: string;
  constructor(options: { file: string }) {
    this.file = options.file;
  }
  async onRunEnd(summary: RunSummary): Promise<void> {
    await writeFileAtomic(this.file, buildJunitXml(summary));
  }
}
