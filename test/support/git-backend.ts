// The real git client and server for git-over-HTTP tests: bare repositories in a temporary
// directory, `git http-backend` run as a CGI program for the GitLab stand-in, and a runner
// for the `git` command line isolated from the machine's configuration (temporary HOME, no
// system config, no prompts, a time limit).
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A sandbox for the `git` command line: its own HOME and config, loopback only. */
export interface GitSandbox {
  dir: string;
  /** Bare repositories, as GIT_PROJECT_ROOT for `git http-backend`. */
  projectRoot: string;
  env: NodeJS.ProcessEnv;
  git: (args: readonly string[], opts?: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }) => Promise<GitResult>;
  close: () => void;
}

export function gitSandbox(): GitSandbox {
  const dir = mkdtempSync(join(tmpdir(), 'gsp-git-'));
  const home = join(dir, 'home');
  const projectRoot = join(dir, 'repos');
  mkdirSync(home);
  mkdirSync(projectRoot);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: join(home, '.gitconfig'),
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: '',
    SSH_ASKPASS: '',
    GIT_AUTHOR_NAME: 'Test', GIT_AUTHOR_EMAIL: 'test@example.invalid', GIT_AUTHOR_DATE: '2024-01-01T00:00:00Z',
    GIT_COMMITTER_NAME: 'Test', GIT_COMMITTER_EMAIL: 'test@example.invalid', GIT_COMMITTER_DATE: '2024-01-01T00:00:00Z',
    NO_PROXY: '*', no_proxy: '*', http_proxy: '', https_proxy: '', HTTP_PROXY: '', HTTPS_PROXY: '',
    LANG: 'C', LC_ALL: 'C',
  };
  // No credential helper may remember or supply anything.
  writeFileSync(env.GIT_CONFIG_GLOBAL!, '[credential]\n\thelper =\n[init]\n\tdefaultBranch = main\n[protocol]\n\tversion = 2\n');
  const git: GitSandbox['git'] = (args, opts = {}) =>
    new Promise((resolve) => {
      execFile('git', [...args], { cwd: opts.cwd ?? dir, env: { ...env, ...opts.env }, timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  return { dir, projectRoot, env, git, close: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs git and fails with its output when it exits non-zero. */
export async function mustGit(sandbox: GitSandbox, args: readonly string[], cwd?: string): Promise<string> {
  const r = await sandbox.git(args, cwd ? { cwd } : {});
  if (r.code !== 0) throw new Error(`git ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/**
 * Creates the bare repository `<projectRoot>/<fullPath>.git` with `files` committed on main,
 * plus `branches` more branches, each on its own commit (so that a clone's negotiation names
 * many objects). Built in a scratch clone and pushed over the file system, never over HTTP.
 */
export async function createRepo(sandbox: GitSandbox, fullPath: string, files: Record<string, string | Buffer>, branches = 0): Promise<void> {
  const bare = join(sandbox.projectRoot, `${fullPath}.git`);
  mkdirSync(bare, { recursive: true });
  await mustGit(sandbox, ['init', '--bare', '--quiet', bare]);
  const work = mkdtempSync(join(sandbox.dir, 'work-'));
  await mustGit(sandbox, ['init', '--quiet', work]);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(work, name, '..'), { recursive: true });
    writeFileSync(join(work, name), content);
  }
  await mustGit(sandbox, ['add', '-A'], work);
  await mustGit(sandbox, ['commit', '--quiet', '-m', 'initial'], work);
  for (let i = 0; i < branches; i++) {
    await mustGit(sandbox, ['commit', '--quiet', '--allow-empty', '-m', `branch ${i}`], work);
    await mustGit(sandbox, ['branch', `topic-${String(i).padStart(3, '0')}`], work);
  }
  await mustGit(sandbox, ['reset', '--quiet', '--hard', `HEAD~${branches}`], work);
  await mustGit(sandbox, ['push', '--quiet', bare, '--all'], work);
  rmSync(work, { recursive: true, force: true });
}

export interface CgiRequest {
  req: IncomingMessage;
  res: ServerResponse;
  /** The request body, already read. */
  body: Buffer;
  projectRoot: string;
  /** "/acme/docs.git/info/refs": the path under GIT_PROJECT_ROOT. */
  pathInfo: string;
  query: string;
  /** The user GitLab authenticated (enables receive-pack, as http-backend does for REMOTE_USER). */
  remoteUser: string;
}

/**
 * Runs `git http-backend` (a CGI program, git-http-backend(1)) for one request: the CGI
 * variables in the environment, the body on stdin, and its "Status:" and other headers
 * turned into the HTTP answer, whose body is streamed to the client as the backend writes it.
 */
export function runHttpBackend(r: CgiRequest): void {
  const h = r.req.headers;
  const header = (name: string): string => (typeof h[name] === 'string' ? h[name] : '');
  const child = spawn('git', ['http-backend'], {
    env: {
      PATH: process.env.PATH,
      GIT_CONFIG_NOSYSTEM: '1',
      HOME: r.projectRoot,
      GIT_PROJECT_ROOT: r.projectRoot,
      GIT_HTTP_EXPORT_ALL: '1',
      REQUEST_METHOD: r.req.method ?? 'GET',
      PATH_INFO: r.pathInfo,
      QUERY_STRING: r.query,
      CONTENT_TYPE: header('content-type'),
      CONTENT_LENGTH: String(r.body.length),
      HTTP_CONTENT_ENCODING: header('content-encoding'),
      GIT_PROTOCOL: header('git-protocol'),
      REMOTE_USER: r.remoteUser,
      REMOTE_ADDR: '127.0.0.1',
    },
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  child.stdin.on('error', () => undefined);
  child.stdin.end(r.body);
  let head = Buffer.alloc(0);
  let started = false;
  const fail = (): void => {
    if (!r.res.headersSent) {
      r.res.writeHead(500, { 'Content-Type': 'text/plain' });
      r.res.end('git http-backend failed\n');
    } else {
      r.res.destroy();
    }
  };
  child.stdout.on('data', (chunk: Buffer) => {
    if (started) {
      if (!r.res.write(chunk)) child.stdout.pause();
      return;
    }
    head = Buffer.concat([head, chunk]);
    const crlf = head.indexOf('\r\n\r\n');
    const lf = head.indexOf('\n\n');
    const end = crlf !== -1 && (lf === -1 || crlf < lf) ? crlf + 4 : lf !== -1 ? lf + 2 : -1;
    if (end === -1) return;
    started = true;
    let status = 200;
    const headers: Record<string, string> = {};
    for (const line of head.subarray(0, end).toString('latin1').split(/\r?\n/)) {
      const colon = line.indexOf(':');
      if (colon === -1) continue;
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === 'status') status = Number(value.split(' ')[0]);
      else headers[name] = value;
    }
    r.res.writeHead(status, headers);
    const rest = head.subarray(end);
    if (rest.length > 0 && !r.res.write(rest)) child.stdout.pause();
  });
  r.res.on('drain', () => child.stdout.resume());
  r.res.on('close', () => child.kill());
  child.on('error', fail);
  child.on('close', (code) => {
    if (!started || code !== 0) return fail();
    r.res.end();
  });
}
