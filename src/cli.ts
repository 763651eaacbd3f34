#!/usr/bin/env node
// Entry point: the only module that reads the environment and decides exit codes.
//   exit 0: done; 1: check/explain found problems or a denial; 2: bad configuration or usage.
// `main(argv, io)` runs one command against the given streams and environment and returns its
// exit code (tests call it in-process); only the bin entry at the bottom touches `process`.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { kidOfFile, signingKeyFromPem } from './auth/signing-key.ts';
import { mint, parseDuration } from './auth/mint.ts';
import { ConfigError, loadJwtSettings, loadStoreSettings } from './config/env.ts';
import { auditReport } from './commands/audit-report.ts';
import { CATALOGUE_SOURCE } from './catalogue/catalogue.ts';
import { nearestRoute, routesOfRule } from './catalogue/coverage.ts';
import { describeRoute } from './catalogue/floor.ts';
import { checkJson, reachText } from './commands/check-report.ts';
import { parseTime } from './commands/audit-lines.ts';
import { learn } from './commands/learn.ts';
import { SCHEMA_FILE, writeSchema } from './commands/schema.ts';
import { checkPolicyDir } from './commands/check.ts';
import { formatProblem, loadPolicyDir, PolicyError } from './policy/load.ts';
import { parseRule, RuleSyntaxError } from './policy/rule.ts';
import { runServe } from './serve.ts';
import { adminUrlFrom, reloadCommand } from './commands/reload.ts';
import { explain } from './commands/explain.ts';

