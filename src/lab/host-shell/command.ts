// PowerShell commands as values (STYLE.md, "How this applies here" 8).
//
// Code in src/lab builds these; only render.ts turns them into script text. A value is
// never a string of PowerShell: strings are data and get quoted, numbers and booleans
// are checked literals, secrets are data that logs show as [redacted], and the few
// PowerShell expressions the bench needs (an earlier statement's result, a property of
// the pipeline object) are named values, not text.

/** Data passed to a parameter. */
export type PsValue =
  | string
  | number
  | bigint
  | boolean
  | null
  | readonly PsValue[]
  | PsSecret
  | PsBase64
  | PsVariable
  | PsHashtable
  | PsDate
  | PsStatic
  | PsHostPath;

/** A secret: rendered as a quoted literal into the script, as [redacted] into logs. */
export interface PsSecret { readonly kind: 'secret'; readonly value: string }
/** Text or bytes sent as base64 (bulk data, or text that must survive byte for byte). */
export interface PsBase64 { readonly kind: 'base64'; readonly data: Uint8Array; readonly as: 'text' | 'bytes' }
/** A variable set by an earlier statement of the same script (`assign`). */
export interface PsVariable { readonly kind: 'variable'; readonly name: string; readonly member?: readonly string[] }
/** `@{ 'key' = value; ... }`, keys quoted like any string. */
export interface PsHashtable { readonly kind: 'hashtable'; readonly entries: Readonly<Record<string, PsValue>> }
/** A point in time, sent as an ISO 8601 round-trip string and parsed on the host. */
export interface PsDate { readonly kind: 'date'; readonly iso: string }

/**
 * A path as the file system path PowerShell's own cmdlets would use for it, for the .NET
 * calls the bench makes on host files (File.ReadAllBytes, File.Open, ...). .NET knows no
 * PowerShell drive (New-PSDrive) and resolves a relative path against the process's
 * current directory, not the session's location ($PWD); this resolves it the way
 * New-Item and Get-Item do, through the session's provider paths, so both name the same
 * file. The file need not exist; a drive that does not exist, or a path that is not on the
 * FileSystem provider (HKLM:\...), is an error that names the path.
 */
export interface PsHostPath { readonly kind: 'host-path'; readonly path: string }

/**
 * A call to a static .NET method, `[System.IO.File]::ReadAllBytes('...')`: for the few
 * things no cmdlet does the same way on every PowerShell (reading a file as bytes).
 */
export interface PsStatic { readonly kind: 'static'; readonly type: string; readonly method: string; readonly args: readonly PsValue[]; readonly member?: readonly string[] }

/** One cmdlet or function call. `undefined` parameters are left out. */
export interface PsInvocation {
  readonly kind: 'invoke';
  readonly name: string;
  readonly params: Readonly<Record<string, PsValue | undefined>>;
}

/**
 * Shapes pipeline objects into plain records with the listed properties. `string` turns
 * enums, GUIDs and dates into their text form, so JSON is the same from Windows
 * PowerShell 5.1 and PowerShell 7 (which differ on enums and dates).
 */
export interface PsProject {
  readonly kind: 'project';
  readonly properties: Readonly<Record<string, 'string' | 'value' | 'strings'>>;
}

/** A filter on a pipeline object's property: `Where-Object` with one comparison. */
export interface PsWhere {
  readonly kind: 'where';
  readonly property: string;
  readonly op: 'eq' | 'ne' | 'like' | 'match';
  readonly value: PsValue;
}

/** `ForEach-Object { $_.'Name' }`: each object's property, arrays flattened. */
export interface PsExpand { readonly kind: 'expand'; readonly property: string }

export type PsStage = PsInvocation | PsProject | PsWhere | PsExpand;

/** `a | b | c`. The first stage may be a value (`PsValue`) to pipe in. */
export interface PsPipeline {
  readonly kind: 'pipeline';
  readonly input?: PsValue;
  readonly stages: readonly PsStage[];
}

/** `$name = <pipeline>`: results kept for later statements, not emitted. */
export interface PsAssign { readonly kind: 'assign'; readonly name: string; readonly pipeline: PsPipeline }

/**
 * A native program (bcdedit, pnputil) with literal arguments. Emits one record: its stdout
 * lines and its exit code. Its stderr is left alone: merging it would turn each line into
 * an error record, which Windows PowerShell then throws under ErrorActionPreference Stop.
 */
export interface PsNative { readonly kind: 'native'; readonly program: string; readonly args: readonly PsValue[] }

/**
 * A script a lab's author wrote (a driver package's install command, driver-package.ts):
 * text the bench does not parse. It travels as base64 and is compiled into a script
 * block on the host, run with `params` as its named parameters. Emits one record like
 * PsNative: its output lines and $LASTEXITCODE (0 unless a native program it ran last
 * failed). A terminating error in it fails the command.
 */
export interface PsAuthorScript { readonly kind: 'author-script'; readonly text: string; readonly params: Readonly<Record<string, PsValue>> }

export type PsStatement = PsPipeline | PsAssign | PsNative | PsAuthorScript;

/**
 * A whole command: statements run in order; the objects the non-assignment statements
 * emit are the result (serialised as JSON). The first error stops it.
 */
export interface PsScript {
  readonly kind: 'script';
  readonly statements: readonly PsStatement[];
  /** ConvertTo-Json -Depth; deeper levels become their ToString(). */
  readonly depth: number;
  /** Modules to import first (by name or path). */
  readonly imports: readonly string[];
}

