// Quick actions: GitLab runs "/merge", "/approve", "/close", "/move other/project" written in
// a note or an issue/merge request description, also through the API. A rule that allows a
// note must not let it merge or move: a text GitLab would read as quick actions is refused
// unless the rule names each command, in every spelling GitLab reads (case, "\r", leading
// blanks, Unicode case folding) and in every place it reads the field (JSON, form,
// multipart, query). Commands naming a project obey the scope.
import { describe, expect, it } from 'vitest';
import { findQuickActions, QUICK_ACTION_ENDPOINTS, quickActionTargets } from '../../src/request/quick-actions.ts';
import extract from '../../src/scope/spec-extract.json' with { type: 'json' };
import type { Harness } from '../support/harness.ts';
import { bearer, send } from './support.ts';
import { expectScopeRefused, forwardedOnce, useScopeHarness } from './scope-support.ts';

describe('which endpoints and fields are read for quick actions', () => {
  it('lists every note, discussion, draft note, comment and issuable description write of the spec', () => {
    const key = (e: { method: string; path: string; field?: string; name?: string }) => `${e.method} ${e.path} ${e.field ?? e.name}`;
    // The spec's write operations with a body, note or description field (src/scope/spec-extract.json).
    const fromSpec = extract.params.map(([method, path, name]) => ({ method: method!, path: path!, name: name! }))
      .filter((p) => ['POST', 'PUT', 'PATCH'].includes(p.method) && ['body', 'note', 'description'].includes(p.name))
      .filter((p) => /notes|discussions|comments|issues|merge_requests|epics/.test(p.path) && !(p.name === 'description' && /snippets/.test(p.path)))
      .map(key).sort();
    expect(QUICK_ACTION_ENDPOINTS.map(key).sort()).toEqual(fromSpec);
    expect(fromSpec).toContain('POST /api/v4/projects/{id}/merge_requests/{noteable_id}/notes body');
    expect(fromSpec).toContain('PUT /api/v4/projects/{id}/issues/{issue_iid} description');
  });
});

describe('the reading of a text', () => {
  const names = (text: string) => findQuickActions(text).map((a) => a.name);
  it('finds commands as GitLab does, and more', () => {
    expect(names('LGTM\n/merge')).toEqual(['merge']);
    expect(names('/MERGE')).toEqual(['merge']);
    expect(names('x\r/approve')).toEqual(['approve']);
    expect(names('  /close  ')).toEqual(['close']);
    expect(names('/clo\u017Fe')).toEqual(['close']); // Ruby's /i folds "ſ" to "s"
    expect(names('/label ~bug ~"needs review"')).toEqual(['label']);
    expect(names('```\n/merge\n```')).toEqual(['merge']); // skipped by GitLab, refused anyway
    expect(names('see /merge\n/etc/hosts\nhttp://x/merge\n/\n/tmp is full\n/packit build\n/merged')).toEqual([]);
  });
  it('reads what scope-bearing commands name', () => {
    expect(quickActionTargets(findQuickActions('/move other/secret\n/relate #2 other/x#3 acme/y!4\n/epic grp&5\n/clone acme/z --with_notes'))).toEqual([
      { kind: 'project', ref: 'other/secret', via: '/move' },
      { kind: 'project', ref: 'other/x', via: '/relate' },
      { kind: 'project', ref: 'acme/y', via: '/relate' },
      { kind: 'group', ref: 'grp', via: '/epic' },
      { kind: 'project', ref: 'acme/z', via: '/clone' },
    ]);
    expect(quickActionTargets(findQuickActions('/relate https://gitlab.example/other/x/-/issues/1'))[0]!.kind).toBe('url');
  });
});

const POLICY = `
clients:
  vendor:
    allow:
      - GET /api/v4/projects/:id
      - GET,POST /api/v4/projects/:id/merge_requests/:iid/notes
      - POST /api/v4/projects/:id/issues
      - PUT /api/v4/projects/:id/issues/:iid
      - method: POST
        path: /api/v4/projects/:id/issues/:issue_iid/notes
        quick_actions: [label, move]
  scoped:
    projects: ["acme/**"]
    allow:
      - method: POST
        path: /api/v4/projects/:id/issues/:issue_iid/notes
        quick_actions: [move, relate, label]
  reporter:
    mode: report
    allow:
      - GET /api/v4/projects/:id
`;

let h: Harness;
let jwt: string;
useScopeHarness(POLICY, (harness, token) => {
  h = harness;
  jwt = token;
});

type Kind = 'json' | 'form' | 'multipart';
function body(kind: Kind, fields: Record<string, string>): { headers: [string, string][]; body: string } {
  if (kind === 'json') return { headers: [['Content-Type', 'application/json']], body: JSON.stringify(fields) };
  if (kind === 'form') return { headers: [['Content-Type', 'application/x-www-form-urlencoded']], body: new URLSearchParams(fields).toString() };
  const b = 'qab0undary';
  return {
    headers: [['Content-Type', `multipart/form-data; boundary=${b}`]],
    body: `${Object.entries(fields).map(([k, v]) => `--${b}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`).join('')}--${b}--\r\n`,
  };
}
const write = (path: string, kind: Kind, fields: Record<string, string>, token = jwt, method = 'POST') => {
  const b = body(kind, fields);
  return send(h.url, { method, path, headers: [bearer(token), ...b.headers], body: b.body });
};

