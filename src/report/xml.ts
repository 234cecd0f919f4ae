// The one escaping function for XML and HTML output (junit.xml, report.html).
//
// XML 1.0 allows only #x9, #xA, #xD, #x20-#xD7FF, #xE000-#xFFFD and #x10000-#x10FFFF.
// Anything else (NUL, other C0 controls, lone surrogates, U+FFFE/U+FFFF) cannot be
// written at all, not even as a character reference, so it is dropped. Trace events and
// error messages come from drivers and remote shells and may contain any of those.

// The `u` flag makes the class see code points, so valid surrogate pairs survive and
// lone surrogates match the catch-all.
const ILLEGAL = /[^\t\n\r\u{20}-\u{D7FF}\u{E000}-\u{FFFD}\u{10000}-\u{10FFFF}]/gu;

const NEEDS_ESCAPE = /[&<>"'\n\r\t]/;

export type EscapeContext = 'text' | 'attr';

/**
 * Escapes `value` for an XML (or HTML) text node or a double- or single-quoted attribute.
 * In attributes, tab and line breaks become character references: a parser would otherwise
 * normalise them to spaces and the message would lose its lines.
 */
export function escapeXml(value: string, context: EscapeContext = 'text'): string {
  const clean = value.replace(ILLEGAL, '');
  // Most strings (names, numbers, verdicts) need nothing; the report escapes thousands of them.
  if (!NEEDS_ESCAPE.test(clean)) return clean;
  let out = '';
  for (const ch of clean) {
    switch (ch) {
      case '&': out += '&amp;'; break;
      case '<': out += '&lt;'; break;
      case '>': out += '&gt;'; break;
      case '"': out += context === 'attr' ? '&quot;' : ch; break;
      case "'": out += context === 'attr' ? '&#39;' : ch; break;
      case '\n': out += context === 'attr' ? '&#10;' : ch; break;
      case '\r': out += '&#13;'; break; // a parser would turn a bare CR into LF
      case '\t': out += context === 'attr' ? '&#9;' : ch; break;
      default: out += ch;
    }
  }
  return out;
}

/** Drops the characters XML cannot hold, nothing else. */
export function stripIllegalXmlChars(value: string): string {
  return value.replace(ILLEGAL, '');
}
