// Configuration comes from the environment only (12-factor; Docker and Kubernetes secrets
// arrive as *_FILE). Only the entry point calls this. Every problem is one line naming the
// variable; no value of a secret is ever part of a message.
import { readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { BlockList } from 'node:net';
import { cidrList } from './cidr.ts';
import { ConfigError, readText, secret } from './read.ts';
import { loadOAuthConfig, type OAuthConfig } from './oauth.ts';
import type { StoreSettings } from '../store/open.ts';

export { ConfigError, readText, secret };

export interface JwtSettings {
  /** The HS256 key `token` signs with: the one with the greatest kid when there are several. */
  secret: Uint8Array | undefined;
  /** Its kid (the file name), when it came from PROXY_JWT_SECRET_FILE. */
  secretKid?: string | undefined;
  /** Every HS256 key that verifies (key rotation with overlap), by kid. */
  secrets?: Array<{ kid: string; secret: Uint8Array }> | undefined;
  publicKeyPem: string | undefined;
  /** Every public key that verifies, by kid (the file name). */
  publicKeys?: Array<{ kid: string; pem: string }> | undefined;
  jwksUrl: URL | undefined;
  audience: string;
  issuer: string | undefined;
  /** Leeway for exp, nbf and iat against this machine's clock (PROXY_JWT_CLOCK_TOLERANCE_S). */
  clockToleranceS?: number;
  /** Longest lifetime `token` mints (MAX_TOKEN_TTL). */
  maxTokenTtlS?: number;
}

export interface Limits {
  maxHeaderBytes: number;
  maxBodyBytes: number;
  /** Request body bytes all requests together may hold at once (src/request/body-budget.ts). */
  maxBufferedBodyBytes: number;
  upstreamConnectTimeoutMs: number;
  upstreamResponseTimeoutMs: number;
  /** How long an idle keep-alive connection to GitLab is kept in the pool. */
  upstreamIdleTimeoutMs: number;
  clientIdleTimeoutMs: number;
  /** From a connection's first byte (or its next request's) until the request headers are whole. */
  clientHeadersTimeoutMs: number;
  /** From the first byte until the whole request, body included, has been received. */
  clientRequestTimeoutMs: number;
  /** Vendor connections open at once; further ones are closed as they arrive (src/edge/abuse.ts). */
  maxConnections: number;
  /** Requests one client may have in flight at once (per replica); 0 means no limit. */
  maxConcurrentPerClient: number;
  shutdownTimeoutMs: number;
  /** How long a resolved project/group (projects:/groups: scope) is cached, in ms. */
  scopeCacheTtlMs: number;
  /** How many resolved projects/groups are cached at most (LRU). */
  scopeCacheSize: number;
}

export type AuditOnFailure = 'refuse' | 'continue';

export interface Config {
  gitlabUrl: URL;
  /** GitLab's relative URL root without a trailing slash: "" or "/gitlab". */
  gitlabRoot: string;
  gitlabToken: string;
  gitlabTokenFile: string | undefined;
  /** PEM bundle (GITLAB_CA_FILE) trusted for GitLab's certificate instead of Node's built-in roots. */
  gitlabCa: string | undefined;
  gitlabCaFile: string | undefined;
  jwt: JwtSettings;
  /** Where the JWT keys came from, so a reload can read them again. */
  jwtSecretFile: string | undefined;
  jwtPublicKeyFile: string | undefined;
  policyDir: string;
  port: number;
  host: string;
  publicUrl: URL | undefined;
  auditLog: string | undefined;
  auditOnFailure: AuditOnFailure;
  logLevel: string;
  /** The admin listener (/metrics, /healthz, /readyz), never for vendors. */
  adminPort: number;
  adminHost: string;
  /** Load balancers whose X-Forwarded-For / Forwarded / X-Request-Id are believed (TRUSTED_PROXIES). */
  trustedProxies: BlockList | undefined;
  /** HTTPS on the vendor-facing listener: certificate chain and key files (PEM). */
  tls: { certFile: string; keyFile: string } | undefined;
  limits: Limits;
  /** OAuth provider for vendors (src/oauth/config.ts); undefined when OAUTH_GITLAB_CLIENT_ID is unset. */
  oauth: OAuthConfig | undefined;
  /** Shared state (src/store/): Redis when REDIS_URL is set, else the SQLite file SQLITE_FILE. */
  store: StoreSettings;
}


type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): Config {
  const gitlabUrl = baseUrl(env, 'GITLAB_URL', true)!;
  const token = secret(env, 'GITLAB_TOKEN');
  if (!token) throw new ConfigError('GITLAB_TOKEN (or GITLAB_TOKEN_FILE) is required: the GitLab token the proxy forwards with');
  const hmac = hmacKeys(env);
  const publicKeyFile = env.PROXY_JWT_PUBLIC_KEY_FILE || undefined;
  const publicKeys = publicKeyFile ? publicKeyFiles(publicKeyFile) : undefined;
  const jwksUrl = env.PROXY_JWKS_URL ? parseUrl('PROXY_JWKS_URL', env.PROXY_JWKS_URL) : undefined;
  if (!hmac && !publicKeyFile && !jwksUrl) {
    throw new ConfigError('one of PROXY_JWT_SECRET, PROXY_JWT_SECRET_FILE, PROXY_JWT_PUBLIC_KEY_FILE or PROXY_JWKS_URL is required');
  }
  const publicUrl = baseUrl(env, 'PUBLIC_URL', false);
  const certFile = env.TLS_CERT_FILE || undefined;
  const keyFile = env.TLS_KEY_FILE || undefined;
  if (!certFile !== !keyFile) throw new ConfigError('TLS_CERT_FILE and TLS_KEY_FILE go together: set both or neither');
  const port = int(env, 'PORT', 8080, 0, 65535);
  const adminPort = int(env, 'ADMIN_PORT', 9090, 0, 65535);
  if (adminPort !== 0 && adminPort === port) throw new ConfigError('ADMIN_PORT must differ from PORT: vendors must never reach the admin listener');
  const gitlabCaFile = env.GITLAB_CA_FILE || undefined;
  const clientHeadersTimeoutMs = int(env, 'CLIENT_HEADERS_TIMEOUT_MS', 30_000, 1, 3_600_000);
  const clientRequestTimeoutMs = int(env, 'CLIENT_REQUEST_TIMEOUT_MS', 300_000, 1, 3_600_000);
  // Node refuses a server whose headers timeout is longer than its request timeout.
  const maxBodyBytes = int(env, 'MAX_BODY_BYTES', 10 * 1024 * 1024, 0, 1 << 30);
  const maxBufferedBodyBytes = int(env, 'MAX_BUFFERED_BODY_BYTES', 64 * 1024 * 1024, 0, 2 ** 40);
  // Below MAX_BODY_BYTES, a body the size limit allows could never be read.
  if (maxBufferedBodyBytes < maxBodyBytes) throw new ConfigError('MAX_BUFFERED_BODY_BYTES must not be less than MAX_BODY_BYTES');
  if (clientHeadersTimeoutMs > clientRequestTimeoutMs) throw new ConfigError('CLIENT_HEADERS_TIMEOUT_MS must not be greater than CLIENT_REQUEST_TIMEOUT_MS');
  if (gitlabCaFile && gitlabUrl.protocol !== 'https:') throw new ConfigError('GITLAB_CA_FILE is set but GITLAB_URL is not https');
  return {
    gitlabUrl,
    gitlabRoot: gitlabUrl.pathname.replace(/\/+$/, ''),
    gitlabToken: token.value,
    gitlabTokenFile: env.GITLAB_TOKEN_FILE || undefined,
    gitlabCa: gitlabCaFile ? pem('GITLAB_CA_FILE', gitlabCaFile, 'CERTIFICATE') : undefined,
    gitlabCaFile,
    jwtSecretFile: env.PROXY_JWT_SECRET_FILE || undefined,
    jwtPublicKeyFile: publicKeyFile,
    jwt: {
      ...hmac,
      secret: hmac?.secret,
      publicKeys,
      publicKeyPem: publicKeys?.[0]?.pem,
      jwksUrl,
      audience: env.PROXY_JWT_AUDIENCE || 'gitlab-scope-proxy',
      issuer: env.PROXY_JWT_ISSUER || undefined,
      clockToleranceS: int(env, 'PROXY_JWT_CLOCK_TOLERANCE_S', 30, 0, 600),
      maxTokenTtlS: maxTokenTtl(env),
    },
    policyDir: env.POLICY_DIR || './policies',
    port,
    host: env.HOST || '0.0.0.0',
    publicUrl,
    auditLog: env.AUDIT_LOG || undefined,
    auditOnFailure: oneOf(env, 'AUDIT_ON_FAILURE', ['refuse', 'continue'] as const, 'refuse'),
    logLevel: logLevel(env.LOG_LEVEL),
    adminPort,
    adminHost: env.ADMIN_HOST || '0.0.0.0',
    tls: certFile && keyFile ? { certFile, keyFile } : undefined,
    trustedProxies: trustedProxies(env.TRUSTED_PROXIES),
    oauth: loadOAuthConfig(env, gitlabUrl, publicUrl, hmac !== undefined),
    store: loadStoreSettings(env),
    limits: {
      maxHeaderBytes: int(env, 'MAX_HEADER_BYTES', 16384, 1024, 1 << 20),
      maxBodyBytes,
      maxBufferedBodyBytes,
      upstreamConnectTimeoutMs: int(env, 'UPSTREAM_CONNECT_TIMEOUT_MS', 5000, 1, 600_000),
      upstreamResponseTimeoutMs: int(env, 'UPSTREAM_RESPONSE_TIMEOUT_MS', 60_000, 1, 3_600_000),
      upstreamIdleTimeoutMs: int(env, 'UPSTREAM_IDLE_TIMEOUT_MS', 30_000, 1, 3_600_000),
      clientIdleTimeoutMs: int(env, 'CLIENT_IDLE_TIMEOUT_MS', 65_000, 1, 3_600_000),
      clientHeadersTimeoutMs,
      clientRequestTimeoutMs,
      maxConnections: int(env, 'MAX_CONNECTIONS', 4096, 1, 1_000_000),
      maxConcurrentPerClient: int(env, 'MAX_CONCURRENT_PER_CLIENT', 64, 0, 1_000_000),
      shutdownTimeoutMs: int(env, 'SHUTDOWN_TIMEOUT_MS', 25_000, 0, 600_000),
      scopeCacheTtlMs: int(env, 'SCOPE_CACHE_TTL_MS', 60_000, 0, 86_400_000),
      scopeCacheSize: int(env, 'SCOPE_CACHE_SIZE', 10_000, 0, 10_000_000),
    },
  };
}

