// OAuth settings from the environment (src/config/env.ts calls this; used by src/oauth/). OAuth is on when
// OAUTH_GITLAB_CLIENT_ID is set: the proxy is then itself a GitLab OAuth application
// (scopes openid read_user) through which the people in OAUTH_APPROVERS sign in to approve a
// vendor. Every problem is one ConfigError line naming the variable, never a secret's value.
import { ConfigError, secret } from './read.ts';

/** Who may approve: GitLab usernames, or members of a group with at least an access level. */
export type ApproverRule =
  | { kind: 'user'; username: string }
  | { kind: 'group'; group: string; minAccessLevel: number };

export interface OAuthConfig {
  /** The proxy's own application in GitLab (Admin > Applications, or a group's). */
  gitlabClientId: string;
  gitlabClientSecret: string;
  /** GitLab as the approver's browser reaches it (OAUTH_GITLAB_URL, default GITLAB_URL). */
  gitlabBrowserUrl: URL;
  approvers: readonly ApproverRule[];
}

/** GitLab's access levels (lib/gitlab/access.rb: GUEST 10, REPORTER 20, DEVELOPER 30,
 *  MAINTAINER 40, OWNER 50; PLANNER 15). */
export const ACCESS_LEVELS: Readonly<Record<string, number>> = { guest: 10, planner: 15, reporter: 20, developer: 30, maintainer: 40, owner: 50 };
const USERNAME = /^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,254}$/;
const GROUP_PATH = /^[A-Za-z0-9_.][A-Za-z0-9_.-]*(?:\/[A-Za-z0-9_.][A-Za-z0-9_.-]*){0,20}$/;

type Env = Record<string, string | undefined>;

export function loadOAuthConfig(env: Env, gitlabUrl: URL, publicUrl: URL | undefined, hasJwtSecret: boolean): OAuthConfig | undefined {
  const clientId = env.OAUTH_GITLAB_CLIENT_ID;
  const clientSecret = secret(env, 'OAUTH_GITLAB_CLIENT_SECRET');
  if (!clientId) {
    if (clientSecret || env.OAUTH_APPROVERS) throw new ConfigError('OAUTH_GITLAB_CLIENT_ID is required when OAUTH_GITLAB_CLIENT_SECRET or OAUTH_APPROVERS is set');
    return undefined;
  }
  if (!clientSecret) throw new ConfigError('OAUTH_GITLAB_CLIENT_SECRET (or OAUTH_GITLAB_CLIENT_SECRET_FILE) is required with OAUTH_GITLAB_CLIENT_ID');
  if (!publicUrl) throw new ConfigError('PUBLIC_URL is required with OAUTH_GITLAB_CLIENT_ID: it is the issuer vendors see and the base of the sign-in callback');
  if (!hasJwtSecret) throw new ConfigError('PROXY_JWT_SECRET (or PROXY_JWT_SECRET_FILE) is required with OAUTH_GITLAB_CLIENT_ID: OAuth access tokens are HS256 JWTs minted by the proxy');
  const browser = env.OAUTH_GITLAB_URL ? parseBrowserUrl(env.OAUTH_GITLAB_URL) : gitlabUrl;
  return {
    gitlabClientId: clientId,
    gitlabClientSecret: clientSecret.value,
    gitlabBrowserUrl: browser,
    approvers: parseApprovers(env.OAUTH_APPROVERS),
  };
}

/** "alice, bob, group:acme/ops, group:acme/platform:maintainer" */
export function parseApprovers(text: string | undefined): ApproverRule[] {
  const entries = (text ?? '').split(/[\s,]+/).filter(Boolean);
  if (entries.length === 0) throw new ConfigError('OAUTH_APPROVERS is required with OAUTH_GITLAB_CLIENT_ID: usernames and/or group:PATH[:LEVEL], comma separated');
  return entries.map((entry) => {
    if (!entry.startsWith('group:')) {
      const username = entry.replace(/^@/, '');
      if (!USERNAME.test(username)) throw new ConfigError(`OAUTH_APPROVERS: "${entry}" is not a GitLab username (or write group:PATH[:LEVEL])`);
      return { kind: 'user', username };
    }
    const [, group = '', level = 'maintainer', extra] = entry.split(':');
    const minAccessLevel = /^[0-9]+$/.test(level) ? Number(level) : ACCESS_LEVELS[level.toLowerCase()];
    if (extra !== undefined || !GROUP_PATH.test(group) || minAccessLevel === undefined || minAccessLevel < 10 || minAccessLevel > 50) {
      throw new ConfigError(`OAUTH_APPROVERS: "${entry}" is not group:PATH[:LEVEL] (LEVEL: ${Object.keys(ACCESS_LEVELS).join(', ')} or 10-50)`);
    }
    return { kind: 'group', group, minAccessLevel };
  });
}

function parseBrowserUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError('OAUTH_GITLAB_URL is not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError('OAUTH_GITLAB_URL must be an http or https URL');
  if (url.username || url.password || url.search || url.hash) throw new ConfigError('OAUTH_GITLAB_URL must be a plain base URL');
  return url;
}
