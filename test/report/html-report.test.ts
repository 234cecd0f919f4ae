// report.html in real headless Chromium (Debian's chromium through playwright-core): it
// renders, the matrix holds the expected cells in colour and in words, the failure cards
// and trends are there, and no request leaves the page. A screenshot of the page is kept
// in test-artifacts/report/ for people to look at.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { buildReports } from '../../src/report/build.ts';
import fc from 'fast-check';
import { deviceGroups, renderReport } from '../../src/report/html-report.ts';
import { REPORT_SCRIPT } from '../../src/report/html-script.ts';
import { syntheticSummary } from '../../src/report/perf.ts';
import { chromiumMissing, launch } from './support/chromium.ts';
import { fixtureSummary, LATEST, REPO, resultsRoot } from './support/fixtures.ts';

const ARTIFACTS = join(REPO, 'test-artifacts', 'report');

describe('report.html without a browser', () => {
  it('loads nothing from anywhere, and runs only its own inline script, allowed by its hash', () => {
    const html = renderReport(syntheticSummary(5, 3, 2), undefined);
    expect(html).not.toMatch(/<link|<iframe|<img|@import|url\(|src=/i);
    const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)];
    expect(scripts.map((m) => m[1])).toEqual([REPORT_SCRIPT]);
    expect(html.match(/<script/g)).toHaveLength(1);
    const hash = createHash('sha256').update(REPORT_SCRIPT).digest('base64');
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-${hash}'"`);
  });

  it('says in its header how many jobs were checked for the device-independent properties only', () => {
    const s = fixtureSummary();
    expect(renderReport(s, undefined)).not.toContain('properties only');
    s.jobs[0]!.notChecked = ['payload rules: not checked'];
    s.jobs[1]!.notChecked = ['payload rules: not checked'];
    expect(renderReport(s, undefined)).toContain('2 job(s) were checked for the device-independent properties only: payload and status rules were not checked');
    // A failing job's card lists what was left out of its check.
    const failing = s.jobs.find((j) => j.verdict === 'diverge')!;
    failing.notChecked = ['status rules: not checked'];
    expect(renderReport(s, undefined)).toContain('<h4>Not checked for this job</h4><ul><li>status rules: not checked</li></ul>');
  });

  it('groups the matrix rows by device when the run tested several (the emulated nightly: sample and blockq)', () => {
    const s = fixtureSummary();
    expect(renderReport(s, undefined)).not.toContain('device: ');
    const names = [...new Set(s.jobs.map((j) => j.scenario))];
    for (const j of s.jobs) j.device = names.indexOf(j.scenario) === 0 ? 'blockq' : 'sample';
    const html = renderReport(s, undefined);
    const groups = [...html.matchAll(/<th scope="rowgroup"[^>]*>device: ([^<]+)<\/th>/g)].map((m) => m[1]);
    expect(new Set(groups)).toEqual(new Set(['blockq', 'sample']));
    // Each group's rows follow its heading: blockq's one scenario sits under "device: blockq".
    const table = html.slice(html.indexOf('<table class="matrix'), html.indexOf('</table>'));
    const blockqBody = table.split('<tbody>').find((b) => b.includes('device: blockq'))!;
    expect(blockqBody).toContain(`title="${names[0]}"`);
    expect(blockqBody).not.toContain(`title="${names[1]}"`);
  });

  it('property: the device groups hold every scenario once, in matrix order within each group', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 4 }), { maxLength: 12 }), fc.array(fc.constantFrom('a', 'b', 'c')), (scenarios, ds) => {
        const devices = new Map(scenarios.flatMap((sc, i) => (ds[i] ? [[sc, ds[i]!] as const] : [])));
        const groups = deviceGroups(scenarios, devices);
        expect(groups.flatMap((g) => g.scenarios).sort()).toEqual([...scenarios].sort());
        for (const g of groups) expect(g.scenarios).toEqual(scenarios.filter((x) => g.scenarios.includes(x)));
        if (new Set(scenarios.map((x) => devices.get(x) ?? '')).size <= 1) expect(groups.map((g) => g.device)).toEqual([null]);
        else expect(groups.every((g) => g.device !== null)).toBe(true);
      }),
    );
  });

  it('is the same bytes for the same summary and trends', () => {
    expect(renderReport(fixtureSummary(), undefined)).toBe(renderReport(fixtureSummary(), undefined));
  });

  it('escapes whatever a driver wrote into a message', () => {
    const s = fixtureSummary();
    s.jobs[9]!.message = '<img src=x onerror=alert(1)> "quoted"';
    const html = renderReport(s, undefined);
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
  });
});

