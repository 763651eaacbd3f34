// A client's `oauth:` block: the OAuth application a vendor that only speaks OAuth connects
// to (docs/oauth.md). Defined once here (zod) for the policy schema, and read at policy load:
//   oauth:
//     client_id: zoom-chatbot
//     client_secret_file: /run/secrets/zoom_oauth_secret   # or client_secret_sha256
//     redirect_uris: [https://applications.zoom.us/addon/gitlab/authorization]
//     access_token_ttl: 2h
//     refresh_token_ttl: 90d
//     require_pkce: false
// Problems are reported at the key like every other policy problem; the secret's value never
// appears in a message, and only its SHA-256 is kept in memory.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { parseDuration } from '../auth/mint.ts';
import type { OAuthRegistration } from '../types.ts';

export const CLIENT_ID = /^[A-Za-z0-9._~-]{1,128}$/;
/** GitLab's own application secrets are 64 characters (gloas-...); fewer than 32 is guessable. */
export const MIN_SECRET_LENGTH = 32;
const DURATION = /^[0-9]+[smhdw]?$/;
/** Doorkeeper's default in GitLab: access tokens live 2 hours (config/initializers/doorkeeper.rb,
 *  access_token_expires_in 2.hours). */
const DEFAULT_ACCESS_TTL_S = 7200;
const DEFAULT_REFRESH_TTL_S = 90 * 86400;
const MAX_ACCESS_TTL_S = 86400;
const MAX_REFRESH_TTL_S = 366 * 86400;

export const OAuthRegistrationSchema = z.strictObject({
  client_id: z.string().regex(CLIENT_ID, 'client_id is 1 to 128 letters, digits, . _ ~ -')
    .describe('The Application ID the vendor is given; unique across clients.'),
  client_secret_file: z.string().min(1).optional()
    .describe(`Absolute path of a file holding the client secret (at least ${MIN_SECRET_LENGTH} characters). Set this or client_secret_sha256.`),
  client_secret_sha256: z.string().regex(/^[0-9a-f]{64}$/, 'client_secret_sha256 is 64 lower-case hex digits')
    .optional()
    .describe('SHA-256 (hex) of the client secret, so the secret itself need not be on the proxy\'s disk.'),
  redirect_uris: z.array(z.string()).min(1)
    .describe('Exact redirect URIs the vendor may use: https, or http only on a loopback address; no wildcards, no fragment.'),
  access_token_ttl: z.string().regex(DURATION, 'a duration such as 2h, 30m').optional()
    .describe('Lifetime of an access token (the proxy\'s JWT for this client): default 2h, at most 24h.'),
  refresh_token_ttl: z.string().regex(DURATION, 'a duration such as 90d').optional()
    .describe('Lifetime of a refresh token; each use rotates it and starts a new lifetime. Default 90d, at most 366d.'),
  require_pkce: z.boolean().optional()
    .describe('Refuse authorization requests without a PKCE S256 code_challenge. PKCE is honoured whenever it is sent.'),
});

export type OAuthRegistrationDoc = z.infer<typeof OAuthRegistrationSchema>;

export type { OAuthRegistration };

const LOOPBACK = /^(?:localhost|127(?:\.[0-9]{1,3}){3}|\[::1\])$/;

/** Why a redirect URI cannot be registered, or undefined when it can. */
export function redirectUriProblem(uri: string): string | undefined {
  if (uri.includes('*')) return 'must not contain a wildcard';
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return 'is not an absolute URL';
  }
  if (url.hash || uri.includes('#')) return 'must not have a fragment (RFC 6749 3.1.2)';
  if (url.username || url.password) return 'must not contain credentials';
  if (url.protocol === 'http:' && !LOOPBACK.test(url.hostname)) return 'must be https (http only on a loopback address)';
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be https (http only on a loopback address)';
  return undefined;
}

export function clientOAuthSettings(
  doc: OAuthRegistrationDoc | undefined,
  source: string,
  problem: (key: readonly PropertyKey[], message: string) => void,
): { oauth?: OAuthRegistration } {
  if (doc === undefined) return {};
  let ok = true;
  const fail = (key: readonly PropertyKey[], message: string): void => {
    ok = false;
    problem(key, message);
  };
  let secretSha256: Buffer | undefined;
  if (doc.client_secret_file !== undefined && doc.client_secret_sha256 !== undefined) {
    fail(['client_secret_sha256'], 'oauth: set client_secret_file or client_secret_sha256, not both');
  } else if (doc.client_secret_sha256 !== undefined) {
    secretSha256 = Buffer.from(doc.client_secret_sha256, 'hex');
  } else if (doc.client_secret_file !== undefined) {
    const file = doc.client_secret_file;
    if (!isAbsolute(file)) {
      fail(['client_secret_file'], 'oauth.client_secret_file must be an absolute path');
    } else {
      let value: string | undefined;
      try {
        value = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        fail(['client_secret_file'], `oauth.client_secret_file: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      if (value !== undefined && value.length < MIN_SECRET_LENGTH) fail(['client_secret_file'], `oauth.client_secret_file: the secret in ${file} is shorter than ${MIN_SECRET_LENGTH} characters`);
      else if (value !== undefined) secretSha256 = createHash('sha256').update(value).digest();
    }
  } else {
    fail([], 'oauth: a client secret is required: client_secret_file or client_secret_sha256');
  }
  doc.redirect_uris.forEach((uri, i) => {
    const why = redirectUriProblem(uri);
    if (why) fail(['redirect_uris', i], `oauth.redirect_uris: ${uri} ${why}`);
  });
  const ttl = (key: 'access_token_ttl' | 'refresh_token_ttl', fallback: number, max: number): number => {
    const text = doc[key];
    if (text === undefined) return fallback;
    let seconds = 0;
    try {
      seconds = parseDuration(text);
    } catch {
      fail([key], `oauth.${key} must be a positive duration such as 2h`);
    }
    if (seconds > max) fail([key], `oauth.${key} is at most ${max / 3600}h`);
    return seconds;
  };
  const accessTokenTtlS = ttl('access_token_ttl', DEFAULT_ACCESS_TTL_S, MAX_ACCESS_TTL_S);
  const refreshTokenTtlS = ttl('refresh_token_ttl', DEFAULT_REFRESH_TTL_S, MAX_REFRESH_TTL_S);
  if (!ok || !secretSha256) return {};
  return {
    oauth: {
      clientId: doc.client_id,
      secretSha256,
      redirectUris: [...new Set(doc.redirect_uris)],
      accessTokenTtlS,
      refreshTokenTtlS,
      requirePkce: doc.require_pkce ?? false,
      source,
      ...(doc.client_secret_file !== undefined ? { secretFile: doc.client_secret_file } : {}),
    },
  };
}

/** Two clients may not share a client_id: each problem names the other client's place. */
export function duplicateClientIds(clients: Iterable<{ name: string; oauth?: OAuthRegistration | undefined }>): { source: string; message: string }[] {
  const seen = new Map<string, { name: string; source: string }>();
  const out: { source: string; message: string }[] = [];
  for (const c of clients) {
    if (!c.oauth) continue;
    const first = seen.get(c.oauth.clientId);
    if (first) out.push({ source: c.oauth.source, message: `oauth.client_id "${c.oauth.clientId}" is already used by client "${first.name}" (${first.source})` });
    else seen.set(c.oauth.clientId, { name: c.name, source: c.oauth.source });
  }
  return out;
}
