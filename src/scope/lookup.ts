// How the scope resolver asks GitLab about a project or group: a GET with the proxy's own
// token over the same connection pool as forwarded requests (private CA, keep-alive), with a
// time limit and a bounded answer.
import { request as httpRequest, type Agent as HttpAgent } from 'node:http';
import { request as httpsRequest, type Agent as HttpsAgent } from 'node:https';
import { GitLabScopeResolver, type ScopeLookup } from './scope.ts';

export interface LookupSettings {
  gitlabUrl: URL;
  /** GitLab's relative URL root without a trailing slash: "" or "/gitlab". */
  gitlabRoot: string;
  token: () => string;
  agent?: HttpAgent | HttpsAgent;
  timeoutMs: number;
}

/** A project or group answer is a few KiB; anything far larger is not one. */
const MAX_ANSWER_BYTES = 1024 * 1024;

export function gitlabLookup(settings: LookupSettings): ScopeLookup {
  const send = settings.gitlabUrl.protocol === 'https:' ? httpsRequest : httpRequest;
  return (path) =>
    new Promise((resolve, reject) => {
      const url = new URL(settings.gitlabUrl.origin + settings.gitlabRoot + path);
      const req = send(url, {
        method: 'GET',
        agent: settings.agent,
        headers: { 'private-token': settings.token(), accept: 'application/json', 'accept-encoding': 'identity' },
        timeout: settings.timeoutMs,
      }, (res) => {
        const status = res.statusCode ?? 502;
        if (status !== 200) {
          res.resume();
          const location = res.headers.location;
          resolve({ status, body: undefined, location: typeof location === 'string' ? location : undefined });
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) req.destroy(new Error('scope lookup answer too large'));
          else chunks.push(chunk);
        });
        res.on('end', () => {
          try {
            resolve({ status, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown });
          } catch {
            resolve({ status: 502, body: undefined });
          }
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('scope lookup timed out')));
      req.on('error', reject);
      req.end();
    });
}

export function createScopeResolver(settings: LookupSettings & { ttlMs: number; maxEntries: number }): GitLabScopeResolver {
  return new GitLabScopeResolver({ lookup: gitlabLookup(settings), ttlMs: settings.ttlMs, maxEntries: settings.maxEntries });
}
