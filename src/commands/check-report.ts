// `check`'s report of what each client can reach in GitLab's route table, by risk class,
// with examples, and a warning for each risky class it is granted. Text for people, JSON
// (--json) for CI.
import type { ClassReach } from '../catalogue/coverage.ts';
import { WARN_CLASSES } from '../catalogue/coverage.ts';
import type { CheckResult } from './check.ts';

const EXAMPLES = 3;

export function reachText(reach: CheckResult['reach']): string {
  const lines: string[] = [];
  for (const c of reach) {
    const total = c.classes.reduce((n, k) => n + k.routes.length, 0);
    lines.push(`client ${c.client} (${c.source}): reaches ${total} GitLab route${total === 1 ? '' : 's'}`);
    for (const k of c.classes) {
      if (k.routes.length === 0) continue;
      lines.push(`  ${k.class.padEnd(12)} ${String(k.routes.length).padStart(4)}  ${examples(k)}`);
    }
    const refused = c.classes.filter((k) => k.refused.length > 0);
    if (refused.length > 0) {
      lines.push(`  refused by the floor: ${refused.map((k) => `${k.class} ${k.refused.length}${k.class === 'admin' ? ' (no admin: true)' : ''}`).join(', ')} (e.g. ${refused[0]!.refused[0]!.method} ${refused[0]!.refused[0]!.template})`);
    }
    for (const k of c.classes) {
      if (WARN_CLASSES.includes(k.class) && k.routes.length > 0) {
        lines.push(`warning: client ${c.client} may reach ${k.routes.length} ${k.class} route${k.routes.length === 1 ? '' : 's'}, e.g. ${examples(k)}`);
      }
    }
  }
  return lines.join('\n');
}

const examples = (k: ClassReach): string =>
  k.routes.slice(0, EXAMPLES).map((r) => `${r.method} ${r.template}`).join(', ') + (k.routes.length > EXAMPLES ? ', ...' : '');

/** The JSON `check --json` prints: problems, then each client's reach by class. */
export function checkJson(dir: string, result: CheckResult, problems: readonly string[]): unknown {
  return {
    ok: problems.length === 0,
    dir,
    problems,
    clients: result.reach.map((c) => ({
      client: c.client,
      source: c.source,
      admin: c.admin,
      classes: Object.fromEntries(c.classes.map((k) => [k.class, {
        reach: k.routes.length,
        refused: k.refused.length,
        examples: k.routes.slice(0, EXAMPLES).map((r) => `${r.method} ${r.template}`),
      }])),
      warnings: c.classes.filter((k) => WARN_CLASSES.includes(k.class) && k.routes.length > 0).map((k) => k.class),
    })),
  };
}
