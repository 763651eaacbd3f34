import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { editDistance, keysAt, nearest, unknownKeyMessage } from './suggest.ts';

describe('suggestions', () => {
  it('measures edits, with transpositions', () => {
    expect(editDistance('alow', 'allow')).toBe(1);
    expect(editDistance('desciprtion', 'description')).toBe(2);
    expect(editDistance('', 'abc')).toBe(3);
  });
  it('suggests only likely typos', () => {
    expect(nearest('alow', ['allow', 'mode', 'tests'])).toBe('allow');
    expect(nearest('Allow', ['allow'])).toBe('allow');
    expect(nearest('colour', ['allow', 'mode'])).toBeUndefined();
    expect(unknownKeyMessage('alow', ['allow'])).toBe('unknown key "alow"; did you mean "allow"?');
    expect(unknownKeyMessage('zzz', ['allow'])).toBe('unknown key "zzz"');
  });
  it('lists the keys valid at a path of a schema', () => {
    const rule = z.strictObject({ method: z.string(), path: z.string() });
    const schema = z.strictObject({
      clients: z.record(z.string(), z.strictObject({ allow: z.array(z.union([z.string(), rule])).optional(), mode: z.string().optional() })),
    });
    expect(keysAt(schema, [])).toEqual(['clients']);
    expect(keysAt(schema, ['clients', 'a'])).toEqual(['allow', 'mode']);
    expect(keysAt(schema, ['clients', 'a', 'allow', 0])).toEqual(['method', 'path']);
    expect(keysAt(schema, ['nothing'])).toEqual([]);
  });
});