const USAGE: Record<string, string> = {
  main: `gitlab-scope-proxy: a scoped, audited proxy in front of GitLab

Usage: gitlab-scope-proxy [command] [options]

Commands:
  serve     run the proxy (default)
  check     validate policy files
  token     mint a client token (JWT)
  explain   show how the policy decides one request
  learn     print the smallest policy covering what a client did (from audit logs)
  audit     summarise audit logs per client
  schema    write the JSON Schema of policy files
  reload    make the running proxy reload its policy and secrets (or reopen its audit log)
  grants    list or revoke OAuth grants

Run "gitlab-scope-proxy COMMAND --help" for a command's options.
Configuration is read from the environment: see README.md.`,
  serve: `Usage: gitlab-scope-proxy serve

Runs the proxy. Configuration comes from the environment (GITLAB_URL, GITLAB_TOKEN or
GITLAB_TOKEN_FILE, PROXY_JWT_SECRET or PROXY_JWT_SECRET_FILE, POLICY_DIR, PORT, ...).
SIGHUP re-reads the policy directory and token files; SIGTERM or SIGINT shuts down gracefully.`,
  reload: `Usage: gitlab-scope-proxy reload [--reopen-audit] [--admin URL]

Asks the running proxy, through its admin listener (ADMIN_HOST:ADMIN_PORT, a wildcard address
on loopback; or --admin URL), to reload its policy and secrets: POST /-/reload, what SIGHUP
does. Prints what changed; exit 1 and the problems if the new files were refused (the old ones
stay in force), exit 2 if the proxy cannot be reached. --reopen-audit only reopens AUDIT_LOG
(POST /-/reopen, what SIGUSR1 does), for log rotation.`,
  check: `Usage: gitlab-scope-proxy check [--policies DIR] [--json]

Validates every *.yaml / *.yml file in DIR (default: $POLICY_DIR or ./policies), the presets
they extend and every preset in DIR/presets/, runs each client's tests:, and reports every
problem as "file:line:col message". A rule that matches no GitLab route is a problem (with the
nearest real route). Exit 1 if there is any. Then, per client, the GitLab routes it reaches
by risk class, with examples, and a warning for admin, destructive, membership and
exfiltration grants. --json prints all of it as JSON for CI.`,
  token: `Usage: gitlab-scope-proxy token --client NAME [--expires-in 90d] [--jti ID] [--key FILE] [--kid ID] [--json]

Mints a JWT for client NAME and prints only the token. Signs with PROXY_JWT_SECRET
(or PROXY_JWT_SECRET_FILE: with several key files, the one with the greatest name, or --kid),
or with the PEM private key in FILE (RS256, ES256 or EdDSA, chosen by the key's type).
The token's header names its key (kid: the key file's name, or --kid).
Audience PROXY_JWT_AUDIENCE (default gitlab-scope-proxy), issuer PROXY_JWT_ISSUER when set.
--expires-in accepts s, m, h, d, w (default 90d), at most MAX_TOKEN_TTL (default 365d).
--json prints {"token", "client", "jti", "kid", "issued_at", "expires_at", "exp"}: the jti
is what revoked_jti takes.`,
  explain: `Usage: gitlab-scope-proxy explain [--policies DIR] --client NAME [--body FILE|-]
                                [--content-type TYPE] [--header 'Name: value']...
                                [--graphql-query Q] [--gitlab] METHOD TARGET
       gitlab-scope-proxy explain --rule 'METHODS PATH'

Prints how the proxy decides METHOD TARGET (e.g. GET /api/v4/projects/5?page=2) from client
NAME, decided by the same code as the running proxy, without sending it: "allow" with the
rule, "deny" with the reason and the status, "would-deny" for what report mode forwards,
"local" for what the proxy answers itself. --body gives the request body (a file, or - for
standard input) and --content-type its type; --header adds a header (repeatable).
--graphql-query Q is the body {"query": Q} as application/json (for POST /api/graphql).
Projects and groups named by full path are taken to be current offline; --gitlab resolves
ids and paths through GITLAB_URL with GITLAB_TOKEN (or GITLAB_TOKEN_FILE) instead.
A second line names the GitLab route reached ("route<TAB>GET /api/v4/projects/:id (Projects)")
and its risk class. --rule lists every GitLab route a rule covers, with its class.
Exit 0 for allow or local, 1 for deny or would-deny.`,
  learn: `Usage: gitlab-scope-proxy learn --client NAME [--diff [--policies DIR]] [FILE...]

Reads audit logs (FILEs, plain or gzip; standard input when none or "-") and prints the
smallest policy that allows every call client NAME was allowed or would have been denied
(report mode). Ids and encoded paths become :id, shas :sha, merge request and issue
numbers :iid, file paths :file_path; a comment on each rule says how often it was used.
--diff compares the calls with the client's current rules in DIR (default: $POLICY_DIR or
./policies): " " used, "-" never used, "+" missing. Exit 1 when --diff finds differences
or when the client made no such calls.`,
  audit: `Usage: gitlab-scope-proxy audit [--client NAME] [--since T] [--until T] [--decision D[,D]]
                              [--top N] [--json] [FILE...]

Summarises audit logs (FILEs, plain or gzip, e.g. audit.log audit.log.1 audit.log.2.gz;
standard input when none or "-") per client: calls, denials and would-denies, the most used
endpoints, the status mix, first and last seen, bytes in and out. T is an ISO 8601 time or
a span before now (30m, 24h, 7d). D is allow, deny, would-deny or local. --json prints the
summary for machines. Exit 1 when no record matches.`,
  grants: `Usage: gitlab-scope-proxy grants list [--json]
       gitlab-scope-proxy grants revoke ID | --client NAME

Lists the OAuth grants (a vendor approved by a person, with its refresh-token family) in the
shared store: REDIS_URL when set, else SQLITE_FILE (default ./data/gitlab-scope-proxy.sqlite).
revoke ends one grant, or every active grant of client NAME: its refresh token and access
tokens stop working at once on every replica. Each revocation is written to AUDIT_LOG (else
standard error). Exit 1 when nothing matched.`,
  schema: `Usage: gitlab-scope-proxy schema [--out FILE] [--check]

Writes the JSON Schema of policy and preset files, generated from the loader's own definition,
to FILE (default: the package's policies/policy.schema.json; "-" for standard output).
--check only compares and exits 1 when FILE is out of date.`,
};

class UsageError extends Error {}

