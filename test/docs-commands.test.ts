// The commands README.md and docs/ tell an operator to type, run as written: `npx
// gitlab-scope-proxy ...` from a checkout (npx itself, not a shortcut), the onboarding
// example's `tests:` beside the preset it extends, the image's `node dist/cli.js`, the
// token-rotation recipe for a non-root operator, and the PUBLIC_URL warning.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startGitLabStandIn } from './support/gitlab-standin.ts';
import { send, startRig } from './support/ops.ts';

const ROOT = join(import.meta.dirname, '..');
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const deploy = readFileSync(join(ROOT, 'docs', 'deploy.md'), 'utf8');
const work = mkdtempSync(join(tmpdir(), 'gsp-docs-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Fenced code blocks of a Markdown text, with their info string (sh, yaml, ...). */
function codeBlocks(markdown: string): Array<{ lang: string; body: string }> {
  return [...markdown.matchAll(/^( *)```(\w*)\n([\s\S]*?)^\1```/gm)].map((m) => ({
    lang: m[2]!,
    body: m[3]!.split('\n').map((l) => l.slice(m[1]!.length)).join('\n'),
  }));
}

/** `npx gitlab-scope-proxy ARGS` run by npx in the checkout, as an operator would. */
function npx(args: string[], env: Record<string, string> = {}, cwd = ROOT): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('npx', ['--no-install', 'gitlab-scope-proxy', ...args], {
    cwd, encoding: 'utf8', timeout: 60_000, env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? work, ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('README and docs commands, as written', () => {
  it('says `npx gitlab-scope-proxy` wherever a checkout runs a command', () => {
    const bare: string[] = [];
    for (const file of ['README.md', 'docs/deploy.md', 'docs/operations.md', 'docs/policy.md', 'docs/security.md', 'helm/gitlab-scope-proxy/README.md']) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      for (const block of codeBlocks(text).filter((b) => b.lang === 'sh')) {
        for (const line of block.body.split('\n')) if (/^\s*gitlab-scope-proxy [a-z]/.test(line)) bare.push(`${file}: ${line.trim()}`);
      }
      for (const m of text.matchAll(/`gitlab-scope-proxy (serve|check|token|explain|learn|audit|schema|reload)\b[^`]*`/g)) bare.push(`${file}: ${m[0]}`);
    }
    expect(bare).toEqual([]);
  });

  it('runs the vendor steps: check, explain (with the output the README shows) and token', () => {
    const dir = join(work, 'connect');
    const policyBlock = codeBlocks(readme).find((b) => b.lang === 'yaml' && b.body.includes('packit:') && b.body.includes('description: Packit CI service'))!;
    cpSync(join(ROOT, 'policies', 'presets'), join(dir, 'presets'), { recursive: true });
    writeFileSync(join(dir, 'packit.yaml'), policyBlock.body);
    const env = { POLICY_DIR: dir, PROXY_JWT_SECRET: randomBytes(32).toString('hex') };
    const check = npx(['check'], env);
    expect(check.stdout.trim(), check.stderr).toMatch(/^ok\b/);
    const explainBlock = codeBlocks(readme).find((b) => b.body.startsWith('npx gitlab-scope-proxy explain --client packit'))!;
    const [command, ...expected] = explainBlock.body.trim().split('\n');
    const explain = npx(command!.split(' ').slice(2), env);
    expect(explain.stdout.trim()).toBe(expected.map((l) => l.replace(/^# /, '')).join('\n'));
    const token = npx(['token', '--client', 'packit', '--expires-in', '90d'], env);
    expect(token.stdout.trim()).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
  }, 90_000);

  it("passes the onboarding example's tests: with the preset it extends beside it", () => {
    const dir = join(work, 'onboarding');
    cpSync(join(ROOT, 'policies', 'presets'), join(dir, 'presets'), { recursive: true });
    const client = codeBlocks(readme).find((b) => b.body.startsWith('# $POLICY_DIR/glean.yaml'))!.body;
    const tests = codeBlocks(readme).find((b) => b.lang === 'yaml' && b.body.trimStart().startsWith('tests:'))!.body;
    expect(tests).toContain('- allow:');
    expect(tests).toContain('- deny:');
    writeFileSync(join(dir, 'glean.yaml'), `${client.trimEnd()}\n${tests}`);
    const check = npx(['check', '--policies', dir]);
    expect(check.stdout.trim() + check.stderr).toMatch(/^ok: 1 clients/);
    // The self-check: a test that fails is reported (so "ok" above means the tests ran).
    writeFileSync(join(dir, 'glean.yaml'), `${client.trimEnd()}\n${tests.replace('- deny: DELETE', '- allow: DELETE')}`);
    expect(npx(['check', '--policies', dir]).status).toBe(1);
  }, 90_000);

  it("mints tokens in the image with the image's own entry point, dist/cli.js", () => {
    // The image holds dist/ only (Dockerfile: COPY --from=build /app/dist ./dist, WORKDIR /app).
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^WORKDIR \/app$/m);
    expect(dockerfile).toMatch(/^COPY --from=build \/app\/dist \.\/dist$/m);
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    expect(runtime).not.toMatch(/^COPY[^\n]*\bsrc\b/m);
    const texts = [deploy, readFileSync(join(ROOT, 'helm/gitlab-scope-proxy/README.md'), 'utf8'), readFileSync(join(ROOT, 'helm/gitlab-scope-proxy/templates/NOTES.txt'), 'utf8')];
    const inImage = texts.flatMap((t) => [...t.matchAll(/(?:exec|run --rm)\b[^\n]*?(?:\\\n\s*)?-- ?\n?\s*node (\S+)|exec gitlab-scope-proxy node (\S+)/g)].map((m) => m[1] ?? m[2]));
    expect(inImage.length).toBeGreaterThanOrEqual(3);
    expect(new Set(inImage)).toEqual(new Set(['dist/cli.js']));
    // dist/cli.js is what the build emits for src/cli.ts (tsconfig.build.json: rootDir src, outDir dist).
    const build = readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8');
    expect(build).toMatch(/"rootDir": "src"/);
    expect(build).toMatch(/"outDir": "dist"/);
  });

  it('rotates the GitLab token as deploy.md says, keeping the file, its owner (uid 10001) and mode 0400', () => {
    const recipe = codeBlocks(deploy).find((b) => b.lang === 'sh' && b.body.includes('sudo tee secrets/gitlab_token'))!.body.trim();
    const dir = join(work, 'compose');
    const file = join(dir, 'secrets', 'gitlab_token');
    const old = `glpat-${randomBytes(10).toString('hex')}`;
    const next = `glpat-${randomBytes(10).toString('hex')}`;
    mkdirSync(join(dir, 'secrets'), { recursive: true });
    writeFileSync(file, `${old}\n`);
    const root = process.getuid?.() === 0;
    // As set up in step 1: owned by the container user, readable by it only. Only root can
    // chown; otherwise the file stays the operator's own.
    if (root) chownSync(file, 10001, 10001);
    chmodSync(file, 0o400);
    const before = statSync(file);
    // `sudo` as a pass-through: the test runs as root already (or as the file's owner).
    const r = spawnSync('bash', ['-c', `sudo() { "$@"; }; ${recipe}`], { cwd: dir, input: `${next}\n`, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const after = statSync(file);
    expect(readFileSync(file, 'utf8')).toBe(`${next}\n`);
    expect(after.ino).toBe(before.ino); // in place: a single-file bind mount sees the new content
    expect(after.mode & 0o777).toBe(0o400);
    expect(after.uid).toBe(before.uid);
    if (root) expect(after.uid).toBe(10001);
    expect(r.stdout + r.stderr).not.toContain(next);
  });

  it('warns once when clients reach the proxy under another host than PUBLIC_URL', async () => {
    const standin = await startGitLabStandIn({ validTokens: ['t'] });
    const rig = await startRig({
      policies: { 'a.yaml': 'clients:\n  a:\n    allow:\n      - GET /api/v4/projects/:id\n' },
      env: { GITLAB_URL: standin.url, GITLAB_TOKEN: 't', PUBLIC_URL: 'https://gitlab-proxy.example.com' },
    });
    try {
      const warnings = () => rig.opsLines.filter((l) => String(l['msg']).startsWith('PUBLIC_URL names another host'));
      await send(`${rig.url}/api/v4/projects/1`, { headers: { host: 'gitlab-proxy.example.com' } });
      await send(`${rig.url}/healthz`);
      expect(warnings()).toEqual([]);
      await send(`${rig.url}/api/v4/projects/1`);
      await send(`${rig.url}/api/v4/projects/2`);
      expect(warnings()).toHaveLength(1);
      expect(warnings()[0]).toMatchObject({ level: 40, host: new URL(rig.url).host, publicUrl: 'gitlab-proxy.example.com' });
    } finally {
      await rig.close();
      await standin.close();
    }
  });
});
