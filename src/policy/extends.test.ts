import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkPolicyDir } from '../commands/check.ts';
import { BUILTIN_POLICY_DIR, presetFinder } from './extends.ts';
import { compilePolicy, formatProblem, loadPolicyDir, PolicyError } from './load.ts';
import { decideDescribed, offlineResolver } from '../decision/offline.ts';

function policyDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'gsp-extends-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

const problemsOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (err) {
    if (err instanceof PolicyError) return err.problems.map((p) => `${p.line}:${p.col} ${p.message}`);
    throw err;
  }
  return [];
};

const MINE = `preset: mine
description: test preset
allow:
  - GET /api/v4/user
  - GET,POST /api/v4/projects/:id/issues
  - GET /api/v4/projects/:id/wikis
`;

describe('extends', () => {
  it('takes the preset rules first, keeps their preset line as source, and adds the client\'s own', async () => {
    const dir = policyDir({ 'presets/mine.yaml': MINE, 'a.yaml': 'clients:\n  c:\n    extends: presets/mine\n    allow: [GET /api/v4/version]\n' });
    const c = loadPolicyDir(dir, dir).clients.get('c')!;
    expect(c.rules.map((r) => `${r.text} @ ${r.source}`)).toEqual([
      'GET /api/v4/user @ presets/mine.yaml:4',
      'GET,POST /api/v4/projects/:id/issues @ presets/mine.yaml:5',
      'GET /api/v4/projects/:id/wikis @ presets/mine.yaml:6',
      'GET /api/v4/version @ a.yaml:4',
    ]);
    expect(c.preset).toBe('presets/mine');
    expect(await decideDescribed(c, { method: 'POST', target: '/api/v4/projects/5/issues' }, offlineResolver)).toMatchObject({ verdict: 'allow', ruleLabel: 'GET,POST /api/v4/projects/:id/issues (presets/mine.yaml:5)' });
  });

  it('removes rules written exactly as in the preset', async () => {
    const dir = policyDir({ 'presets/mine.yaml': MINE, 'a.yaml': 'clients:\n  c:\n    extends: presets/mine\n    remove:\n      - GET /api/v4/projects/:id/wikis\n' });
    const c = loadPolicyDir(dir, dir).clients.get('c')!;
    expect(c.rules.map((r) => r.text)).toEqual(['GET /api/v4/user', 'GET,POST /api/v4/projects/:id/issues']);
    expect((await decideDescribed(c, { method: 'GET', target: '/api/v4/projects/5/wikis' }, offlineResolver)).verdict).toBe('deny');
  });

  it('reports a removed rule that is not in the preset, remove without extends and an unknown preset', () => {
    const dir = policyDir({
      'presets/mine.yaml': MINE,
      'a.yaml': `clients:
  c:
    extends: presets/mine
    remove:
      - GET /api/v4/projects/:id/issues
      - GET /api/v4/nothing
  d:
    remove: [GET /api/v4/user]
  e:
    extends: presets/absent
  f:
    extends: ../../etc/passwd
`,
    });
    expect(problemsOf(() => loadPolicyDir(dir, dir))).toEqual([
      '5:9 "GET /api/v4/projects/:id/issues" is not a rule of preset presets/mine (presets/mine.yaml); the closest rule is "GET,POST /api/v4/projects/:id/issues"',
      '6:9 "GET /api/v4/nothing" is not a rule of preset presets/mine (presets/mine.yaml)',
      '8:13 remove takes rules out of a preset: it needs extends',
      expect.stringMatching(/^10:14 unknown preset "presets\/absent": no presets\/absent\.yaml in /),
      expect.stringMatching(/^12:14 f\.extends: extends names a preset/),
    ]);
  });

  it('reports a broken preset at its own lines, once, however many clients use it', () => {
    const dir = policyDir({
      'presets/bad.yaml': 'preset: other\nallow:\n  - GET /api/v4/user\n  - get /api/v4/x\n  - GET /api/v4/user\ncolour: red\n',
      'a.yaml': 'clients:\n  c:\n    extends: presets/bad\n  d:\n    extends: presets/bad\n',
    });
    const problems = (() => {
      try {
        loadPolicyDir(dir, dir);
      } catch (err) {
        return (err as PolicyError).problems.map(formatProblem);
      }
      return [];
    })();
    expect(problems).toEqual([
      'a.yaml:3:14 preset "presets/bad" has problems (presets/bad.yaml)',
      'a.yaml:5:14 preset "presets/bad" has problems (presets/bad.yaml)',
      'presets/bad.yaml:6:1 unknown key "colour"',
    ]);
    writeFileSync(join(dir, 'presets/bad.yaml'), 'preset: other\nallow:\n  - GET /api/v4/user\n  - get /api/v4/x\n  - GET /api/v4/user\n');
    expect(problemsOf(() => loadPolicyDir(dir, dir)).slice(2)).toEqual([
      '1:9 preset "other" must be named after its file ("bad")',
      '4:5 unknown method "get" (use GET, HEAD, POST, PUT, PATCH, DELETE or *, upper case)',
      '5:5 rule is already listed on line 3',
    ]);
  });

  it('looks in POLICY_DIR first, then the built-in presets, and a preset edit changes the checksum', () => {
    const own = 'preset: glean\nallow:\n  - GET /api/v4/version\n';
    const dir = policyDir({ 'presets/glean.yaml': own, 'a.yaml': 'clients:\n  c:\n    extends: presets/glean\n  d:\n    extends: presets/sentry\n    settings: { webhook_url: "https://sentry.example/extensions/gitlab/webhook/" }\n' });
    const policy = loadPolicyDir(dir, dir);
    expect(policy.clients.get('c')!.rules.map((r) => r.text)).toEqual(['GET /api/v4/version']);
    expect(policy.clients.get('d')!.rules[0]!.source).toMatch(/policies\/presets\/sentry\.yaml:\d+$/);
    expect(policy.presets).toEqual(['presets/glean.yaml', expect.stringMatching(/policies\/presets\/sentry\.yaml$/)]);
    writeFileSync(join(dir, 'presets/glean.yaml'), own.replace('version', 'user'));
    expect(loadPolicyDir(dir, dir).checksum).not.toBe(policy.checksum);
  });

  it('resolves built-in presets from compilePolicy too, and presets are never loaded as policy files', () => {
    const p = compilePolicy([{ display: 'a.yaml', text: 'clients:\n  c:\n    extends: presets/zoom\n    settings: { webhook_url: "https://hooks.zoom.example/gitlab/" }\n' }], { presets: presetFinder([BUILTIN_POLICY_DIR]) });
    expect(p.clients.get('c')!.rules.length).toBeGreaterThan(0);
    const dir = policyDir({ 'presets/mine.yaml': MINE });
    expect(loadPolicyDir(dir, dir).clients.size).toBe(0);
  });
});