/** Where a command reads and writes: process.stdout/stderr/env for the bin, collectors in tests. */
export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  env: Record<string, string | undefined>;
  /** Relative paths (policy directory, audit files) are read from here; default process.cwd(). */
  cwd?: string;
  /** What `learn` and `audit` read for "-" or no file; default process.stdin. */
  stdin?: Readable;
}

/** What the commands below use: console-like lines plus the environment. */
interface Io {
  log: (text: string) => void;
  error: (text: string) => void;
  out: (text: string) => void;
  warn: (text: string) => void;
  env: CliIo['env'];
  cwd: string;
  stdin: Readable | undefined;
}

/** Runs one command; resolves its exit code (-1: `serve` keeps running until a signal). */
export async function main(argv: string[], cliIo: CliIo): Promise<number> {
  const io: Io = {
    log: (t) => void cliIo.stdout.write(`${t}\n`),
    error: (t) => void cliIo.stderr.write(`${t}\n`),
    out: (t) => void cliIo.stdout.write(t),
    warn: (t) => void cliIo.stderr.write(t),
    env: cliIo.env,
    cwd: cliIo.cwd ?? process.cwd(),
    stdin: cliIo.stdin,
  };
  try {
    return await run(argv, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.error(err.message);
      return 2;
    } else if (err instanceof ConfigError) {
      io.error(`configuration error: ${err.message}`);
      return 2;
    } else if (err instanceof PolicyError) {
      for (const p of err.problems) io.error(formatProblem(p));
      return 2;
    }
    io.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    return 1;
  }
}

async function run(argv: string[], io: Io): Promise<number> {
  const command = argv[0] && !argv[0].startsWith('-') ? argv[0] : 'serve';
  const rest = command === argv[0] ? argv.slice(1) : argv;
  if (command === 'serve' && (rest.includes('--help') || rest.includes('-h')) && argv[0] !== 'serve') {
    io.log(USAGE.main!);
    return 0;
  }
  switch (command) {
    case 'serve':
      if (rest.includes('--help') || rest.includes('-h')) return help('serve', io);
      if (rest.length > 0) throw new UsageError(`serve takes no arguments\n\n${USAGE.serve}`);
      return runServe(io.env);
    case 'check':
      return check(rest, io);
    case 'token':
      return token(rest, io);
    case 'explain':
      return explainCommand(rest, io);
    case 'learn':
      return learnCommand(rest, io);
    case 'audit':
      return auditCommand(rest, io);
    case 'schema':
      return schemaCommand(rest, io);
    case 'grants':
      return grantsCommand(rest, io);
    case 'reload': {
      const { values } = parse(rest, { admin: { type: 'string' }, 'reopen-audit': { type: 'boolean' } }, USAGE.reload!);
      if (values.help) return help('reload', io);
      return reloadCommand({
        adminUrl: (values.admin as string | undefined) ?? adminUrlFrom(io.env), reopenOnly: values['reopen-audit'] === true,
        out: (line) => io.log(line), err: (line) => io.error(line),
      });
    }
    case 'help':
      return help('main', io);
    default:
      throw new UsageError(`unknown command "${command}"\n\n${USAGE.main}`);
  }
}

