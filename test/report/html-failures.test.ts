// The failures part of report.html at scale, in real headless Chromium (Debian's, through
// playwright-core): runs with 100 and 1,000 failures. Checked: groups start collapsed and the
// page's height then does not grow with the number of failures; every link on the page
// leads somewhere (an element of the page, or an evidence file that exists); filters, the
// jump from the matrix to a card (below the sticky bar), the day-one box, the commands and
// the timeline's labels. Time to render and page heights are written to
// test-artifacts/report/browser-timings.json (numbers to read, never asserted), and
// screenshots are kept beside them; grouped-failures.png is the README's picture
// (scripts/refresh-screenshots.sh copies it to docs/).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { HtmlReporter } from '../../src/report/html-reporter.ts';
import { publishSite } from '../../src/report/publish.ts';
import { chromiumMissing, launch } from './support/chromium.ts';
import { REPO } from './support/fixtures.ts';
import { manyFailuresRun } from './support/many-failures.ts';

const ARTIFACTS = join(REPO, 'test-artifacts', 'report');
const TIMINGS = join(ARTIFACTS, 'browser-timings.json');

// The page's DOM, typed loosely: the project compiles without the DOM library. Code passed
// to page.evaluate runs in the page, so it reaches the document itself (`G.document`).
type El = { getAttribute(n: string): string | null; getBoundingClientRect(): Box; textContent: string | null; classList: { contains(c: string): boolean }; querySelectorAll(s: string): Iterable<El>; open?: boolean };
type Box = { left: number; right: number; top: number; bottom: number; width: number; height: number };
type Doc = { querySelectorAll(s: string): Iterable<El>; documentElement: { scrollHeight: number } };
type G = { document: Doc; scrollTo(x: number, y: number): void; requestAnimationFrame(f: () => void): void };

interface Opened {
  page: Page;
  file: string;
  renderMs: number;
  loadMs: number;
  requests: string[];
  errors: string[];
}

async function openReport(context: BrowserContext, failures: number): Promise<Opened> {
  const { dir, summary } = manyFailuresRun(failures);
  const file = join(dir, 'report.html');
  const t0 = performance.now();
  await new HtmlReporter({ file }).onRunEnd(summary);
  const renderMs = performance.now() - t0;
  const page = await context.newPage();
  const requests: string[] = [];
  const errors: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  const t1 = performance.now();
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load', timeout: 240_000 });
  // One frame after load: the page has been laid out and painted once.
  await page.evaluate(() => new Promise((r) => (globalThis as unknown as G).requestAnimationFrame(() => r(null))));
  const loadMs = performance.now() - t1;
  return { page, file, renderMs, loadMs, requests, errors };
}

/** Every href on the page, and which of them lead nowhere. */
async function brokenLinks(o: Opened): Promise<{ total: number; broken: string[] }> {
  const hrefs = await o.page.evaluate(() => Array.from((globalThis as unknown as G).document.querySelectorAll('a[href]'), (a) => a.getAttribute('href')!));
  const broken: string[] = [];
  const ids = new Set(await o.page.evaluate(() => Array.from((globalThis as unknown as G).document.querySelectorAll('[id]'), (e) => e.getAttribute('id')!)));
  const base = pathToFileURL(o.file);
  for (const href of hrefs) {
    if (href.startsWith('#')) {
      if (!ids.has(decodeURIComponent(href.slice(1)))) broken.push(href);
    } else {
      const url = new URL(href, base);
      if (url.protocol !== 'file:' || !existsSync(fileURLToPath(url))) broken.push(href);
    }
  }
  return { total: hrefs.length, broken };
}

