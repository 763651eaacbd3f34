// Static checks of the Dockerfile and .dockerignore. There is no Docker
// engine where the tests run, so the file is parsed, not built.
import { describe, expect, it } from 'vitest';
import { AUDIT_DIR, readRepoFile } from './settings.ts';

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

interface Stage {
  image: string;
  name: string | undefined;
  instructions: Instruction[];
}

/** Splits a Dockerfile into instructions: comments dropped, continuations joined. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  let startLine = 0;
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const trimmed = raw.trim();
    // Comment lines are ignored, also in the middle of a continuation.
    if (trimmed.startsWith('#')) return;
    if (pending === '' && trimmed === '') return;
    if (pending === '') startLine = index + 1;
    if (trimmed.endsWith('\\')) {
      pending += trimmed.slice(0, -1).trimEnd() + ' ';
      return;
    }
    pending += trimmed;
    const match = /^([A-Za-z]+)\s+([\s\S]*)$/.exec(pending.trim());
    if (!match) throw new Error(`line ${startLine}: cannot parse "${pending}"`);
    out.push({ keyword: match[1]!.toUpperCase(), args: match[2]!.trim(), line: startLine });
    pending = '';
  });
  if (pending !== '') throw new Error('Dockerfile ends inside a line continuation');
  return out;
}

function splitStages(instructions: Instruction[]): Stage[] {
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const words = instruction.args.split(/\s+/).filter((w) => !w.startsWith('--'));
      const asIndex = words.findIndex((w) => w.toUpperCase() === 'AS');
      stages.push({
        image: words[0] ?? '',
        name: asIndex >= 0 ? words[asIndex + 1] : undefined,
        instructions: [],
      });
      continue;
    }
    const current = stages.at(-1);
    if (!current) {
      if (instruction.keyword === 'ARG') continue; // ARG may precede the first FROM
      throw new Error(`line ${instruction.line}: ${instruction.keyword} before any FROM`);
    }
    current.instructions.push(instruction);
  }
  return stages;
}

/** Arguments of an exec-form instruction (a JSON array), or undefined for shell form. */
function execForm(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string')) {
    throw new Error(`not a JSON array of strings: ${args}`);
  }
  return parsed;
}

/** Node 24 images only: node:24, node:24-<variant>, optionally pinned by digest. */
function isNode24Image(image: string): boolean {
  return /^(docker\.io\/(library\/)?)?node:24(\.\d+(\.\d+)?)?(-[a-z0-9.-]+)?(@sha256:[0-9a-f]{64})?$/.test(image);
}

function isRootUser(user: string): boolean {
  const who = user.split(':')[0]!.trim();
  return who === '' || who === 'root' || who === '0';
}

/**
 * A small .dockerignore matcher with Docker's rules: patterns are matched in
 * order, the last match wins, `!` re-includes, and a pattern that matches a
 * parent directory matches everything under it.
 */
