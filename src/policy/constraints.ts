// Object rules: a rule written as a map instead of "METHODS PATH", which may also constrain
// the request's query and body, refuse body keys outright, and narrow the projects and
// groups it applies to:
//
//   - method: POST
//     path: /api/v4/projects/:id/hooks
//     body: { url: { pattern: "^https://hooks\\.glean\\.example/" }, push_events: [true, false] }
//     query: { scope: created_by_me }
//     deny_fields: [sudo, admin]
//     projects: ["acme/platform/*"]
//     quick_actions: [label, assign]   # commands its notes/descriptions may run (src/request/quick-actions.ts)
//
// A constraint is a literal (exact match), a list (one of) or { pattern: REGEX } (the author
// anchors it). Parsing is pure; checking a request is pure and synchronous (scope, which asks
// GitLab, is src/scope/enforce.ts).
import { ProxyError } from '../errors.ts';
import { parseJsonStrict } from '../request/json.ts';
import { multipartFieldNames } from '../request/multipart.ts';
import { parseParams, rackBase, type Param } from '../request/query.ts';
import { parseScopePattern, ScopePatternError } from './scope-pattern.ts';
import { parseRule, RuleSyntaxError } from './rule.ts';
import type { Constraint, Literal, Reason, Rule, RuleConstraints, ScopePattern } from '../types.ts';
import { isUnder, pinProblem } from './url-under.ts';

export type { Constraint, Literal, RuleConstraints };
import { unknownKeyMessage } from './suggest.ts';




/** A rule problem at a place inside the rule's map (for `check`'s file:line:col). */
export class RuleKeyError extends RuleSyntaxError {
  readonly keyPath: readonly PropertyKey[];
  constructor(keyPath: readonly PropertyKey[], message: string) {
    super(message);
    this.keyPath = keyPath;
  }
}

const FIELD = /^[A-Za-z0-9_.-]{1,100}$/;
const OBJECT_RULE_KEYS = new Set(['method', 'path', 'body', 'query', 'deny_fields', 'projects', 'groups', 'target', 'quick_actions']);
const QUICK_ACTION = /^[a-z][a-z0-9_]{0,63}$/;

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date);

/** True when a rule has anything beyond its methods and path. */
export function isConstrained(rule: Rule): boolean {
  return rule.constraints !== undefined;
}

/** Compiles an object rule; throws RuleSyntaxError (RuleKeyError with where) on a mistake. */
export function parseObjectRule(spec: unknown, source: string): Rule {
  if (!isRecord(spec)) throw new RuleSyntaxError('a rule is "METHODS PATH" or a map with method: and path:');
  for (const key of Object.keys(spec)) {
    if (!OBJECT_RULE_KEYS.has(key)) throw new RuleKeyError([key], unknownKeyMessage(key, OBJECT_RULE_KEYS, ` in a rule (${[...OBJECT_RULE_KEYS].join(', ')})`));
  }
  const method = spec.method;
  let methods: string;
  if (typeof method === 'string') methods = method.split(',').map((m) => m.trim()).join(',');
  else if (Array.isArray(method) && method.length > 0 && method.every((m) => typeof m === 'string')) methods = (method as string[]).join(',');
  else throw new RuleKeyError(['method'], 'method is a method ("POST"), a list ([GET, POST]) or a comma string ("GET,POST")');
  if (typeof spec.path !== 'string') throw new RuleKeyError(['path'], 'path is required: "/api/v4/..."');
  let rule: Rule;
  try {
    rule = parseRule(`${methods} ${spec.path}`, source);
  } catch (err) {
    if (!(err instanceof RuleSyntaxError)) throw err;
    throw new RuleKeyError([/method/.test(err.message) ? 'method' : 'path'], err.message);
  }
  const constraints: RuleConstraints = {
    body: constraintMap(spec.body, 'body'),
    query: constraintMap(spec.query, 'query'),
    denyFields: denyFields(spec.deny_fields),
    projects: scopeList(spec.projects, 'projects'),
    groups: scopeList(spec.groups, 'groups'),
    target: constraintMap(spec.target, 'target'),
    quickActions: quickActions(spec.quick_actions),
  };
  if (constraints.target.size > 0 && ![...rule.methods].every((m) => m !== 'POST')) {
    // POST creates: there is no current object to read.
    throw new RuleKeyError(['target'], 'target: checks an existing object: use it with GET, PUT, PATCH or DELETE, not POST');
  }
  return { ...rule, constraints };
}