describe.skipIf(chromiumMissing)(`report.html with 100 and 1,000 failures in headless Chromium${chromiumMissing ? ` (skipped: ${chromiumMissing})` : ''}`, () => {
  let browser: { context: BrowserContext; close: () => Promise<void> };
  const opened = new Map<number, Opened>();
  const timings: Record<string, unknown> = {};

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await launch();
    for (const n of [100, 1000]) opened.set(n, await openReport(browser.context, n));
  }, 600_000);

  afterAll(async () => {
    if (Object.keys(timings).length) {
      writeFileSync(TIMINGS, `${JSON.stringify(timings, null, 2)}\n`);
      // Numbers to read, in the test output too; never asserted.
      console.log(`report.html in Chromium (${TIMINGS}): ${JSON.stringify(timings)}`);
    }
    await browser?.close();
  });

  for (const n of [100, 1000]) {
    it(`${n} failures: renders with no script error and no request beyond the file, groups collapsed, every link working`, async () => {
      const o = opened.get(n)!;
      expect(o.errors).toEqual([]);
      expect(o.requests).toEqual([pathToFileURL(o.file).href]);
      const state = await o.page.evaluate(() => {
        const d = (globalThis as unknown as G).document;
        const all = (sel: string) => Array.from(d.querySelectorAll(sel));
        return {
          groups: all('details.group').length,
          open: all('details.group[open]').length,
          counted: all('details.group').reduce((t, g) => t + Number(g.getAttribute('data-count')), 0),
          cards: all('#divergences article.job').length,
          height: d.documentElement.scrollHeight,
        };
      });
      const errors = Math.round(n / 10);
      expect(state.cards).toBe(n - errors);
      expect(state.counted).toBe(n - errors);
      // Six causes in the data: one group each, closed at first.
      expect(state.groups).toBe(6);
      expect(state.open).toBe(0);
      // With groups collapsed the page stays short, whatever the number of failures.
      expect(state.height).toBeLessThan(6000);
      const links = await brokenLinks(o);
      expect(links.broken).toEqual([]);
      expect(links.total).toBeGreaterThan(n);
      await o.page.evaluate(() => (globalThis as unknown as G).scrollTo(0, 0));
      await o.page.screenshot({ path: join(ARTIFACTS, `failures-${n}.png`) });
      timings[`failures${n}`] = { renderHtmlMs: Math.round(o.renderMs), browserLoadMs: Math.round(o.loadMs), pageHeightCollapsedPx: state.height, htmlBytes: readFileSync(o.file).length, links: links.total };
    }, 300_000);
  }

  it('publishes a site whose index and report links all work, evidence included', async () => {
    const o = opened.get(100)!;
    const root = dirname(dirname(o.file));
    const dest = join(root, 'site');
    const r = await publishSite(dest, { historyPath: join(root, 'history.sqlite'), resultsRoot: root });
    // 90 divergences and hangs: a minimised scenario, a trace and a log each, all under the cap.
    expect(r.evidence).toMatchObject({ copied: 270, overCap: 0, missing: 0 });
    for (const file of [join(dest, 'index.html'), join(dest, 'runs', r.runs[0]!, 'report.html')]) {
      const page = await browser.context.newPage();
      await page.goto(pathToFileURL(file).href, { waitUntil: 'load', timeout: 120_000 });
      const links = await brokenLinks({ ...o, page, file });
      expect(links.broken).toEqual([]);
      expect(links.total).toBeGreaterThan(file.endsWith('index.html') ? 0 : 270);
      await page.close();
    }
  }, 300_000);

  it('keeps the page height the same with 10 times the failures, as long as groups are collapsed', async () => {
    const h = async (n: number) => opened.get(n)!.page.evaluate(() => (globalThis as unknown as G).document.documentElement.scrollHeight);
    // The matrix and the day-one box are the same size; only group counts change.
    expect(Math.abs((await h(1000)) - (await h(100)))).toBeLessThan(200);
  }, 120_000);

  it('sums up the day-one failures in one box per cause: which hosts, why, what to do', async () => {
    const page = opened.get(100)!.page;
    const boxes = page.locator('#infra .infra-box');
    expect(await boxes.count()).toBe(1);
    const text = await boxes.first().innerText();
    expect(text).toMatch(/10 jobs\s+2 hosts failed preflight: reachable: connect ECONNREFUSED <address>/);
    expect(text).toContain('hv-07 hv-08');
    expect(text).toContain('The bench could not reach the host');
    expect(text).toContain('--resume 2026-11-24-nightly-100');
    // Its jobs are listed once, collapsed, and are what the matrix's error cells link to.
    expect(await page.locator('#infra details.jobs tbody tr').count()).toBe(10);
  }, 120_000);

  it('filters by class, host build, guest and scenario, and says how many are shown', async () => {
    const page = opened.get(100)!.page;
    await page.selectOption('select[data-filter="class"]', 'status');
    const visible = await page.evaluate(() => Array.from((globalThis as unknown as G).document.querySelectorAll('#divergences article.job:not([hidden])'), (c) => c.getAttribute('data-class')));
    expect(visible.length).toBe(15);
    expect(new Set(visible)).toEqual(new Set(['status']));
    expect(await page.locator('details.group:not([hidden])').count()).toBe(1);
    expect(await page.locator('#filter-count').innerText()).toBe('15 of 90 shown');
    await page.selectOption('select[data-filter="build"]', '10.0.20348.2700');
    const both = await page.evaluate(() => Array.from((globalThis as unknown as G).document.querySelectorAll('#divergences article.job:not([hidden])'), (c) => `${c.getAttribute('data-class')} ${c.getAttribute('data-build')}`));
    expect(both.length).toBeGreaterThan(0);
    expect(new Set(both)).toEqual(new Set(['status 10.0.20348.2700']));
    await page.selectOption('select[data-filter="class"]', '');
    await page.selectOption('select[data-filter="build"]', '');
    await page.selectOption('select[data-filter="guest"]', 'rhel-9.4');
    await page.selectOption('select[data-filter="scenario"]', 'live-migrate-03');
    const gs = await page.evaluate(() => Array.from((globalThis as unknown as G).document.querySelectorAll('#divergences article.job:not([hidden])'), (c) => `${c.getAttribute('data-guest')} ${c.getAttribute('data-scenario')}`));
    expect(new Set(gs)).toEqual(new Set(['rhel-9.4 live-migrate-03']));
    await page.selectOption('select[data-filter="guest"]', '');
    await page.selectOption('select[data-filter="scenario"]', '');
    expect(await page.locator('#filter-count').innerText()).toBe('all 90 shown');
  }, 120_000);

  it('jumps from a matrix cell to its card, opening its group, with the card below the sticky bar', async () => {
    const page = opened.get(100)!.page;
    const link = page.locator('td[data-verdict="diverge"] a').first();
    const href = (await link.getAttribute('href'))!;
    await link.click();
    const card = page.locator(href);
    await expect(card.isVisible()).resolves.toBe(true);
    const nav = (await page.locator('nav.toc').boundingBox())!;
    const box = (await card.boundingBox())!;
    expect(box.y).toBeGreaterThanOrEqual(nav.y + nav.height);
    expect(box.y).toBeLessThan(nav.y + nav.height + 40);
  }, 120_000);

  it('shows a card\'s values in full, statuses named, and commands that reproduce it', async () => {
    const page = opened.get(100)!.page;
    await page.evaluate(() => {
      for (const d of (globalThis as unknown as G).document.querySelectorAll('details.group, details.bgroup')) d.open = true;
    });
    // A status divergence: observed C0000001, the rule says 00000000; the field is marked.
    const card = page.locator('article.job[data-class="status"]').first();
    const diff = await card.locator('table.diff tr.differs').allInnerTexts();
    expect(diff).toEqual([expect.stringMatching(/^status ≠\s+C0000001 STATUS_UNSUCCESSFUL\s+00000000 STATUS_SUCCESS$/)]);
    // Digests in full: 32 hex digits, nowhere cut with an ellipsis.
    const text = await card.innerText();
    expect(text).toMatch(/digest\s+[0-9a-f]{32}/);
    expect(text).toContain('Statuses above: C0000001 STATUS_UNSUCCESSFUL, 00000000 STATUS_SUCCESS');
    expect(text).not.toMatch(/[0-9a-f]{6}…/);
    const cmds = await card.locator('.cmdline pre').allInnerTexts();
    expect(cmds[0]).toMatch(/^bench check --scenario \/srv\/bench\/scenarios\/[\w-]+\.yaml --trace jobs\/j\d+\/trace\.jsonl/);
    expect(cmds.some((c) => /^bench emulate jobs\/j\d+\/minimized\.yaml --seed \d+/.test(c))).toBe(true);
    expect(cmds.some((c) => /^bench explore \/srv\/bench\/scenarios\/[\w-]+\.yaml --seed \d+/.test(c))).toBe(true);
    expect(await card.locator('pre.scenario').innerText()).toMatch(/^name: [\w-]+-min\nchannels: 1/);
    // A job run with a fault mode says so in its commands.
    const faulted = await page.locator('article.job').evaluateAll((cards) => cards.map((c) => (c as unknown as { innerText: string }).innerText).filter((t) => t.includes('--fault drop-saved-packet')).length);
    expect(faulted).toBeGreaterThan(0);
    // The copy button selects the command (and copies it where the clipboard API allows).
    await card.locator('button[data-copy]').first().click();
    await expect(card.locator('button[data-copy]').first().innerText()).resolves.toMatch(/^(copied|selected)$/);
    expect(await page.evaluate(() => String((globalThis as unknown as { getSelection(): unknown }).getSelection()))).toBe(cmds[0]);
  }, 120_000);

  it('keeps the timeline\'s labels inside the drawing, and off the axis', async () => {
    const page = opened.get(100)!.page;
    const problems = await page.evaluate(() => {
      const out: string[] = [];
      const overlap = (a: Box, b: Box) => a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
      for (const svg of Array.from((globalThis as unknown as G).document.querySelectorAll('svg.timeline')).slice(0, 60)) {
        const frame = svg.getBoundingClientRect();
        const texts = Array.from(svg.querySelectorAll('text'));
        for (const t of texts) {
          const b = t.getBoundingClientRect();
          if (b.left < frame.left - 0.5 || b.right > frame.right + 0.5 || b.top < frame.top - 0.5 || b.bottom > frame.bottom + 0.5) out.push(`outside: ${t.textContent}`);
        }
        const axis = texts.filter((t) => t.classList.contains('axis'));
        for (const a of axis) for (const t of texts) if (t !== a && overlap(a.getBoundingClientRect(), t.getBoundingClientRect())) out.push(`${a.textContent} overlaps ${t.textContent}`);
      }
      return out;
    });
    expect(problems).toEqual([]);
  }, 120_000);

  it('keeps a screenshot of the grouped failure view (the README\'s picture)', async () => {
    const page = opened.get(100)!.page;
    await page.evaluate(() => {
      const ds = Array.from((globalThis as unknown as G).document.querySelectorAll('#divergences details'));
      for (const d of ds) d.open = false;
      const first = (globalThis as unknown as G).document.querySelectorAll('#divergences details.group');
      for (const g of first) {
        g.open = true;
        break;
      }
    });
    const png = await page.locator('#divergences').screenshot({ path: join(ARTIFACTS, 'grouped-failures.png') });
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    // The README shows the committed copy (scripts/refresh-screenshots.sh refreshes it).
    expect(readFileSync(join(REPO, 'README.md'), 'utf8')).toContain('](docs/report-grouped-failures.png)');
    expect(readFileSync(join(REPO, 'docs', 'report-grouped-failures.png')).subarray(1, 4).toString()).toBe('PNG');
  }, 120_000);
});
