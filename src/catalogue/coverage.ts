// What a rule reaches in GitLab's route table: the catalogue routes it covers, the risk
// classes of what a client may reach, and the nearest real route for a rule that reaches
// none (a typo such as ".../wiki" for ".../wikis"). Pure; `check` and `explain --rule` use it.
import type { Rule, Segment } from '../policy/rule.ts';
import { getCatalogue, CATALOGUE_SOURCE, type Route, type TemplateSegment } from './catalogue.ts';
import { RISK_CLASSES, type RiskClass } from './classes.ts';

/** Routes under /api/v4 (the only surface rules name). */
let apiRoutes: readonly Route[] | undefined;
const API_ROUTES = (): readonly Route[] => (apiRoutes ??= getCatalogue().routes.filter((r) => r.template.startsWith('/api/v4/') && !r.template.startsWith('/api/v4/internal/')));

/** The catalogue routes `rule` allows (methods and path); constraints are not looked at. */
export function routesOfRule(rule: Rule): Route[] {
  return API_ROUTES().filter((r) => rule.methods.has(r.method as never) && covers(rule.segments, 0, r.segments, 0));
}

/** Whether the rule's path segments from `i` cover the template's segments from `j`. */
function covers(rule: readonly Segment[], i: number, tpl: readonly TemplateSegment[], j: number): boolean {
  if (i === rule.length) return j === tpl.length;
  const r = rule[i]!;
  if (r.kind === 'globstar') return true;
  if (j === tpl.length) return false;
  const t = tpl[j]!;
  if (t.kind === 'splat') {
    // A splat takes one or more request segments: the rule's next segments, any number.
    for (let k = i + 1; k <= rule.length; k++) if (covers(rule, k, tpl, j + 1)) return true;
    return false;
  }
  if (!segmentCovers(r, t, i === rule.length - 1 && j === tpl.length - 1)) return false;
  return covers(rule, i + 1, tpl, j + 1);
}

/** Rule parameters the proxy accepts only as a number or an encoded full path (evaluate.ts),
 *  so they never stand for a route word ("/projects/:id/x" does not reach "/projects/user/x"). */
const ID_PARAMS = new Set(['id', 'project_id', 'group_id']);
const isIidParam = (name: string): boolean => name === 'iid' || name.endsWith('_iid');

function segmentCovers(r: Exclude<Segment, { kind: 'globstar' }>, t: Exclude<TemplateSegment, { kind: 'splat' }>, last: boolean): boolean {
  if (r.kind === 'param' && t.kind === 'literal' && (ID_PARAMS.has(r.name) || isIidParam(r.name))) return /^[0-9]+$/.test(t.value);
  if (r.kind !== 'literal') return true;
  const value = decode(r.value);
  if (t.kind === 'param') return true;
  if (t.kind === 'affix') return value.length > t.prefix.length + t.suffix.length && value.startsWith(t.prefix) && value.endsWith(t.suffix);
  // Grape reads a trailing ".json" as the format (grape lib/grape/path.rb).
  return t.value === value || (last && value === `${t.value}.json`);
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export interface ClassReach {
  class: RiskClass;
  /** Routes the client's rules reach in this class and the floor lets through. */
  routes: Route[];
  /** Routes its rules name but the floor refuses (credential always, admin without admin: true). */
  refused: Route[];
}

/** Per class, what a client's rules reach. */
export function reachOf(rules: readonly Rule[], admin: boolean): ClassReach[] {
  const reached = new Set<Route>();
  for (const rule of rules) for (const r of routesOfRule(rule)) reached.add(r);
  return RISK_CLASSES.map((cls) => {
    const all = API_ROUTES().filter((r) => r.class === cls && reached.has(r));
    const floor = cls === 'credential' || (cls === 'admin' && !admin);
    return { class: cls, routes: floor ? [] : all, refused: floor ? all : [] };
  });
}

/** Classes `check` warns about when a client may reach them. */
export const WARN_CLASSES: readonly RiskClass[] = ['admin', 'destructive', 'membership', 'exfiltration'];

/** The route whose template is closest to the rule's path (edit distance), for a typo. */
export function nearestRoute(rule: Rule): Route | undefined {
  const path = rule.text.slice(rule.text.indexOf(' ') + 1);
  let best: Route | undefined;
  let bestDistance = Infinity;
  const methods = rule.methods;
  for (const r of API_ROUTES()) {
    const d = distance(path, r.template) + (methods.has(r.method as never) ? 0 : 2);
    if (d < bestDistance) {
      best = r;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance, two rows. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  let cur = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length]!;
}

/** A problem for each rule that reaches no GitLab route, with the nearest real one. */
export function unknownRouteProblems(rules: readonly Rule[]): { rule: Rule; message: string }[] {
  const out: { rule: Rule; message: string }[] = [];
  for (const rule of rules) {
    if (routesOfRule(rule).length > 0) continue;
    const near = nearestRoute(rule);
    out.push({ rule, message: `"${rule.text}" matches no GitLab route in GitLab ${CATALOGUE_SOURCE.gitlab}${near ? `; nearest: ${near.method} ${near.template}` : ''}` });
  }
  return out;
}

/** One line for a preset's header and the README: "read 20, write 9, exfiltration 2;
 *  credential 0, admin 0" (routes reached per class; the floor classes always shown). */
export function classSummary(rules: readonly Rule[]): string {
  const reach = reachOf(rules, true);
  const n = (cls: RiskClass): number => reach.find((k) => k.class === cls)!.routes.length + reach.find((k) => k.class === cls)!.refused.length;
  const granted = RISK_CLASSES.filter((c) => c !== 'credential' && c !== 'admin' && n(c) > 0).map((c) => `${c} ${n(c)}`);
  return `${granted.join(', ')}; credential ${n('credential')}, admin ${n('admin')}`;
}
