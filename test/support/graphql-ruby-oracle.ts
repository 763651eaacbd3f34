// A differential oracle: reads a GraphQL query text the way GitLab does, written from
// GitLab's and graphql-ruby's sources, independently of src/:
//  - app/controllers/graphql_controller.rb `query`: a non-batch text first goes through
//    GraphQL::Language.escape_single_quoted_newlines (graphql-ruby lib/graphql/language.rb);
//  - graphql-ruby 2.5.11 lib/graphql/language/lexer.rb: IGNORE_REGEXP (`[, \r\n\t]+` and
//    comments `\#.*$`, where Ruby's `.` matches "\r" and `$` stops before "\n" only),
//    QUOTED_STRING_REGEXP, BLOCK_STRING_REGEXP, NUMERIC_REGEXP, names, punctuation;
//    string_value (escapes, \u with surrogate pairs, block strings without unescaping);
//  - lib/graphql/language/block_string.rb trim_whitespace.
// The result is every operation with its selections, fragments expanded, in a form that can
// be compared with graphql-js's reading of the same text (`jsReading`).
import { Kind, parse, type ASTNode, type DocumentNode, type SelectionSetNode, type ValueNode } from 'graphql';

// ------------------------------------------------------------------ preprocessing
/** escape_single_quoted_newlines: a "-toggle that escapes raw line breaks it takes to be in a
 *  string. graphql-ruby up to 2.6.2 (GitLab 18.3: 2.5.11) skips `"""` without toggling; 2.6.3
 *  and later toggle a block-string state on `"""` in which `"` does not count. */
export function gitlabPreprocess(text: string, rules: RubyRules = '2.5'): string {
  let out = '';
  let inString = false;
  let inBlock = false;
  let i = 0;
  while (i < text.length) {
    if (rules === '2.6' && text.startsWith('"""', i)) { inBlock = !inBlock; out += '"""'; i += 3; continue; }
    // The scanner's chunk: (?:\\"|[^"\n\r]|""")+ (2.6: without """); outside it one '"', '\n' or '\r'.
    if (text[i] === '\\' && text[i + 1] === '"') { out += '\\"'; i += 2; continue; }
    if (rules === '2.5' && text.startsWith('"""', i)) { out += '"""'; i += 3; continue; }
    const c = text[i]!;
    if (c === '"' && !inBlock) inString = !inString;
    if (c === '\n' && inString) out += '\\n';
    else if (c === '\r' && inString) out += '\\r';
    else out += c;
    i++;
  }
  return out;
}

export type RubyRules = '2.5' | '2.6';

// ------------------------------------------------------------------ lexer
type Tok = { kind: 'punct' | 'name' | 'int' | 'float' | 'string' | 'ellipsis'; value: string };

class RubyParseError extends Error {}

