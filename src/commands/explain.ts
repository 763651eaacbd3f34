// `explain`: how the proxy decides one request, without sending it. The request is described
// whole (method, target, headers, body) and decided by the same decide() as `serve`; projects
// and groups are resolved through the configured GitLab with --gitlab, otherwise under the
// offline assumption, which the output states.
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { ConfigError, secret } from '../config/env.ts';
import { decideDescribed, describeDecision, describeRoute, OFFLINE_ASSUMPTION, offlineResolver } from '../decision/offline.ts';
import { createScopeResolver } from '../scope/lookup.ts';
import type { Client, ScopeResolver } from '../types.ts';

export interface ExplainOptions {
  client: Client;
  method: string;
  target: string;
  /** "Name: value" strings, as curl's -H takes them. */
  headers: readonly string[];
  contentType: string | undefined;
  body: Buffer | undefined;
  /** `--graphql-query Q`: the body {"query": Q} with Content-Type application/json. */
  graphqlQuery: string | undefined;
  /** Resolve projects and groups through the configured GitLab (GITLAB_URL, GITLAB_TOKEN). */
  gitlab: boolean;
  env: NodeJS.ProcessEnv;
  out: (line: string) => void;
}

export async function explain(opts: ExplainOptions): Promise<number> {
  const headers: [string, string][] = opts.headers.map((h) => {
    const colon = h.indexOf(':');
    if (colon < 1) throw new ConfigError(`--header "${h}" is not "Name: value"`);
    return [h.slice(0, colon).trim(), h.slice(colon + 1).trim()];
  });
  let body = opts.body;
  let contentType = opts.contentType;
  if (opts.graphqlQuery !== undefined) {
    if (body !== undefined) throw new ConfigError('--graphql-query and --body are exclusive');
    body = Buffer.from(JSON.stringify({ query: opts.graphqlQuery }));
    contentType ??= 'application/json';
  }
  if (contentType !== undefined) headers.push(['Content-Type', contentType]);
  const resolver = opts.gitlab ? gitlabResolver(opts.env) : offlineResolver;
  const decision = await decideDescribed(opts.client, { method: opts.method, target: opts.target, headers, body }, resolver);
  opts.out(describeDecision(decision));
  const route = describeRoute(decision);
  if (route) opts.out(route);
  else if (decision.verdict !== 'local' && /^\/api\/v4\//.test(opts.target)) opts.out('route\tnone: GitLab has no such route');
  const scoped = opts.client.projects !== undefined || opts.client.groups !== undefined || opts.client.rules.some((r) => r.constraints?.projects || r.constraints?.groups);
  if (scoped && !opts.gitlab) opts.out(`# ${OFFLINE_ASSUMPTION}`);
  return decision.verdict === 'allow' || decision.verdict === 'local' ? 0 : 1;
}

function gitlabResolver(env: NodeJS.ProcessEnv): ScopeResolver {
  const url = env.GITLAB_URL;
  if (!url) throw new ConfigError('--gitlab needs GITLAB_URL');
  let gitlabUrl: URL;
  try {
    gitlabUrl = new URL(url);
  } catch {
    throw new ConfigError('GITLAB_URL is not a URL');
  }
  const token = secret(env, 'GITLAB_TOKEN');
  if (!token) throw new ConfigError('--gitlab needs GITLAB_TOKEN (or GITLAB_TOKEN_FILE)');
  return createScopeResolver({
    gitlabUrl,
    gitlabRoot: gitlabUrl.pathname.replace(/\/+$/, ''),
    token: () => token.value,
    // One command, a few lookups: no idle connection may keep the process alive after it.
    agent: gitlabUrl.protocol === 'https:' ? new HttpsAgent({ keepAlive: false }) : new HttpAgent({ keepAlive: false }),
    timeoutMs: 10_000,
    ttlMs: 0,
    maxEntries: 100,
  });
}