export type PsCommand = PsInvocation | PsPipeline | PsScript;

const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const COMMAND_NAME = /^[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)?$/;
const PARAM_NAME = /^[A-Za-z][A-Za-z0-9]*$/;

/** A cmdlet call: `ps('Save-VM', { Id: vm.id })`. Names are checked, values are data. */
export function ps(name: string, params: Record<string, PsValue | undefined> = {}): PsInvocation {
  if (!COMMAND_NAME.test(name)) throw new TypeError(`not a cmdlet name: ${JSON.stringify(name)}`);
  for (const p of Object.keys(params)) if (!PARAM_NAME.test(p)) throw new TypeError(`not a parameter name: ${JSON.stringify(p)} (for ${name})`);
  return { kind: 'invoke', name, params };
}

export function pipe(first: PsStage | { input: PsValue }, ...rest: PsStage[]): PsPipeline {
  if ('input' in first) return { kind: 'pipeline', input: first.input, stages: rest };
  return { kind: 'pipeline', stages: [first, ...rest] };
}

export function expand(property: string): PsExpand {
  if (!PARAM_NAME.test(property)) throw new TypeError(`not a property name: ${JSON.stringify(property)}`);
  return { kind: 'expand', property };
}

const TYPE_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

export function staticCall(type: string, method: string, ...args: PsValue[]): PsStatic {
  if (!TYPE_NAME.test(type)) throw new TypeError(`not a .NET type name: ${JSON.stringify(type)}`);
  if (!PARAM_NAME.test(method)) throw new TypeError(`not a method name: ${JSON.stringify(method)}`);
  return { kind: 'static', type, method, args };
}

/** A property of a static call's result: `([T]::M()).A.B`. */
export function member(call: PsStatic, ...names: string[]): PsStatic {
  for (const n of names) if (!PARAM_NAME.test(n)) throw new TypeError(`not a member name: ${JSON.stringify(n)}`);
  return { ...call, member: [...(call.member ?? []), ...names] };
}

/** Emits a value (often a static call) as the statement's output. */
export function emit(value: PsValue): PsPipeline {
  return { kind: 'pipeline', input: value, stages: [] };
}

const PROGRAM = /^[A-Za-z0-9_.:\\/-]+$/;

export function native(program: string, args: PsValue[] = []): PsNative {
  if (!PROGRAM.test(program)) throw new TypeError(`not a program name or path: ${JSON.stringify(program)}`);
  return { kind: 'native', program, args };
}

export function authorScript(text: string, params: Record<string, PsValue> = {}): PsAuthorScript {
  for (const p of Object.keys(params)) if (!VARIABLE_NAME.test(p)) throw new TypeError(`not a parameter name: ${JSON.stringify(p)}`);
  return { kind: 'author-script', text, params };
}

export function project(properties: Record<string, 'string' | 'value' | 'strings'>): PsProject {
  for (const p of Object.keys(properties)) if (!PARAM_NAME.test(p)) throw new TypeError(`not a property name: ${JSON.stringify(p)}`);
  return { kind: 'project', properties };
}

export function where(property: string, op: PsWhere['op'], value: PsValue): PsWhere {
  if (!PARAM_NAME.test(property)) throw new TypeError(`not a property name: ${JSON.stringify(property)}`);
  return { kind: 'where', property, op, value };
}

export function assign(name: string, pipeline: PsPipeline | PsInvocation): PsAssign {
  if (!VARIABLE_NAME.test(name)) throw new TypeError(`not a variable name: ${JSON.stringify(name)}`);
  return { kind: 'assign', name, pipeline: toPipeline(pipeline) };
}

export function variable(name: string, ...member: string[]): PsVariable {
  if (!VARIABLE_NAME.test(name)) throw new TypeError(`not a variable name: ${JSON.stringify(name)}`);
  for (const m of member) if (!PARAM_NAME.test(m)) throw new TypeError(`not a member name: ${JSON.stringify(m)}`);
  return { kind: 'variable', name, member };
}

export function script(statements: Array<PsStatement | PsInvocation>, options: { depth?: number; imports?: string[] } = {}): PsScript {
  const depth = options.depth ?? 4;
  if (!Number.isInteger(depth) || depth < 1 || depth > 100) throw new RangeError(`depth must be 1..100, got ${depth}`);
  return {
    kind: 'script',
    statements: statements.map((s) => (s.kind === 'invoke' ? toPipeline(s) : s)),
    depth,
    imports: options.imports ?? [],
  };
}

/** `path` as the file system path the session's cmdlets see (PsHostPath). */
export function hostPath(path: string): PsHostPath {
  if (path === '') throw new TypeError('a host path must not be empty');
  return { kind: 'host-path', path };
}

export function secret(value: string): PsSecret {
  return { kind: 'secret', value };
}

export function base64(data: string | Uint8Array): PsBase64 {
  return typeof data === 'string'
    ? { kind: 'base64', data: Buffer.from(data, 'utf8'), as: 'text' }
    : { kind: 'base64', data, as: 'bytes' };
}

export function hashtable(entries: Record<string, PsValue>): PsHashtable {
  return { kind: 'hashtable', entries };
}

export function date(at: Date): PsDate {
  return { kind: 'date', iso: at.toISOString() };
}

export function toPipeline(c: PsPipeline | PsInvocation): PsPipeline {
  return c.kind === 'pipeline' ? c : { kind: 'pipeline', stages: [c] };
}

export function toScript(c: PsCommand): PsScript {
  return c.kind === 'script' ? c : script([toPipeline(c)]);
}
