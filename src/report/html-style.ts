// How report.html looks: the verdict palette (colour AND symbol AND word, so the page reads
// in greyscale and to a screen reader), the shared CSS, and the small HTML helpers every
// page uses. Everything is inline: the page never loads anything (see the CSP in `page`).
import { createHash } from 'node:crypto';
import type { Verdict } from './summary.ts';
import { escapeXml } from './xml.ts';

/** Escapes for HTML text and attribute values alike (one function: xml.ts). */
export const esc = (v: string | number): string => escapeXml(String(v), 'attr');

export interface VerdictLook {
  symbol: string;
  word: string;
  fg: string;
  bg: string;
}

export const VERDICT_LOOK: Readonly<Record<Verdict, VerdictLook>> = {
  pass: { symbol: '✓', word: 'pass', fg: '#0f5323', bg: '#d5f2da' },
  diverge: { symbol: '✗', word: 'diverge', fg: '#8b1a10', bg: '#ffd9d3' },
  hang: { symbol: '◔', word: 'hang', fg: '#7a3f00', bg: '#ffe2b5' },
  error: { symbol: '!', word: 'error', fg: '#3d3480', bg: '#e3e0f7' },
  skipped: { symbol: '–', word: 'skipped', fg: '#5b6169', bg: '#eef0f2' },
};

/** Colours of packet states in the timeline (timeline.ts names the states). */
export const STATE_COLOURS: Readonly<Record<string, string>> = {
  'in ring': '#3b82c4',
  'queued in library': '#8a63d2',
  received: '#1f9e89',
  saved: '#d9822b',
  restored: '#c2a300',
  'completed by receiver': '#5aa02c',
  done: '#9aa3ad',
  failed: '#d03b2f',
};

const verdictCss = Object.entries(VERDICT_LOOK)
  .map(([v, l]) => `.v-${v}{background:${l.bg};color:${l.fg}}`)
  .join('\n');