function constraintMap(value: unknown, key: 'body' | 'query' | 'target'): Map<string, Constraint> {
  const out = new Map<string, Constraint>();
  if (value === undefined) return out;
  if (!isRecord(value)) throw new RuleKeyError([key], `${key} maps field names to a value, a list of values, { pattern: REGEX } or { under: URL }`);
  for (const [field, c] of Object.entries(value)) {
    if (!FIELD.test(field)) throw new RuleKeyError([key, field], `bad field name "${field}" (letters, digits, _ . -)`);
    out.set(field, parseConstraint(c, [key, field]));
  }
  return out;
}

function parseConstraint(value: unknown, at: readonly PropertyKey[]): Constraint {
  if (isLiteral(value)) return { kind: 'literal', value };
  if (Array.isArray(value)) {
    if (value.length === 0) throw new RuleKeyError(at, 'a list of allowed values must not be empty');
    value.forEach((v, i) => {
      if (!isLiteral(v)) throw new RuleKeyError([...at, i], 'a list holds plain values (strings, numbers, true/false, null)');
    });
    return { kind: 'one-of', values: value as Literal[] };
  }
  if (isRecord(value)) {
    const { optional, ...form } = value;
    if (optional !== undefined && typeof optional !== 'boolean') throw new RuleKeyError([...at, 'optional'], 'optional is true or false');
    const keys = Object.keys(form);
    if (keys.length !== 1 || (keys[0] !== 'under' && keys[0] !== 'pattern') || typeof form[keys[0]] !== 'string') {
      throw new RuleKeyError(at, CONSTRAINT_FORMS);
    }
    const opt = optional === true ? { optional: true } : {};
    if (typeof form.under === 'string') {
      const problem = pinProblem(form.under);
      if (problem) throw new RuleKeyError([...at, 'under'], `under: ${problem}`);
      return { kind: 'under', pin: form.under, ...opt };
    }
    const source = form.pattern as string;
    try {
      return { kind: 'pattern', regex: new RegExp(source, 'u'), source, ...opt };
    } catch (err) {
      throw new RuleKeyError([...at, 'pattern'], `invalid regular expression: ${(err as Error).message}`);
    }
  }
  throw new RuleKeyError(at, CONSTRAINT_FORMS);
}

const CONSTRAINT_FORMS = 'a constraint is a value, a list of values, { pattern: REGEX } or { under: URL } (either with optional: true)';

const isLiteral = (v: unknown): v is Literal => v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));

function denyFields(value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new RuleKeyError(['deny_fields'], 'deny_fields is a list of body keys, e.g. [sudo, admin]');
  return value.map((f, i) => {
    if (typeof f !== 'string' || !FIELD.test(f)) throw new RuleKeyError(['deny_fields', i], 'a field name: letters, digits, _ . -');
    return f.toLowerCase();
  });
}

function quickActions(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw new RuleKeyError(['quick_actions'], 'quick_actions is a list of command names without "/", e.g. [label, assign]');
  return value.map((name, i) => {
    if (typeof name !== 'string' || !QUICK_ACTION.test(name)) throw new RuleKeyError(['quick_actions', i], 'a quick action name in lower case without "/": label, assign, ...');
    return name;
  });
}

/** Parses a `projects:` / `groups:` list (a client's or a rule's); undefined when absent. */
export function scopeList(value: unknown, key: 'projects' | 'groups', base: readonly PropertyKey[] = []): ScopePattern[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw new RuleKeyError([...base, key], `${key} is a list of full paths ("acme/platform/*") or numeric ids`);
  return value.map((entry, i) => {
    try {
      return parseScopePattern(entry);
    } catch (err) {
      if (!(err instanceof ScopePatternError)) throw err;
      throw new RuleKeyError([...base, key, i], `${key}: ${err.message}`);
    }
  });
}

