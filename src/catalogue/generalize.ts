// `learn`'s generalisation from GitLab's route table: a concrete request path becomes the
// template of the GitLab route it reaches, written as a rule path, with that route's risk
// class. Routes of the floor (credential; admin) are reported, never proposed.
import { getCatalogue, CLASS_BITS, type Route } from './catalogue.ts';
import type { RiskClass } from './classes.ts';

export type Generalized =
  | { kind: 'rule'; path: string; class: RiskClass; route: Route }
  | { kind: 'floor'; route: Route }
  | { kind: 'unknown' };

const PARAM = /^[a-z_][a-z0-9_]*$/;

/** The rule path for `method path` (raw, "/api/v4/..."), from the route it reaches. */
export function generalizeToRoute(method: string, path: string): Generalized {
  const segments = path.slice(1).split('/');
  const last = segments[segments.length - 1] ?? '';
  const alias = /(?:\.|%2[Ee])json$/.test(last) ? [...segments.slice(0, -1), last.replace(/(?:\.|%2[Ee])json$/, '')] : undefined;
  const mask = getCatalogue().classesOf(method, segments) | (alias ? getCatalogue().classesOf(method, alias) : 0);
  const route = getCatalogue().routeOf(method, segments) ?? (alias ? getCatalogue().routeOf(method, alias) : undefined);
  if (!route) return { kind: 'unknown' };
  if (mask & CLASS_BITS.credential || mask & CLASS_BITS.admin) {
    return { kind: 'floor', route: getCatalogue().routeWith(method, segments, CLASS_BITS.credential | CLASS_BITS.admin) ?? (alias ? getCatalogue().routeWith(method, alias, CLASS_BITS.credential | CLASS_BITS.admin) : undefined) ?? route };
  }
  const parts: string[] = [];
  for (const [i, seg] of route.segments.entries()) {
    if (seg.kind === 'literal') parts.push(seg.value);
    else if (seg.kind === 'param' && PARAM.test(seg.name)) parts.push(`:${ruleParamName(route, i, seg.name)}`);
    else return { kind: 'unknown' }; // a splat or a segment with fixed text: no rule segment says it
  }
  return { kind: 'rule', path: '/' + parts.join('/'), class: route.class, route };
}

/** GitLab names a merge request's or issue's iid "noteable_id" or "awardable_id" in some
 *  routes; as ":iid" the proxy checks it is a number (evaluate.ts). */
function ruleParamName(route: Route, index: number, name: string): string {
  const before = route.segments[index - 1];
  return before?.kind === 'literal' && (before.value === 'merge_requests' || before.value === 'issues') ? 'iid' : name;
}
