// Checks of docker-compose.yml and .env.example.
//
// With a Compose CLI on PATH (`docker-compose`, Debian's package, or the
// `docker compose` plugin) the file is rendered for real by `config` in a
// temporary copy with generated secrets, and the rendered model is checked.
// In CI (CI set) a missing CLI fails the suite. Elsewhere the test falls back
// to reading docker-compose.yml with the yaml package, so it always checks
// something.
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { AUDIT_DIR, DOCUMENTED_SETTINGS, REPO_ROOT, SECRET_VALUE_SETTINGS, readRepoFile } from './settings.ts';

const SERVICE = 'gitlab-scope-proxy';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };

interface ComposeCli {
  command: string;
  prefix: string[];
  version: string;
}

interface Rendered {
  source: 'compose-cli' | 'yaml-fallback';
  cliVersion: string | undefined;
  model: Obj;
  /** Secret contents written for the run, which must never appear in the model. */
  secretValues: string[];
  /** The temporary directory the CLI ran in (removed afterwards). */
  workDir: string | undefined;
}

interface Port {
  hostIp: string;
  published: string;
  target: string;
}

interface Mount {
  type: string;
  source: string;
  target: string;
  readOnly: boolean;
}

function findComposeCli(): ComposeCli | undefined {
  const candidates: Array<[string, string[]]> = [
    ['docker-compose', []],
    ['docker', ['compose']],
  ];
  for (const [command, prefix] of candidates) {
    const probe = spawnSync(command, [...prefix, 'version'], { encoding: 'utf8', timeout: 60_000 });
    if (probe.error || probe.status !== 0) continue;
    return { command, prefix, version: probe.stdout.trim().split('\n')[0] ?? '' };
  }
  return undefined;
}

/** KEY=value pairs of an env file; `#KEY=value` lines are optional settings shown commented out. */
function envFileEntries(text: string): Array<{ key: string; value: string; active: boolean; line: number }> {
  const entries: Array<{ key: string; value: string; active: boolean; line: number }> = [];
  text.split(/\r?\n/).forEach((line, index) => {
    const match = /^(#?)([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (match) entries.push({ key: match[2]!, value: match[3]!, active: match[1] === '', line: index + 1 });
  });
  return entries;
}

/** Replaces ${VAR}, ${VAR:-default} and ${VAR-default} the way Compose does, for the fallback. */
function interpolate(text: string, env: Record<string, string>): string {
  return text.replace(/\$\{([A-Z_][A-Z0-9_]*)(?:(:?-)([^}]*))?\}/g, (_, name: string, op: string | undefined, fallback: string | undefined) => {
    const value = env[name];
    if (op === ':-') return value ? value : (fallback ?? '');
    if (op === '-') return value ?? fallback ?? '';
    return value ?? '';
  });
}

