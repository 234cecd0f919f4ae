// Reads the #define constants of lab/drivers/common/sample-protocol.h, so the tests can
// compare the C drivers' protocol table with devices/sample/protocol.ts.
//
// Only the forms the header uses are understood: a decimal or hex integer with optional
// u/ull suffix, a string literal, or a comma-separated list of integers (the GUID fields).
// Anything else is reported, so a new kind of definition cannot slip past the comparison.

import { readFileSync } from 'node:fs';

export type CValue =
  | { kind: 'int'; value: bigint }
  | { kind: 'string'; value: string }
  | { kind: 'list'; value: bigint[] };

const INT = /^(0x[0-9a-fA-F]+|\d+)(?:u|ull|ul|ll)?$/i;

function parseInt64(text: string): bigint | null {
  const m = INT.exec(text.trim());
  return m ? BigInt(m[1]!) : null;
}

/** Every object-like #define of the header (backslash continuations joined). */
export function readCDefines(path: string): Map<string, CValue> {
  const text = readFileSync(path, 'utf8').replace(/\\\n/g, ' ');
  const out = new Map<string, CValue>();
  for (const line of text.split('\n')) {
    const m = /^#define\s+(SP_[A-Z0-9_]+)\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const name = m[1]!;
    const body = m[2]!.replace(/\/\*.*?\*\//g, '').trim();
    if (body === '' || name === 'SP_APPLY') continue; // include guard, helper macro
    const int = parseInt64(body);
    if (int !== null) {
      out.set(name, { kind: 'int', value: int });
      continue;
    }
    const str = /^"([^"]*)"$/.exec(body);
    if (str) {
      out.set(name, { kind: 'string', value: str[1]! });
      continue;
    }
    const items = body.split(',').map((s) => parseInt64(s));
    if (items.length > 1 && items.every((v) => v !== null)) {
      out.set(name, { kind: 'list', value: items as bigint[] });
      continue;
    }
    throw new Error(`${path}: cannot read the value of ${name}: ${body}`);
  }
  return out;
}

export function cInt(defs: Map<string, CValue>, name: string): bigint {
  const v = defs.get(name);
  if (!v || v.kind !== 'int') throw new Error(`sample-protocol.h has no integer ${name}`);
  return v.value;
}