const IGNORE = /(?:[, \r\n\t]+|#[^\n]*)*/y;
const NAME = /[_A-Za-z][_0-9A-Za-z]*/y;
const NUMERIC = /-?(?:0|[1-9][0-9]*)(\.[0-9]+[eE][+-]?[0-9]+|\.[0-9]+|[eE][+-]?[0-9]+)?/y;
const UNICODE_ESCAPE = String.raw`\\u(?:[0-9A-Za-z]{4}|\{[0-9A-Za-z]{4,}\})`;
const QUOTED = new RegExp(String.raw`"(?:\\"|[^"\\\n\r]|${UNICODE_ESCAPE}|[\\][\\/bfnrt])*"`, 'y');
const BLOCK = new RegExp(String.raw`"""(?:[^"\\]|(?<!")["]{1,2}(?!")|\\"{0,3}(?!")|\\|"{1,2}(?!"))*(?:"")?"""`, 'ys');
const PUNCT = new Set(['{', '}', '(', ')', '[', ']', ':', '$', '@', '=', '!', '|', '&']);

function lex(text: string): Tok[] {
  const toks: Tok[] = [];
  let pos = 0;
  const at = (re: RegExp): string | undefined => {
    re.lastIndex = pos;
    const m = re.exec(text);
    return m ? m[0] : undefined;
  };
  for (;;) {
    pos += at(IGNORE)!.length;
    if (pos >= text.length) return toks;
    const c = text[pos]!;
    if (PUNCT.has(c)) { toks.push({ kind: 'punct', value: c }); pos++; continue; }
    if (/[_A-Za-z]/.test(c)) { const n = at(NAME)!; toks.push({ kind: 'name', value: n }); pos += n.length; continue; }
    if (/[-0-9]/.test(c)) {
      NUMERIC.lastIndex = pos;
      const m = NUMERIC.exec(text);
      if (!m) throw new RubyParseError('malformed number');
      // reject_numbers_followed_by_names is false by default (lib/graphql.rb): "1a" is 1, a.
      toks.push({ kind: m[1] ? 'float' : 'int', value: m[0] });
      pos += m[0].length;
      continue;
    }
    if (c === '.') {
      if (!text.startsWith('...', pos)) throw new RubyParseError('expected ...');
      toks.push({ kind: 'ellipsis', value: '...' });
      pos += 3;
      continue;
    }
    if (c === '"') {
      const s = at(BLOCK) ?? at(QUOTED);
      if (s === undefined) throw new RubyParseError('malformed string');
      toks.push({ kind: 'string', value: stringValue(s) });
      pos += s.length;
      continue;
    }
    throw new RubyParseError(`unknown character ${JSON.stringify(c)}`);
  }
}

const ESCAPES: Record<string, string> = { '\\"': '"', '\\\\': '\\', '\\/': '/', '\\b': '\b', '\\f': '\f', '\\n': '\n', '\\r': '\r', '\\t': '\t' };
const UTF8_ESCAPE = String.raw`\\u(?:([\dA-Fa-f]{4})|\{([\dA-Fa-f]{4,})\})(?:\\u([\dA-Fa-f]{4}))?`;
const VALID_STRING = new RegExp(String.raw`^(?:[^\\]|\\["\\/bfnrt]|${UTF8_ESCAPE})*$`, 's');

function stringValue(token: string): string {
  if (token.startsWith('"""')) return trimBlock(token.slice(3, -3));
  const raw = token.slice(1, -1);
  if (!VALID_STRING.test(raw)) throw new RubyParseError('bad escape');
  const out = raw.replace(new RegExp(String.raw`\\["\\/bfnrt]|${UTF8_ESCAPE}`, 'g'), (m, a?: string, b?: string, c?: string) => {
    if (a === undefined && b === undefined) return ESCAPES[m]!;
    const one = parseInt((a ?? b)!, 16);
    if (c === undefined) return codePoint(one);
    const two = parseInt(c, 16);
    if (one >= 0xd800 && one <= 0xdbff && two >= 0xdc00 && two <= 0xdfff) return String.fromCodePoint((one - 0xd800) * 0x400 + (two - 0xdc00) + 0x10000);
    return codePoint(one) + codePoint(two);
  });
  return out;
}

/** [cp].pack('U') then valid_encoding?: surrogates and values past U+10FFFF are errors. */
function codePoint(cp: number): string {
  if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) throw new RubyParseError('bad unicode escape');
  return String.fromCodePoint(cp);
}

/** block_string.rb trim_whitespace: lines split at "\n" only, indentation counted in spaces. */
function trimBlock(str: string): string {
  if (str === '') return '';
  if (!str.includes('\n') && !str.startsWith(' ')) return str;
  // Ruby's String#split drops trailing empty fields.
  const lines = str.split('\n');
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  let common: number | undefined;
  lines.forEach((line, i) => {
    if (i === 0) return;
    const indent = /^ */.exec(line)![0].length;
    if (indent < line.length && (common === undefined || indent < common)) common = indent;
  });
  const cut = lines.map((l, i) => (i > 0 && common ? l.slice(common) : l));
  // contains_only_whitespace?: /^\s*$/ matches any line of the string (Ruby's ^ $ are line anchors).
  const blank = (l: string): boolean => /^[ \t\r\f\v]*$/m.test(l);
  while (cut.length > 0 && blank(cut[0]!)) cut.shift();
  while (cut.length > 0 && blank(cut[cut.length - 1]!)) cut.pop();
  return cut.length > 1 ? cut.join('\n') : (cut[0] ?? '');
}

// ------------------------------------------------------------------ a reading
/** A selection, fragments kept by name until `expand`. */
type Sel =
  | { kind: 'field'; text: string; sel: Sel[] | undefined }
  | { kind: 'spread'; name: string; dirs: string }
  | { kind: 'inline'; on: string; dirs: string; sel: Sel[] };

interface Op { type: string; name: string; vars: string; dirs: string; sel: Sel[] }
interface Doc { ops: Op[]; fragments: Map<string, { on: string; dirs: string; sel: Sel[] }> }

/** What GitLab's graphql-ruby reads: every operation, fragments expanded, as comparable text;
 *  undefined when it cannot parse the text (GitLab answers with an error and runs nothing). */
export interface Reading {
  /** "query Q($p:ID!){project(fullPath:\"a\"){id}}" per operation, in document order. */
  operations: { type: string; name: string; text: string; rootFields: string[] }[];
}

export function gitlabReading(text: string, opts: { batch: boolean; rules?: RubyRules }): Reading | undefined {
  try {
    return expand(parseTokens(lex(opts.batch ? text : gitlabPreprocess(text, opts.rules))));
  } catch (err) {
    if (err instanceof RubyParseError) return undefined;
    throw err;
  }
}