function renderWithCli(cli: ComposeCli): Rendered {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'gsp-compose-')));
  try {
    copyFileSync(join(REPO_ROOT, 'docker-compose.yml'), join(dir, 'docker-compose.yml'));
    copyFileSync(join(REPO_ROOT, '.env.example'), join(dir, '.env'));
    mkdirSync(join(dir, 'policies'));
    mkdirSync(join(dir, 'secrets'));
    const secretValues = [randomBytes(24).toString('hex'), randomBytes(32).toString('base64url')];
    writeFileSync(join(dir, 'secrets', 'gitlab_token'), `${secretValues[0]}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'secrets', 'jwt_secret'), `${secretValues[1]}\n`, { mode: 0o600 });
    const env = { ...process.env };
    for (const key of Object.keys(env)) if (key.startsWith('COMPOSE_') || key.startsWith('DOCKER_')) delete env[key];
    const result = spawnSync(cli.command, [...cli.prefix, '-f', 'docker-compose.yml', 'config'], {
      cwd: dir,
      env,
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (result.error) throw result.error;
    if (result.status !== 0) {
      throw new Error(`${cli.command} ${[...cli.prefix, 'config'].join(' ')} exited ${result.status}:\n${result.stderr}`);
    }
    return { source: 'compose-cli', cliVersion: cli.version, model: parse(result.stdout) as Obj, secretValues, workDir: dir };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function renderFallback(): Rendered {
  const dotenv: Record<string, string> = {};
  for (const entry of envFileEntries(readRepoFile('.env.example'))) if (entry.active) dotenv[entry.key] = entry.value;
  const model = parse(interpolate(readRepoFile('docker-compose.yml'), dotenv)) as Obj;
  // Fold env_file into environment, as `config` does.
  const service = (model['services'] as Obj)[SERVICE] as Obj;
  service['environment'] = { ...dotenv, ...envMap(service['environment']) };
  return { source: 'yaml-fallback', cliVersion: undefined, model, secretValues: [], workDir: undefined };
}

function envMap(environment: Json | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(environment)) {
    for (const item of environment) {
      const [key, ...rest] = String(item).split('=');
      out[key!] = rest.join('=');
    }
  } else if (environment && typeof environment === 'object') {
    for (const [key, value] of Object.entries(environment)) out[key] = value === null ? '' : String(value);
  }
  return out;
}

function portsOf(service: Obj): Port[] {
  return (Array.isArray(service['ports']) ? service['ports'] : []).map((port) => {
    if (typeof port === 'string' || typeof port === 'number') {
      const parts = String(port).replace(/\/(tcp|udp)$/, '').split(':');
      const target = parts.pop() ?? '';
      const published = parts.pop() ?? '';
      return { hostIp: parts.join(':'), published, target };
    }
    const obj = port as Obj;
    return {
      hostIp: String(obj['host_ip'] ?? ''),
      published: String(obj['published'] ?? ''),
      target: String(obj['target'] ?? ''),
    };
  });
}

function mountsOf(service: Obj): Mount[] {
  return (Array.isArray(service['volumes']) ? service['volumes'] : []).map((volume) => {
    if (typeof volume === 'string') {
      const [source = '', target = '', mode = ''] = volume.split(':');
      const type = source.startsWith('.') || source.startsWith('/') ? 'bind' : 'volume';
      return { type, source, target, readOnly: mode.split(',').includes('ro') };
    }
    const obj = volume as Obj;
    return {
      type: String(obj['type'] ?? ''),
      source: String(obj['source'] ?? ''),
      target: String(obj['target'] ?? ''),
      readOnly: obj['read_only'] === true,
    };
  });
}

/** Bytes of a Compose memory value: 512m, 512M, "536870912", 536870912. */
function memoryBytes(value: Json | undefined): number {
  const match = /^(\d+(?:\.\d+)?)\s*([bkmg]?)b?$/i.exec(String(value ?? '').trim());
  if (!match) return Number.NaN;
  const unit = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[match[2]!.toLowerCase()]!;
  return Number(match[1]) * unit;
}

const cli = findComposeCli();
let rendered: Rendered;
let service: Obj;

beforeAll(() => {
  if (cli) {
    rendered = renderWithCli(cli);
  } else if (process.env['CI']) {
    throw new Error(
      'No Compose CLI on PATH: CI must validate docker-compose.yml for real. Install it in .ci/run with ' +
        '`apt-get install -y docker-compose` (Debian) before running the tests.',
    );
  } else {
    console.warn('[compose.test] no docker-compose on PATH: checking docker-compose.yml by parsing it instead');
    rendered = renderFallback();
  }
  service = ((rendered.model['services'] ?? {}) as Obj)[SERVICE] as Obj;
});

describe('docker-compose.yml', () => {
  it(`renders (${cli ? `with ${cli.version}` : 'yaml fallback: no Compose CLI on PATH'})`, () => {
    expect(rendered.model).toHaveProperty('services');
    expect(service, `service ${SERVICE}`).toBeDefined();
    expect(rendered.source).toBe(cli ? 'compose-cli' : 'yaml-fallback');
    // The temporary copy (with its generated secrets) is gone again.
    if (rendered.workDir !== undefined) expect(existsSync(rendered.workDir)).toBe(false);
  });

  it('builds the image from the project directory and reads settings from .env', () => {
    const build = service['build'];
    const context = typeof build === 'string' ? build : String((build as Obj)['context']);
    if (rendered.workDir !== undefined) expect(context).toBe(rendered.workDir);
    else expect(context).toBe('.');
    const raw = (parse(readRepoFile('docker-compose.yml')) as Obj)['services'] as Obj;
    const envFile = ([] as Json[]).concat((raw[SERVICE] as Obj)['env_file'] ?? []).map(String);
    expect(envFile).toEqual(['.env']);
    // Settings from .env reach the container (folded into environment by `config`).
    expect(envMap(service['environment'])['GITLAB_URL']).toMatch(/^https:\/\//);
  });

  it('hands the token and JWT secret over as Compose secrets read from ./secrets', () => {
    const used = (Array.isArray(service['secrets']) ? service['secrets'] : []).map((s) =>
      typeof s === 'string' ? s : String((s as Obj)['source']),
    );
    expect(used.sort()).toEqual(['gitlab_token', 'jwt_secret']);
    const defined = rendered.model['secrets'] as Obj;
    expect(String((defined['gitlab_token'] as Obj)['file'])).toMatch(/(^|\/)secrets\/gitlab_token$/);
    expect(String((defined['jwt_secret'] as Obj)['file'])).toMatch(/(^|\/)secrets\/jwt_secret$/);
    const env = envMap(service['environment']);
    expect(env['GITLAB_TOKEN_FILE']).toBe('/run/secrets/gitlab_token');
    expect(env['PROXY_JWT_SECRET_FILE']).toBe('/run/secrets/jwt_secret');
    for (const secret of SECRET_VALUE_SETTINGS) expect(env, `${secret} must only be given as a file`).not.toHaveProperty(secret);
  });

  it('never copies secret contents into the configuration', () => {
    const text = JSON.stringify(rendered.model);
    for (const value of rendered.secretValues) expect(text).not.toContain(value);
  });

  it('mounts the policies read-only at /policies and points POLICY_DIR there', () => {
    const policies = mountsOf(service).find((m) => m.target === '/policies');
    expect(policies, 'no mount at /policies').toBeDefined();
    expect(policies!.type).toBe('bind');
    expect(policies!.source).toMatch(/(^\.\/|\/)policies$/);
    expect(policies!.readOnly).toBe(true);
    expect(envMap(service['environment'])['POLICY_DIR']).toBe('/policies');
  });

  it('runs with a read-only root, a tmpfs /tmp and the audit log on a named volume', () => {
    expect(service['read_only']).toBe(true);
    const tmpfs = ([] as Json[]).concat(service['tmpfs'] ?? []).map(String);
    expect(tmpfs.some((t) => t.split(':')[0] === '/tmp')).toBe(true);
    const audit = mountsOf(service).find((m) => m.target === AUDIT_DIR);
    expect(audit, `no volume at ${AUDIT_DIR}`).toBeDefined();
    expect(audit!.type).toBe('volume');
    expect(audit!.readOnly).toBe(false);
    expect(rendered.model['volumes']).toHaveProperty(audit!.source);
    const auditLog = envMap(service['environment'])['AUDIT_LOG'] ?? '';
    expect(auditLog.startsWith(`${AUDIT_DIR}/`), `AUDIT_LOG=${auditLog} must be on the audit volume`).toBe(true);
  });

  it('restarts unless stopped, has a node healthcheck on /healthz and limits resources', () => {
    expect(service['restart']).toBe('unless-stopped');
    const test = ([] as Json[]).concat((service['healthcheck'] as Obj | undefined)?.['test'] ?? []).map(String);
    expect(test.join(' ')).toContain('/healthz');
    expect(test).toContain('node');
    const limits = ((service['deploy'] as Obj)['resources'] as Obj)['limits'] as Obj;
    expect(Number(limits['cpus'])).toBeGreaterThan(0);
    const deployMemory = memoryBytes(limits['memory']);
    expect(deployMemory).toBeGreaterThan(0);
    // docker-compose 1.x ignores deploy: outside Swarm; Compose v2 refuses differing values.
    expect(memoryBytes(service['mem_limit'])).toBe(deployMemory);
    expect(Number(service['cpus'])).toBe(Number(limits['cpus']));
  });

  it('publishes the API port and keeps the admin port on loopback', () => {
    const env = envMap(service['environment']);
    const apiPort = env['PORT'] || '8080';
    const adminPort = env['ADMIN_PORT'] || '9090';
    const ports = portsOf(service);
    const api = ports.find((p) => p.target === apiPort);
    expect(api, 'API port not published').toBeDefined();
    expect(api!.published).toBe(apiPort);
    const admin = ports.filter((p) => p.target === adminPort);
    expect(admin.length, 'admin port not published for local scraping').toBe(1);
    expect(admin[0]!.hostIp).toBe('127.0.0.1');
  });

  it('keeps OAuth state on a named volume, and offers Redis only as an unpublished opt-in profile', () => {
    expect(mountsOf(service).some((m) => m.type === 'volume' && m.target === '/var/lib/gitlab-scope-proxy' && !m.readOnly)).toBe(true);
    expect(envMap(service['environment'])['SQLITE_FILE']).toBe('/var/lib/gitlab-scope-proxy/state.sqlite');
    const redis = ((parse(readRepoFile('docker-compose.yml')) as Obj)['services'] as Obj)['redis'] as Obj;
    expect(redis['profiles']).toEqual(['redis']);
    expect(redis['ports']).toBeUndefined();
  });

  it('sets only documented settings', () => {
    const unknown = Object.keys(envMap(service['environment'])).filter((k) => !DOCUMENTED_SETTINGS.includes(k));
    expect(unknown).toEqual([]);
  });
});

describe('.env.example', () => {
  const text = readRepoFile('.env.example');
  const entries = envFileEntries(text);
  const lines = text.split(/\r?\n/);

  it('lists every documented setting once, secrets only as *_FILE', () => {
    const keys = entries.map((e) => e.key);
    expect(new Set(keys).size, 'a setting is listed twice').toBe(keys.length);
    const expected = DOCUMENTED_SETTINGS.filter((s) => !SECRET_VALUE_SETTINGS.includes(s)).sort();
    expect([...keys].sort()).toEqual(expected);
  });

  it('gives every setting a one-line comment', () => {
    for (const entry of entries) {
      const previous = lines[entry.line - 2] ?? '';
      const isDescription = /^# \S/.test(previous) && envFileEntries(previous).length === 0;
      expect(isDescription, `${entry.key} (line ${entry.line}) needs a comment line above it`).toBe(true);
    }
  });

  it('sets no empty value, which Compose would pass as an empty string', () => {
    const empty = entries.filter((e) => e.active && e.value.trim() === '').map((e) => e.key);
    expect(empty).toEqual([]);
  });

  it('holds no secret values', () => {
    for (const entry of entries) expect(SECRET_VALUE_SETTINGS).not.toContain(entry.key);
    expect(text).not.toMatch(/glpat-|BEGIN [A-Z ]*PRIVATE KEY/);
  });
});

describe('docker-compose.yml: pre-start secrets check and health check', () => {
  const script = join(REPO_ROOT, 'src', 'ops', 'secrets-check.ts');
  const node = process.execPath;

  function runCheck(dir: string, args: string[], opts: { uid?: number } = {}): { status: number | null; out: string } {
    const r = spawnSync(node, [script, dir, ...args], { encoding: 'utf8', timeout: 30_000, ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.uid } : {}) });
    return { status: r.status, out: (r.stdout + r.stderr).trim() };
  }

  it('runs the secrets check before the proxy, on the ./secrets directory, for every secret the proxy mounts', () => {
    const check = ((rendered.model['services'] ?? {}) as Obj)['secrets-check'] as Obj;
    expect(check, 'service secrets-check').toBeDefined();
    const dependsOn = service['depends_on'] as Obj;
    expect((dependsOn['secrets-check'] as Obj)['condition']).toBe('service_completed_successfully');
    const mount = mountsOf(check).find((m) => m.target === '/secrets');
    expect(mount?.type).toBe('bind');
    expect(mount?.source).toMatch(/(^\.\/|\/)secrets$/);
    expect(mount?.readOnly).toBe(true);
    const entrypoint = ([] as Json[]).concat(check['entrypoint'] ?? []).map(String);
    expect(entrypoint.slice(0, 3)).toEqual(['node', 'dist/ops/secrets-check.js', '/secrets']);
    const checked = entrypoint.slice(3).map((a) => a.split(':')[0]);
    const files = Object.values(rendered.model['secrets'] as Obj).map((s) => String((s as Obj)['file']).split('/').pop());
    expect(checked.sort()).toEqual(files.sort());
  });

  it('says in one line what is wrong with a secret file, and exits 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gsp-secrets-'));
    chmodSync(dir, 0o755);
    try {
      const args = ['gitlab_token', 'jwt_secret:32'];
      const missing = runCheck(dir, args);
      expect(missing).toEqual({ status: 2, out: 'secrets check: secrets/gitlab_token is missing: create it as docs/deploy.md step 1 says' });
      writeFileSync(join(dir, 'gitlab_token'), `${randomBytes(10).toString('hex')}\n`);
      mkdirSync(join(dir, 'jwt_secret'));
      expect(runCheck(dir, args).out).toMatch(/^secrets check: secrets\/jwt_secret is a directory, not a file/);
      rmSync(join(dir, 'jwt_secret'), { recursive: true });
      writeFileSync(join(dir, 'jwt_secret'), '\n');
      expect(runCheck(dir, args).out).toBe('secrets check: secrets/jwt_secret is empty');
      writeFileSync(join(dir, 'jwt_secret'), 'short\n');
      expect(runCheck(dir, args).out).toBe('secrets check: secrets/jwt_secret holds 5 bytes; it needs at least 32');
      const jwtSecret = randomBytes(32).toString('base64');
      writeFileSync(join(dir, 'jwt_secret'), `${jwtSecret}\n`);
      chmodSync(join(dir, 'jwt_secret'), 0o400);
      expect(runCheck(dir, args)).toEqual({ status: 0, out: 'secrets check: ok' });
      // As the container user (uid 10001), a root-owned 0400 file cannot be read. Only root can
      // switch users to show it.
      if (process.getuid?.() === 0) {
        const unreadable = runCheck(dir, args, { uid: 10001 });
        expect(unreadable.status).toBe(2);
        expect(unreadable.out).toMatch(/^secrets check: secrets\/jwt_secret is not readable by the container user \(uid 10001\): sudo chown 10001:10001/);
        expect(unreadable.out).not.toContain(jwtSecret);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('health-checks the admin listener at ADMIN_HOST', async () => {
    const test = ([] as Json[]).concat((service['healthcheck'] as Obj)['test'] ?? []).map(String);
    expect(test.slice(0, 3)).toEqual(['CMD', 'node', '-e']);
    const probe = test[3]!;
    // An admin listener on 127.0.0.2 only: found with ADMIN_HOST, not on 127.0.0.1.
    const admin = createServer((req, res) => res.writeHead(req.url === '/healthz' ? 200 : 404).end());
    await new Promise<void>((resolve) => admin.listen(0, '127.0.0.2', resolve));
    const port = String((admin.address() as AddressInfo).port);
    const health = (env: Record<string, string>): Promise<number | null> =>
      new Promise((resolve) => spawn(node, ['-e', probe], { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: 'ignore' }).on('exit', resolve));
    try {
      expect(await health({ ADMIN_HOST: '127.0.0.2', ADMIN_PORT: port })).toBe(0);
      expect(await health({ ADMIN_PORT: port })).toBe(1);
      expect(await health({ ADMIN_HOST: '0.0.0.0', ADMIN_PORT: port })).toBe(1);
    } finally {
      admin.close();
    }
  });
});
