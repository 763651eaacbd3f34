// Preset settings: a preset asks each client for a value (a webhook URL) and pins its hook
// rules to it with `under:`; the client must give a valid one. And `under:` itself.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPolicyDir, PolicyError } from './load.ts';
import { isUnder, pinProblem } from './url-under.ts';

const HOOKS = `preset: hooks
settings:
  webhook_url:
    description: where the vendor's webhooks post
allow:
  - GET /api/v4/projects/:id/hooks
  - { method: POST, path: /api/v4/projects/:id/hooks, body: { url: { under: "\${webhook_url}" } } }
  - { method: DELETE, path: /api/v4/projects/:id/hooks/:hook_id, target: { url: { under: "\${webhook_url}" } } }
`;

function load(files: Record<string, string>): { clients: ReturnType<typeof loadPolicyDir>['clients'] } | string[] {
  const dir = mkdtempSync(join(tmpdir(), 'gsp-settings-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  try {
    return loadPolicyDir(dir, dir);
  } catch (err) {
    if (err instanceof PolicyError) return err.problems.map((p) => `${p.file.replace(/^.*\//, '')}:${p.line} ${p.message}`);
    throw err;
  }
}

describe('preset settings', () => {
  it('fills the client\'s URL into the preset\'s under: constraints', () => {
    const p = load({ 'presets/hooks.yaml': HOOKS, 'a.yaml': 'clients:\n  v:\n    extends: presets/hooks\n    settings: { webhook_url: "https://hooks.vendor.example/in/" }\n' });
    if (Array.isArray(p)) throw new Error(p.join('\n'));
    const rules = p.clients.get('v')!.rules;
    expect(rules.map((r) => r.text)).toEqual(['GET /api/v4/projects/:id/hooks', 'POST /api/v4/projects/:id/hooks', 'DELETE /api/v4/projects/:id/hooks/:hook_id']);
    expect(rules[1]!.constraints!.body.get('url')).toEqual({ kind: 'under', pin: 'https://hooks.vendor.example/in/' });
    expect(rules[2]!.constraints!.target.get('url')).toEqual({ kind: 'under', pin: 'https://hooks.vendor.example/in/' });
  });

  it('refuses a client without the setting, with an unknown one, or with a URL that cannot be a pin', () => {
    const base = { 'presets/hooks.yaml': HOOKS };
    expect(load({ ...base, 'a.yaml': 'clients:\n  v:\n    extends: presets/hooks\n' }))
      .toEqual(['a.yaml:3 preset hooks needs settings.webhook_url: where the vendor\'s webhooks post']);
    expect(load({ ...base, 'a.yaml': 'clients:\n  v:\n    extends: presets/hooks\n    settings:\n      webhook_url: https://a.example/\n      webhook: x\n' }))
      .toEqual(['a.yaml:6 preset hooks has no setting "webhook" (it has webhook_url)']);
    for (const [url, why] of [
      ['https://HOOKS.example/', 'is not written canonically: use "https://hooks.example/"'],
      ['https://u:p@hooks.example/', 'has a user, a query or a fragment'],
      ['ftp://hooks.example/', 'is not an http(s) URL'],
      ['hooks.example', 'is not an absolute URL'],
    ] as const) {
      const problems = load({ ...base, 'a.yaml': `clients:\n  v:\n    extends: presets/hooks\n    settings: { webhook_url: "${url}" }\n` });
      expect(problems).toEqual([expect.stringContaining(why)]);
    }
    expect(load({ 'a.yaml': 'clients:\n  v:\n    settings: { webhook_url: "https://a.example/" }\n    allow: [GET /api/v4/user]\n' }))
      .toEqual(['a.yaml:3 settings gives values a preset asks for: it needs extends']);
  });

  const USER = 'clients:\n  v:\n    extends: presets/hooks\n    settings: { webhook_url: "https://a.example/" }\n';
  it('refuses a preset that uses a setting outside under:, names an undeclared one, or declares one it never uses', () => {
    const inPattern = HOOKS.replace('{ under: "${webhook_url}" } } }\n  - { method: DELETE', '{ pattern: "^${webhook_url}" } } }\n  - { method: DELETE');
    expect(load({ 'presets/hooks.yaml': inPattern, 'a.yaml': USER }).toString()).toMatch(/a setting is the whole value of under:/);
    const undeclared = HOOKS.replace('under: "${webhook_url}" } } }\n  - { method: DELETE', 'under: "${other_url}" } } }\n  - { method: DELETE');
    expect(load({ 'presets/hooks.yaml': undeclared, 'a.yaml': USER }).toString()).toMatch(/names no setting of this preset/);
    const unused = HOOKS.replace('    description: where', '    description: where').replace('settings:\n', 'settings:\n  spare:\n    description: never used\n');
    const r = load({ 'presets/hooks.yaml': unused, 'a.yaml': 'clients:\n  v:\n    extends: presets/hooks\n    settings: { webhook_url: "https://a.example/" }\n' });
    expect(r.toString()).toMatch(/setting "spare" is used by no rule/);
  });
});

describe('under:', () => {
  it('admits the pin and URLs below it, nothing beside it', () => {
    const slash = 'https://hooks.vendor.example/in/';
    expect(isUnder('https://hooks.vendor.example/in/', slash)).toBe(true);
    expect(isUnder('https://hooks.vendor.example/in/acme?x=1', slash)).toBe(true);
    expect(isUnder('https://hooks.vendor.example/inx', slash)).toBe(false);
    expect(isUnder('https://hooks.vendor.example/', slash)).toBe(false);
    const bare = 'https://hooks.vendor.example';
    expect(pinProblem(bare)).toBeUndefined();
    expect(isUnder('https://hooks.vendor.example', bare)).toBe(true);
    expect(isUnder('https://hooks.vendor.example/x', bare)).toBe(true);
    expect(isUnder('https://hooks.vendor.example?x', bare)).toBe(true);
    for (const evil of [
      'https://hooks.vendor.example.evil.test/', 'https://hooks.vendor.example@evil.test/', 'https://hooks.vendor.example:8443@evil.test/',
      'https://hooks.vendor.example\\@evil.test/', ' https://hooks.vendor.example/', 'https://hooks.vendor.example/{host}',
      'https://hooks.vendor.example/\t', 'HTTPS://hooks.vendor.example/',
    ]) expect([evil, isUnder(evil, bare)]).toEqual([evil, false]);
    expect(isUnder(5, bare)).toBe(false);
    expect(isUnder(null, bare)).toBe(false);
  });
});
