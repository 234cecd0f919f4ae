// The timeline of packet states around a divergence: an inline SVG with one row per
// transaction (direction + tx) and one row for the VM (save, restore, migrate,
// checkpoint), events left to right in trace order, the state each packet is in drawn as
// a coloured bar between its events, and the first unexplained event marked in red. The
// same events follow as a table, which is what screen readers and copy-paste use.
import type { TraceEvent } from '../trace/schema.ts';
import { fieldText } from './event-values.ts';
import { esc, STATE_COLOURS } from './html-style.ts';

/** The state a packet is in after each packet event. */
const STATE_AFTER: Readonly<Record<string, string>> = {
  'pkt.send': 'in ring',
  'pkt.queued': 'queued in library',
  'pkt.recv': 'received',
  'pkt.save': 'saved',
  'pkt.restore': 'restored',
  'pkt.complete': 'completed by receiver',
  'pkt.completion': 'done',
  'pkt.fail': 'failed',
  'pkt.timeout': 'given up (never sent)',
};

const SHORT: Readonly<Record<string, string>> = {
  'pkt.send': 'send', 'pkt.queued': 'queue', 'pkt.recv': 'recv', 'pkt.save': 'save', 'pkt.restore': 'restore',
  'pkt.complete': 'complete', 'pkt.completion': 'done', 'pkt.fail': 'fail', 'pkt.timeout': 'timeout', 'ch.state': 'state',
};

type AnyEvent = TraceEvent & Record<string, unknown>;

/** Whether `e` is the first unexplained event (seq alone may repeat across merged traces). */
export function isSameEvent(a: TraceEvent, b: TraceEvent): boolean {
  return a.seq === b.seq && a.side === b.side && a.ev === b.ev && a.src === b.src;
}

/** Row of an event: "h2g tx 7", "VM" for bench events, "host channel" for channel states. */
export function rowOf(e: AnyEvent): string {
  if (e.side === 'bench') return 'VM';
  if (typeof e.tx === 'number' && typeof e.dir === 'string') return `${e.dir} tx ${e.tx}${typeof e.ch === 'number' && e.ch !== 0 ? ` ch ${e.ch}` : ''}`;
  return `${e.side} channel`;
}

/**
 * The fields of an event that are not the common ones, in full (digests are never cut:
 * two that differ late would look equal), statuses with their names:
 * "status=C0000001 STATUS_UNSUCCESSFUL len=64".
 */
export function eventDetails(e: AnyEvent): string {
  const skip = new Set(['v', 'seq', 'src', 'side', 'ev', 'ch', 'tx', 'dir']);
  return Object.entries(e)
    .filter(([k]) => !skip.has(k))
    .map(([k, v]) => `${k}=${fieldText(k, v)}`)
    .join(' ');
}

const COL = 40;
const ROW = 26;
const LEFT = 118;
/** Room above the rows at least; more when a VM operation's slanted label needs it. */
const MIN_TOP = 46;
const LABEL_SLANT = 28; // degrees
/** Below the rows: the axis of sequence numbers, then on a line of its own the red marker's label. */
const AXIS_GAP = 14;
const HIT_GAP = 30;

/** The label a VM (bench) event gets above the rows. */
function opLabel(ev: string): string {
  return ev.replace(/^vm\./, '').replace(/^scenario\./, 'scenario ');
}

/**
 * How far a slanted label of `chars` characters (10 px type, about 6.2 px a character at
 * most in the fonts the page lists) rises above its baseline, plus room for the type itself.
 */
function slantRise(chars: number): number {
  return Math.ceil(chars * 6.2 * Math.sin((LABEL_SLANT * Math.PI) / 180)) + 12;
}

