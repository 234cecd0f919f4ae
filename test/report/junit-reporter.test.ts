import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildJunitXml, failureText, JunitReporter } from '../../src/report/junit-reporter.ts';
import { fixtureSummary, job, RUN_IDS, summaryOf } from './support/fixtures.ts';
import { JUNIT_XSD, schemaSkipReason, skipNote, validateJunit, xmllintMissing, xpath } from './support/xmllint.ts';

function written(xml: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'bench-junit-')), 'junit.xml');
  writeFileSync(file, xml);
  return file;
}

describe('junit.xml', () => {
  it.skipIf(schemaSkipReason)(`validates against the Ant JUnit schema (${JUNIT_XSD}) for every fixture run${skipNote(schemaSkipReason)}`, () => {
    for (const id of RUN_IDS) {
      const r = validateJunit(written(buildJunitXml(fixtureSummary(id))));
      expect(r.output).toContain('validates');
      expect(r.ok).toBe(true);
    }
  });

  it.skipIf(schemaSkipReason)(`still validates with hostile text: markup, quotes, control characters, lone surrogates${skipNote(schemaSkipReason)}`, () => {
    const evil = `<script>"x" & 'y'\u0000\u0007\u001b[31m\uD800 ]]> \r\n end`;
    const s = summaryOf([
      job({ jobId: 'a', host: evil, hostBuild: evil, guest: evil, scenario: evil, verdict: 'diverge', divergenceClass: evil, message: evil, expected: [evil], failedProperties: [evil] }),
      job({ jobId: 'b', scenario: evil, verdict: 'error', message: evil }),
      job({ jobId: 'c', scenario: '', template: 'x', verdict: 'skipped' } as never),
    ]);
    s.jobs[2]!.scenario = 'plain';
    const r = validateJunit(written(buildJunitXml(s)));
    expect(r.output).toContain('validates');
    expect(r.ok).toBe(true);
  });

  it.skipIf(schemaSkipReason)(`the schema check can fail: a suite without <system-err> or with a zoned timestamp is rejected${skipNote(schemaSkipReason)}`, () => {
    const xml = buildJunitXml(fixtureSummary());
    expect(validateJunit(written(xml.replaceAll('    <system-err></system-err>\n', ''))).ok).toBe(false);
    expect(validateJunit(written(xml.replace('T02:00:00"', 'T02:00:00Z"'))).ok).toBe(false);
    // A failure must say its type, and a test case has one outcome at most.
    expect(validateJunit(written(xml.replace(/(<failure message="[^"]*") type="[^"]*"/, '$1'))).ok).toBe(false);
    expect(validateJunit(written(xml.replace(/(<failure [^>]*>)/, '<skipped/>$1'))).ok).toBe(false);
    // Inside <testsuites>, a suite says its position.
    expect(xml).toContain(' id="0"');
    expect(validateJunit(written(xml.replace(' id="0"', ''))).ok).toBe(false);
  });

  it.skipIf(xmllintMissing)(`has one testsuite per host/guest pair and one testcase per scenario${skipNote(xmllintMissing)}`, () => {
    const s = fixtureSummary();
    const file = written(buildJunitXml(s));
    expect(xpath(file, 'count(/testsuites/testsuite)')).toBe('5'); // 2 hosts x 2 guests + hv-03 / debian-12
    expect(xpath(file, 'string(/testsuites/testsuite[@name="hv-02 (10.0.26100.1742) / ubuntu-24.04"]/@tests)')).toBe('3');
    const names = xpath(file, '/testsuites/testsuite[@id="2"]/testcase/@name');
    expect(names).toContain('name="live-migrate-ring-full"');
    expect(names).toContain('name="save-restore-inflight-h2g"');
  });

  it.skipIf(xmllintMissing)(`puts the divergence message in the failure, typed by divergence class${skipNote(xmllintMissing)}`, () => {
    const s = fixtureSummary();
    const lost = s.jobs.find((j) => j.divergenceClass === 'lost')!;
    const file = written(buildJunitXml(s));
    const failure = '//testcase[@name="live-migrate-ring-full" and contains(@classname,"hv-02")]/failure';
    expect(xpath(file, `string(${failure}/@type)`)).toBe('lost');
    expect(xpath(file, `string(${failure}/@message)`)).toBe(lost.message);
    const text = xpath(file, `string(${failure})`);
    expect(text.startsWith(lost.message!)).toBe(true);
    expect(text).toContain(`first unexplained event: ${lost.firstUnexplained!.file}:16`);
    expect(text).toContain('minimized scenario: jobs/lmrf-hv-02-ubuntu-2404-9/minimized.yaml');
  });

  it.skipIf(xmllintMissing)(`reports a quarantined hang as skipped (saying so), a skip as skipped, an infra error as error${skipNote(xmllintMissing)}`, () => {
    const s = fixtureSummary('2026-11-22-nightly');
    const file = written(buildJunitXml(s));
    const hang = '//testsuite[@name="hv-01 (10.0.20348.2700) / ubuntu-24.04"]/testcase[@name="live-migrate-ring-full"]';
    expect(xpath(file, `string(${hang}/skipped/@message)`)).toMatch(/^quarantined until 2026-12-31: known Move-VM stall/);
    expect(xpath(file, `count(${hang}/failure)`)).toBe('0');
    const suite = '//testsuite[@name="hv-01 (10.0.20348.2700) / ubuntu-24.04"]';
    expect(xpath(file, `string(${suite}/@skipped)`)).toBe('1');
    expect(xpath(file, `string(${suite}/@failures)`)).toBe('0');

    const infra = written(buildJunitXml(fixtureSummary('2026-11-21-nightly')));
    const err = '//testsuite[@name="hv-02 (10.0.26100.1742) / debian-12"]/testcase[@name="save-restore-inflight-h2g"]/error';
    expect(xpath(infra, `string(${err}/@type)`)).toBe('infrastructure');
    expect(xpath(infra, `string(${err}/@message)`)).toMatch(/hv-02 unreachable/);
    expect(xpath(infra, 'string(//testsuite[@name="hv-02 (10.0.26100.1742) / debian-12"]/@errors)')).toBe('1');
  });

  it('drops the BEL character a driver left in a message', () => {
    const xml = buildJunitXml(fixtureSummary());
    expect(xml).toContain('for an even payload length"');
    expect(xml).not.toContain('\u0007');
  });

  it('names repeated scenarios in one suite apart by template and seed', () => {
    const s = summaryOf([
      job({ jobId: 'a', scenario: 'x', template: 't1', seed: 1 }),
      job({ jobId: 'b', scenario: 'x', template: 't2', seed: 1 }),
      job({ jobId: 'c', scenario: 'x', template: 't2', seed: 1 }),
    ]);
    const xml = buildJunitXml(s);
    expect(xml).toContain('name="x [t1, seed 1]"');
    expect(xml).toContain('name="x [t2, seed 1] (b)"');
    expect(xml).toContain('name="x [t2, seed 1] (c)"');
  });

  it('writes the timestamp without a zone, in UTC, as the schema requires', () => {
    const xml = buildJunitXml(summaryOf([job({ jobId: 'a' })], { startedAt: '2026-11-24T05:30:00+02:00' }));
    expect(xml).toContain('timestamp="2026-11-24T03:30:00"');
  });

  it('lists the evidence after the message', () => {
    const t = failureText(job({ jobId: 'a', verdict: 'hang', message: 'stuck', attempts: 2, evidence: { hostTrace: 'h.jsonl', artefacts: ['a.evtx'] } }));
    expect(t.split('\n')).toEqual([
      'stuck', 'host trace: h.jsonl', 'artefacts: a.evtx',
      "reproduce (from the run directory): bench check --scenario '<file of scenario s>' --trace h.jsonl",
      'attempts: 2', 'job: a (host hv-01, build 10.0.26100.1, guest ubuntu-24.04, template t, seed 1)',
    ]);
  });

  it('says when a job was checked for the device-independent properties only, passing or failing', () => {
    const notChecked = ['payload rules: not checked', 'status rules: not checked'];
    const xml = buildJunitXml(summaryOf([
      job({ jobId: 'p', verdict: 'pass', notChecked }),
      job({ jobId: 'f', scenario: 'other', verdict: 'diverge', divergenceClass: 'lost', message: 'lost one', notChecked }),
      job({ jobId: 'full', scenario: 'third', verdict: 'pass' }),
    ]));
    expect(xml).toContain('p: pass (device-independent properties only; payload and status rules not checked)');
    expect(xml).toMatch(/full: pass(?! \(device)/);
    const failure = failureText(job({ jobId: 'f', verdict: 'diverge', message: 'lost one', notChecked }));
    expect(failure).toContain('not checked (device-independent properties only):\n  - payload rules: not checked\n  - status rules: not checked');
  });

  it('the reporter writes the file in onRunEnd', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'bench-junit-')), 'junit.xml');
    await new JunitReporter({ file }).onRunEnd(fixtureSummary());
    expect(readFileSync(file, 'utf8')).toBe(buildJunitXml(fixtureSummary()));
  });
});
