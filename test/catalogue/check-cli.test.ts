// `check` knows GitLab's routes: a typo'd rule is a problem with the nearest real route, and a
// broad client's reach is shown by risk class with warnings; `--json` for CI. The commands run
// in-process through main(argv, io), as the binary runs them (test/support/cli.ts).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';

function check(policy: string, ...args: string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'gsp-catalogue-'));
  writeFileSync(join(dir, 'a.yaml'), policy);
  return runCli(['check', '--policies', dir, ...args]);
}

it('flags a rule that matches no GitLab route, with the nearest one', async () => {
  const r = await check('clients:\n  docs:\n    allow:\n      - GET /api/v4/projects/:id/wiki\n');
  expect(r.code).toBe(1);
  expect(r.stdout).toMatch(/a\.yaml:4:\d+ "GET \/api\/v4\/projects\/:id\/wiki" matches no GitLab route in GitLab 18\.9\.0-pre; nearest: GET \/api\/v4\/projects\/:id\/wikis\n/);
});

it('shows a broad client\'s reach by class, the floor, and warns for risky classes', async () => {
  const r = await check('clients:\n  broad:\n    allow:\n      - "* /api/v4/**"\n');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^ok: 1 clients/);
  expect(r.stdout).toMatch(/client broad \(.*a\.yaml:2\): reaches \d+ GitLab routes/);
  expect(r.stdout).toMatch(/refused by the floor: credential \d+, admin \d+ \(no admin: true\)/);
  for (const cls of ['membership', 'destructive', 'exfiltration']) expect(r.stdout).toMatch(new RegExp(`warning: client broad may reach \\d+ ${cls} routes`));
  expect(r.stdout).not.toMatch(/may reach \d+ (credential|admin) routes/);

  const json = JSON.parse((await check('clients:\n  broad:\n    admin: true\n    allow:\n      - "* /api/v4/**"\n', '--json')).stdout) as { ok: boolean; clients: { classes: Record<string, { reach: number; refused: number }>; warnings: string[] }[] };
  expect(json.ok).toBe(true);
  const broad = json.clients[0]!;
  expect(broad.classes.credential!.reach).toBe(0);
  expect(broad.classes.credential!.refused).toBeGreaterThan(100);
  expect(broad.classes.admin!.reach).toBeGreaterThan(100);
  expect(broad.warnings).toEqual(['admin', 'membership', 'destructive', 'exfiltration']);
});

it('explain names the GitLab route, and --rule lists the routes a rule covers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gsp-catalogue-'));
  writeFileSync(join(dir, 'a.yaml'), 'clients:\n  broad:\n    allow:\n      - "* /api/v4/**"\n');
  const run = (...args: string[]) => runCli(['explain', ...args]);
  const rotate = await run('--policies', dir, '--client', 'broad', 'POST', '/api/v4/projects/5/access_tokens/self/rotate');
  expect(rotate.code).toBe(1);
  expect(rotate.stdout).toMatch(/^deny\tcredential-route: POST \/api\/v4\/projects\/:id\/access_tokens\/self\/rotate creates or reveals a credential/);
  expect(rotate.stdout).toMatch(/\nroute\tPOST \/api\/v4\/projects\/:id\/access_tokens\/self\/rotate \(Access tokens\)\tcredential: /);
  const rule = await run('--rule', 'GET /api/v4/projects/:id/**');
  expect(rule.code).toBe(0);
  expect(rule.stdout).toMatch(/^read\tGET \/api\/v4\/projects\/:id \(Projects\)$/m);
  expect(rule.stdout).toMatch(/^credential\tGET \/api\/v4\/projects\/:id\/variables \(CI variables\)\t\(refused by the floor\)$/m);
  expect((await run('--rule', 'GET /api/v4/projects/:id/wiki')).stdout).toMatch(/^none\t.*nearest: GET \/api\/v4\/projects\/:id\/wikis/);
});
