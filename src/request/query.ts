// Strict reader for query strings and urlencoded form bodies. GitLab reads them with Rack
// 2.2 (rack query_parser.rb), which splits on both `&` and `;`, lets the last duplicate win
// and expands bracket keys; Node's URLSearchParams splits only on `&` and returns the first
// duplicate. Anything on which the two could disagree is refused rather than guessed.
import { malformed } from '../errors.ts';

export interface Param {
  /** Decoded key, e.g. "labels[]". */
  key: string;
  /** Key without its bracket suffix, lower-cased: what GitLab's params[...] lookup sees. */
  base: string;
  value: string;
  /** The piece as sent, still encoded: what is forwarded. */
  raw: string;
}

/** A plain name, optionally followed by one `[]` or `[name]`. Rack's normalize_params
 *  strips leading `[` and `]` from a name (`%r(\A[\[\]]*([^\[\]]+)\]*)`, rack 2.2
 *  query_parser.rb), so "[sudo]" is read as "sudo": a name must start with a name character. */
const KEY = /^([A-Za-z0-9_.-]+)(\[[A-Za-z0-9_.-]*\])?$/;

/** Rack's unescape: `+` is a space, then percent-decoding (Rack::Utils.unescape). */
function formDecode(s: string, what: string): string {
  if (/%(?![0-9A-Fa-f]{2})/.test(s)) throw malformed('bad-percent-encoding', `malformed percent-encoding in ${what}`);
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    throw malformed('invalid-utf8', `invalid UTF-8 in ${what}`);
  }
}

/**
 * The top-level name Rack files a parameter under: leading brackets dropped, then everything
 * up to the next bracket (rack 2.2 query_parser.rb normalize_params), lower-cased so that
 * checks against it are also case-insensitive. "[sudo]" and "sudo[x]" are both "sudo".
 */
export function rackBase(name: string): string {
  const m = /^[[\]]*([^[\]]*)/.exec(name);
  return (m?.[1] ?? '').toLowerCase();
}

/**
 * Checks a list of decoded parameter names from one source (a query, a form body, a
 * multipart body) and returns their bases: every name has the plain shape above, no name
 * appears twice unless it is an array (`a[]`), and no base is sent in two shapes
 * (`a=1&a[]=2`), since Rack's last-one-wins would pick a reading the policy never saw.
 */
export function checkNames(names: readonly string[], where: string): string[] {
  const shapes = new Map<string, string>(); // base -> "scalar" | "array" | "hash"
  const seen = new Set<string>();
  return names.map((name) => {
    const m = KEY.exec(name);
    if (!m) throw malformed('bad-parameter-name', `unexpected parameter name in the ${where}`);
    const base = m[1]!.toLowerCase();
    const shape = m[2] === undefined ? 'scalar' : m[2] === '[]' ? 'array' : 'hash';
    if (seen.has(name) && shape !== 'array') throw malformed('duplicate-parameter', `parameter "${name}" appears twice in the ${where}`);
    const prior = shapes.get(base);
    if (prior !== undefined && prior !== shape) {
      throw malformed('conflicting-parameter', `parameter "${m[1]}" is sent in two shapes in the ${where}`);
    }
    shapes.set(base, shape);
    seen.add(name);
    return base;
  });
}

export function parseParams(raw: string, where: 'query' | 'form body'): Param[] {
  if (raw === '') return [];
  // Rack splits the query on `;` too (Rack::QueryParser DEFAULT_SEP = /[&;] */n).
  if (raw.includes(';')) throw malformed('semicolon-separator', `";" in the ${where}; encode it as %3B`);
  const pieces = raw.split('&').map((piece) => {
    if (piece === '') throw malformed('empty-parameter', `empty parameter in the ${where}`);
    const eq = piece.indexOf('=');
    const key = formDecode(eq === -1 ? piece : piece.slice(0, eq), where);
    const value = eq === -1 ? '' : formDecode(piece.slice(eq + 1), where);
    // GitLab refuses NUL bytes in params (lib/gitlab/middleware/handle_malformed_strings.rb).
    if (value.includes('\0')) throw malformed('nul-byte', `NUL byte in the ${where}`);
    return { key, value, raw: piece };
  });
  const bases = checkNames(pieces.map((p) => p.key), where);
  return pieces.map((p, i) => ({ key: p.key, base: bases[i]!, value: p.value, raw: p.raw }));
}
