// A parsed YAML document turned into data, with its aliases checked first.
//
// The yaml library throws a bare ReferenceError for an alias that names no anchor, and for
// aliases that expand to aliases in turn past a limit (the "billion laughs" document).
// Both are bad input: here they become InputErrors that name the file and the alias's
// line. Shared by the scenario loader and the lab's YAML files, like errors.ts.
import { visit, type Alias, type Document, type LineCounter, type Node } from 'yaml';
import { InputError } from './errors.ts';

/** Nodes that aliases may expand to in one document; a real scenario or lab file needs a handful. */
export const MAX_ALIAS_COUNT = 100;

export function yamlToData(doc: Document, lines: LineCounter, file: string): unknown {
  const at = (n: Node): { file: string; line?: number; column?: number } => {
    if (!n.range) return { file };
    const pos = lines.linePos(n.range[0]);
    return { file, line: pos.line, column: pos.col };
  };
  let unresolved: Alias | undefined;
  visit(doc, {
    Alias(_, n) {
      if (!n.resolve(doc)) {
        unresolved = n;
        return visit.BREAK;
      }
      return undefined;
    },
  });
  if (unresolved) {
    throw new InputError(`alias *${unresolved.source} names no anchor`, at(unresolved), {
      hint: `set &${unresolved.source} on a value earlier in the file, or write the value out`,
    });
  }
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    if (!(e instanceof ReferenceError)) throw e;
    // Aliases expanding to aliases: name the first one that does.
    let nested: Alias | undefined;
    visit(doc, {
      Alias(_, n) {
        const target = n.resolve(doc);
        let inner = false;
        if (target) visit(target as Node, { Alias: () => ((inner = true), visit.BREAK) });
        if (inner) {
          nested = n;
          return visit.BREAK;
        }
        return undefined;
      },
    });
    const where = nested ? at(nested) : { file };
    throw new InputError(
      `aliases expand to more than ${MAX_ALIAS_COUNT} values${nested ? ` (*${nested.source} names a value that holds aliases itself)` : ''}`,
      where,
      { hint: 'a document whose aliases multiply is refused; write the values out', cause: e },
    );
  }
}