// ------------------------------------------------------------------ checking a request

export interface BodyFields {
  /** Top-level fields as sent: key (decoded) and value. */
  entries: readonly { key: string; value: unknown }[];
}

/** What a constraint check needs to know about a request. Body fields are parsed lazily. */
export interface ConstraintInput {
  query: readonly Param[];
  body: () => BodyFields | undefined;
}

/**
 * Parses a request body into its top-level fields, strictly: the same readers as
 * src/request/body.ts (no duplicate JSON keys, Rack's form reading, the strict multipart
 * reader). Undefined when it cannot be read that way. An empty body has no fields.
 */
export function bodyFields(body: Buffer, contentType: string | undefined, mediaType: string | undefined): BodyFields | undefined {
  if (body.length === 0) return { entries: [] };
  try {
    if (mediaType === 'application/json') {
      const value = parseJsonStrict(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(body));
      if (!isRecord(value)) return undefined;
      return { entries: Object.entries(value).map(([key, v]) => ({ key, value: v })) };
    }
    if (mediaType === 'application/x-www-form-urlencoded') {
      return { entries: parseParams(body.toString('latin1'), 'form body').map((p) => ({ key: p.key, value: p.value })) };
    }
    if (mediaType === 'multipart/form-data') return { entries: multipartEntries(body, contentType ?? '') };
  } catch (err) {
    if (err instanceof ProxyError || err instanceof TypeError) return undefined;
    throw err;
  }
  return undefined;
}

/** Multipart fields with their values (UTF-8), after the strict reader accepted the framing. */
function multipartEntries(body: Buffer, contentType: string): { key: string; value: unknown }[] {
  const names = multipartFieldNames(body, contentType);
  const boundary = /boundary=(?:"([^"]*)"|([^";,\s]*))/i.exec(contentType);
  const delimiter = `--${boundary?.[1] ?? boundary?.[2] ?? ''}`;
  const text = body.toString('latin1');
  const end = text.indexOf(`\r\n${delimiter}--`);
  const parts = text.slice(delimiter.length + 2, end).split(`\r\n${delimiter}\r\n`);
  return parts.map((part, i) => ({
    key: names[i]!,
    value: Buffer.from(part.slice(part.indexOf('\r\n\r\n') + 4), 'latin1').toString('utf8'),
  }));
}

/** A refusal's reason and the detail for the audit line. */
export interface Failure {
  reason: Reason;
  detail: string;
}

/** `target:` against the object GitLab returned for the request's own path (undefined: it
 *  could not be read). Pure. */
export function targetFailure(rule: Rule, current: unknown): Failure | undefined {
  const target = rule.constraints?.target;
  if (!target || target.size === 0) return undefined;
  if (current === null || typeof current !== 'object' || Array.isArray(current)) return { reason: 'target-unresolved', detail: 'the object could not be read from GitLab' };
  for (const [field, constraint] of target) {
    const value = (current as Record<string, unknown>)[field];
    if (value === undefined || (value !== null && typeof value === 'object')) return { reason: 'target-constraint', detail: `${field} (missing)` };
    if (!matches(constraint, value as Literal)) return { reason: 'target-constraint', detail: `${field} (${mismatch(constraint)})` };
  }
  return undefined;
}

