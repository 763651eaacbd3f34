// What `explain` can say offline about constraints and scope. It never calls GitLab: a full
// path is matched against path patterns and an id against id patterns; anything else (an id
// against a path pattern, a renamed project's old path) is reported as not checked offline.
import { describeConstraints } from '../policy/constraints.ts';
import type { Decision } from '../policy/evaluate.ts';
import type { Client } from '../types.ts';
import type { Method } from '../policy/rule.ts';
import { listKind, namedTargets } from './enforce.ts';
import type { ScopePattern } from './scope.ts';

export function offlineNotes(client: Client, decision: Decision, method: Method, segments: readonly string[]): string[] {
  if (!decision.allow) return [];
  const notes: string[] = [];
  const rule = decision.rule;
  if (rule?.constraints) {
    const others = client.matcher.matchAll(method, segments).filter((m) => m.rule !== rule).length;
    const what = describeConstraints(rule);
    notes.push(`constraints checked per request: ${what ?? 'none'}${others ? `; ${others} more rule(s) match if these fail` : ''}`);
  }
  for (const t of namedTargets(segments, decision.params)) {
    const lists: [string, readonly ScopePattern[] | undefined][] = [
      [t.kind === 'project' ? 'projects' : 'groups', t.kind === 'project' ? client.projects : client.groups],
      [t.kind === 'project' ? 'the rule\'s projects' : 'the rule\'s groups', t.kind === 'project' ? rule?.constraints?.projects : rule?.constraints?.groups],
    ];
    for (const [name, list] of lists) {
      if (!list) continue;
      const numeric = /^[0-9]+$/.test(t.ref);
      const hit = list.find((p) => (numeric ? p.kind === 'id' && String(p.id) === t.ref : p.kind === 'path' && pathMatches(p.parts, t.ref.toLowerCase().split('/'))));
      notes.push(hit ? `scope: ${t.kind} ${t.ref} matches ${hit.text} in ${name}` : `scope not checked offline: ${t.kind} ${t.ref} against ${name} [${list.map((p) => p.text).join(', ')}] (GitLab resolves ids and renamed paths)`);
    }
  }
  const kind = listKind(method, segments);
  if (kind && (kind === 'project' ? client.projects ?? rule?.constraints?.projects : client.groups ?? rule?.constraints?.groups)) {
    notes.push(`the answer is filtered to in-scope ${kind}s`);
  }
  return notes;
}

function pathMatches(pat: readonly string[], segs: readonly string[], i = 0, j = 0): boolean {
  for (; i < pat.length; i++, j++) {
    if (pat[i] === '**') {
      for (let k = j; k <= segs.length; k++) if (pathMatches(pat, segs, i + 1, k)) return true;
      return false;
    }
    if (j >= segs.length || (pat[i] !== '*' && pat[i] !== segs[j])) return false;
  }
  return j === segs.length;
}
