// Whether GitLab answers at all (any HTTP status below 500), checked at most every 5 s,
// without a token: the probe behind gsp_gitlab_up when no traffic says so (src/ops/gitlab-health.ts).
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Config } from '../config/env.ts';

const READY_TTL_MS = 5000;

export function gitlabProbe(config: Config): () => Promise<boolean> {
  let cached: { at: number; ok: boolean } | undefined;
  return () => {
    if (cached && Date.now() - cached.at < READY_TTL_MS) return Promise.resolve(cached.ok);
    const url = new URL(config.gitlabRoot + '/api/v4/version', config.gitlabUrl.origin);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        cached = { at: Date.now(), ok };
        resolve(ok);
      };
      const req = send(url, { method: 'GET', timeout: 3000, agent: false, ...(config.gitlabCa ? { ca: config.gitlabCa } : {}) }, (res) => {
        res.resume();
        done((res.statusCode ?? 500) < 500);
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => done(false));
      req.end();
    });
  };
}
