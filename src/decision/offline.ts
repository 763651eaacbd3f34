// Deciding a request that is described rather than received: `explain`, `check`'s policy
// tests and `learn --diff`. The request is canonicalized exactly as `serve` would read it and
// handed to the same decide(); only the body and the project/group lookups come from
// elsewhere (a file, or nothing; GitLab, or the stated offline assumption).
import { ProxyError, statusOf } from '../errors.ts';
import { canonicalize } from '../request/canonicalize.ts';
import type { Client, Decision, ScopeKind, ScopeResolver, ScopeTarget } from '../types.ts';
import { decide, refused } from './decide.ts';

export interface DescribedRequest {
  method: string;
  /** Path and query as a client would send them: "/api/v4/projects/5?page=2". */
  target: string;
  /** Extra headers, as name/value pairs (Content-Type, a header under test...). */
  headers?: readonly (readonly [string, string])[];
  body?: Buffer | undefined;
}

/** What offline decisions assume about projects and groups, said wherever they are shown. */
export const OFFLINE_ASSUMPTION = 'offline: a full path is taken as the current path of the project or group it names; a numeric id cannot be resolved (use --gitlab)';

/** Resolves without GitLab: a full path stands for itself (id unknown), an id for nothing,
 *  and no object's current state can be read (a rule's `target:` fails). */
export const offlineResolver: ScopeResolver = {
  resolve: async (_kind: ScopeKind, idOrPath: string): Promise<ScopeTarget | null> =>
    /^[0-9]+$/.test(idOrPath) ? null : { id: -1, fullPath: idOrPath },
  current: async () => undefined,
};

export async function decideDescribed(client: Client, req: DescribedRequest, resolver: ScopeResolver | undefined): Promise<Decision> {
  const body = req.body ?? Buffer.alloc(0);
  const raw: string[] = ['Host', 'localhost'];
  for (const [name, value] of req.headers ?? []) raw.push(name, value);
  if (body.length > 0 && !(req.headers ?? []).some(([n]) => n.toLowerCase() === 'content-length')) raw.push('Content-Length', String(body.length));
  try {
    const request = canonicalize(req.method, req.target, raw, '');
    return await decide({ request, client, readBody: async () => body, resolver });
  } catch (err) {
    if (!(err instanceof ProxyError)) throw err;
    return refused(err.refusal);
  }
}

/** The route line explain prints after the verdict. */
export function describeRoute(d: Decision): string | undefined {
  return d.route ? `route\t${d.route.name}\t${d.route.class}: ${d.route.why}` : undefined;
}

/** One line: "allow\tRULE", "deny\treason: detail (status)", "would-deny\t...". */
export function describeDecision(d: Decision): string {
  const why = d.detail && d.detail !== d.reason ? `${d.reason}: ${d.detail}` : (d.reason ?? '');
  switch (d.verdict) {
    case 'allow':
      return `allow\t${d.ruleLabel ?? d.reason ?? ''}${d.reason ? `\t(${why})` : ''}`;
    case 'local':
      return `local\t${d.reason}: answered by the proxy itself, never forwarded`;
    case 'would-deny':
      return `would-deny\t${why}\t(report mode: forwarded and audited)`;
    case 'deny':
      return `deny\t${why} (${d.refusal ? statusOf(d.refusal) : 403})`;
  }
}
