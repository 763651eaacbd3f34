// The request id: the proxy's own UUID, or, from a trusted front proxy (TRUSTED_PROXIES), the
// X-Request-Id it set, when well-formed, so that the front proxy's log, the audit line and
// GitLab's correlation_id (the proxy forwards it as X-Request-Id) all name one request.
import type { IncomingMessage } from 'node:http';
import type { BlockList } from 'node:net';
import type { RequestContext } from '../context.ts';
import { clientAddress, contains } from './trusted-proxies.ts';

/** Letters, digits and . _ : = + / - ; at most 128; what UUIDs, hex ids and trace ids use. */
const WELL_FORMED = /^[A-Za-z0-9][A-Za-z0-9._:=+/-]{0,127}$/;

export function incomingRequestId(header: string | string[] | undefined, fromTrustedProxy: boolean): string | undefined {
  if (!fromTrustedProxy || typeof header !== 'string') return undefined;
  return WELL_FORMED.test(header) ? header : undefined;
}

/**
 * Where a request comes from and which id it carries, set once on arrival: the client's address
 * (behind TRUSTED_PROXIES, from X-Forwarded-For / Forwarded) and the request id (a trusted
 * front proxy's, or the proxy's own). Every response names the id in X-Request-Id: the API's
 * answers write it themselves (src/app.ts), the server edge sets it on the others
 * (src/edge/listener.ts).
 */
export function identifyRequest(req: IncomingMessage, ctx: RequestContext, trusted: BlockList | undefined): void {
  const remote = req.socket.remoteAddress;
  // req.headers is built on first use: without TRUSTED_PROXIES nothing here needs it.
  if (trusted === undefined) {
    ctx.ip = clientAddress(remote, {}, undefined);
  } else {
    ctx.ip = clientAddress(remote, req.headers, trusted);
    const incoming = incomingRequestId(req.headers['x-request-id'], remote !== undefined && contains(trusted, remote));
    if (incoming !== undefined) ctx.reqId = incoming;
  }
}
