// Report mode: a client with `mode: report` keeps working while its policy is being written.
// A request its rules only fail to name is forwarded and audited as "would-deny", if it
// cannot destroy or grant anything; every other refusal stands in every mode, and a write
// that could is refused (report-mode-write) with what enforce mode would have said.
import { CLASS_BITS, getCatalogue } from '../catalogue/catalogue.ts';
import type { Client, Method, Reason } from '../types.ts';
import { decidePath, type PathDecision } from './path.ts';

/** The denials that mean "no rule names this request". Not among them: canonicalization
 *  refusals (malformed, sudo, smuggling, credentials), the floor (not-api, internal-api,
 *  token-self) and bad identifiers, which no rule can lift. */
const REPORTABLE: ReadonlySet<Reason> = new Set(['no-rule', 'method-not-allowed']);

export const isReportable = (reason: Reason): boolean => REPORTABLE.has(reason);

type Input = Parameters<typeof decidePath>[1];

/** Whether `path`, a denial, is forwarded anyway because the client is in report mode. */
export function wouldDeny(client: Client, req: Input, path: PathDecision): boolean {
  if (path.allow || client.mode !== 'report' || !REPORTABLE.has(path.reason)) return false;
  if (!req.formatAlias) return true;
  // GitLab may read "x.json" as "x": that reading must pass the floor too, or
  // "DELETE .../personal_access_tokens/self.json" would be forwarded as a mere missing rule.
  const alias = decidePath(client, { ...req, segments: req.formatAlias, formatAlias: undefined, readings: [req.formatAlias] });
  return alias.allow || REPORTABLE.has(alias.reason);
}

/** Classes report mode never forwards: what destroys, grants or reveals (the credential and
 *  admin classes are refused earlier, by the floor, in every mode). */
const NEVER_REPORTED = CLASS_BITS.credential | CLASS_BITS.admin | CLASS_BITS.membership | CLASS_BITS.destructive;

/** Report mode forwards what cannot destroy or grant: reads, and writes every GitLab route of
 *  which (either .json reading included) is outside the destructive, membership, credential
 *  and admin classes (src/catalogue/classes.ts). A write GitLab has no route for is refused. */
export function reportMayForward(method: Method, segments: readonly string[], formatAlias: readonly string[] | undefined, readings: readonly (readonly string[])[] = []): boolean {
  if (method === 'GET' || method === 'HEAD') return true;
  const catalogue = getCatalogue();
  let mask = catalogue.classesOf(method, segments) | (formatAlias ? catalogue.classesOf(method, formatAlias) : 0);
  // Every other format reading too (src/request/route.ts): "x.xml" may be the route "x".
  for (const reading of readings) if (reading !== segments) mask |= catalogue.classesOf(method, reading);
  return mask !== 0 && (mask & NEVER_REPORTED) === 0;
}
