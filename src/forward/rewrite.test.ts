// Which of GitLab's answers are LFS batch answers (read whole and cleaned of the proxy's
// credentials, src/forward/forward.ts). Asked of every response, so it is a regular
// expression; this holds it to the plain reading: the media type before any parameters,
// trimmed, compared without regard to case.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isLfsJson } from './rewrite.ts';

const plainReading = (contentType: string | undefined): boolean =>
  (contentType ?? '').split(';')[0]!.trim().toLowerCase() === 'application/vnd.git-lfs+json';

describe('isLfsJson', () => {
  it('knows the LFS media type whatever its case, whitespace and parameters', () => {
    for (const yes of ['application/vnd.git-lfs+json', 'Application/VND.Git-LFS+JSON', ' application/vnd.git-lfs+json ; charset=utf-8', 'application/vnd.git-lfs+json;']) {
      expect(isLfsJson(yes), yes).toBe(true);
    }
    for (const no of [undefined, '', 'application/json', 'application/vnd.git-lfs+jsonx', 'application/vnd.git-lfs', 'text/plain; application/vnd.git-lfs+json', 'application/vnd.git-lfs+json x']) {
      expect(isLfsJson(no), String(no)).toBe(false);
    }
  });

  it('agrees with the plain reading on generated content types', () => {
    const ws = fc.constantFrom(' ', '\t', '\u00a0', '\ufeff', '\u2028', '');
    const piece = fc.constantFrom('application/vnd.git-lfs+json', 'APPLICATION/VND.GIT-LFS+JSON', 'application/json', 'Application/Vnd.Git-Lfs+Json', 'ſ', 'İ', 'K', ';', ';charset=utf-8', 'x');
    const contentType = fc.array(fc.oneof(ws, piece, fc.string({ maxLength: 3 })), { maxLength: 6 }).map((parts) => parts.join(''));
    fc.assert(fc.property(fc.option(contentType, { nil: undefined }), (ct) => isLfsJson(ct) === plainReading(ct)), { numRuns: 5000 });
  });
});