/** The shared store alone: what `grants` needs (REDIS_URL or REDIS_URL_FILE, else SQLITE_FILE). */
export function loadStoreSettings(env: Env = process.env): StoreSettings {
  return { redisUrl: redisUrl(secret(env, 'REDIS_URL')?.value), sqliteFile: env.SQLITE_FILE || './data/gitlab-scope-proxy.sqlite' };
}

/** The JWT settings alone: what `token` needs to mint, without GitLab settings. */
export function loadJwtSettings(env: Env = process.env): JwtSettings {
  const hmac = hmacKeys(env);
  return {
    ...hmac,
    secret: hmac?.secret,
    publicKeyPem: undefined,
    jwksUrl: undefined,
    audience: env.PROXY_JWT_AUDIENCE || 'gitlab-scope-proxy',
    issuer: env.PROXY_JWT_ISSUER || undefined,
    maxTokenTtlS: maxTokenTtl(env),
  };
}

function trustedProxies(value: string | undefined): BlockList | undefined {
  if (!value) return undefined;
  try {
    return cidrList(value.split(',').filter((s) => s.trim() !== ''));
  } catch (err) {
    throw new ConfigError(`TRUSTED_PROXIES: ${(err as Error).message}`);
  }
}

function maxTokenTtl(env: Env): number {
  // The same units as `token --expires-in` (auth/mint.ts parseDuration), read here so that
  // config/ does not import auth/.
  const text = env.MAX_TOKEN_TTL || '365d';
  const m = /^([0-9]+)([smhdw]?)$/.exec(text);
  const seconds = m ? Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2] as '' | 's' | 'm' | 'h' | 'd' | 'w'] : 0;
  if (!(seconds > 0)) throw new ConfigError(`MAX_TOKEN_TTL: bad duration ${JSON.stringify(text)} (use e.g. 365d, 12h, 30m)`);
  return seconds;
}