export function renderTimeline(events: readonly TraceEvent[], hit: TraceEvent | undefined): string {
  if (events.length === 0) return '';
  const evs = events as readonly AnyEvent[];
  const rows: string[] = ['VM'];
  for (const e of evs) {
    const r = rowOf(e);
    if (!rows.includes(r)) rows.push(r);
  }
  const hitIndex = hit ? evs.findIndex((e) => isSameEvent(e, hit)) : -1;
  // Invariant: every label lies inside the drawing: the slanted VM labels fit above the rows
  // (TOP), the last of them to the right (width), and the axis and the marker's label below,
  // on lines of their own. Text is measured only by a browser, so test/report/html-failures.test.ts
  // checks this in Chromium, label box by label box.
  const longest = Math.max(0, ...evs.filter((e) => e.side === 'bench').map((e) => opLabel(e.ev).length));
  const TOP = Math.max(MIN_TOP, slantRise(longest) + 8);
  const slantRun = Math.ceil(longest * 6.2 * Math.cos((LABEL_SLANT * Math.PI) / 180));
  const width = LEFT + evs.length * COL + Math.max(70, slantRun - COL / 2 + 8);
  const bottom = TOP + rows.length * ROW;
  const height = bottom + HIT_GAP + 10;
  const x = (i: number) => LEFT + i * COL + COL / 2;
  const y = (row: string) => TOP + rows.indexOf(row) * ROW + ROW / 2;
  const parts: string[] = [];

  // Zebra rows and their labels.
  rows.forEach((r, i) => {
    if (i % 2 === 0) parts.push(`<rect x="0" y="${TOP + i * ROW}" width="${width}" height="${ROW}" fill="#f6f8fa"/>`);
    parts.push(`<text class="row-label" x="8" y="${TOP + i * ROW + ROW / 2 + 4}" font-size="11.5" fill="#3b4450" font-weight="600">${esc(r)}</text>`);
  });

  // VM operations span all rows: a shaded band from *.begin to *.end, a line for the rest.
  const open = new Map<string, number>();
  evs.forEach((e, i) => {
    if (e.side !== 'bench') return;
    const m = /^(.*)\.(begin|end)$/.exec(e.ev);
    if (m && m[2] === 'begin') open.set(m[1]!, i);
    else if (m && open.has(m[1]!)) {
      const from = open.get(m[1]!)!;
      open.delete(m[1]!);
      parts.push(`<rect x="${x(from)}" y="${TOP}" width="${x(i) - x(from)}" height="${rows.length * ROW}" fill="#d9822b" fill-opacity=".10"/>`);
    }
    const label = opLabel(e.ev);
    parts.push(`<line x1="${x(i)}" y1="${TOP - 4}" x2="${x(i)}" y2="${TOP + rows.length * ROW}" stroke="#b0b8c2" stroke-dasharray="3 3"/>`);
    parts.push(`<text class="op-label" x="${x(i)}" y="${TOP - 8}" font-size="10" fill="#5b6572" transform="rotate(-${LABEL_SLANT} ${x(i)} ${TOP - 8})">${esc(label)}</text>`);
  });

  // Each packet's state between its events.
  const last = new Map<string, { i: number; state: string }>();
  evs.forEach((e, i) => {
    const state = STATE_AFTER[e.ev];
    if (!state) return;
    const r = rowOf(e);
    const prev = last.get(r);
    if (prev) {
      parts.push(`<line x1="${x(prev.i)}" y1="${y(r)}" x2="${x(i)}" y2="${y(r)}" stroke="${STATE_COLOURS[prev.state] ?? '#999'}" stroke-width="5" stroke-linecap="round"><title>${esc(prev.state)}</title></line>`);
    }
    last.set(r, { i, state });
  });
  // A packet still in flight at the end of the window: its state runs to the right edge.
  for (const [r, { i, state }] of last) {
    if (state === 'done' || state === 'failed') continue;
    parts.push(`<line x1="${x(i)}" y1="${y(r)}" x2="${width - 10}" y2="${y(r)}" stroke="${STATE_COLOURS[state] ?? '#999'}" stroke-width="5" stroke-dasharray="6 4"><title>${esc(state)} (at the end of the window)</title></line>`);
  }

  // Markers: host side squares, guest side circles; the unexplained event in red.
  evs.forEach((e, i) => {
    if (e.side === 'bench') return;
    const r = rowOf(e);
    const isHit = i === hitIndex;
    const fill = isHit ? '#d13a2c' : '#fff';
    const stroke = isHit ? '#8b1a10' : '#3b4450';
    const tip = `<title>${esc(`#${e.seq} ${e.side} ${e.ev} ${eventDetails(e)}`)}</title>`;
    parts.push(
      e.side === 'host'
        ? `<rect x="${x(i) - 5}" y="${y(r) - 5}" width="10" height="10" fill="${fill}" stroke="${stroke}" stroke-width="1.6">${tip}</rect>`
        : `<circle cx="${x(i)}" cy="${y(r)}" r="5.5" fill="${fill}" stroke="${stroke}" stroke-width="1.6">${tip}</circle>`,
    );
    parts.push(`<text class="mark-label" x="${x(i)}" y="${y(r) - 8}" font-size="9.5" text-anchor="middle" fill="${isHit ? '#8b1a10' : '#5b6572'}">${esc(SHORT[e.ev] ?? e.ev)}</text>`);
  });
  if (hitIndex >= 0) {
    const hx = x(hitIndex);
    parts.push(`<line x1="${hx}" y1="${TOP}" x2="${hx}" y2="${TOP + rows.length * ROW}" stroke="#d13a2c" stroke-width="1.5"/>`);
    parts.push(`<text class="hit-label" x="${hx}" y="${bottom + HIT_GAP}" font-size="11" font-weight="700" text-anchor="${hitIndex < 2 ? 'start' : 'middle'}" fill="#8b1a10">▲ first unexplained</text>`);
  }
  // The axis: sequence numbers along the bottom, every few events, on a line of their own
  // (the marker's label is one line lower, so the two never overlap).
  const every = Math.max(1, Math.ceil(evs.length / 16));
  parts.push(`<line x1="${LEFT}" y1="${bottom}" x2="${width - 10}" y2="${bottom}" stroke="#c3cad2"/>`);
  evs.forEach((e, i) => {
    if (i % every === 0 || i === hitIndex) parts.push(`<text class="axis" x="${x(i)}" y="${bottom + AXIS_GAP}" font-size="9.5" text-anchor="middle" fill="${i === hitIndex ? '#8b1a10' : '#8b949e'}">#${e.seq}</text>`);
  });

  const svg = `<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="Timeline of packet states around the divergence">${parts.join('')}</svg>`;
  return `<div class="scroll">${svg}</div>${stateLegend()}${eventTable(evs, hitIndex)}`;
}

