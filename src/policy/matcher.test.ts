// The segment trie on its own: which rule wins, what each :name captured, and the lists
// explain and the constraint step read (matchAll, pathMatches).
import { describe, expect, it } from 'vitest';
import { Matcher } from './matcher.ts';
import { parseRule } from './rule.ts';

const matcher = (...rules: string[]) => new Matcher(rules.map((r, i) => parseRule(r, `p.yaml:${i + 1}`)));
const segs = (path: string): string[] => path.slice(1).split('/');

describe('Matcher', () => {
  const m = matcher(
    'GET /api/v4/projects/:id/repository/**',
    'GET /api/v4/projects/:id/repository/files/:file_path',
    'GET,POST /api/v4/projects/:id/*/notes',
    'POST /api/v4/projects/5/repository/files/:file_path',
  );

  it('prefers literals over :name and * over **, trying less specific rules when the method does not fit', () => {
    expect(m.match('GET', segs('/api/v4/projects/5/repository/files/a%2Fb'))?.rule.text).toBe('GET /api/v4/projects/:id/repository/files/:file_path');
    expect(m.match('POST', segs('/api/v4/projects/5/repository/files/a'))?.rule.text).toBe('POST /api/v4/projects/5/repository/files/:file_path');
    expect(m.match('POST', segs('/api/v4/projects/6/repository/files/a'))).toBeUndefined();
    expect(m.match('GET', segs('/api/v4/projects/6/repository/tree'))?.rule.text).toBe('GET /api/v4/projects/:id/repository/**');
  });

  it('captures each :name raw, and never a *', () => {
    expect(m.match('GET', segs('/api/v4/projects/acme%2Fapp/repository/files/docs%2FREADME.md'))?.params).toEqual({ id: 'acme%2Fapp', file_path: 'docs%2FREADME.md' });
    expect(m.match('POST', segs('/api/v4/projects/7/issues/notes'))?.params).toEqual({ id: '7' });
  });

  it('lets ** match nothing after its prefix, but not a shorter path', () => {
    expect(m.match('GET', segs('/api/v4/projects/6/repository'))?.rule.text).toBe('GET /api/v4/projects/:id/repository/**');
    expect(m.match('GET', segs('/api/v4/projects/6'))).toBeUndefined();
  });

  it('lists every rule that allows the method, most specific first, each with its own captures', () => {
    const all = m.matchAll('GET', segs('/api/v4/projects/5/repository/files/x'));
    expect(all.map((a) => [a.rule.text, a.params])).toEqual([
      ['GET /api/v4/projects/:id/repository/files/:file_path', { id: '5', file_path: 'x' }],
      ['GET /api/v4/projects/:id/repository/**', { id: '5' }],
    ]);
    expect(m.matchAll('DELETE', segs('/api/v4/projects/5/repository/files/x'))).toEqual([]);
  });

  it('lists the rules whose path matches whatever their methods, to explain a wrong method', () => {
    expect(m.pathMatches(segs('/api/v4/projects/5/repository/files/x')).map((r) => r.text).sort()).toEqual([
      'GET /api/v4/projects/:id/repository/**',
      'GET /api/v4/projects/:id/repository/files/:file_path',
      'POST /api/v4/projects/5/repository/files/:file_path',
    ]);
    expect(m.pathMatches(segs('/api/v4/groups/5'))).toEqual([]);
  });

  it('allows nothing without rules', () => {
    expect(matcher().match('GET', segs('/api/v4/user'))).toBeUndefined();
  });
});
