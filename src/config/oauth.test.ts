import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './env.ts';
import { parseApprovers } from './oauth.ts';

const base = {
  GITLAB_URL: 'https://gitlab.example.com', GITLAB_TOKEN: 'glpat-x', PROXY_JWT_SECRET: 'k'.repeat(32),
  PUBLIC_URL: 'https://proxy.example.com', OAUTH_GITLAB_CLIENT_ID: 'app', OAUTH_GITLAB_CLIENT_SECRET: 's3cr3t-value', OAUTH_APPROVERS: 'alice',
};
const error = (env: Record<string, string | undefined>): string => {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  return 'no error';
};

describe('OAuth settings', () => {
  it('are off without OAUTH_GITLAB_CLIENT_ID and on with it', () => {
    expect(loadConfig({ ...base, OAUTH_GITLAB_CLIENT_ID: undefined, OAUTH_GITLAB_CLIENT_SECRET: undefined, OAUTH_APPROVERS: undefined }).oauth).toBeUndefined();
    expect(loadConfig(base).oauth).toMatchObject({ gitlabClientId: 'app', approvers: [{ kind: 'user', username: 'alice' }] });
    expect(loadConfig(base).store).toEqual({ redisUrl: undefined, sqliteFile: './data/gitlab-scope-proxy.sqlite' });
  });

  it('name the missing or wrong variable in one line, never a secret', () => {
    expect(error({ ...base, OAUTH_GITLAB_CLIENT_SECRET: undefined })).toMatch(/^OAUTH_GITLAB_CLIENT_SECRET \(or OAUTH_GITLAB_CLIENT_SECRET_FILE\) is required/);
    expect(error({ ...base, PUBLIC_URL: undefined })).toMatch(/^PUBLIC_URL is required with OAUTH_GITLAB_CLIENT_ID/);
    expect(error({ ...base, PROXY_JWT_SECRET: undefined, PROXY_JWKS_URL: 'https://idp.example/jwks' })).toMatch(/^PROXY_JWT_SECRET .* is required with OAUTH_GITLAB_CLIENT_ID/);
    expect(error({ ...base, OAUTH_APPROVERS: ' ' })).toMatch(/^OAUTH_APPROVERS is required/);
    expect(error({ ...base, OAUTH_GITLAB_CLIENT_ID: undefined })).toMatch(/^OAUTH_GITLAB_CLIENT_ID is required when/);
    expect(error({ ...base, REDIS_URL: 'http://user:hunter2@redis' })).toBe('REDIS_URL must be a redis:// or rediss:// URL');
    expect(error({ ...base, OAUTH_GITLAB_CLIENT_SECRET_FILE: '/nonexistent' })).toBe('OAUTH_GITLAB_CLIENT_SECRET and OAUTH_GITLAB_CLIENT_SECRET_FILE are both set; set one');
  });

  it('read approvers as usernames and group:PATH[:LEVEL]', () => {
    expect(parseApprovers('alice, @bob group:acme/ops group:acme/platform:developer,group:x:50')).toEqual([
      { kind: 'user', username: 'alice' }, { kind: 'user', username: 'bob' },
      { kind: 'group', group: 'acme/ops', minAccessLevel: 40 }, { kind: 'group', group: 'acme/platform', minAccessLevel: 30 },
      { kind: 'group', group: 'x', minAccessLevel: 50 },
    ]);
    expect(() => parseApprovers('group:acme:boss')).toThrow(/group:PATH\[:LEVEL\]/);
    expect(() => parseApprovers('no/slash')).toThrow(/not a GitLab username/);
  });
});

describe('the OAuth store at start', () => {
  it('stops the proxy with one line naming REDIS_URL when Redis cannot be reached, without the URL', async () => {
    const { startOAuth } = await import('../oauth/wire.ts');
    const { createServer } = await import('node:net');
    // A port that refuses: listen, note it, close.
    const probe = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => probe.once('listening', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const config = loadConfig({ ...base, REDIS_URL: `redis://:hunter2-password@127.0.0.1:${port}` });
    const started = startOAuth(config, {
      policy: () => { throw new Error('unused'); }, verifier: undefined as never, gitlabToken: () => '', jwtSecret: () => new Uint8Array(32), onError: () => undefined,
    });
    await expect(started).rejects.toThrow(/^REDIS_URL: cannot connect to Redis \(ECONNREFUSED\)$/);
    await expect(started).rejects.not.toThrow(/hunter2/);
  });
});