function dockerIgnored(patterns: string[], path: string): boolean {
  let ignored = false;
  for (const rawPattern of patterns) {
    const negate = rawPattern.startsWith('!');
    const pattern = (negate ? rawPattern.slice(1) : rawPattern).replace(/^\/+|\/+$/g, '');
    const source = pattern
      .split('/')
      .map((segment) =>
        segment === '**'
          ? '.*'
          : segment
              .replace(/[.+^${}()|[\]\\]/g, '\\$&')
              .replace(/\*/g, '[^/]*')
              .replace(/\?/g, '[^/]'),
      )
      .join('/')
      .replace(/\.\*\//g, '(?:.*/)?');
    const regex = new RegExp(`^${source}$`);
    const parts = path.split('/');
    const matches = parts.some((_, i) => regex.test(parts.slice(0, i + 1).join('/')));
    if (matches) ignored = !negate;
  }
  return ignored;
}

function dockerignorePatterns(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

const dockerfileText = readRepoFile('Dockerfile');
const instructions = parseDockerfile(dockerfileText);
const stages = splitStages(instructions);
const finalStage = stages.at(-1)!;
const stageNames = new Set(stages.map((s) => s.name).filter((n): n is string => n !== undefined));
const packageJson = JSON.parse(readRepoFile('package.json')) as { scripts: Record<string, string> };

function finalStageOf(keyword: string): Instruction[] {
  return finalStage.instructions.filter((i) => i.keyword === keyword);
}

describe('Dockerfile parser (self-check)', () => {
  it('rejects what the real checks must reject', () => {
    expect(isNode24Image('node:24-bookworm-slim')).toBe(true);
    expect(isNode24Image('node:24-alpine')).toBe(true);
    expect(isNode24Image('node:22-bookworm-slim')).toBe(false);
    expect(isNode24Image('node:lts')).toBe(false);
    expect(isNode24Image('node:240')).toBe(false);
    expect(isRootUser('0:0')).toBe(true);
    expect(isRootUser('root')).toBe(true);
    expect(isRootUser('10001:10001')).toBe(false);
    const parsed = parseDockerfile('FROM a AS b\n# c\nRUN x \\\n  # inner comment\n  && y\n');
    expect(parsed.map((i) => i.keyword)).toEqual(['FROM', 'RUN']);
    expect(parsed[1]!.args).toBe('x && y');
    expect(dockerIgnored(['*', '!src'], 'src/a.ts')).toBe(false);
    expect(dockerIgnored(['*', '!src'], 'test/a.ts')).toBe(true);
    expect(dockerIgnored(['*', '!src', 'src/**/*.test.ts'], 'src/a/b.test.ts')).toBe(true);
  });
});

describe('Dockerfile', () => {
  it('is multi-stage, and every stage builds on Node 24 (or on an earlier stage)', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) {
      const ok = isNode24Image(stage.image) || stageNames.has(stage.image);
      expect(ok, `FROM ${stage.image} is not a node:24 image`).toBe(true);
    }
  });

  it('installs only production dependencies, from the lockfile, in a build stage', () => {
    const runs = instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    const ci = runs.filter((r) => /\bnpm ci\b/.test(r));
    expect(ci.length, 'no `npm ci` found').toBeGreaterThan(0);
    expect(runs.some((r) => /\bnpm (install|i)\b/.test(r)), 'use npm ci, not npm install').toBe(false);
    // The node_modules the image ships come from a stage that installed without dev
    // dependencies (a compile stage may install them; only its output is copied).
    const from = finalStageOf('COPY').map((i) => /^--from=(\S+)\s.*node_modules/.exec(i.args)?.[1]).find((n) => n !== undefined);
    const depsStage = stages.find((s) => s.name === from);
    expect(depsStage).toBeDefined();
    expect(depsStage).not.toBe(finalStage);
    const depsCi = depsStage!.instructions.filter((i) => i.keyword === 'RUN' && /\bnpm ci\b/.test(i.args));
    expect(depsCi.length).toBeGreaterThan(0);
    for (const run of depsCi) expect(run.args).toMatch(/--omit=dev\b/);
  });

  it('copies node_modules, the compiled dist, policies and package files into the final stage', () => {
    const copies = finalStageOf('COPY').map((i) => i.args);
    expect(copies.some((c) => /^--from=\S+\s.*node_modules/.test(c))).toBe(true);
    expect(copies.some((c) => /^--from=\S+\s.*\/app\/dist\s/.test(c)), 'dist from the build stage').toBe(true);
    for (const needed of ['package.json', 'package-lock.json', 'dist', 'policies']) {
      expect(copies.some((c) => c.split(/\s+/).some((w) => w.replace(/^\.\//, '').startsWith(needed))), needed).toBe(true);
    }
  });

  it('runs the final stage as a non-root user, and never switches back', () => {
    const users = finalStageOf('USER');
    expect(users.length, 'the final stage has no USER').toBeGreaterThan(0);
    for (const user of users) expect(isRootUser(user.args), `USER ${user.args}`).toBe(false);
    // Numeric, so Kubernetes can check runAsNonRoot without a runAsUser override.
    expect(users.at(-1)!.args).toMatch(/^[1-9]\d*(:\d+)?$/);
    const lastUser = users.at(-1)!;
    const runsAfterUser = finalStage.instructions.filter((i) => i.keyword === 'RUN' && i.line > lastUser.line);
    expect(runsAfterUser, 'RUN after USER would run as the service user').toEqual([]);
  });

  it('prepares the audit directory for the service user, so a read-only root works', () => {
    const userId = finalStageOf('USER').at(-1)!.args.split(':')[0]!;
    const prepared = finalStageOf('RUN').some(
      (i) => i.args.includes(AUDIT_DIR) && new RegExp(`chown\\s+(-R\\s+)?${userId}(:\\d+)?\\s+${AUDIT_DIR}`).test(i.args),
    );
    expect(prepared, `the final stage must mkdir and chown ${AUDIT_DIR} to ${userId}`).toBe(true);
    expect(finalStageOf('VOLUME'), 'VOLUME creates stray anonymous volumes').toEqual([]);
  });

  it('has a HEALTHCHECK on /healthz that uses node itself', () => {
    const checks = finalStageOf('HEALTHCHECK');
    expect(checks).toHaveLength(1);
    const args = checks[0]!.args;
    const cmd = /\bCMD\s+(\[.*\])\s*$/.exec(args);
    expect(cmd, 'HEALTHCHECK must use the exec form CMD [...]').not.toBeNull();
    const argv = execForm(cmd![1]!)!;
    expect(argv[0]).toBe('node');
    expect(argv.join(' ')).toContain('/healthz');
    expect(args).not.toMatch(/\b(curl|wget)\b/);
  });

  it('starts the same command as `npm start`, in exec form', () => {
    const entrypoint = finalStageOf('ENTRYPOINT').at(-1);
    const cmd = finalStageOf('CMD').at(-1);
    expect(entrypoint).toBeDefined();
    expect(cmd).toBeDefined();
    const entryArgv = execForm(entrypoint!.args);
    const cmdArgv = execForm(cmd!.args);
    expect(entryArgv, 'ENTRYPOINT must be a JSON array (signals reach node)').toBeDefined();
    expect(cmdArgv, 'CMD must be a JSON array').toBeDefined();
    expect(entryArgv).toEqual(['node', 'dist/cli.js']);
    const start = packageJson.scripts['start'];
    expect(start).toBeDefined();
    // npm start execs node (so signals sent to it reach the proxy); the image runs node itself.
    expect([...entryArgv!, ...cmdArgv!]).toEqual(start!.trim().replace(/^exec\s+/, '').split(/\s+/));
  });

  it('exposes the API and admin ports', () => {
    const ports = finalStageOf('EXPOSE').flatMap((i) => i.args.split(/\s+/)).map((p) => p.replace(/\/tcp$/, ''));
    expect(ports).toContain('8080');
    expect(ports).toContain('9090');
  });

  it('bakes no secret into the image', () => {
    for (const i of instructions.filter((x) => x.keyword === 'ENV' || x.keyword === 'ARG')) {
      expect(i.args).not.toMatch(/\b(GITLAB_TOKEN|PROXY_JWT_SECRET)\s*=/);
    }
  });
});

describe('.dockerignore', () => {
  const patterns = dockerignorePatterns(readRepoFile('.dockerignore'));

  it('keeps secrets, operator files and development files out of the build context', () => {
    for (const path of [
      'node_modules/hono/package.json',
      '.git/HEAD',
      '.env',
      'secrets/gitlab_token',
      'secrets/jwt_secret',
      'policies/acme.yaml',
      'test/deploy/helm.test.ts',
      'bench/run.ts',
      'docs/deploy.md',
      'helm/gitlab-scope-proxy/values.yaml',
      'docker-compose.yml',
      'coverage/index.html',
      'src/app.test.ts',
    ]) {
      expect(dockerIgnored(patterns, path), `${path} should be ignored`).toBe(true);
    }
  });

  it('keeps what the Dockerfile copies', () => {
    for (const path of ['package.json', 'package-lock.json', 'src/cli.ts', 'src/policy/load.ts', 'policies/presets/example.yaml']) {
      expect(dockerIgnored(patterns, path), `${path} should reach the build`).toBe(false);
    }
  });
});
