// Attribution of a request refused before authentication (sudo, a bad path) to its client,
// when it carries a valid token in a header: the security team wants to know who tried.
// Best effort; it never changes the answer.
import type { RequestContext } from '../context.ts';
import type { Policy } from '../types.ts';
import type { TokenVerifier } from './verify.ts';

export async function identifyForAudit(rawHeaders: readonly string[], ctx: RequestContext, verifier: TokenVerifier, policy: Policy): Promise<void> {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    const value = rawHeaders[i + 1]!.trim();
    const token = name === 'private-token' ? value
      : name === 'authorization' && /^bearer /i.test(value) ? value.slice(7).trim()
        : name === 'authorization' && /^basic /i.test(value) ? basicPassword(value.slice(6).trim())
          : undefined;
    if (token === undefined) continue;
    try {
      const identity = await verifier.verify(token, policy);
      ctx.client = identity.client.name;
      ctx.jti = identity.jti ?? null;
    } catch {
      // Not a valid token: the line stays anonymous.
    }
    return;
  }
}

function basicPassword(b64: string): string | undefined {
  const decoded = Buffer.from(b64, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon === -1 ? undefined : decoded.slice(colon + 1);
}
