// Parameters that name another project, group or namespace: `from_project_id` on
// repository/compare, `target_project_id` on merge request creation, `to_project_id` on an
// issue move, `namespace` on a fork or transfer, `group_id` on a share... (the reviewed list
// with its GitLab source: src/scope/reference-params.json). A scoped client may name in them
// only what its scope allows: src/scope/enforce.ts checks these targets like the path's.
//
// GitLab merges the query and the body into one `params` (Grape), so a body parameter is
// read from the query too and the other way round, whatever the spec says it is. Names are
// compared by their Rack base name, case-insensitively (stricter than Grape, which is
// case-sensitive). A value is a numeric id or a full path; anything else (an object, a
// boolean, "007", " 5", a number JavaScript cannot hold exactly) becomes a reference the
// resolver cannot resolve, and is refused: GitLab's Integer coercion reads "007" and " 5" as 7
// and 5, which the proxy would otherwise not have checked.
import type { Method } from '../types.ts';
import { rackBase, type Param } from '../request/query.ts';
import { specTemplate } from '../request/route.ts';
import data from './reference-params.json' with { type: 'json' };

export type ReferenceKind = 'project' | 'group' | 'namespace' | 'url';

export interface ReferenceEntry {
  method: string;
  /** The spec's path template: "/api/v4/projects/{id}/issues/{issue_iid}/move". */
  path: string;
  param: string;
  in: string;
  kind: ReferenceKind;
  why: string;
}

/** A project, group or namespace a parameter names: `ref` a numeric id or decoded full path
 *  (or, for `url`, the URL), `via` the parameter. */
export interface ReferenceTarget {
  kind: ReferenceKind;
  ref: string;
  via: string;
}

interface CompiledRoute {
  methods: ReadonlySet<string>;
  regex: RegExp;
  /** Names of the template's {captures}, in order. */
  captures: readonly string[];
  /** Reference parameters of this route: path captures and query/body names (lower case). */
  params: ReadonlyMap<string, { kind: ReferenceKind; inPath: boolean }>;
}

export const REFERENCE_ENTRIES = data.references as readonly ReferenceEntry[];

const ROUTES: readonly CompiledRoute[] = (() => {
  const byRoute = new Map<string, { entries: ReferenceEntry[] }>();
  for (const e of REFERENCE_ENTRIES) {
    const key = `${e.method} ${e.path}`;
    const slot = byRoute.get(key) ?? { entries: [] };
    slot.entries.push(e);
    byRoute.set(key, slot);
  }
  return [...byRoute.values()].map(({ entries }) => {
    const { regex, captures } = specTemplate(entries[0]!.path);
    const method = entries[0]!.method;
    return {
      methods: new Set(method === 'GET' ? ['GET', 'HEAD'] : [method]),
      regex,
      captures,
      params: new Map(entries.map((e) => [e.param.toLowerCase(), { kind: e.kind, inPath: e.in === 'path' }])),
    };
  });
})();

const decodeOnce = (s: string): string => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

/** The reference parameters a route takes (for `explain`). */
export function referenceParamsOf(method: Method, readings: readonly (readonly string[])[]): string[] {
  const names = new Set<string>();
  for (const segments of readings) {
    const path = `/${segments.join('/')}`;
    for (const route of ROUTES) if (route.methods.has(method) && route.regex.test(path)) for (const name of route.params.keys()) names.add(name);
  }
  return [...names];
}

/** How a parameter value is named: a string as sent, a safe whole number as its digits. */
function refOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  // Objects, booleans, null, fractions, numbers beyond 2^53: nothing the resolver resolves.
  return `(${typeof value})`;
}

/**
 * Every project, group, namespace or URL that the request's parameters name, for every
 * reading of its path (src/request/route.ts). `body` is the parsed body, or undefined when it
 * cannot be parsed: then any reference parameter the route may take makes one unresolvable
 * target, so a scoped client is refused.
 */
export function referencedTargets(
  method: Method,
  readings: readonly (readonly string[])[],
  query: readonly Param[],
  body: () => { entries: readonly { key: string; value: unknown }[] } | undefined,
): ReferenceTarget[] {
  const out: ReferenceTarget[] = [];
  const add = (kind: ReferenceKind, value: unknown, via: string): void => {
    const ref = refOf(value);
    if (!out.some((t) => t.kind === kind && t.ref === ref && t.via === via)) out.push({ kind, ref, via });
  };
  for (const segments of readings) {
    const path = `/${segments.join('/')}`;
    for (const route of ROUTES) {
      if (!route.methods.has(method)) continue;
      const m = route.regex.exec(path);
      if (!m) continue;
      route.captures.forEach((name, i) => {
        const p = route.params.get(name.toLowerCase());
        if (p?.inPath) add(p.kind, decodeOnce(m[i + 1]!), name);
      });
      for (const q of query) {
        const p = route.params.get(q.base);
        if (p && !p.inPath) add(p.kind, q.value, q.base);
      }
      const wanted = [...route.params].filter(([, p]) => !p.inPath);
      if (wanted.length === 0) continue;
      const fields = body();
      if (!fields) {
        add(wanted[0]![1].kind, undefined, `${wanted[0]![0]} (unreadable body)`);
        continue;
      }
      for (const { key, value } of fields.entries) {
        const base = rackBase(key);
        const p = route.params.get(base);
        if (!p || p.inPath) continue;
        if (Array.isArray(value)) for (const v of value) add(p.kind, v, base);
        else add(p.kind, value, base);
      }
    }
  }
  return out;
}
