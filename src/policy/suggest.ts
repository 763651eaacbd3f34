// "Did you mean" for policy mistakes: the nearest valid key for an unknown one (`alow` ->
// `allow`), the closest rule for a `remove:` entry that names none. Pure string functions, and
// a walk over a zod schema to list the keys valid at a path.
import type { z } from 'zod';

/** Edit distance with adjacent transpositions (optimal string alignment). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The candidate nearest to `word`, if it is near enough to be a likely typo: at most
 * `maxShare` of the longer string's length differs (and at least one character may).
 */
export function nearest(word: string, candidates: Iterable<string>, maxShare = 0.4): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const distance = editDistance(word.toLowerCase(), c.toLowerCase());
    if (distance < bestDistance) {
      best = c;
      bestDistance = distance;
    }
  }
  if (best === undefined) return undefined;
  return bestDistance <= Math.max(1, Math.floor(Math.max(word.length, best.length) * maxShare)) ? best : undefined;
}

/** `unknown key "alow"; did you mean "allow"?` */
export function unknownKeyMessage(key: string, valid: Iterable<string>, suffix = ''): string {
  const near = nearest(key, valid);
  return `unknown key "${key}"${suffix}${near ? `; did you mean "${near}"?` : ''}`;
}

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  options?: z.ZodType[];
  innerType?: z.ZodType;
  in?: z.ZodType;
  valueType?: z.ZodType;
  getter?: () => z.ZodType;
}

/** The keys an object at `path` inside `schema` may have (through unions, optionals, records and arrays). */
export function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  const out = new Set<string>();
  const walk = (s: z.ZodType, rest: readonly PropertyKey[]): void => {
    const def = (s as unknown as { _zod: { def: Def } })._zod.def;
    switch (def.type) {
      case 'optional': case 'nullable': case 'default': case 'prefault': case 'readonly': case 'catch': case 'nonoptional':
        return walk(def.innerType!, rest);
      case 'pipe': return walk(def.in!, rest);
      case 'lazy': return walk(def.getter!(), rest);
      case 'union': for (const o of def.options!) walk(o, rest); return;
      case 'array': if (rest.length > 0) walk(def.element!, rest.slice(1)); return;
      case 'record': if (rest.length > 0) walk(def.valueType!, rest.slice(1)); return;
      case 'object':
        if (rest.length === 0) for (const k of Object.keys(def.shape!)) out.add(k);
        else if (def.shape![String(rest[0])]) walk(def.shape![String(rest[0])]!, rest.slice(1));
        return;
      default:
    }
  };
  walk(schema, path);
  return [...out];
}
