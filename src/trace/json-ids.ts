// JSON text with 64-bit transaction ids, read and written without loss.
//
// The trace writes `tx` as a plain JSON integer whatever its size (DESIGN.md); a tx is a
// u64 (vmbus/tx-id.ts). JSON.parse turns an integer above 2^53 into the nearest double
// (18446744073709551615 reads as 2^64), so every place that parses a trace line goes
// through parseJsonExact: JSON.parse as before, and only when a parsed tx is an integer
// that a double cannot hold exactly (never the case for a trace whose ids are small) a
// second parse whose reviver reads that tx from its source text as a bigint.
// line-scanner.ts, the fast path, reads such a tx from the bytes itself.

import { U64_MAX, toTxId } from '../vmbus/tx-id.ts';

/** A parsed value whose `tx` (or, for an array, some element's `tx`) lost precision. */
function lostTx(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (lostTx(v[i])) return true;
    return false;
  }
  const tx = (v as { tx?: unknown }).tx;
  return typeof tx === 'number' && Number.isInteger(tx) && !Number.isSafeInteger(tx);
}

const DIGITS = /^[0-9]{1,20}$/;

/** Reviver (with the source-text access of JSON.parse) that reads a large `tx` exactly. */
function exactTx(this: unknown, key: string, value: unknown, context?: { source?: string }): unknown {
  if (key !== 'tx' || typeof value !== 'number' || Number.isSafeInteger(value)) return value;
  const src = context?.source;
  if (src === undefined || !DIGITS.test(src)) return value; // e.g. an exponent: left for the validator to refuse
  const b = BigInt(src);
  return b <= U64_MAX ? toTxId(b) : value;
}

/** JSON.parse, with a `tx` from 2^53 on read exactly as a bigint (at any depth of an array of events). */
export function parseJsonExact(text: string): unknown {
  const v: unknown = JSON.parse(text);
  if (!lostTx(v)) return v;
  return JSON.parse(text, exactTx as (this: unknown, key: string, value: unknown) => unknown);
}

/** JSON.stringify of an event whose `tx` is a bigint: written as the integer it is. */
export function stringifyExact(e: object): string {
  return JSON.stringify(e, (key, value: unknown) => (key === 'tx' && typeof value === 'bigint' ? rawJson(value.toString()) : value));
}

/**
 * JSON.stringify of anything that may hold transaction ids (a summary with its first
 * unexplained event and timeline, say): every bigint is written as the integer it is,
 * where plain JSON.stringify would throw.
 */
export function stringifyWithIds(value: unknown, space?: number): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? rawJson(v.toString()) : v), space);
}

// JSON.rawJSON (Node 21+): a value JSON.stringify writes as the given text.
const rawJson = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;
