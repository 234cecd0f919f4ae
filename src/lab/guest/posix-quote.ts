// The one way a value reaches a guest's POSIX shell (DESIGN.md, "The lab").
//
// A value is wrapped in single quotes; inside single quotes a POSIX shell gives no
// character a meaning except the closing quote, so each ' becomes '\'' (close, an
// escaped quote, reopen). That covers spaces, $(), backticks, globs, newlines, leading
// dashes and any byte sequence. NUL cannot be passed in an argument at all, so it is
// refused rather than silently cut.
//
// Commands are `ShellCommand` values, not strings: `exec` takes only what `sh` or
// `shArgv` built, so a caller cannot splice an unquoted string into a remote command by
// accident. Binary or bulky data goes as base64 on stdin instead (see GuestSsh.upload).

const BRAND: unique symbol = Symbol('ShellCommand');

export interface ShellCommand {
  readonly script: string;
  readonly [BRAND]: true;
}

export function shQuote(value: string | number): string {
  const text = String(value);
  if (text.includes('\0')) throw new TypeError('a shell argument cannot contain a NUL byte');
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * Tagged template: the literal parts are trusted script text written in our source;
 * every interpolation is quoted. An array interpolates as several quoted words, and a
 * ShellCommand is embedded as-is (it was built by this module).
 */
export function sh(strings: TemplateStringsArray, ...values: Array<string | number | readonly (string | number)[] | ShellCommand>): ShellCommand {
  let script = strings[0] ?? '';
  values.forEach((v, i) => {
    script += isShellCommand(v) ? v.script : Array.isArray(v) ? v.map(shQuote).join(' ') : shQuote(v as string | number);
    script += strings[i + 1] ?? '';
  });
  return make(script);
}

/** A command from an argument vector: every word quoted. */
export function shArgv(argv: readonly (string | number)[]): ShellCommand {
  if (argv.length === 0) throw new TypeError('empty command');
  return make(argv.map(shQuote).join(' '));
}

export function isShellCommand(v: unknown): v is ShellCommand {
  return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[BRAND] === true;
}

function make(script: string): ShellCommand {
  return Object.freeze({ script, [BRAND]: true as const });
}
