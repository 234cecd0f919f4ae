// The values of a failure, shown in full: the first unexplained event beside what the model
// expected there, field by field, with the fields that differ marked; NTSTATUS values with
// their names ("C0000001 STATUS_UNSUCCESSFUL", from the one name table in vmbus/status.ts).
// Pure.
import { statusName } from '../vmbus/status.ts';
import { stringifyWithIds } from '../trace/json-ids.ts';

/** "c0000001" -> "C0000001 STATUS_UNSUCCESSFUL"; a value without a known name stays as it is. */
export function statusLabel(hex: string): string {
  if (!/^[0-9a-fA-F]{8}$/.test(hex)) return hex;
  const name = statusName(Number.parseInt(hex, 16));
  const upper = hex.toUpperCase();
  return name.startsWith('STATUS_') ? `${upper} ${name}` : upper;
}

/** The NTSTATUS values a message mentions that have a name, labelled, each once: ["C0000001 STATUS_UNSUCCESSFUL"]. */
export function statusesIn(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(/\b[0-9A-Fa-f]{8}\b/g)) {
    const label = statusLabel(m[0]);
    if (label.includes(' STATUS_')) out.add(label);
  }
  return [...out];
}

/** A field's value as a person reads it: statuses named, everything else in full. */
export function fieldText(key: string, value: unknown): string {
  if (typeof value === 'string' && /status/i.test(key)) return statusLabel(value);
  return typeof value === 'string' ? value : stringifyWithIds(value);
}

/**
 * An expected alternative as the checker words it ("guest pkt.recv ch=0 dir=h2g tx=5
 * len=64 digest=…", see describeEvent in check/replay.ts): its side, event and fields.
 * Text that is not in that form gives undefined.
 */
export function parseDescribed(line: string): { side: string; ev: string; fields: Record<string, string> } | undefined {
  const m = /^(host|guest|bench) ([a-z][\w.]*)((?: [A-Za-z]\w*=\S*)*)$/.exec(line.trim());
  if (!m) return undefined;
  const fields: Record<string, string> = {};
  for (const kv of m[3]!.trim().split(' ').filter(Boolean)) {
    const at = kv.indexOf('=');
    fields[kv.slice(0, at)] = kv.slice(at + 1);
  }
  return { side: m[1]!, ev: m[2]!, fields };
}

export interface DiffRow {
  field: string;
  observed: string | undefined;
  /** One value per compared alternative (undefined: the alternative has no such field). */
  expected: (string | undefined)[];
  differs: boolean;
}

export interface ValueDiff {
  /** The alternatives compared, as the checker wrote them. */
  alternatives: string[];
  rows: DiffRow[];
}

const FIRST = ['side', 'ev', 'ch', 'dir', 'tx'];
const NOT_COMPARED = new Set(['v', 'seq', 'src']);

/**
 * The observed event against the expected alternatives of the same side and event (or, if
 * none, of the same event). Without a comparable alternative, the rows are the observed
 * fields alone. A field differs when some compared alternative has another value for it.
 */
export function valueDiff(event: Record<string, unknown>, expected: readonly string[]): ValueDiff {
  const parsed = expected.map((line) => ({ line, p: parseDescribed(line) })).filter((x) => x.p !== undefined);
  let alts = parsed.filter((x) => x.p!.side === event.side && x.p!.ev === event.ev);
  if (alts.length === 0) alts = parsed.filter((x) => x.p!.ev === event.ev);
  const fields = new Set<string>();
  for (const k of Object.keys(event)) if (!NOT_COMPARED.has(k)) fields.add(k);
  for (const a of alts) for (const k of Object.keys(a.p!.fields)) fields.add(k);
  const order = [...FIRST.filter((k) => fields.has(k)), ...[...fields].filter((k) => !FIRST.includes(k))];
  const rows = order.map((field): DiffRow => {
    const obs = event[field];
    const observed = obs === undefined ? undefined : fieldText(field, obs);
    const expectedValues = alts.map((a) => {
      const v = field === 'side' ? a.p!.side : field === 'ev' ? a.p!.ev : a.p!.fields[field];
      return v === undefined ? undefined : fieldText(field, v);
    });
    // A field an alternative does not mention is one it does not constrain.
    const differs = alts.some((_, i) => expectedValues[i] !== undefined && expectedValues[i] !== observed);
    return { field, observed, expected: expectedValues, differs };
  });
  return { alternatives: alts.map((a) => a.line), rows };
}
