// The connection pool to GitLab and the timeouts around each request to it:
//   connect   UPSTREAM_CONNECT_TIMEOUT_MS: TCP connect (and the TLS handshake for https) of a
//             new connection; a reused keep-alive connection is already connected;
//   response  UPSTREAM_RESPONSE_TIMEOUT_MS until GitLab's response headers (forward.ts), and
//             the same bound on silence while the body streams: GitLab may be slow, but a
//             response that sends nothing for that long is cut (time the client is not
//             reading does not count);
//   idle      UPSTREAM_IDLE_TIMEOUT_MS: how long an idle connection stays in the pool (the
//             agent's socket timeout; Node also honours GitLab's Keep-Alive: timeout hint).
import { Agent as HttpAgent, type ClientRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Config } from '../config/env.ts';
import type { RequestContext } from '../context.ts';
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

const CONNECT_TIMEOUT = 'UPSTREAM_CONNECT_TIMEOUT';
const STALL_TIMEOUT = 'UPSTREAM_STALL_TIMEOUT';

const coded = (message: string, code: string): Error => Object.assign(new Error(message), { code });

/**
 * Installs the connect timeout and the mid-body silence timeout on one request to GitLab.
 * Both mark the context as timed out (so an answer not yet started is a 504) and destroy the
 * request, which ends the client's response too.
 */
export function guardUpstreamRequest(proxyReq: ClientRequest, ctx: RequestContext, limits: { connectMs: number; silenceMs: number }): void {
  const socket = proxyReq.socket as Socket | null;
  // A new connection is still connecting when it is handed to the request; a reused one is not.
  if (socket?.connecting) {
    const timer = setTimeout(() => {
      ctx.timedOut = true;
      proxyReq.destroy(coded('upstream connect timeout', CONNECT_TIMEOUT));
    }, limits.connectMs);
    const clear = (): void => clearTimeout(timer);
    socket.once(socket instanceof TLSSocket ? 'secureConnect' : 'connect', clear);
    proxyReq.once('close', clear);
  }
  proxyReq.once('response', (proxyRes: IncomingMessage) => {
    // Armed while the body flows; disarmed while the client is not reading (backpressure
    // pauses the response) and once it is over. A cleared timer cannot be refreshed, so a
    // pause drops it and a resume makes a new one. 'resume' is emitted on a later tick and
    // may arrive after the stream was paused again, so the state is checked, not the event.
    let timer: NodeJS.Timeout | undefined;
    let over = false;
    const fire = (): void => {
      timer = undefined;
      if (proxyRes.readableFlowing !== true) return; // held back by the client: re-armed on resume
      ctx.timedOut = true;
      if (ctx.reason === null) ctx.reason = 'upstream-stalled';
      proxyRes.destroy(coded('upstream response stalled', STALL_TIMEOUT));
    };
    const arm = (): void => {
      if (over) return;
      if (timer) timer.refresh();
      else timer = setTimeout(fire, limits.silenceMs);
    };
    const disarm = (): void => {
      clearTimeout(timer);
      timer = undefined;
    };
    const finish = (): void => {
      over = true;
      disarm();
    };
    arm();
    proxyRes.on('data', arm);
    proxyRes.on('pause', disarm);
    proxyRes.on('resume', () => {
      if (proxyRes.readableFlowing === true) arm();
    });
    proxyRes.once('end', finish);
    proxyRes.once('close', finish);
  });
}

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