/**
 * The HS256 keys: PROXY_JWT_SECRET (one key, no kid), or PROXY_JWT_SECRET_FILE naming a file,
 * a directory of files, or a comma list of either; each file is one key, its name the kid.
 * Tokens are signed with the greatest kid (name keys by date: 2026-06, 2026-12), and every
 * key verifies, so a new key can be added before the old one is removed.
 */
function hmacKeys(env: Env): { secret: Uint8Array; secretKid?: string; secrets?: Array<{ kid: string; secret: Uint8Array }> } | undefined {
  const direct = env.PROXY_JWT_SECRET;
  const spec = env.PROXY_JWT_SECRET_FILE;
  if (direct && spec) throw new ConfigError('PROXY_JWT_SECRET and PROXY_JWT_SECRET_FILE are both set; set one');
  if (direct) {
    if (Buffer.byteLength(direct) < 32) throw new ConfigError('PROXY_JWT_SECRET must be at least 32 bytes long (HS256 key)');
    return { secret: new TextEncoder().encode(direct) };
  }
  if (!spec) return undefined;
  const secrets = keyFiles('PROXY_JWT_SECRET_FILE', spec).map(({ kid, path, text }) => {
    const value = text.replace(/\r?\n$/, '');
    if (!value) throw new ConfigError(`PROXY_JWT_SECRET_FILE: ${path} is empty`);
    if (Buffer.byteLength(value) < 32) throw new ConfigError(`PROXY_JWT_SECRET_FILE must be at least 32 bytes long (HS256 key): ${path} is shorter`);
    return { kid, secret: new TextEncoder().encode(value) };
  });
  const signing = secrets.reduce((a, b) => (b.kid > a.kid ? b : a));
  return { secret: signing.secret, secretKid: signing.kid, secrets };
}

