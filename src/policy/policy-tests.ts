// Policy tests: a client's `tests:` list names requests its rules must allow or deny, so an
// operator's CI catches a policy change that opens or closes more than intended. `check`
// runs them; each failure is a problem at the test's own line.
import { ProxyError } from '../errors.ts';
import { canonicalize } from '../request/canonicalize.ts';
import { authorize, type AuthorizeInput } from './evaluate.ts';
import type { Client, Method, Policy, PolicyProblem, PolicyTest, Rule } from '../types.ts';
import type { PolicyTestDoc } from './schema.ts';
import { wouldDeny } from './report.ts';
import type { Located } from '../types.ts';

export type { PolicyTest };


export function parseTests(docs: readonly PolicyTestDoc[], at: (index: number) => Located): PolicyTest[] {
  return docs.map((doc, i) => {
    const [expect, request] = 'allow' in doc ? (['allow', doc.allow] as const) : (['deny', doc.deny] as const);
    const space = request.indexOf(' ');
    return { expect, method: request.slice(0, space), target: request.slice(space + 1), where: at(i) };
  });
}

export type Verdict =
  | { allow: true; why: string; rule: Rule | undefined }
  /** `wouldDeny`: in report mode this request is forwarded all the same. */
  | { allow: false; why: string; wouldDeny: boolean };

/** What the proxy decides for `method target` from this client, as the request pipeline
 *  does: canonicalization first, then the rules. Whether the client is disabled is not
 *  looked at: this is about the rules. */
export function decide(client: Client, method: string, target: string): Verdict {
  try {
    const req = canonicalize(method, target, ['Host', 'localhost'], '');
    if (req.method === 'OPTIONS') return { allow: false, why: 'options: answered by the proxy itself, never forwarded', wouldDeny: false };
    const input: AuthorizeInput = { method: req.method as Method, segments: req.segments, formatAlias: req.formatAlias, surface: req.surface };
    const decision = authorize(client, input);
    if (decision.allow) return { allow: true, why: decision.rule ? `"${decision.rule.text}" (${decision.rule.source})` : decision.reason, rule: decision.rule };
    return { allow: false, why: decision.reason, wouldDeny: wouldDeny(client, input, decision) };
  } catch (err) {
    if (!(err instanceof ProxyError)) throw err;
    return { allow: false, why: `${err.reason}${err.detail && err.detail !== err.reason ? `: ${err.detail}` : ''} (${err.status})`, wouldDeny: false };
  }
}

/** Runs every client's tests; a failing test is a problem at its line. */
export function runPolicyTests(policy: Policy): { count: number; problems: PolicyProblem[] } {
  let count = 0;
  const problems: PolicyProblem[] = [];
  for (const client of policy.clients.values()) {
    for (const test of client.tests) {
      count++;
      const verdict = decide(client, test.method, test.target);
      const request = `${test.method} ${test.target}`;
      if (test.expect === 'allow' && !verdict.allow) {
        problems.push({ ...test.where, message: `test failed: ${request} should be allowed, but is denied: ${verdict.why}` });
      } else if (test.expect === 'deny' && verdict.allow) {
        problems.push({ ...test.where, message: `test failed: ${request} should be denied, but ${verdict.why} allows it` });
      }
    }
  }
  return { count, problems };
}
