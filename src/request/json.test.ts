import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH, nestingExceeds, parseJsonStrict } from './json.ts';

const nested = (depth: number): string => `${'{"a":'.repeat(depth - 1)}{}${'}'.repeat(depth - 1)}`;

describe('parseJsonStrict nesting', () => {
  it('reads a body nested as deep as GitLab takes, and refuses one level more before parsing it', () => {
    expect(parseJsonStrict(nested(MAX_JSON_DEPTH))).toBeTypeOf('object');
    expect(() => parseJsonStrict(nested(MAX_JSON_DEPTH + 1))).toThrow(expect.objectContaining({ reason: 'json-too-deep' }));
    // An attacker's body: refused by the scan, never parsed.
    expect(() => parseJsonStrict('['.repeat(50_000) + ']'.repeat(50_000))).toThrow(expect.objectContaining({ reason: 'json-too-deep' }));
  });

  it('counts brackets outside strings only, escaped quotes included', () => {
    expect(nestingExceeds('{"a":"[[[[{{{{"}', 2)).toBe(false);
    expect(nestingExceeds('{"a":"\\"[[[["}', 2)).toBe(false);
    expect(nestingExceeds('{"a":[[1]]}', 2)).toBe(true);
    // Not JSON at all, or a string that never ends: the scan still ends.
    expect(nestingExceeds('"unterminated [[[[', 1)).toBe(false);
    expect(nestingExceeds('[[[', 2)).toBe(true);
  });
});
