// The second half of authorization, after the path and method found their rules
// (src/decision/path.ts) and the body was read: object rules' constraints, the client's and
// the rule's project/group scope, and which list answers must be filtered. Async because
// scope asks GitLab who a project or group is (src/scope/scope.ts).
import { bodyFields, constraintFailure, targetFailure, type ConstraintInput, type Failure } from '../policy/constraints.ts';
import type { Client, Match, Method, Rule } from '../types.ts';
import type { Param } from '../request/query.ts';
import { quickActionFields, quickActionProblem, quickActionTargets, requestQuickActions } from '../request/quick-actions.ts';
import { referencedTargets } from './references.ts';
import { matchesScope, targetOf, type ScopeKind, type ScopePattern, type ScopeResolver, type ScopeTarget } from './scope.ts';

export interface EnforceInput {
  method: Method;
  /** Every routing of the path, as sent first (src/request/route.ts): scope and list
   *  filtering read all of them, so "/projects.json" is filtered like "/projects". */
  readings: readonly (readonly string[])[];
  query: readonly Param[];
  body: Buffer;
  contentType: string | undefined;
  mediaType: string | undefined;
}

export type Verdict =
  | {
      allow: true;
      /** The rule that allowed it (the first whose constraints pass), if any. */
      rule: Rule | undefined;
      /** What scope decided, for the audit line's detail; undefined when scope played no part. */
      note: string | undefined;
      /** Keeps an item of a list answer (GET /projects, /groups...); undefined: no filtering. */
      listFilter: ((item: unknown) => boolean) | undefined;
    }
  | { allow: false; reason: Failure['reason']; detail: string; rule: Rule | undefined };

/** A project or group the request names: `ref` is a numeric id or a decoded full path.
 *  Parameters (src/scope/references.ts) may also name a namespace (checked against
 *  `groups:`) or a URL (never resolvable); `via` is the parameter. */
export interface NamedTarget {
  kind: ScopeKind | 'namespace' | 'url';
  ref: string;
  via?: string | undefined;
}

const NUMERIC = /^[1-9][0-9]{0,15}$/;

const decodeOnce = (segment: string): string | undefined => {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
};

/**
 * The projects and groups a request names: the segment after /projects/ or /groups/ (where
 * GitLab's API reads :id, lib/api/helpers.rb find_project!/find_group!), whatever rule
 * matched (a `**` or `*` rule names no parameter), and the rule's :project_id / :group_id.
 */
export function namedTargets(segments: readonly string[], params: Record<string, string>, out: NamedTarget[] = []): NamedTarget[] {
  const add = (kind: NamedTarget['kind'], raw: string | undefined): void => {
    if (raw === undefined) return;
    const ref = decodeOnce(raw) ?? raw;
    if (!out.some((t) => t.kind === kind && t.ref === ref)) out.push({ kind, ref });
  };
  const area = decodeOnce(segments[2] ?? '');
  if (area === 'projects') add('project', segments[3]);
  if (area === 'groups') add('group', segments[3]);
  // A namespace by id or path is a group or a user (lib/api/namespaces.rb find_namespace!).
  if (area === 'namespaces') add('namespace', segments[3]);
  for (const [name, value] of Object.entries(params)) {
    if (name === 'project_id') add('project', value);
    if (name === 'group_id') add('group', value);
  }
  return out;
}

/**
 * The projects and groups named by every reading of the path: the rule's parameters for the
 * path as sent, and the same rule's parameters for each format-suffix reading.
 */
export function routeTargets(client: Client, method: Method, readings: readonly (readonly string[])[], match: Match | undefined): NamedTarget[] {
  const out: NamedTarget[] = [];
  readings.forEach((segments, i) => {
    const params = i === 0 ? match?.params : match && client.matcher.matchAll(method, segments).find((m) => m.rule === match.rule)?.params;
    namedTargets(segments, params ?? {}, out);
  });
  return out;
}

/** Top-level GET collections that answer with data of any project or group the proxy's user
 *  can see (docs: "Issues API" list issues, "Merge requests API", "Search API", "Events API",
 *  "Namespaces API", "To-Do List API", "Snippets API"): the proxy cannot filter them to a
 *  client's projects:/groups:, so a scoped client is refused them. */
const CROSS_PROJECT_LISTS = new Set(['issues', 'issues_statistics', 'merge_requests', 'search', 'events', 'namespaces', 'todos', 'snippets']);

export function crossProjectList(method: Method, readings: readonly (readonly string[])[]): string | undefined {
  if (method !== 'GET' && method !== 'HEAD') return undefined;
  for (const segments of readings) {
    const area = decodeOnce(segments[2] ?? '');
    if (area !== undefined && CROSS_PROJECT_LISTS.has(area) && (segments.length === 3 || area === 'snippets')) return area;
  }
  return undefined;
}

