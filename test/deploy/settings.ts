// The proxy's documented environment settings, shared by the deployment
// tests. Keep in step with the configuration reference: a setting added to
// the proxy belongs here, in .env.example and, where it applies, in the chart.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function readRepoFile(relativePath: string): string {
  return readFileSync(new URL(relativePath, new URL('../../', import.meta.url)), 'utf8');
}

/** Settings whose value is a secret: they must reach the container only as *_FILE. */
export const SECRET_VALUE_SETTINGS: readonly string[] = ['GITLAB_TOKEN', 'PROXY_JWT_SECRET', 'OAUTH_GITLAB_CLIENT_SECRET'];

export const DOCUMENTED_SETTINGS: readonly string[] = [
  'GITLAB_URL',
  'GITLAB_TOKEN',
  'GITLAB_TOKEN_FILE',
  'GITLAB_CA_FILE',
  'PROXY_JWT_SECRET',
  'PROXY_JWT_SECRET_FILE',
  'PROXY_JWT_PUBLIC_KEY_FILE',
  'PROXY_JWKS_URL',
  'PROXY_JWT_AUDIENCE',
  'PROXY_JWT_ISSUER',
  'PROXY_JWT_CLOCK_TOLERANCE_S',
  'MAX_TOKEN_TTL',
  'TRUSTED_PROXIES',
  'POLICY_DIR',
  'PORT',
  'HOST',
  'PUBLIC_URL',
  'AUDIT_LOG',
  'AUDIT_ON_FAILURE',
  'LOG_LEVEL',
  'ADMIN_PORT',
  'ADMIN_HOST',
  'TLS_CERT_FILE',
  'TLS_KEY_FILE',
  'MAX_HEADER_BYTES',
  'MAX_BODY_BYTES',
  'MAX_BUFFERED_BODY_BYTES',
  'UPSTREAM_CONNECT_TIMEOUT_MS',
  'UPSTREAM_RESPONSE_TIMEOUT_MS',
  'UPSTREAM_IDLE_TIMEOUT_MS',
  'CLIENT_IDLE_TIMEOUT_MS',
  'CLIENT_HEADERS_TIMEOUT_MS',
  'CLIENT_REQUEST_TIMEOUT_MS',
  'MAX_CONNECTIONS',
  'MAX_CONCURRENT_PER_CLIENT',
  'SHUTDOWN_TIMEOUT_MS',
  'SCOPE_CACHE_TTL_MS',
  'SCOPE_CACHE_SIZE',
  'OAUTH_GITLAB_CLIENT_ID',
  'OAUTH_GITLAB_CLIENT_SECRET',
  'OAUTH_GITLAB_CLIENT_SECRET_FILE',
  'OAUTH_APPROVERS',
  'OAUTH_GITLAB_URL',
  'REDIS_URL',
  'SQLITE_FILE',
];

/** Where the audit log lives in the container when it goes to a file. */
export const AUDIT_DIR = '/var/log/gitlab-scope-proxy';
