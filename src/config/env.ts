// Configuration comes from the environment only (12-factor; Docker and Kubernetes secrets
// arrive as *_FILE). Only the entry point calls this. Every problem is one line naming the
// variable; no value of a secret is ever part of a message.
import { readFileSync } from 'node:fs';

export interface JwtSettings {
  secret: Uint8Array | undefined;
  publicKeyPem: string | undefined;
  jwksUrl: URL | undefined;
  audience: string;
  issuer: string | undefined;
}

export interface Limits {
  maxHeaderBytes: number;
  maxBodyBytes: number;
  upstreamConnectTimeoutMs: number;
  upstreamResponseTimeoutMs: number;
  clientIdleTimeoutMs: number;
  shutdownTimeoutMs: number;
}

export interface Config {
  gitlabUrl: URL;
  /** GitLab's relative URL root without a trailing slash: "" or "/gitlab". */
  gitlabRoot: string;
  gitlabToken: string;
  gitlabTokenFile: string | undefined;
  jwt: JwtSettings;
  policyDir: string;
  port: number;
  host: string;
  publicUrl: URL | undefined;
  auditLog: string | undefined;
  logLevel: string;
  limits: Limits;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): Config {
  const gitlabUrl = baseUrl(env, 'GITLAB_URL', true)!;
  const token = secret(env, 'GITLAB_TOKEN');
  if (!token) throw new ConfigError('GITLAB_TOKEN (or GITLAB_TOKEN_FILE) is required: the GitLab token the proxy forwards with');
  const jwtSecret = secret(env, 'PROXY_JWT_SECRET');
  if (jwtSecret !== undefined && Buffer.byteLength(jwtSecret.value) < 32) {
    throw new ConfigError(`${jwtSecret.from} must be at least 32 bytes long (HS256 key)`);
  }
  const publicKeyFile = env.PROXY_JWT_PUBLIC_KEY_FILE || undefined;
  const jwksUrl = env.PROXY_JWKS_URL ? parseUrl('PROXY_JWKS_URL', env.PROXY_JWKS_URL) : undefined;
  if (!jwtSecret && !publicKeyFile && !jwksUrl) {
    throw new ConfigError('one of PROXY_JWT_SECRET, PROXY_JWT_SECRET_FILE, PROXY_JWT_PUBLIC_KEY_FILE or PROXY_JWKS_URL is required');
  }
  const publicUrl = baseUrl(env, 'PUBLIC_URL', false);
  return {
    gitlabUrl,
    gitlabRoot: gitlabUrl.pathname.replace(/\/+$/, ''),
    gitlabToken: token.value,
    gitlabTokenFile: env.GITLAB_TOKEN_FILE || undefined,
    jwt: {
      secret: jwtSecret ? new TextEncoder().encode(jwtSecret.value) : undefined,
      publicKeyPem: publicKeyFile ? readText('PROXY_JWT_PUBLIC_KEY_FILE', publicKeyFile) : undefined,
      jwksUrl,
      audience: env.PROXY_JWT_AUDIENCE || 'gitlab-scope-proxy',
      issuer: env.PROXY_JWT_ISSUER || undefined,
    },
    policyDir: env.POLICY_DIR || './policies',
    port: int(env, 'PORT', 8080, 0, 65535),
    host: env.HOST || '0.0.0.0',
    publicUrl,
    auditLog: env.AUDIT_LOG || undefined,
    logLevel: logLevel(env.LOG_LEVEL),
    limits: {
      maxHeaderBytes: int(env, 'MAX_HEADER_BYTES', 16384, 1024, 1 << 20),
      maxBodyBytes: int(env, 'MAX_BODY_BYTES', 10 * 1024 * 1024, 0, 1 << 30),
      upstreamConnectTimeoutMs: int(env, 'UPSTREAM_CONNECT_TIMEOUT_MS', 5000, 1, 600_000),
      upstreamResponseTimeoutMs: int(env, 'UPSTREAM_RESPONSE_TIMEOUT_MS', 60_000, 1, 3_600_000),
      clientIdleTimeoutMs: int(env, 'CLIENT_IDLE_TIMEOUT_MS', 65_000, 1, 3_600_000),
      shutdownTimeoutMs: int(env, 'SHUTDOWN_TIMEOUT_MS', 25_000, 0, 600_000),
    },
  };
}

/** The JWT settings alone: what `token` needs to mint, without GitLab settings. */
export function loadJwtSettings(env: Env = process.env): JwtSettings {
  const jwtSecret = secret(env, 'PROXY_JWT_SECRET');
  return {
    secret: jwtSecret ? new TextEncoder().encode(jwtSecret.value) : undefined,
    publicKeyPem: undefined,
    jwksUrl: undefined,
    audience: env.PROXY_JWT_AUDIENCE || 'gitlab-scope-proxy',
    issuer: env.PROXY_JWT_ISSUER || undefined,
  };
}

/** NAME or NAME_FILE, never both. */
export function secret(env: Env, name: string): { value: string; from: string } | undefined {
  const direct = env[name];
  const file = env[`${name}_FILE`];
  if (direct && file) throw new ConfigError(`${name} and ${name}_FILE are both set; set one`);
  if (file) {
    const value = readText(`${name}_FILE`, file).replace(/\r?\n$/, '');
    if (!value) throw new ConfigError(`${name}_FILE points at an empty file`);
    return { value, from: `${name}_FILE` };
  }
  return direct ? { value: direct, from: name } : undefined;
}

function readText(name: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${name}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
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

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
function logLevel(value: string | undefined): string {
  if (!value) return 'info';
  if (!LEVELS.includes(value)) throw new ConfigError(`LOG_LEVEL must be one of ${LEVELS.join(', ')}`);
  return value;
}
