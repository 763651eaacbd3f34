// Quick actions: GitLab runs "/merge", "/approve", "/close", "/move other/project"... written
// in a note, or in an issue's, merge request's or epic's description (create and update),
// also when they come through the API. A rule that allows creating a note must not let its
// text merge, approve or move, so a request whose text GitLab would read as quick actions is
// refused unless the rule names each command (`quick_actions: [label, assign]`); commands
// whose arguments name a project or group obey the scope (src/scope/enforce.ts).
//
// GitLab's reading (lib/gitlab/quick_actions/extractor.rb): "\r" is deleted; a command is a
// line that starts with "/" and a known command name (case-insensitive), then a space and
// arguments or the end of the line; lines inside code blocks, HTML blocks and ">>>" quotes
// are skipped (newer versions find the paragraphs with a Markdown pipeline,
// Banzai::Pipeline::QuickActionPipeline). The proxy reads a superset, so that no spelling
// GitLab runs can pass unseen: every line (split on "\n", and on "\r" as well) that starts,
// after any white space, with "/" and a name followed by white space or the end of the line,
// wherever it is (also in code blocks and quotes). Names are compared after NFKC and
// lower-casing, as Ruby's case-insensitive matching folds "ſ" to "s" and "K" (Kelvin) to "k",
// against every name GitLab documents (quick-actions.json "commands"): a name GitLab does not
// define runs nothing, and vendors use such lines themselves ("/packit build").
import type { Method } from '../types.ts';
import data from './quick-actions.json' with { type: 'json' };
import { rackBase, type Param } from './query.ts';
import { specTemplate } from './route.ts';

export interface QuickAction {
  /** Normalized command name, without "/". */
  name: string;
  arg: string;
}

/** What a scope-bearing command names (kinds as in src/scope/references.ts). */
export interface QuickActionTarget {
  kind: 'project' | 'group' | 'url';
  ref: string;
  via: string;
}

export interface QuickActionEndpoint {
  method: string;
  path: string;
  field: string;
  why: string;
}

export const QUICK_ACTION_ENDPOINTS = data.endpoints as readonly QuickActionEndpoint[];
const SCOPE_BEARING = data.scopeBearing as Readonly<Record<string, 'project' | 'references'>>;
const COMMANDS: ReadonlySet<string> = new Set(data.commands);

/** The endpoints by method: asked on every request, and most requests are reads, which
 *  carry no text to act on. */
const ROUTES = new Map<string, { regex: RegExp; field: string }[]>();
for (const e of QUICK_ACTION_ENDPOINTS) {
  let list = ROUTES.get(e.method);
  if (!list) ROUTES.set(e.method, (list = []));
  list.push({ regex: specTemplate(e.path).regex, field: e.field });
}
const NO_FIELDS: string[] = [];

/** The text fields GitLab reads quick actions from on this route (any reading). */
export function quickActionFields(method: Method, readings: readonly (readonly string[])[]): string[] {
  const routes = ROUTES.get(method);
  if (!routes) return NO_FIELDS;
  const fields = new Set<string>();
  for (const segments of readings) {
    const path = `/${segments.join('/')}`;
    for (const r of routes) if (r.regex.test(path)) fields.add(r.field);
  }
  return [...fields];
}

const COMMAND = /^\s*\/([^\s/]+)(?:[ \t\f\v\u00a0\u2000-\u200a\u3000]+(.*))?\s*$/u;

/** Every line GitLab could read as a quick action, in order. */
export function findQuickActions(text: string): QuickAction[] {
  const out: QuickAction[] = [];
  const lines = new Set([...text.replace(/\r/g, '').split('\n'), ...text.split(/\r\n|\r|\n/)]);
  for (const line of lines) {
    const m = COMMAND.exec(line);
    const name = m?.[1]!.normalize('NFKC').toLowerCase();
    if (name !== undefined && COMMANDS.has(name)) out.push({ name, arg: (m![2] ?? '').trim() });
  }
  return out;
}

/** Every string inside a parameter value (a JSON value may nest them). */
function strings(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) strings(v, out);
  else if (value !== null && typeof value === 'object') for (const v of Object.values(value)) strings(v, out);
  return out;
}

/**
 * The quick actions in the request's quick-action fields (query and body: Grape merges them),
 * or `unreadable` when such a route's body cannot be read.
 */
export function requestQuickActions(
  method: Method,
  readings: readonly (readonly string[])[],
  query: readonly Param[],
  body: () => { entries: readonly { key: string; value: unknown }[] } | undefined,
): QuickAction[] | 'unreadable' {
  const fields = quickActionFields(method, readings);
  if (fields.length === 0) return [];
  const texts: string[] = query.filter((p) => fields.includes(p.base)).map((p) => p.value);
  const parsed = body();
  if (!parsed) return 'unreadable';
  for (const { key, value } of parsed.entries) if (fields.includes(rackBase(key))) strings(value, texts);
  return texts.flatMap(findQuickActions);
}

/** Why these quick actions are refused under a rule allowing `allowed`, or undefined. */
export function quickActionProblem(actions: readonly QuickAction[] | 'unreadable', allowed: readonly string[] | undefined): { reason: 'quick-actions'; detail: string } | undefined {
  if (actions === 'unreadable') return { reason: 'quick-actions', detail: 'the body cannot be read for quick actions' };
  const refused = actions.find((a) => !allowed?.includes(a.name));
  return refused ? { reason: 'quick-actions', detail: `/${refused.name} not allowed` } : undefined;
}

const PATH = '[A-Za-z0-9_][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.-]*)*';
const REFERENCE = new RegExp(`^(${PATH})?([#!&%*^~$]|\\[)`);

/**
 * The projects and groups that allowed scope-bearing commands name: "/move group/project",
 * "/clone other/x --with_notes", "/relate other/x#12 #3", "/epic group&4". A local
 * reference ("#12", "&4") names nothing new; a URL or an argument that is not a reference
 * becomes an unresolvable target, so a scoped client is refused.
 */
export function quickActionTargets(actions: readonly QuickAction[]): QuickActionTarget[] {
  const out: QuickActionTarget[] = [];
  for (const a of actions) {
    const shape = SCOPE_BEARING[a.name];
    if (!shape) continue;
    const via = `/${a.name}`;
    const tokens = a.arg.split(/[\s,]+/).filter((t) => t !== '' && !t.startsWith('--'));
    if (shape === 'project') {
      out.push({ kind: 'project', ref: tokens[0] ?? '', via });
      continue;
    }
    for (const token of tokens) {
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(token)) {
        out.push({ kind: 'url', ref: token, via });
        continue;
      }
      const m = REFERENCE.exec(token);
      if (!m) {
        // Not a reference the proxy can read: unresolvable.
        out.push({ kind: 'project', ref: `(${token})`, via });
        continue;
      }
      if (m[1] === undefined) continue; // local: "#12", "!3", "&4", "%v1"
      out.push({ kind: m[2] === '&' ? 'group' : 'project', ref: m[1], via });
    }
  }
  return out;
}
