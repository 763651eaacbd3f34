// `check` as a function: the policy directory, the presets in its presets/ folder (used or
// not), and every client's tests, with all problems reported together.
import { join } from 'node:path';
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
    compilePreset(readPreset(path, path, displayBase), found);
    found.forEach(add);
  }
  let tests = 0;
  if (policy) {
    const result = await runPolicyTests(policy);
    tests = result.count;
    result.problems.forEach(add);
  }
  return { policy, problems, presets: files.length, tests };
}
