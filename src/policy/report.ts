// Report-only mode: a client with `mode: report` keeps working while its policy is being
// written. A request its rules only fail to name is forwarded and audited as "would-deny";
// every other refusal stands in every mode.
import { authorize, type AuthorizeInput, type Decision } from './evaluate.ts';
import type { Client } from '../types.ts';

/** The denials that mean "no rule names this request" (also through a ".json" reading).
 *  Not among them: canonicalization refusals (malformed, sudo, smuggling, credentials),
 *  which never reach the policy, and the fixed denials (not-api, internal-api, token-self)
 *  and bad identifiers, which no rule can lift. */
const REPORTABLE = /^(?:format-suffix: )?(?:no-rule|method-not-allowed):/;

export const isReportable = (reason: string): boolean => REPORTABLE.test(reason);

/** Whether `decision`, a denial, is forwarded anyway because the client is in report mode. */
export function wouldDeny(client: Client, req: AuthorizeInput, decision: Decision): boolean {
  if (decision.allow || client.mode !== 'report' || !REPORTABLE.test(decision.reason)) return false;
  if (!req.formatAlias) return true;
  // GitLab may read "x.json" as "x": that reading must pass the fixed checks too, or
  // "DELETE .../personal_access_tokens/self.json" would be forwarded as a mere missing rule.
  const alias = authorize(client, { ...req, segments: req.formatAlias, formatAlias: undefined });
  return alias.allow || REPORTABLE.test(alias.reason);
}