async function grantsCommand(args: string[], cliIo: Io): Promise<number> {
  const { values, positionals } = parse(args, { client: { type: 'string' }, json: { type: 'boolean' } }, USAGE.grants!, true);
  if (values.help) return help('grants', cliIo);
  const [action, id, extra] = positionals;
  const client = values.client as string | undefined;
  const valid = action === 'list' ? id === undefined && client === undefined
    : action === 'revoke' && extra === undefined && (id === undefined) !== (client === undefined);
  if (!valid) throw new UsageError(USAGE.grants!);
  // Loaded on use: the other commands start no slower.
  const [{ listGrants, revokeGrants }, { openStore }] = await Promise.all([import('./commands/grants.ts'), import('./store/open.ts')]);
  const settings = loadStoreSettings(cliIo.env);
  // The proxy creates the SQLite file when it starts; a command that does not find it names the
  // path rather than creating an empty store there (a mistyped SQLITE_FILE would list nothing).
  if (!settings.redisUrl && settings.sqliteFile !== ':memory:' && !existsSync(settings.sqliteFile)) {
    throw new ConfigError(`SQLITE_FILE ${settings.sqliteFile} does not exist: point it at the file the proxy uses (it creates it when it starts)`);
  }
  const store = await openStore(settings);
  try {
    const io = { store, auditLog: cliIo.env.AUDIT_LOG || undefined, out: (line: string) => cliIo.log(line) };
    return action === 'list' ? await listGrants(io, values.json === true) : await revokeGrants(io, id ? { id } : { client: client! });
  } finally {
    await store.close();
  }
}

function help(which: string, io: Io): number {
  io.log(USAGE[which]!);
  return 0;
}

function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, usage: string, positionals = false) {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: positionals, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${usage}`);
  }
}

function policyDirOf(flag: string | undefined, io: Io): string {
  return flag ?? (io.env.POLICY_DIR || './policies');
}

/** A path as the user gave it, read from io.cwd. */
function at(io: Io, path: string): string {
  return resolve(io.cwd, path);
}

async function check(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, { policies: { type: 'string' }, json: { type: 'boolean' } }, USAGE.check!);
  if (values.help) return help('check', io);
  const dir = policyDirOf(values.policies as string | undefined, io);
  const result = await checkPolicyDir(at(io, dir), io.cwd);
  const { policy, problems, presets, tests } = result;
  if (values.json) {
    io.log(JSON.stringify(checkJson(dir, result, problems.map(formatProblem)), null, 2));
    return policy && problems.length === 0 ? 0 : 1;
  }
  if (policy && problems.length === 0) {
    const rules = [...policy.clients.values()].reduce((n, c) => n + c.rules.length, 0);
    const more = [presets ? `${presets} presets` : '', tests ? `${tests} tests passed` : ''].filter(Boolean);
    io.log(`ok: ${policy.clients.size} clients, ${rules} rules in ${policy.files.length} files (${dir})${more.length ? `; ${more.join(', ')}` : ''}`);
    // What each client reaches in GitLab's route table, and warnings for risky classes.
    const reach = reachText(result.reach);
    if (reach) io.log(reach);
    return 0;
  }
  for (const p of problems) io.log(formatProblem(p));
  io.error(`${problems.length} problem${problems.length === 1 ? '' : 's'} in ${dir}`);
  return 1;
}

async function token(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, {
    client: { type: 'string' },
    'expires-in': { type: 'string', default: '90d' },
    jti: { type: 'string' },
    key: { type: 'string' },
    kid: { type: 'string' },
    json: { type: 'boolean' },
  }, USAGE.token!);
  if (values.help) return help('token', io);
  const client = values.client as string | undefined;
  if (!client) throw new UsageError(`--client is required\n\n${USAGE.token}`);
  const jwt = loadJwtSettings(io.env);
  let key: Parameters<typeof mint>[0]['key'];
  let kid = values.kid as string | undefined;
  if (values.key) {
    const file = values.key as string;
    let pem: string;
    try {
      pem = readFileSync(at(io, file), 'utf8');
    } catch (err) {
      throw new ConfigError(`--key: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    try {
      const k = signingKeyFromPem(pem, file);
      key = { kind: 'private', key: k.key, alg: k.alg };
    } catch (err) {
      throw new ConfigError(`--key: ${(err as Error).message}`);
    }
    kid ??= kidOfFile(file);
  } else if (jwt.secret) {
    key = { kind: 'secret', secret: jwt.secret };
    if (kid !== undefined) {
      const chosen = jwt.secrets?.find((s) => s.kid === kid);
      if (!chosen) throw new UsageError(`--kid: no key "${kid}" in PROXY_JWT_SECRET_FILE (${(jwt.secrets ?? []).map((s) => s.kid).join(', ') || 'it names none'})`);
      key = { kind: 'secret', secret: chosen.secret };
    }
    kid ??= jwt.secretKid;
  } else {
    throw new ConfigError('PROXY_JWT_SECRET (or PROXY_JWT_SECRET_FILE) is required to mint a token, or pass --key FILE');
  }
  let expiresInSeconds: number;
  try {
    expiresInSeconds = parseDuration(values['expires-in'] as string);
  } catch (err) {
    throw new UsageError(`--expires-in: ${(err as Error).message}`);
  }
  const maxTtl = jwt.maxTokenTtlS ?? 365 * 86400;
  if (expiresInSeconds > maxTtl) {
    throw new UsageError(`--expires-in ${values['expires-in'] as string} is longer than MAX_TOKEN_TTL (${maxTtl} s); mint a shorter token or raise MAX_TOKEN_TTL`);
  }
  warnIfUnknownClient(client, io);
  const jti = values.jti as string | undefined;
  const minted = await mint({ client, audience: jwt.audience, issuer: jwt.issuer, expiresInSeconds, ...(jti ? { jti } : {}), kid, key });
  if (values.json) {
    io.log(JSON.stringify({
      token: minted.token, client, jti: minted.jti, kid: minted.kid ?? null,
      issued_at: new Date(minted.iat * 1000).toISOString(), expires_at: new Date(minted.exp * 1000).toISOString(), exp: minted.exp,
    }));
  } else {
    io.log(minted.token);
  }
  return 0;
}

