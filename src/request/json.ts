// JSON.parse lets the last of two equal keys win silently; a strict reader refuses them, so
// a body has one meaning whoever reads it.
import { malformed } from '../errors.ts';

/**
 * Deepest nesting of objects and arrays accepted. GitLab refuses JSON bodies nested deeper
 * than 32 (lib/gitlab/middleware/json_validation.rb, DEFAULT_LIMITS max_depth, enforced) and
 * allows 64 on one route (Terraform state, logging mode): nothing GitLab takes is deeper than
 * that in practice, and checking before parsing keeps an attacker's 50,000-deep body from
 * costing tens of milliseconds of the proxy's only thread.
 */
export const MAX_JSON_DEPTH = 64;

export function parseJsonStrict(text: string): unknown {
  if (nestingExceeds(text, MAX_JSON_DEPTH)) throw malformed('json-too-deep', `JSON body nested deeper than ${MAX_JSON_DEPTH}`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw malformed('bad-json', 'body is not valid JSON');
  }
  checkDuplicateKeys(text);
  return value;
}

/** Scans already-valid JSON: after "{" or "," inside an object the next string is a key. */
function checkDuplicateKeys(text: string): void {
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '{') {
      stack.push(new Set());
      expectKey = true;
    } else if (c === '[') {
      stack.push(null);
      expectKey = false;
    } else if (c === '}' || c === ']') {
      stack.pop();
      expectKey = false;
    } else if (c === ',') {
      expectKey = stack[stack.length - 1] instanceof Set;
    } else if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        const keys = stack[stack.length - 1]!;
        if (keys.has(key)) throw malformed('duplicate-key', 'duplicate key in JSON body');
        keys.add(key);
        expectKey = false;
      }
      i = j;
    }
  }
}

/** Whether brackets outside strings nest deeper than `max`; any text, valid JSON or not. */
export function nestingExceeds(text: string, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // A string: skip to its closing quote (an unterminated one ends the scan).
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return false;
}