describe('quick actions are refused unless the rule names them', () => {
  const NOTE = '/api/v4/projects/1/merge_requests/1/notes';
  for (const [text, name] of [
    ['LGTM\n/merge', 'merge'], ['/approve', 'approve'], ['/close', 'close'], ['/move other/secret', 'move'],
    ['/MERGE', 'merge'], ['ok\r/merge', 'merge'], ['  /merge', 'merge'], ['/m\u0065rge now', 'merge'], ['/clo\u017Fe', 'close'],
  ] as const) {
    it(`a note ${JSON.stringify(text)}`, async () => {
      await expectScopeRefused(h, await write(NOTE, 'json', { body: text }), `quick-actions: /${name} not allowed`, 403);
    });
  }

  for (const kind of ['form', 'multipart'] as const) {
    it(`a ${kind} note`, async () => {
      await expectScopeRefused(h, await write(NOTE, kind, { body: 'x\n/merge' }), 'quick-actions: /merge not allowed', 403);
    });
  }

  it('a note in the query string', async () => {
    await expectScopeRefused(h, await send(h.url, { method: 'POST', path: `${NOTE}?body=%2Fapprove`, headers: [bearer(jwt)] }), 'quick-actions: /approve not allowed', 403);
  });

  it('an issue description, on create and on update; a title is not read', async () => {
    await expectScopeRefused(h, await write('/api/v4/projects/1/issues', 'json', { title: 't', description: 'Bug\n/close' }), 'quick-actions: /close not allowed', 403);
    h.standin.reset();
    await expectScopeRefused(h, await write('/api/v4/projects/1/issues/2', 'form', { description: '/move other/secret' }, jwt, 'PUT'), 'quick-actions: /move not allowed', 403);
    h.standin.reset();
    const rec = await forwardedOnce(h, await write('/api/v4/projects/1/issues', 'json', { title: '/close' }));
    expect(JSON.parse(rec.body.toString())).toEqual({ title: '/close' });
  });

  it('a rule that names one command allows that one only', async () => {
    const rec = await forwardedOnce(h, await write('/api/v4/projects/1/issues/1/notes', 'json', { body: 'triage\n/label ~bug' }));
    expect(JSON.parse(rec.body.toString())).toEqual({ body: 'triage\n/label ~bug' });
    h.standin.reset();
    await expectScopeRefused(h, await write('/api/v4/projects/1/issues/1/notes', 'json', { body: '/label ~bug\n/merge' }), 'quick-actions: /merge not allowed', 403);
  });

  it('text that only mentions a command, or a vendor\'s own command, passes', async () => {
    let rec = await forwardedOnce(h, await write(NOTE, 'json', { body: 'Please do not /merge yet; see /etc/hosts' }));
    expect(rec.path).toBe(NOTE);
    h.standin.reset();
    rec = await forwardedOnce(h, await write(NOTE, 'form', { body: '/packit build' }));
    expect(rec.body.toString()).toBe('body=%2Fpackit+build');
  });

  it('report mode does not forward quick actions either', async () => {
    await expectScopeRefused(h, await write(NOTE, 'json', { body: '/merge' }, await h.token('reporter')), 'quick-actions: /merge not allowed', 403);
  });
});

describe('quick actions that name a project obey the scope', () => {
  const NOTES = '/api/v4/projects/1/issues/1/notes';
  it('refuses /move and /relate to a project outside the scope', async () => {
    const t = await h.token('scoped');
    await expectScopeRefused(h, await write(NOTES, 'json', { body: '/move other/secret' }, t), 'scope: project other/secret (/move) not in projects', 403);
    h.standin.reset();
    await expectScopeRefused(h, await write(NOTES, 'json', { body: '/relate #2 other/secret#1' }, t), 'scope: project other/secret (/relate) not in projects', 403);
    h.standin.reset();
    await expectScopeRefused(h, await write(NOTES, 'json', { body: '/relate https://gitlab.example/other/secret/-/issues/1' }, t), /^scope-unresolved: \/relate names a URL/, 403);
  });

  it('forwards them inside the scope', async () => {
    const t = await h.token('scoped');
    const rec = await forwardedOnce(h, await write(NOTES, 'json', { body: '/move acme/docs\n/relate #2 acme/platform/web#3' }, t));
    expect(JSON.parse(rec.body.toString())).toEqual({ body: '/move acme/docs\n/relate #2 acme/platform/web#3' });
  });

  it('an unscoped client\'s rule may move anywhere it names', async () => {
    const rec = await forwardedOnce(h, await write(NOTES, 'json', { body: '/move other/secret' }));
    expect(rec.path).toBe(NOTES);
  });
});
