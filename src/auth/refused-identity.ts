// An expired, revoked or cut-off token whose signature verified still names its vendor: the
// audit line and the metrics carry that client and token id, so the security team sees who
// keeps using an old token. Only names of the current policy's clients are kept (metric labels
// stay a bounded set).
import type { RequestContext } from '../context.ts';
import type { Policy } from '../types.ts';
import { RefusedIdentity } from './verify.ts';

export function keepRefusedIdentity(err: unknown, ctx: RequestContext, policy: Policy): void {
  if (!(err instanceof RefusedIdentity) || !policy.clients.has(err.client)) return;
  ctx.client = err.client;
  ctx.jti = err.jti ?? null;
}