/** Why `rule`'s constraints refuse the request, or undefined when they pass. */
export function constraintFailure(rule: Rule, input: ConstraintInput): Failure | undefined {
  const c = rule.constraints;
  if (!c) return undefined;
  let body: BodyFields | undefined | null = null;
  const fields = (): BodyFields | undefined => (body === null ? (body = input.body()) : body);
  if (c.denyFields.length > 0) {
    // GitLab merges query and body parameters (Grape declared params, Rack), so a denied key
    // is refused wherever it is sent; Rack's reading ("[admin]" is "admin") applies.
    const queryKeys = input.query.map((p) => p.base);
    const bodyKeys = (fields()?.entries ?? []).map((e) => rackBase(e.key));
    for (const denied of c.denyFields) {
      if (queryKeys.includes(denied) || bodyKeys.includes(denied)) return { reason: 'deny-field', detail: denied };
    }
  }
  // GitLab reads one `params` made of the query with the body merged over it (Rack's
  // GET.merge(POST), which Grape's JSON parsing feeds): a constrained field sent on the other
  // side as well could be the value GitLab uses, so it is refused wherever it turns up twice.
  for (const [field, constraint] of c.query) {
    const problem = fieldProblem(input.query.map((p) => ({ key: p.key, value: p.value })), field, constraint)
      ?? (sentIn(fields()?.entries, field) ? 'also sent in the body' : undefined);
    if (problem) return { reason: 'query-constraint', detail: `${field} (${problem})` };
  }
  if (c.body.size > 0) {
    const parsed = fields();
    for (const [field, constraint] of c.body) {
      const problem = (sentIn(input.query, field) ? 'also sent in the query' : undefined)
        ?? (parsed ? fieldProblem(parsed.entries, field, constraint) : 'body cannot be parsed');
      if (problem) return { reason: 'body-constraint', detail: `${field} (${problem})` };
    }
  }
  return undefined;
}

/** Whether `field` is among `entries` in any of Rack's spellings (any case, brackets). */
const sentIn = (entries: readonly { key: string }[] | undefined, field: string): boolean =>
  entries !== undefined && entries.some((e) => rackBase(e.key) === field.toLowerCase());

function fieldProblem(entries: readonly { key: string; value: unknown }[], field: string, constraint: Constraint): string | undefined {
  const base = field.toLowerCase();
  const sent = entries.filter((e) => rackBase(e.key) === base);
  if (sent.length === 0) return constraint.kind !== 'literal' && constraint.kind !== 'one-of' && constraint.optional === true ? undefined : 'missing';
  // "url[]", "URL" or a repeated key could be read as another value than the one checked.
  if (sent.length > 1 || sent[0]!.key !== field) return 'must be sent once, as a single value';
  const value = sent[0]!.value;
  if (value !== null && typeof value === 'object') return 'must be a single value';
  return matches(constraint, value as Literal) ? undefined : mismatch(constraint);
}

/** The audit detail's words for a value the constraint refuses. */
const mismatch = (constraint: Constraint): string =>
  constraint.kind === 'pattern' ? 'does not match the pattern' : constraint.kind === 'under' ? 'not under the pinned URL' : 'not an allowed value';

/** Query and form values are strings: "true" matches true and "5" matches 5. */
function matches(constraint: Constraint, value: Literal): boolean {
  const same = (a: Literal, b: Literal): boolean => a === b || (a !== null && b !== null && String(a) === String(b));
  switch (constraint.kind) {
    case 'literal':
      return same(constraint.value, value);
    case 'one-of':
      return constraint.values.some((v) => same(v, value));
    case 'pattern':
      return value !== null && constraint.regex.test(String(value));
    case 'under':
      return isUnder(value, constraint.pin);
  }
}

/** For `explain`: what an object rule checks, in one line. */
export function describeConstraints(rule: Rule): string | undefined {
  const c = rule.constraints;
  if (!c) return undefined;
  const parts = [
    ...[...c.query.keys()].map((f) => `query ${f}`),
    ...[...c.body.keys()].map((f) => `body ${f}`),
    ...[...c.target.keys()].map((f) => `target ${f}`),
    ...(c.denyFields.length ? [`deny_fields ${c.denyFields.join(',')}`] : []),
    ...(c.projects ? [`projects ${c.projects.map((p) => p.text).join(',')}`] : []),
    ...(c.groups ? [`groups ${c.groups.map((p) => p.text).join(',')}`] : []),
    ...(c.quickActions ? [`quick_actions ${c.quickActions.join(',')}`] : []),
  ];
  return parts.length ? parts.join('; ') : undefined;
}
