// JSON.parse lets the last of two equal keys win silently; a strict reader refuses them, so
// a body has one meaning whoever reads it.
import { malformed } from '../errors.ts';

export function parseJsonStrict(text: string): unknown {
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