describe.skipIf(chromiumMissing)(`report.html in headless Chromium${chromiumMissing ? ` (skipped: ${chromiumMissing})` : ''}`, () => {
  let browser: { context: BrowserContext; close: () => Promise<void> };
  let page: Page;
  const requests: string[] = [];
  const blocked: string[] = [];
  let reportUrl: string;
  const allowed = new Set<string>();

  beforeAll(async () => {
    const root = resultsRoot();
    const r = await buildReports(join(root, LATEST));
    expect(r.failures).toEqual([]);
    reportUrl = pathToFileURL(join(root, LATEST, 'report.html')).href;
    allowed.add(reportUrl);
    browser = await launch();
    page = await browser.context.newPage();
    page.on('request', (req) => requests.push(req.url()));
    // Every request is intercepted: the report itself may load, anything else is aborted
    // and recorded, so a stray reference fails the test instead of reaching the network.
    await browser.context.route('**/*', async (route) => {
      const url = route.request().url();
      if (allowed.has(url)) await route.continue();
      else {
        blocked.push(url);
        await route.abort();
      }
    });
    await page.goto(reportUrl);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
  });

  it('renders the run header with status and counts', async () => {
    await expect(page.title()).resolves.toBe('✗ 2026-11-22-nightly · VMBus compatibility');
    const header = await page.locator('header.top').innerText();
    expect(header).toContain('DIVERGENCES FOUND');
    expect(header).toMatch(/9\s*pass/);
    expect(header).toMatch(/1\s*quarantined/);
  });

  it('shows one matrix per guest with a cell per host build and scenario, in words and colour', async () => {
    expect(await page.locator('table.matrix').count()).toBe(2);
    // The page's DOM, typed loosely: the project compiles without the DOM library.
    type Dom = { getComputedStyle(e: unknown): { backgroundColor: string } };
    const cells = await page.locator('table.matrix').evaluateAll((tables) =>
      tables.flatMap((t) =>
        [...t.querySelectorAll('tbody tr')].flatMap((tr) => {
          const scenario = tr.querySelector('th')!.textContent;
          const builds = [...t.querySelectorAll('thead th')].slice(1).map((th) => th.textContent);
          return [...tr.querySelectorAll('td')].map((td, i) => ({
            key: `${t.getAttribute('data-guest')} | ${builds[i]} | ${scenario}`,
            text: (td as unknown as { innerText: string }).innerText.replace(/\s+/g, ' ').trim(),
            bg: (globalThis as unknown as Dom).getComputedStyle(td).backgroundColor,
          }));
        }),
      ),
    );
    expect(cells).toHaveLength(12);
    const byKey = Object.fromEntries(cells.map((c) => [c.key, c]));
    expect(byKey['ubuntu-24.04 | 10.0.26100.1742 | live-migrate-ring-full']?.text).toBe('✗ lost since …11-21-nightly');
    expect(byKey['ubuntu-24.04 | 10.0.20348.2700 | live-migrate-ring-full']?.text).toBe('◔ hang NEW Q');
    expect(byKey['debian-12 | 10.0.26100.1742 | checkpoint-apply-discards-future']?.text).toBe('✗ status 1/2 NEW');
    expect(byKey['debian-12 | 10.0.20348.2700 | checkpoint-apply-discards-future']?.text).toBe('✓ pass FIXED');
    expect(byKey['debian-12 | 10.0.20348.2700 | save-restore-inflight-h2g']?.text).toBe('– skip CHANGED');
    expect(byKey['ubuntu-24.04 | 10.0.20348.2700 | save-restore-inflight-h2g']?.text).toBe('✓ pass');
    // Colour backs the words: pass cells are green, divergences red.
    expect(byKey['ubuntu-24.04 | 10.0.20348.2700 | save-restore-inflight-h2g']?.bg).toBe('rgb(213, 242, 218)');
    expect(byKey['ubuntu-24.04 | 10.0.26100.1742 | live-migrate-ring-full']?.bg).toBe('rgb(255, 217, 211)');
  });

  it('links a failing cell to its divergence card with the first unexplained event and the timeline', async () => {
    await page.locator('td[data-verdict="diverge"] a', { hasText: 'lost' }).click();
    expect(new URL(page.url()).hash).toBe('#job-lmrf-hv-02-ubuntu-2404-9');
    const card = page.locator('#job-lmrf-hv-02-ubuntu-2404-9');
    await expect(card.isVisible()).resolves.toBe(true);
    const text = await card.innerText();
    expect(text).toContain('jobs/lmrf-hv-02-ubuntu-2404-9/trace.jsonl:16');
    expect(text).toContain('pkt.restore h2g tx 5');
    expect(text).toMatch(/In this state since 2026-11-21-nightly \(2 runs\)/);
    expect(await card.locator('svg.timeline').count()).toBe(1);
    // The cell's last runs, oldest first: passed on 11-20, lost since 11-21.
    expect(await card.locator('.history .strip .pill').evaluateAll((ps) => ps.map((p) => p.getAttribute('title')))).toEqual([
      '2026-11-20-nightly: pass', '2026-11-21-nightly: lost', '2026-11-22-nightly: lost',
    ]);
    // Its group opened on the way (the jump opens what the card is in), and it sits below the sticky bar.
    const nav = (await page.locator('nav.toc').boundingBox())!;
    expect((await card.boundingBox())!.y).toBeGreaterThanOrEqual(nav.y + nav.height);
    expect(await card.locator('table.events tr.hit').innerText()).toMatch(/55\s+guest\s+pkt\.recv ◀ first unexplained/);
  });

  it('lists what changed since the previous run and the history of the lab', async () => {
    expect(await page.locator('#changes tbody tr').count()).toBe(5);
    expect(await page.locator('#history table.runs tbody tr').count()).toBe(3);
  });

  it('hides all-passing scenarios when asked, with CSS alone', async () => {
    const visibleRows = () => page.locator('table.matrix tbody tr:visible').count();
    expect(await visibleRows()).toBe(6);
    await page.locator('#only-problems').check();
    // Left: the lost migration (ubuntu) and the status divergence (debian); a skip is no problem.
    expect(await visibleRows()).toBe(2);
    await page.locator('#only-problems').uncheck();
  });

  it('links only evidence that is in the run directory, and says so of the rest', async () => {
    const hrefs = await page.locator('a[href]').evaluateAll((as) => as.map((a) => a.getAttribute('href')!));
    const files = hrefs.filter((h) => !h.startsWith('#'));
    // The fixture run keeps one evidence file of its failing jobs: the lost migration's trace.
    expect(files).toEqual(['jobs/lmrf-hv-02-ubuntu-2404-9/trace.jsonl']);
    for (const f of files) expect(existsSync(fileURLToPath(new URL(f, reportUrl)))).toBe(true);
    expect(await page.locator('#job-lmrf-hv-02-ubuntu-2404-9').innerText()).toContain('jobs/lmrf-hv-02-ubuntu-2404-9/host.jsonl (not found in the run directory)');
  });

  it('makes no request beyond the report file itself', () => {
    expect(blocked).toEqual([]);
    expect(requests).toEqual([reportUrl]);
  });

  it('keeps a screenshot in test-artifacts/report/', async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.evaluate(() => (globalThis as unknown as { scrollTo(x: number, y: number): void }).scrollTo(0, 0));
    const png = await page.screenshot({ path: join(ARTIFACTS, 'report.png'), fullPage: true });
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(png.length).toBeGreaterThan(50_000);
  });

  it('renders the 1,500-job synthetic report and keeps its screenshot too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-big-'));
    const file = join(dir, 'report.html');
    writeFileSync(file, renderReport(syntheticSummary(), undefined));
    const big = await browser.context.newPage();
    const url = pathToFileURL(file).href;
    allowed.add(url);
    const seen: string[] = [];
    big.on('request', (r) => seen.push(r.url()));
    await big.goto(url);
    expect(await big.locator('table.matrix td.cell').count()).toBe(1500);
    await big.screenshot({ path: join(ARTIFACTS, 'report-1500.png'), clip: { x: 0, y: 0, width: 1280, height: 1400 } });
    expect(seen).toEqual([url]);
    expect(blocked).toEqual([]);
    await big.close();
  });
});