function warnIfUnknownClient(client: string, io: Io): void {
  try {
    const policy = loadPolicyDir(at(io, policyDirOf(undefined, io)), io.cwd);
    if (!policy.clients.has(client)) io.error(`warning: client "${client}" is not defined in ${policyDirOf(undefined, io)}; its token will be refused until it is`);
  } catch {
    // A token may be minted before its policy exists; serve and check report policy problems.
  }
}

async function explainCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, {
    policies: { type: 'string' },
    client: { type: 'string' },
    'graphql-query': { type: 'string' },
    body: { type: 'string' },
    'content-type': { type: 'string' },
    header: { type: 'string', multiple: true },
    gitlab: { type: 'boolean' },
    rule: { type: 'string' },
  }, USAGE.explain!, true);
  if (values.help) return help('explain', io);
  // --rule: the GitLab routes one rule covers (src/catalogue/coverage.ts).
  if (values.rule !== undefined) return explainRule(values.rule as string, io);
  const name = values.client as string | undefined;
  if (!name || positionals.length !== 2) throw new UsageError(`--client, METHOD and TARGET are required\n\n${USAGE.explain}`);
  const [method, target] = positionals as [string, string];
  const dir = policyDirOf(values.policies as string | undefined, io);
  let policy;
  try {
    policy = loadPolicyDir(at(io, dir), io.cwd);
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    for (const p of err.problems) io.log(formatProblem(p));
    return 2;
  }
  const client = policy.clients.get(name);
  // As `serve` answers such a token: 401 before any rule is looked at.
  if (!client) {
    io.log(`deny\tunknown-client: no client "${name}" in ${dir} (401)`);
    return 1;
  }
  if (client.disabled) {
    io.log('deny\tclient-disabled (401)');
    return 1;
  }
  return explain({
    client, method, target,
    headers: (values.header as string[] | undefined) ?? [],
    contentType: values['content-type'] as string | undefined,
    body: values.body === undefined ? undefined : readBodyFile(values.body === '-' ? '-' : at(io, values.body as string)),
    graphqlQuery: values['graphql-query'] as string | undefined,
    gitlab: values.gitlab === true,
    env: io.env,
    out: (line) => io.log(line),
  });
}

