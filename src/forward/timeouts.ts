// The timeouts around one request to GitLab:
//   connect   UPSTREAM_CONNECT_TIMEOUT_MS: TCP connect (and the TLS handshake for https) of a
//             new connection; a reused keep-alive connection is already connected;
//   response  UPSTREAM_RESPONSE_TIMEOUT_MS until GitLab's response headers, and the same bound
//             on silence while the body streams: GitLab may be slow, but a response that sends
//             nothing for that long is cut (time the client is not reading does not count).
// Both mark the context as timed out (so an answer not yet started is a 504) and destroy the
// request, which ends the client's response too.
//
// The response and silence bounds are one timer per request, refreshed when the headers and
// each chunk arrive: a timer and a handful of listeners per request were a measurable share of
// the proxy's CPU per request (docs/benchmarks.md).
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { RequestContext } from '../context.ts';
import { CONNECT_TIMEOUT, STALL_TIMEOUT } from '../ops/upstream.ts';

const coded = (message: string, code?: string): Error => Object.assign(new Error(message), code ? { code } : {});

export interface UpstreamTimeouts {
  connectMs: number;
  /** Until the response headers, and the longest silence while the body streams. */
  responseMs: number;
}

/** The response's silence timer: `refresh()` on each chunk of GitLab's body. */
export interface ResponseWatch {
  refresh(): void;
}

/** Installs the timeouts on one request to GitLab; the returned watch is refreshed by the
 *  caller on each body chunk (it already listens to them). */
export function guardUpstreamRequest(proxyReq: ClientRequest, ctx: RequestContext, limits: UpstreamTimeouts): ResponseWatch {
  const socket = proxyReq.socket as Socket | null;
  // A new connection is still connecting when it is handed to the request; a reused one is not.
  if (socket?.connecting) {
    const connectTimer = setTimeout(() => {
      ctx.timedOut = true;
      proxyReq.destroy(coded('upstream connect timeout', CONNECT_TIMEOUT));
    }, limits.connectMs);
    const clear = (): void => clearTimeout(connectTimer);
    socket.once(socket instanceof TLSSocket ? 'secureConnect' : 'connect', clear);
    proxyReq.once('close', clear);
  }
  let response: IncomingMessage | undefined;
  const timer = setTimeout(() => {
    if (response === undefined) {
      ctx.timedOut = true;
      proxyReq.destroy(coded('upstream response timeout'));
      return;
    }
    // Held back by the client (backpressure paused the body): the silence is not GitLab's.
    if (response.readableFlowing !== true) {
      timer.refresh();
      return;
    }
    ctx.timedOut = true;
    if (ctx.reason === null) ctx.reason = 'upstream-stalled';
    response.destroy(coded('upstream response stalled', STALL_TIMEOUT));
  }, limits.responseMs);
  proxyReq.once('response', (proxyRes: IncomingMessage) => {
    response = proxyRes;
    timer.refresh();
    // The client reads again after a pause: the silence is counted from now.
    proxyRes.on('resume', () => timer.refresh());
  });
  // The request is over (its response ended, or either side failed).
  proxyReq.once('close', () => clearTimeout(timer));
  return timer;
}
