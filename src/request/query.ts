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

export function parseParams(raw: string, where: 'query' | 'form body'): Param[] {
  if (raw === '') return [];
  // Rack splits the query on `;` too (Rack::QueryParser DEFAULT_SEP = /[&;] */n).
  if (raw.includes(';')) throw malformed('semicolon-separator', `";" in the ${where}; encode it as %3B`);
  const params: Param[] = [];
  const forms = new Map<string, string>(); // base -> key shape ("a", "a[]", "a[x]")
  const seen = new Set<string>();
  for (const piece of raw.split('&')) {
    if (piece === '') throw malformed('empty-parameter', `empty parameter in the ${where}`);
    const eq = piece.indexOf('=');
    const key = formDecode(eq === -1 ? piece : piece.slice(0, eq), where);
    const value = eq === -1 ? '' : formDecode(piece.slice(eq + 1), where);
    const m = KEY.exec(key);
    if (!m) throw malformed('bad-parameter-name', `unexpected parameter name in the ${where}`);
    // GitLab refuses NUL bytes in params (lib/gitlab/middleware/handle_malformed_strings.rb).
    if (value.includes('\0')) throw malformed('nul-byte', `NUL byte in the ${where}`);
    const base = m[1]!.toLowerCase();
    const isArray = m[2] === '[]';
    if (seen.has(key) && !isArray) throw malformed('duplicate-parameter', `parameter "${key}" appears twice in the ${where}`);
    const shape = m[2] === undefined ? 'scalar' : isArray ? 'array' : 'hash';
    const prior = forms.get(base);
    if (prior !== undefined && prior !== shape) {
      throw malformed('conflicting-parameter', `parameter "${m[1]}" is sent in two shapes in the ${where}`);
    }
    forms.set(base, shape);
    seen.add(key);
    params.push({ key, base, value, raw: piece });
  }
  return params;
}
