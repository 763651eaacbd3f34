// The connection pool to GitLab, and what an upstream failure is called in metrics. The pool's
// idle timeout is UPSTREAM_IDLE_TIMEOUT_MS: how long an idle connection stays in the pool (the
// agent's socket timeout; Node also honours GitLab's Keep-Alive: timeout hint). The timeouts
// around each request (connect, response, silence) are in src/forward/timeouts.ts.
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Config } from '../config/env.ts';
import type { UpstreamErrorKind } from './metrics.ts';

export type UpstreamAgent = HttpAgent | HttpsAgent;

export function createUpstreamAgent(config: Config): UpstreamAgent {
  const options = {
    keepAlive: true,
    maxSockets: 256,
    maxFreeSockets: 64,
    scheduling: 'lifo' as const,
    timeout: config.limits.upstreamIdleTimeoutMs,
  };
  if (config.gitlabUrl.protocol !== 'https:') return new HttpAgent(options);
  // A private CA replaces Node's built-in roots for GitLab (like curl --cacert).
  return new HttpsAgent(config.gitlabCa ? { ...options, ca: config.gitlabCa } : options);
}

export function agentSockets(agent: UpstreamAgent): { active: number; free: number } {
  const count = (pool: NodeJS.ReadOnlyDict<unknown[]>): number => {
    let n = 0;
    for (const list of Object.values(pool)) n += list?.length ?? 0;
    return n;
  };
  return { active: count(agent.sockets), free: count(agent.freeSockets) };
}

/** The codes src/forward/timeouts.ts gives the errors of its timeouts. */
export const CONNECT_TIMEOUT = 'UPSTREAM_CONNECT_TIMEOUT';
export const STALL_TIMEOUT = 'UPSTREAM_STALL_TIMEOUT';

/** A bounded label for an upstream failure. */
export function upstreamErrorKind(err: Error & { code?: string }, timedOut: boolean): UpstreamErrorKind {
  const code = err.code ?? '';
  if (code === CONNECT_TIMEOUT) return 'connect-timeout';
  if (code === STALL_TIMEOUT) return 'stall-timeout';
  if (timedOut) return 'response-timeout';
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED' || err.message === 'aborted') return 'reset';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'dns';
  if (code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || /CERT|SELF_SIGNED|UNABLE_TO/.test(code)) return 'tls';
  return 'other';
}