function publicKeyFiles(spec: string): Array<{ kid: string; pem: string }> {
  return keyFiles('PROXY_JWT_PUBLIC_KEY_FILE', spec).map(({ kid, text }) => ({ kid, pem: text }));
}

/**
 * Files of a key setting: a comma list of paths, each a file or a directory whose visible
 * files (not `.hidden`, such as Kubernetes' `..data`) are read in name order. A key's id (kid)
 * is its file name without a .pem, .key or .txt extension. Names must be unique.
 */
export function keyFiles(name: string, spec: string): Array<{ kid: string; path: string; text: string }> {
  const paths: string[] = [];
  for (const item of spec.split(',').map((p) => p.trim()).filter(Boolean)) {
    let isDir: boolean;
    try {
      isDir = statSync(item).isDirectory();
    } catch (err) {
      throw new ConfigError(`${name}: cannot read ${item} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (!isDir) {
      paths.push(item);
      continue;
    }
    const files = readdirSync(item).filter((f) => !f.startsWith('.')).sort().map((f) => join(item, f)).filter((p) => statSync(p).isFile());
    if (files.length === 0) throw new ConfigError(`${name}: ${item} holds no key file`);
    paths.push(...files);
  }
  if (paths.length === 0) throw new ConfigError(`${name} names no file`);
  const seen = new Set<string>();
  return paths.map((path) => {
    const kid = basename(path).replace(/\.(pem|key|txt)$/, '');
    if (seen.has(kid)) throw new ConfigError(`${name}: two keys are named "${kid}"; key file names must differ`);
    seen.add(kid);
    return { kid, path, text: readText(name, path) };
  });
}

/**
 * The settings a reload reads again: the GitLab token and the JWT keys, from their files when
 * they came from files (a value given directly in the environment cannot change). Throws
 * ConfigError, naming the variable and never the value.
 */
export function readSecrets(config: Config): { gitlabToken: string; jwt: JwtSettings } {
  const gitlabToken = config.gitlabTokenFile ? secret({ GITLAB_TOKEN_FILE: config.gitlabTokenFile }, 'GITLAB_TOKEN')!.value : config.gitlabToken;
  let jwt = config.jwt;
  if (config.jwtSecretFile) jwt = { ...jwt, ...hmacKeys({ PROXY_JWT_SECRET_FILE: config.jwtSecretFile }) };
  if (config.jwtPublicKeyFile) {
    const publicKeys = publicKeyFiles(config.jwtPublicKeyFile);
    jwt = { ...jwt, publicKeys, publicKeyPem: publicKeys[0]?.pem };
  }
  return { gitlabToken, jwt };
}

/** A PEM file that must hold at least one block of `kind` (e.g. CERTIFICATE). */
export function pem(name: string, path: string, kind: string): string {
  const text = readText(name, path);
  if (!text.includes(`-----BEGIN ${kind}`)) throw new ConfigError(`${name}: ${path} holds no PEM ${kind.toLowerCase()}`);
  return text;
}

function parseUrl(name: string, value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${name} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`${name} must be an http or https URL`);
  if (url.username || url.password) throw new ConfigError(`${name} must not contain credentials`);
  if (url.search || url.hash) throw new ConfigError(`${name} must not have a query or fragment`);
  return url;
}

function redisUrl(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError('REDIS_URL is not a URL');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new ConfigError('REDIS_URL must be a redis:// or rediss:// URL');
  return value;
}

function baseUrl(env: Env, name: string, required: boolean): URL | undefined {
  const value = env[name];
  if (!value) {
    if (required) throw new ConfigError(`${name} is required, e.g. https://gitlab.example.com`);
    return undefined;
  }
  return parseUrl(name, value);
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const value = env[name];
  if (value === undefined || value === '') return fallback;
  if (!/^[0-9]+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}`);
  }
  return Number(value);
}

function oneOf<T extends string>(env: Env, name: string, values: readonly T[], fallback: T): T {
  const value = env[name];
  if (value === undefined || value === '') return fallback;
  if (!(values as readonly string[]).includes(value)) throw new ConfigError(`${name} must be one of ${values.join(', ')}`);
  return value as T;
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
function logLevel(value: string | undefined): string {
  if (!value) return 'info';
  if (!LEVELS.includes(value)) throw new ConfigError(`LOG_LEVEL must be one of ${LEVELS.join(', ')}`);
  return value;
}
