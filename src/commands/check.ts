// `check` as a function: the policy directory, the presets in its presets/ folder (used or
// not), and every client's tests, with all problems reported together.
import { join } from 'node:path';
import { reachOf, unknownRouteProblems, type ClassReach } from '../catalogue/coverage.ts';
import { compilePreset, presetFiles, readPreset } from '../policy/extends.ts';
import { formatProblem, loadPolicyDir, PolicyError } from '../policy/load.ts';
import type { Policy, PolicyProblem } from '../types.ts';
import { runPolicyTests } from './policy-tests.ts';

export interface CheckResult {
  policy: Policy | undefined;
  problems: PolicyProblem[];
  /** Preset files checked in DIR/presets/. */
  presets: number;
  /** Policy tests run. */
  tests: number;
  /** Per client, what its rules reach in GitLab's route table, by risk class. */
  reach: { client: string; source: string; admin: boolean; classes: ClassReach[] }[];
}

/** "policies/a.yaml:7" -> a problem at that line. */
function atSource(source: string, message: string): PolicyProblem {
  const colon = source.lastIndexOf(':');
  return { file: source.slice(0, colon), line: Number(source.slice(colon + 1)) || 0, col: 1, message };
}

export async function checkPolicyDir(dir: string, displayBase = process.cwd()): Promise<CheckResult> {
  const problems: PolicyProblem[] = [];
  const seen = new Set<string>();
  const add = (p: PolicyProblem): void => {
    const key = formatProblem(p);
    if (seen.has(key)) return;
    seen.add(key);
    problems.push(p);
  };
  let policy: Policy | undefined;
  try {
    policy = loadPolicyDir(dir, displayBase);
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    err.problems.forEach(add);
  }
  const files = presetFiles(join(dir, 'presets'));
  for (const path of files) {
    const found: PolicyProblem[] = [];
    const preset = compilePreset(readPreset(path, path, displayBase), found);
    found.forEach(add);
    for (const p of unknownRouteProblems(preset?.rules ?? [])) add(atSource(p.rule.source, p.message));
  }
  let tests = 0;
  const reach: CheckResult['reach'] = [];
  if (policy) {
    const result = await runPolicyTests(policy);
    tests = result.count;
    result.problems.forEach(add);
    // A rule that reaches no GitLab route is a typo or a route GitLab does not have.
    for (const client of policy.clients.values()) {
      for (const p of unknownRouteProblems(client.rules)) add(atSource(p.rule.source, p.message));
      reach.push({ client: client.name, source: client.source, admin: client.admin, classes: reachOf(client.rules, client.admin) });
    }
  }
  return { policy, problems, presets: files.length, tests, reach };
}