describe('mode and tests', () => {
  it('defaults to enforce', () => {
    const p = compilePolicy([{ display: 'a.yaml', text: 'clients:\n  c:\n    allow: [GET /api/v4/user]\n  r:\n    mode: report\n' }]);
    expect(p.clients.get('c')!.mode).toBe('enforce');
    expect(p.clients.get('r')!.mode).toBe('report');
    expect(problemsOf(() => compilePolicy([{ display: 'a.yaml', text: 'clients:\n  c:\n    mode: audit\n' }]))).toEqual([expect.stringMatching(/^3:11 c\.mode: /)]);
  });

  it('check runs every client\'s tests and reports a failing one at its line', async () => {
    const dir = policyDir({
      'presets/mine.yaml': MINE,
      'a.yaml': `clients:
  c:
    extends: presets/mine
    mode: report
    tests:
      - allow: GET /api/v4/projects/acme%2Fapp/issues
      - deny: DELETE /api/v4/projects/1
      - deny: GET /api/v4/projects/1?sudo=root
      - allow: GET /api/v4/projects/1
      - deny: GET /api/v4/user
      - deny: OPTIONS /api/v4/user
`,
    });
    const r = await checkPolicyDir(dir, dir);
    expect(r.tests).toBe(6);
    expect(r.presets).toBe(1);
    expect(r.problems.map(formatProblem)).toEqual([
      'a.yaml:9:9 test failed: GET /api/v4/projects/1 should be allowed, but is only forwarded by report mode: no-rule: no rule matches',
      'a.yaml:10:9 test failed: GET /api/v4/user should be denied, but GET /api/v4/user (presets/mine.yaml:4) allows it',
    ]);
  });

  it('check validates presets no client uses yet', async () => {
    const dir = policyDir({ 'presets/unused.yaml': 'preset: unused\nallow: [GET /api/v3/x]\n' });
    expect((await checkPolicyDir(dir, dir)).problems.map(formatProblem)).toEqual(['presets/unused.yaml:2:9 path must start with /api/v4/']);
  });
});