export const CSS = `
:root{--ink:#1d2430;--muted:#5b6572;--line:#d8dde3;--paper:#fff;--band:#f6f8fa;--accent:#2457a6}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;color:var(--ink);background:var(--band)}
main{max-width:1400px;margin:0 auto;padding:0 24px 48px}
header.top{background:#16202e;color:#e8edf3;padding:20px 24px 16px}
header.top .inner{max-width:1400px;margin:0 auto}
header.top h1{margin:0 0 4px;font-size:20px;font-weight:600;letter-spacing:.2px}
header.top .meta{color:#aeb9c6;font-size:13px}
header.top .meta b{color:#e8edf3;font-weight:600}
.status{display:inline-block;margin-left:10px;padding:2px 10px;border-radius:12px;font-size:13px;font-weight:700;vertical-align:2px}
.status.ok{background:#2f9e44;color:#fff}.status.fail{background:#d13a2c;color:#fff}.status.infra{background:#6d5fd3;color:#fff}
.counts{display:flex;flex-wrap:wrap;gap:8px;margin-top:12px}
.chip{display:inline-flex;gap:6px;align-items:baseline;padding:3px 10px;border-radius:6px;font-size:13px;font-weight:600}
.chip .n{font-size:16px}
nav.toc{position:sticky;top:0;z-index:5;background:var(--paper);border-bottom:1px solid var(--line);padding:8px 24px;font-size:13px}
nav.toc a{margin-right:18px;color:var(--accent);text-decoration:none;font-weight:600}
section{background:var(--paper);border:1px solid var(--line);border-radius:8px;margin:20px 0;padding:16px 20px}
section>h2{margin:0 0 10px;font-size:17px}
h3{font-size:15px;margin:18px 0 8px}
.legend{display:flex;flex-wrap:wrap;gap:8px 14px;align-items:center;font-size:12.5px;color:var(--muted);margin-bottom:8px}
.legend .sw{display:inline-block;min-width:58px;padding:1px 6px;border-radius:4px;text-align:center;font-weight:600}
.scroll{overflow-x:auto}
table{border-collapse:collapse}
table.matrix{font-size:12.5px;margin-bottom:6px}
table.matrix th{font-weight:600;background:var(--band);border:1px solid var(--line);padding:4px 6px}
table.matrix thead th:not(.scen){font-size:12px}
table.matrix.dense thead th:not(.scen){font-size:11.5px;min-width:84px}
table.matrix thead th{font-variant-numeric:tabular-nums;vertical-align:bottom}
table.matrix tr.group th{text-align:left;font-size:12px;letter-spacing:.02em}
table.matrix th.scen{text-align:left;position:sticky;left:0;z-index:1;max-width:260px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
table.matrix td.cell{border:1px solid #fff;min-width:120px;padding:0;text-align:center;font-weight:600;line-height:1.25}
table.matrix.dense td.cell{width:96px;min-width:84px}
table.matrix td.cell a,table.matrix td.cell span.t{display:block;padding:4px 6px;color:inherit;text-decoration:none}
table.matrix td.cell a:hover{outline:2px solid var(--accent);outline-offset:-2px}
table.matrix td.none{background:repeating-linear-gradient(45deg,#fafbfc 0 4px,#f0f2f4 4px 8px);color:#8b949e;font-weight:400}
table.matrix td.cell small.since{display:block;font-size:10px;font-weight:400;opacity:.85;margin-top:-3px;padding-bottom:3px}
.legend .sw.none{background:repeating-linear-gradient(45deg,#fafbfc 0 4px,#f0f2f4 4px 8px);color:#8b949e}
td.q{background-image:repeating-linear-gradient(135deg,rgba(255,255,255,.55) 0 5px,transparent 5px 10px)}
.badge{display:inline-block;margin-left:1px;padding:0 4px;border-radius:3px;font-size:10px;font-weight:700;text-transform:uppercase;vertical-align:1px}
.badge.new{background:#d13a2c;color:#fff}.badge.fixed{background:#2f9e44;color:#fff}.badge.changed{background:#6b7380;color:#fff}
.badge.q{background:#fff;color:#7a4100;border:1px solid currentColor}
.mixed{font-weight:400;opacity:.8}
label.filter{font-size:13px;color:var(--muted);display:inline-flex;gap:6px;align-items:center;margin:4px 0 8px}
body:has(#only-problems:checked) tr.all-pass{display:none}
table.plain{font-size:13px;width:100%}
table.plain th,table.plain td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
table.plain th{background:var(--band);font-weight:600}
table.plain td.num{text-align:right;font-variant-numeric:tabular-nums}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12.5px;font-weight:700;white-space:nowrap}
article.job{border:1px solid var(--line);border-left:5px solid;border-radius:6px;padding:12px 16px;margin:14px 0;background:#fff}
article.job h3{margin:0 0 6px;font-size:15px;display:flex;flex-wrap:wrap;gap:8px;align-items:center}
article.job .where{color:var(--muted);font-size:12.5px}
article.job .msg{font-size:14px;margin:8px 0;padding:8px 10px;background:var(--band);border-radius:4px;white-space:pre-wrap}
article.job h4{font-size:13px;margin:12px 0 4px;color:var(--muted);text-transform:uppercase;letter-spacing:.4px}
.props span{display:inline-block;margin:0 6px 4px 0;padding:1px 7px;border:1px solid #e0b4ae;background:#fff4f2;border-radius:4px;font-size:12.5px}
code,pre{font:12.5px/1.4 ui-monospace,"SFMono-Regular","DejaVu Sans Mono",Menlo,Consolas,monospace}
pre.ev{margin:4px 0;padding:8px 10px;background:#fff4f2;border:1px solid #f0c6c0;border-radius:4px;white-space:pre-wrap;word-break:break-all}
ul.expected{margin:4px 0;padding-left:20px}
table.events{font-size:12px;margin-top:6px}
table.events td,table.events th{padding:2px 8px;border-bottom:1px solid #eef0f2;text-align:left;font-family:ui-monospace,"DejaVu Sans Mono",monospace}
table.events tr.hit td{background:#ffe1dc;font-weight:700}
table.events tr.benchrow td{color:var(--muted)}
.since{font-size:13px;color:var(--muted)}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif}
footer{color:var(--muted);font-size:12px;text-align:center;margin:24px 0}
${verdictCss}
article.job.v-diverge,article.job.v-hang,article.job.v-error{background:#fff;color:var(--ink)}
article.job.v-diverge{border-left-color:${VERDICT_LOOK.diverge.fg}}
article.job.v-hang{border-left-color:${VERDICT_LOOK.hang.fg}}
article.job.v-error{border-left-color:${VERDICT_LOOK.error.fg}}
/* A jump to a card or section lands below the sticky bar (the script measures its height). */
[id]{scroll-margin-top:calc(var(--nav-h,40px) + 10px)}
details>summary{cursor:pointer}
details.group{border:1px solid var(--line);border-radius:6px;margin:10px 0;background:#fff}
details.group>summary{padding:8px 12px;font-weight:600;display:flex;flex-wrap:wrap;gap:6px 8px;align-items:center;list-style:none}
details.group>summary::-webkit-details-marker{display:none}
details.group>summary::before{content:'▸';color:var(--muted);width:.8em}
details.group[open]>summary::before{content:'▾'}
details.group[open]>summary{border-bottom:1px solid var(--line);background:var(--band)}
details.group>summary .count{display:inline-block;min-width:2.4em;padding:1px 6px;border-radius:10px;background:#16202e;color:#fff;text-align:center;font-variant-numeric:tabular-nums}
details.group>summary .prop{font-weight:600}
details.group>summary .pat{font-weight:400}
details.group .since{font-weight:400}
details.bgroup{margin:6px 12px 10px}
details.bgroup>summary{padding:4px 0;color:var(--muted)}
.filters{display:flex;flex-wrap:wrap;gap:8px 16px;align-items:center;margin:10px 0;padding:8px 10px;background:var(--band);border-radius:6px;font-size:13px}
.filters select{font:inherit;max-width:260px}
.filters .buttons{margin-left:auto;display:flex;gap:6px}
button{font:inherit;font-size:12.5px;padding:2px 10px;border:1px solid var(--line);border-radius:4px;background:#fff;cursor:pointer}
details.help{margin:6px 0 10px;font-size:13px}
details.help dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 14px;margin:8px 0 0 6px}
details.help dt{font-weight:600}details.help dd{margin:0}
.infra-box{border:1px solid #c9c2f0;border-left:5px solid ${VERDICT_LOOK.error.fg};border-radius:6px;padding:10px 14px;margin:10px 0;background:#fbfaff}
.infra-box h3{margin:0 0 6px;display:flex;flex-wrap:wrap;gap:8px;align-items:center}
.infra-box dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 14px;margin:6px 0;font-size:13.5px}
.infra-box dt{font-weight:600;color:var(--muted)}.infra-box dd{margin:0}
code.wrap{white-space:pre-wrap;word-break:break-all}
table.diff{width:auto;margin:4px 0}
table.diff td code{white-space:pre-wrap;word-break:break-all}
table.diff tr.differs td,table.diff tr.differs th{background:#ffe1dc}
.history{font-size:13px;color:var(--muted);margin:4px 0}
.strip{display:inline-flex;gap:2px;vertical-align:1px;margin-left:6px}
.strip .pill{padding:0 4px;font-size:11px;border-radius:3px}
b.flaky{color:#7a3f00}
.cmd{margin:4px 0}
.cmdline{display:flex;gap:6px;align-items:flex-start}
.cmdline pre{flex:1;margin:2px 0;padding:6px 8px;background:#f3f5f8;border:1px solid var(--line);border-radius:4px;white-space:pre-wrap;word-break:break-all}
pre.scenario{margin:4px 0;padding:8px 10px;background:#f3f5f8;border:1px solid var(--line);border-radius:4px;max-height:420px;overflow:auto}
[hidden]{display:none!important}
@media print{nav.toc{display:none}section{break-inside:avoid-page}}
`;

/**
 * A whole page. The Content-Security-Policy forbids every load (scripts, styles, fonts,
 * images, frames, connections) except the inline style, data: images and the page's own
 * inline script, allowed by its hash: the report is one file and must work offline, so
 * nothing may leave it even by accident, and no other script (say, markup a driver wrote
 * into a message that escaped escaping) could run.
 */
export function page(title: string, body: string, script?: string): string {
  const scriptSrc = script ? `; script-src 'sha256-${createHash('sha256').update(script).digest('base64')}'` : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:${scriptSrc}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
${body}${script ? `\n<script>${script}</script>` : ''}
</body>
</html>
`;
}

/** A verdict as a coloured pill that also says it in words. */
export function verdictPill(v: Verdict, text?: string): string {
  const l = VERDICT_LOOK[v];
  return `<span class="pill v-${v}">${l.symbol} ${esc(text ?? l.word)}</span>`;
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** "2026-11-24 03:00 UTC": dates in one zone, so two people read the same thing. */
export function formatDate(iso: string): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  return `${new Date(t).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}