function explainRule(text: string, io: Io): number {
  let rule;
  try {
    rule = parseRule(text, 'explain --rule');
  } catch (err) {
    if (!(err instanceof RuleSyntaxError)) throw err;
    throw new UsageError(`--rule: ${err.message}`);
  }
  const routes = routesOfRule(rule);
  if (routes.length === 0) {
    const near = nearestRoute(rule);
    io.log(`none\t"${text}" matches no GitLab route${near ? `; nearest: ${near.method} ${near.template}` : ''}`);
    return 1;
  }
  for (const r of routes) {
    const refused = r.class === 'credential' ? '\t(refused by the floor)' : r.class === 'admin' ? '\t(needs admin: true)' : '';
    io.log(`${r.class}\t${describeRoute(r)}${refused}`);
  }
  io.error(`${routes.length} GitLab route${routes.length === 1 ? '' : 's'} (GitLab ${CATALOGUE_SOURCE.gitlab})`);
  return 0;
}

function readBodyFile(file: string): Buffer {
  try {
    return readFileSync(file === '-' ? 0 : file);
  } catch (err) {
    throw new UsageError(`--body: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

async function learnCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, { client: { type: 'string' }, diff: { type: 'boolean' }, policies: { type: 'string' } }, USAGE.learn!, true);
  if (values.help) return help('learn', io);
  const name = values.client as string | undefined;
  if (!name) throw new UsageError(`--client is required\n\n${USAGE.learn}`);
  if (values.policies !== undefined && !values.diff) throw new UsageError(`--policies goes with --diff\n\n${USAGE.learn}`);
  let current;
  if (values.diff) {
    const dir = policyDirOf(values.policies as string | undefined, io);
    current = loadPolicyDir(at(io, dir), io.cwd).clients.get(name);
    if (!current) throw new UsageError(`--diff: no client "${name}" in ${dir}`);
  }
  return learn({ client: name, inputs: inputsAt(io, positionals), current, out: io.out, warn: io.warn, stdin: io.stdin });
}

async function auditCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, {
    client: { type: 'string' },
    since: { type: 'string' },
    until: { type: 'string' },
    decision: { type: 'string' },
    top: { type: 'string', default: '10' },
    json: { type: 'boolean' },
  }, USAGE.audit!, true);
  if (values.help) return help('audit', io);
  const time = (flag: 'since' | 'until'): number | undefined => {
    const text = values[flag] as string | undefined;
    if (text === undefined) return undefined;
    try {
      return parseTime(text);
    } catch (err) {
      throw new UsageError(`--${flag}: ${(err as Error).message}`);
    }
  };
  const decisions = values.decision === undefined ? undefined : new Set((values.decision as string).split(','));
  for (const d of decisions ?? []) {
    if (!['allow', 'deny', 'would-deny', 'local'].includes(d)) throw new UsageError(`--decision: "${d}" is not allow, deny, would-deny or local`);
  }
  const top = Number(values.top);
  if (!Number.isInteger(top) || top < 1) throw new UsageError('--top must be a whole number above 0');
  return auditReport({
    inputs: inputsAt(io, positionals),
    client: values.client as string | undefined,
    since: time('since'),
    until: time('until'),
    decisions,
    top,
    json: values.json === true,
    out: io.out,
    warn: io.warn,
    stdin: io.stdin,
  });
}

/** Audit files named on the command line, read from io.cwd ("-" stays standard input). */
function inputsAt(io: Io, inputs: string[]): string[] {
  return inputs.map((i) => (i === '-' ? i : at(io, i)));
}

function schemaCommand(args: string[], io: Io): number {
  const { values } = parse(args, { out: { type: 'string' }, check: { type: 'boolean' } }, USAGE.schema!);
  if (values.help) return help('schema', io);
  const out = values.out as string | undefined;
  return writeSchema(out === undefined ? SCHEMA_FILE : out === '-' ? out : at(io, out), values.check === true, io.out);
}

/** The streams and environment of this process, for the bin entry. */
export const processIo: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env };

// The bin entry: run as a program (node src/cli.ts, dist/cli.js), not when a test imports main.
if (import.meta.main) {
  const code = await main(process.argv.slice(2), processIo);
  if (code !== -1) process.exitCode = code;
}