/** The list kind of the first reading that is a list (GET /projects.json is GET /projects). */
export function routeListKind(method: Method, readings: readonly (readonly string[])[]): ScopeKind | undefined {
  for (const segments of readings) {
    const kind = listKind(method, segments);
    if (kind) return kind;
  }
  return undefined;
}

/**
 * GET endpoints whose answer is a JSON array of projects or groups, filtered item by item
 * for a scoped client (docs "Projects API" list projects, "Groups API" list groups,
 * subgroups, descendant groups, group projects, shared projects/groups, "Users API" user
 * projects, starred and contributed projects, "Forks" list forks).
 */
export function listKind(method: Method, segments: readonly string[]): ScopeKind | undefined {
  if (method !== 'GET' && method !== 'HEAD') return undefined;
  const s = segments.slice(2).map((x) => decodeOnce(x) ?? x);
  const [a, , c, d] = s;
  if (s.length === 1 && a === 'projects') return 'project';
  if (s.length === 1 && a === 'groups') return 'group';
  if (a === 'groups' && s.length === 3 && c === 'projects') return 'project';
  if (a === 'groups' && s.length === 3 && (c === 'subgroups' || c === 'descendant_groups')) return 'group';
  if (a === 'groups' && s.length === 4 && c === 'projects' && d === 'shared') return 'project';
  if (a === 'groups' && s.length === 4 && c === 'groups' && d === 'shared') return 'group';
  if (a === 'users' && s.length === 3 && (c === 'projects' || c === 'starred_projects' || c === 'contributed_projects')) return 'project';
  if (a === 'projects' && s.length === 3 && c === 'forks') return 'project';
  return undefined;
}

/** Decides what the path allowed (`match`, undefined for report mode's forwards and rules
 *  the proxy grants itself) once the body is known. */
