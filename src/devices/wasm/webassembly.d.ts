// The part of the WebAssembly JS API the kernel shim uses. Node has it at run time, but
// the project's TypeScript libs (es2024 + @types/node, no DOM) do not declare it.
declare namespace WebAssembly {
  class Module {
    constructor(bytes: Uint8Array);
    static imports(m: Module): Array<{ module: string; name: string; kind: string }>;
    static exports(m: Module): Array<{ name: string; kind: string }>;
  }
  class Instance {
    constructor(m: Module, imports?: Imports);
    readonly exports: Record<string, unknown>;
  }
  class Memory {
    constructor(desc: { initial: number; maximum?: number });
    readonly buffer: ArrayBuffer;
    grow(pages: number): number;
  }
  class Table {
    get(i: number): unknown;
    readonly length: number;
  }
  class Global {
    value: unknown;
  }
  type Imports = Record<string, Record<string, unknown>>;
}