function parseTokens(toks: Tok[]): Doc {
  let i = 0;
  const peek = (): Tok | undefined => toks[i];
  const isP = (v: string): boolean => peek()?.kind === 'punct' && peek()!.value === v;
  const expectP = (v: string): void => {
    if (!isP(v)) throw new RubyParseError(`expected ${v}`);
    i++;
  };
  const name = (): string => {
    const t = peek();
    if (t?.kind !== 'name') throw new RubyParseError('expected a name');
    i++;
    return t.value;
  };
  const value = (): string => {
    const t = peek();
    if (!t) throw new RubyParseError('expected a value');
    if (isP('$')) { i++; return `$${name()}`; }
    if (isP('[')) {
      i++;
      const items: string[] = [];
      while (!isP(']')) items.push(value());
      i++;
      return `[${items.join(',')}]`;
    }
    if (isP('{')) {
      i++;
      const fields: string[] = [];
      while (!isP('}')) { const k = name(); expectP(':'); fields.push(`${k}:${value()}`); }
      i++;
      return `{${fields.join(',')}}`;
    }
    i++;
    if (t.kind === 'string') return JSON.stringify(t.value);
    if (t.kind === 'int' || t.kind === 'float' || t.kind === 'name') return t.value;
    throw new RubyParseError('bad value');
  };
  const args = (): string => {
    if (!isP('(')) return '';
    i++;
    const out: string[] = [];
    do { const k = name(); expectP(':'); out.push(`${k}:${value()}`); } while (!isP(')'));
    i++;
    return `(${out.join(',')})`;
  };
  const dirs = (): string => {
    let out = '';
    while (isP('@')) { i++; out += `@${name()}${args()}`; }
    return out;
  };
  const type = (): string => {
    let t: string;
    if (isP('[')) { i++; t = `[${type()}]`; expectP(']'); } else t = name();
    if (isP('!')) { i++; t += '!'; }
    return t;
  };
  const selectionSet = (): Sel[] => {
    expectP('{');
    const out: Sel[] = [];
    do {
      if (peek()?.kind === 'ellipsis') {
        i++;
        if (peek()?.kind === 'name' && peek()!.value === 'on') { i++; const on = name(); const d = dirs(); out.push({ kind: 'inline', on, dirs: d, sel: selectionSet() }); }
        else if (isP('{') || isP('@')) { const d = dirs(); out.push({ kind: 'inline', on: '', dirs: d, sel: selectionSet() }); }
        else { const n = name(); out.push({ kind: 'spread', name: n, dirs: dirs() }); }
        continue;
      }
      let f = name();
      if (isP(':')) { i++; f = `${f}:${name()}`; }
      const text = f + args() + dirs();
      out.push({ kind: 'field', text, sel: isP('{') ? selectionSet() : undefined });
    } while (!isP('}'));
    i++;
    return out;
  };
  const doc: Doc = { ops: [], fragments: new Map() };
  if (toks.length === 0) throw new RubyParseError('empty document');
  while (i < toks.length) {
    if (isP('{')) { doc.ops.push({ type: 'query', name: '', vars: '', dirs: '', sel: selectionSet() }); continue; }
    const kw = name();
    if (kw === 'fragment') {
      const n = name();
      if (name() !== 'on') throw new RubyParseError('expected on');
      const on = name();
      const d = dirs();
      if (doc.fragments.has(n)) throw new RubyParseError('fragment defined twice');
      doc.fragments.set(n, { on, dirs: d, sel: selectionSet() });
      continue;
    }
    if (kw !== 'query' && kw !== 'mutation' && kw !== 'subscription') throw new RubyParseError(`unexpected ${kw}`);
    const opName = peek()?.kind === 'name' ? name() : '';
    let vars = '';
    if (isP('(')) {
      i++;
      const defs: string[] = [];
      do {
        expectP('$');
        const v = name();
        expectP(':');
        let d = `$${v}:${type()}`;
        if (isP('=')) { i++; d += `=${value()}`; }
        defs.push(d + dirs());
      } while (!isP(')'));
      i++;
      vars = `(${defs.join(',')})`;
    }
    doc.ops.push({ type: kw, name: opName, vars, dirs: dirs(), sel: selectionSet() });
  }
  return doc;
}

