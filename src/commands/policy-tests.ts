// Running the policy tests: each client's `tests:` names requests its rules must allow or
// deny, decided by the same decide() as `serve` (offline: see OFFLINE_ASSUMPTION), so an
// operator's CI catches a policy change that opens or closes more than intended. Each
// failure is a problem at the test's own line.
import { decideDescribed, describeDecision, offlineResolver } from '../decision/offline.ts';
import type { Policy, PolicyProblem } from '../types.ts';

export async function runPolicyTests(policy: Policy): Promise<{ count: number; problems: PolicyProblem[] }> {
  let count = 0;
  const problems: PolicyProblem[] = [];
  for (const client of policy.clients.values()) {
    for (const test of client.tests) {
      count++;
      const decision = await decideDescribed(client, { method: test.method, target: test.target }, offlineResolver);
      const allowed = decision.verdict === 'allow';
      const request = `${test.method} ${test.target}`;
      const why = describeDecision(decision).split('\t')[1] ?? '';
      if (test.expect === 'allow' && !allowed) {
        problems.push({ ...test.where, message: `test failed: ${request} should be allowed, but is ${decision.verdict === 'would-deny' ? 'only forwarded by report mode' : 'denied'}: ${why}` });
      } else if (test.expect === 'deny' && allowed) {
        problems.push({ ...test.where, message: `test failed: ${request} should be denied, but ${why} allows it` });
      }
    }
  }
  return { count, problems };
}
