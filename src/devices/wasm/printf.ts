// printf-style formatting for a driver's scnprintf/snprintf/printk, reading the
// variadic arguments from the driver's memory as clang's wasm32 ABI lays them out: a
// pointer to a buffer where each argument sits at its natural alignment (4 for int,
// long and pointers; 8 for long long and double).

import type { Linear } from './linear.ts';

export function formatC(mem: Linear, fmt: string, va: number): string {
  let at = va >>> 0;
  const i32 = (): number => {
    at = (at + 3) & ~3;
    const v = mem.u32(at);
    at += 4;
    return v;
  };
  const i64 = (): bigint => {
    at = (at + 7) & ~7;
    const lo = BigInt(mem.u32(at));
    const hi = BigInt(mem.u32(at + 4));
    at += 8;
    return (hi << 32n) | lo;
  };
  return fmt.replace(/%([-0 +#]*)(\d*)(?:\.(\d+))?(hh|h|ll|l|z|j|t)?([diuxXcsp%])/g, (_m, flags: string, width: string, _prec, len: string | undefined, conv: string) => {
    if (conv === '%') return '%';
    let text: string;
    const wide = len === 'll' || len === 'j';
    switch (conv) {
      case 'd':
      case 'i':
        text = wide ? BigInt.asIntN(64, i64()).toString() : String(i32() | 0);
        break;
      case 'u':
        text = wide ? i64().toString() : String(i32() >>> 0);
        break;
      case 'x':
      case 'X':
      case 'p': {
        const v = wide ? i64() : BigInt(i32() >>> 0);
        text = v.toString(16);
        if (conv === 'X') text = text.toUpperCase();
        if (conv === 'p') text = `0x${text}`;
        break;
      }
      case 'c':
        text = String.fromCharCode(i32() & 0xff);
        break;
      default:
        text = mem.cstring(i32());
    }
    const w = Number(width || 0);
    if (text.length < w) text = flags.includes('-') ? text.padEnd(w) : text.padStart(w, flags.includes('0') ? '0' : ' ');
    return text;
  });
}