export async function enforce(
  client: Client,
  match: Match | undefined,
  input: EnforceInput,
  resolver: ScopeResolver | undefined,
): Promise<Verdict> {
  let body: ReturnType<typeof bodyFields> | null = null;
  const cInput: ConstraintInput = {
    query: input.query,
    body: () => (body === null ? (body = bodyFields(input.body, input.contentType, input.mediaType)) : body),
  };
  // Quick actions in notes and descriptions (src/request/quick-actions.ts): each must be
  // named by the rule that allows the request.
  const actions = requestQuickActions(input.method, input.readings, input.query, cInput.body);
  const hasActions = actions === 'unreadable' || actions.length > 0;
  // Candidates: the rule the path found, or, when that one has constraints (or the text has
  // quick actions another rule may allow), every rule that matches the path and method, most
  // specific first; the first that passes decides.
  const primary = match?.rule;
  let candidates: Match[] = [];
  if (match) {
    candidates = match.rule.constraints || hasActions ? client.matcher.matchAll(input.method, input.readings[0]!) : [match];
    if (candidates.length === 0) candidates = [match];
  }
  const resolved = new Map<string, ScopeTarget | null>();
  const resolve = async (kind: ScopeKind, ref: string): Promise<ScopeTarget | null> => {
    const key = `${kind}:${ref}`;
    if (!resolved.has(key)) resolved.set(key, resolver ? await resolver.resolve(kind, ref) : null);
    return resolved.get(key)!;
  };
  const projectList = routeListKind(input.method, input.readings) === 'project';
  const scopeProblem = async (targets: readonly NamedTarget[], lists: { projects?: readonly ScopePattern[] | undefined; groups?: readonly ScopePattern[] | undefined }, whose: string): Promise<Failure | undefined> => {
    for (const t of targets) {
      const via = t.via ? ` (${t.via})` : '';
      if (t.kind === 'url') {
        // An import URL may name a project of this very GitLab; the proxy cannot tell which.
        if (lists.projects || lists.groups) return { reason: 'scope-unresolved', detail: `${t.via ?? 'a URL'} names a URL, which cannot be checked against the scope` };
        continue;
      }
      // A namespace is a group or a user's namespace: a scoped client names only groups of
      // its groups: list (a user namespace never resolves as a group, so it is refused).
      const kind: ScopeKind = t.kind === 'namespace' ? 'group' : t.kind;
      const list = kind === 'project' ? lists.projects : lists.groups;
      if (!list) {
        if (t.kind === 'namespace' && lists.projects) return { reason: 'scope', detail: `namespace ${t.ref}${via} needs ${whose}groups list to name it` };
        // A group's own answer lists its projects (GET /groups/:id has with_projects=true by
        // default: docs "Groups API"), so a client held to projects: names no group itself,
        // except to list its projects, which are filtered to its own.
        if (t.kind === 'group' && lists.projects && whose === '' && !projectList) return { reason: 'scope', detail: `group ${t.ref}${via}: the client has projects: but no groups: list` };
        continue;
      }
      const target = NUMERIC.test(t.ref) || t.ref.includes('/') || kind === 'group' ? await resolve(kind, t.ref) : null;
      if (!target) return { reason: 'scope-unresolved', detail: `${t.kind} ${t.ref}${via} cannot be resolved` };
      if (!matchesScope(list, target)) return { reason: 'scope', detail: `${t.kind} ${target.fullPath}${via} not in ${whose}${kind === 'project' ? 'projects' : 'groups'}` };
    }
    return undefined;
  };

  // Parameters naming another project, group or namespace (src/scope/references.ts).
  const references = referencedTargets(input.method, input.readings, input.query, cInput.body);

  let winner: Match | undefined;
  let firstFailure: { failure: Failure; rule: Rule } | undefined;
  // What scope-bearing commands (/move, /relate other/x#1) name; checked once a rule allows them.
  const actionTargets = actions === 'unreadable' ? [] : quickActionTargets(actions);
  for (const m of candidates) {
    let failure = constraintFailure(m.rule, cInput) ?? quickActionProblem(actions, m.rule.constraints?.quickActions);
    // target: the object's current state, read from GitLab before forwarding.
    if (!failure && m.rule.constraints?.target.size) failure = targetFailure(m.rule, resolver ? await resolver.current('/' + input.readings[0]!.join('/')) : undefined);
    if (!failure && m.rule.constraints) failure = await scopeProblem([...routeTargets(client, input.method, input.readings, m), ...references, ...actionTargets], m.rule.constraints, 'the rule\'s ');
    if (!failure) {
      winner = m;
      break;
    }
    firstFailure ??= { failure, rule: m.rule };
  }
  if (primary && !winner) return { allow: false, ...firstFailure!.failure, rule: firstFailure!.rule };
  // Report mode forwards a request no rule names: no rule names a quick action either.
  const unruled = winner ? undefined : quickActionProblem(actions, undefined);
  if (unruled) return { allow: false, ...unruled, rule: undefined };

  // Lists across every project the proxy's user can see cannot be filtered to a scope.
  const across = client.projects || client.groups ? crossProjectList(input.method, input.readings) : undefined;
  if (across) return { allow: false, reason: 'scope', detail: `GET /api/v4/${across} lists across projects and groups and cannot be held to the client's scope`, rule: winner?.rule };

  // The client's own lists hold whatever rule (or report mode) let the request through.
  const targets = [...routeTargets(client, input.method, input.readings, winner), ...references, ...actionTargets];
  const clientProblem = await scopeProblem(targets, client, '');
  if (clientProblem) return { allow: false, ...clientProblem, rule: winner?.rule };

  let note: string | undefined;
  const scoped = targets.filter((t) => t.kind !== 'url' && ((t.kind === 'project' ? client.projects : client.groups) || (t.kind === 'project' ? winner?.rule.constraints?.projects : winner?.rule.constraints?.groups)));
  if (scoped.length > 0) {
    const name = (t: NamedTarget): string => resolved.get(`${t.kind === 'namespace' ? 'group' : t.kind}:${t.ref}`)?.fullPath ?? t.ref;
    note = scoped.map((t) => `${t.kind} ${name(t)}${t.via ? ` (${t.via})` : ''}`).join(', ') + ' in scope';
  }
  const kind = routeListKind(input.method, input.readings);
  let listFilter: ((item: unknown) => boolean) | undefined;
  if (kind) {
    const lists = [kind === 'project' ? client.projects : client.groups, kind === 'project' ? winner?.rule.constraints?.projects : winner?.rule.constraints?.groups]
      .filter((l): l is readonly ScopePattern[] => l !== undefined);
    if (lists.length > 0) {
      listFilter = (item) => {
        const target = targetOf(kind, item);
        return target !== null && lists.every((l) => matchesScope(l, target));
      };
      note = `${note ? `${note}; ` : ''}${kind} list filtered to ${kind === 'project' ? 'projects' : 'groups'}`;
    }
  }
  return { allow: true, rule: winner?.rule ?? primary, note, listFilter };
}

/** Whether anything here can apply to this client at all (most clients: no, and the
 *  decision skips the async step). */
export function needsEnforcement(client: Client, match: Match | undefined, method: Method, readings: readonly (readonly string[])[]): boolean {
  // A most specific rule without constraints passes on its own: other rules need not be tried.
  return client.projects !== undefined || client.groups !== undefined || match?.rule.constraints !== undefined
    // A note or description may carry quick actions, whoever the client is.
    || quickActionFields(method, readings).length > 0;
}
