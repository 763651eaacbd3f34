// Compiling a `projects:` / `groups:` entry into a scope pattern (matched at request time by
// src/scope/scope.ts).
import type { ScopePattern } from '../types.ts';

/** GitLab's path segment characters (app/models/namespace.rb, lib/gitlab/path_regex.rb):
 *  letters, digits, "_", "-", "." (not first). Pattern segments may also be "*" or "**". */
const PATH_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const NUMERIC = /^[1-9][0-9]{0,15}$/;

export class ScopePatternError extends Error {
  override name = 'ScopePatternError';
}

/** Parses one entry of `projects:` / `groups:`: a full path with optional * / **, or an id. */
export function parseScopePattern(entry: unknown): ScopePattern {
  if (typeof entry === 'number') {
    if (!Number.isSafeInteger(entry) || entry < 1) throw new ScopePatternError(`bad id ${entry}: ids are whole numbers from 1`);
    return { kind: 'id', id: entry, text: String(entry) };
  }
  if (typeof entry !== 'string') throw new ScopePatternError('an entry is a full path such as "acme/platform/*" or a numeric id');
  if (NUMERIC.test(entry)) return { kind: 'id', id: Number(entry), text: entry };
  const parts = entry.split('/');
  for (const [i, part] of parts.entries()) {
    if (part === '**') {
      if (i === 0) throw new ScopePatternError(`bad pattern "${entry}": it must start with a top-level group, not **`);
      continue;
    }
    if (part === '*') {
      if (i === 0) throw new ScopePatternError(`bad pattern "${entry}": it must start with a top-level group, not *`);
      continue;
    }
    if (part === '') throw new ScopePatternError(`bad pattern "${entry}": empty segment (a leading, trailing or double /)`);
    if (!PATH_SEGMENT.test(part)) {
      throw new ScopePatternError(`bad pattern "${entry}": "${part}" is not a GitLab path segment (letters, digits, _ - ., or a whole * or **)`);
    }
  }
  return { kind: 'path', parts: parts.map((p) => p.toLowerCase()), text: entry };
}
