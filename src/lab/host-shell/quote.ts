// The one way a value becomes PowerShell script text (DESIGN.md, "The lab").
//
// A single-quoted string is the only PowerShell literal in which nothing is interpreted:
// no `$` expansion, no subexpressions, no backtick escapes. Its one special character is
// the quote itself, which is written twice to stand for itself. PowerShell's tokenizer
// counts four more characters as single quotes: U+2018 ‘, U+2019 ’, U+201A ‚, U+201B ‛
// (editors "smarten" quotes, and PowerShell accepts them). Any of them ends the literal,
// so each is doubled too. Doubling a character with itself makes the escaped pair decode
// to exactly that character, whichever of the five it is.
//
// Bulk data, and anything that must survive a transport byte for byte, goes as base64
// (`base64Text`, `base64Bytes`): the alphabet has no quote, `$`, backtick or line break.

/** Characters PowerShell treats as a single quote inside a single-quoted string. */
export const SINGLE_QUOTES: readonly string[] = ["'", '\u2018', '\u2019', '\u201A', '\u201B'];
const QUOTE_RE = /['\u2018-\u201B]/g;

/** A string that cannot be encoded for the shell (a lone UTF-16 surrogate). */
export class UnquotableValueError extends Error {
  constructor(what: string) {
    super(`cannot pass ${what} to PowerShell: it holds a lone UTF-16 surrogate, which has no UTF-8 form`);
    this.name = 'UnquotableValueError';
  }
}

/** `value` as a PowerShell single-quoted literal that evaluates to exactly `value`. */
export function quote(value: string): string {
  if (!value.isWellFormed()) throw new UnquotableValueError('a string');
  return `'${value.replace(QUOTE_RE, (q) => q + q)}'`;
}

/** An expression that evaluates to `text`, sent as base64 of its UTF-8 bytes. */
export function base64Text(text: string): string {
  if (!text.isWellFormed()) throw new UnquotableValueError('a text');
  const b64 = Buffer.from(text, 'utf8').toString('base64');
  return `([System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String('${b64}')))`;
}

/** An expression that evaluates to a `byte[]` holding `bytes`. */
export function base64Bytes(bytes: Uint8Array): string {
  return `([System.Convert]::FromBase64String('${Buffer.from(bytes).toString('base64')}'))`;
}

/**
 * A number as a PowerShell literal. Integers beyond 2^53 cannot be held exactly by a JS
 * number, so they are refused rather than silently rounded.
 */
export function numberLiteral(n: number | bigint): string {
  if (typeof n === 'bigint') return n.toString();
  if (!Number.isFinite(n)) throw new RangeError(`cannot pass ${n} to PowerShell`);
  if (Number.isInteger(n) && !Number.isSafeInteger(n)) throw new RangeError(`integer ${n} is beyond 2^53; pass a bigint`);
  // String(n) may use an exponent (1e+21); PowerShell reads `1e+21` as a double too.
  return String(n);
}
