// The pipeline step of src/app.ts that runs src/scope/enforce.ts: refuses with the reason,
// records the deciding rule on the request's context, and says how to filter list answers.
import type { RequestContext } from '../context.ts';
import { ProxyError } from '../errors.ts';
import type { Decision } from '../policy/evaluate.ts';
import type { Client } from '../types.ts';
import type { CanonicalRequest } from '../request/canonicalize.ts';
import { enforce, needsEnforcement } from './enforce.ts';
import type { ScopeResolver } from './scope.ts';

export interface ScopeOutcome {
  note: string | undefined;
  listFilter: ((item: unknown) => boolean) | undefined;
}

export async function enforceStep(
  client: Client,
  decision: Decision,
  req: CanonicalRequest,
  body: Buffer,
  contentType: string | undefined,
  ctx: RequestContext,
  resolver: ScopeResolver | undefined,
): Promise<ScopeOutcome | undefined> {
  if (!needsEnforcement(client, decision)) return undefined;
  const verdict = await enforce(client, decision, {
    method: req.method as Parameters<typeof enforce>[2]['method'],
    segments: req.segments,
    query: req.query,
    body,
    contentType,
    mediaType: req.body?.mediaType,
  }, resolver);
  if (verdict.rule) ctx.rule = `${verdict.rule.text} (${verdict.rule.source})`;
  if (!verdict.allow) throw new ProxyError('forbidden', verdict.reason);
  return { note: verdict.note, listFilter: verdict.listFilter };
}

/** A list answer is filtered, so it must come uncompressed: Accept-Encoding is not sent. */
export function listHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (name.toLowerCase() !== 'accept-encoding') out[name] = value;
  return out;
}