function stateLegend(): string {
  const items = Object.entries(STATE_COLOURS)
    .map(([s, c]) => `<span><svg width="18" height="8" aria-hidden="true"><line x1="1" y1="4" x2="17" y2="4" stroke="${c}" stroke-width="5" stroke-linecap="round"/></svg> ${esc(s)}</span>`)
    .join('');
  return `<div class="legend">${items}<span>■ host side</span><span>● guest side</span></div>`;
}

function eventTable(evs: readonly AnyEvent[], hitIndex: number): string {
  const rows = evs
    .map((e, i) => {
      const cls = i === hitIndex ? ' class="hit"' : e.side === 'bench' ? ' class="benchrow"' : '';
      const mark = i === hitIndex ? ' ◀ first unexplained' : '';
      return `<tr${cls}><td>${e.seq}</td><td>${esc(e.side)}</td><td>${esc(e.ev)}${mark}</td><td>${esc(e.side === 'bench' ? '' : rowOf(e))}</td><td>${esc(STATE_AFTER[e.ev] ?? '')}</td><td>${esc(eventDetails(e))}</td></tr>`;
    })
    .join('');
  return `<table class="events"><thead><tr><th>seq</th><th>side</th><th>event</th><th>packet</th><th>state after</th><th>details</th></tr></thead><tbody>${rows}</tbody></table>`;
}