function expand(doc: Doc): Reading {
  const text = (sel: Sel[], stack: string[]): string =>
    `{${sel.map((s) => {
      if (s.kind === 'field') return s.text + (s.sel ? text(s.sel, stack) : '');
      if (s.kind === 'inline') return `...${s.on ? `on ${s.on}` : ''}${s.dirs}${text(s.sel, stack)}`;
      const f = doc.fragments.get(s.name);
      if (!f || stack.includes(s.name)) throw new RubyParseError('bad fragment spread');
      return `...on ${f.on}${s.dirs}${f.dirs}${text(f.sel, [...stack, s.name])}`;
    }).join(',')}}`;
  const roots = (sel: Sel[], stack: string[]): string[] => sel.flatMap((s) => {
    if (s.kind === 'field') { const bare = s.text.replace(/[(@].*$/, ''); return [bare.includes(':') ? bare.split(':')[1]! : bare]; }
    if (s.kind === 'inline') return roots(s.sel, stack);
    const f = doc.fragments.get(s.name)!;
    return roots(f.sel, [...stack, s.name]);
  });
  return { operations: doc.ops.map((o) => ({ type: o.type, name: o.name, text: `${o.type} ${o.name}${o.vars}${o.dirs}${text(o.sel, [])}`, rootFields: roots(o.sel, []) })) };
}

// ------------------------------------------------------------------ graphql-js's reading
/** The same comparable form, from graphql-js's parse of the text (the proxy's reading). */
export function jsReading(text: string): Reading | undefined {
  let ast: DocumentNode;
  try {
    ast = parse(text, { noLocation: true });
  } catch {
    return undefined;
  }
  const doc: Doc = { ops: [], fragments: new Map() };
  const val = (v: ValueNode): string => {
    switch (v.kind) {
      case Kind.VARIABLE: return `$${v.name.value}`;
      case Kind.STRING: return JSON.stringify(v.value);
      case Kind.LIST: return `[${v.values.map(val).join(',')}]`;
      case Kind.OBJECT: return `{${v.fields.map((f) => `${f.name.value}:${val(f.value)}`).join(',')}}`;
      case Kind.NULL: return 'null';
      case Kind.BOOLEAN: return String(v.value);
      default: return v.value;
    }
  };
  const args = (a: readonly { name: { value: string }; value: ValueNode }[] | undefined): string => (a && a.length ? `(${a.map((x) => `${x.name.value}:${val(x.value)}`).join(',')})` : '');
  const dirs = (d: readonly { name: { value: string }; arguments?: readonly { name: { value: string }; value: ValueNode }[] }[] | undefined): string => (d ?? []).map((x) => `@${x.name.value}${args(x.arguments)}`).join('');
  const typeText = (t: ASTNode): string => (t.kind === Kind.NON_NULL_TYPE ? `${typeText(t.type)}!` : t.kind === Kind.LIST_TYPE ? `[${typeText(t.type)}]` : t.kind === Kind.NAMED_TYPE ? t.name.value : '?');
  const sels = (set: SelectionSetNode): Sel[] => set.selections.map((s): Sel => {
    if (s.kind === Kind.FIELD) return { kind: 'field', text: `${s.alias ? `${s.alias.value}:` : ''}${s.name.value}${args(s.arguments)}${dirs(s.directives)}`, sel: s.selectionSet ? sels(s.selectionSet) : undefined };
    if (s.kind === Kind.INLINE_FRAGMENT) return { kind: 'inline', on: s.typeCondition?.name.value ?? '', dirs: dirs(s.directives), sel: sels(s.selectionSet) };
    return { kind: 'spread', name: s.name.value, dirs: dirs(s.directives) };
  });
  for (const d of ast.definitions) {
    if (d.kind === Kind.OPERATION_DEFINITION) {
      const vars = d.variableDefinitions?.length ? `(${d.variableDefinitions.map((v) => `$${v.variable.name.value}:${typeText(v.type)}${v.defaultValue ? `=${val(v.defaultValue)}` : ''}${dirs(v.directives)}`).join(',')})` : '';
      doc.ops.push({ type: d.operation, name: d.name?.value ?? '', vars, dirs: dirs(d.directives), sel: sels(d.selectionSet) });
    } else if (d.kind === Kind.FRAGMENT_DEFINITION) {
      doc.fragments.set(d.name.value, { on: d.typeCondition.name.value, dirs: dirs(d.directives), sel: sels(d.selectionSet) });
    } else {
      return undefined;
    }
  }
  try {
    return expand(doc);
  } catch (err) {
    if (err instanceof RubyParseError) return undefined;
    throw err;
  }
}

/** The operation GitLab runs: the one operationName names, or the only one (graphql-ruby
 *  Query#selected_operation); undefined when that is an error. */
export function executedOperation(reading: Reading, operationName: string | null | undefined): Reading['operations'][number] | undefined {
  if (operationName) return reading.operations.find((o) => o.name === operationName);
  return reading.operations.length === 1 ? reading.operations[0] : undefined;
}
