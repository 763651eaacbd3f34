// Policy tests: a client's `tests:` list names requests its rules must allow or deny. Read
// here with the policy; run by `check` (src/commands/policy-tests.ts).
import type { Located, PolicyTest } from '../types.ts';
import type { PolicyTestDoc } from './schema.ts';

export type { PolicyTest };

export function parseTests(docs: readonly PolicyTestDoc[], at: (index: number) => Located): PolicyTest[] {
  return docs.map((doc, i) => {
    const [expect, request] = 'allow' in doc ? (['allow', doc.allow] as const) : (['deny', doc.deny] as const);
    const space = request.indexOf(' ');
    return { expect, method: request.slice(0, space), target: request.slice(space + 1), where: at(i) };
  });
}
