// Loads every policy file in a directory, validates all of it, and reports every problem
// at once with its location, so an operator fixes a policy in one pass.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type YAMLSeq } from 'yaml';
import { BUILTIN_POLICY_DIR, completeClient, presetFinder, Presets, type PresetFinder } from './extends.ts';
import { clientOpsSettings } from './client-settings.ts';
import { Matcher } from './matcher.ts';
import { keyOffset, nodeOffset } from './yaml-locate.ts';
import { parseRule, RuleSyntaxError } from './rule.ts';
import type { Rule } from '../types.ts';
import { parseObjectRule, RuleKeyError } from './constraints.ts';
import { applyClientScope } from './client-scope.ts';
import type { z } from 'zod';
import { CLIENT_NAME, ClientSchema, PolicyFileShape, type ClientDoc } from './schema.ts';
import { compileGraphqlPolicy, graphqlPolicyProblems } from './graphql-policy.ts';
import { clientOAuthSettings, duplicateClientIds } from './oauth-registration.ts';
import type { Client, Policy, PolicyProblem } from '../types.ts';

export type { Client, Policy, PolicyProblem };

import { keysAt, unknownKeyMessage } from './suggest.ts';



export class PolicyError extends Error {
  override name = 'PolicyError';
  readonly problems: readonly PolicyProblem[];
  /** The refused files' checksum (as Policy.checksum), for the reload-refused audit line. */
  checksum: string | undefined = undefined;
  constructor(problems: PolicyProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.problems = problems;
  }
}

export const formatProblem = (p: PolicyProblem): string => `${p.file}:${p.line}:${p.col} ${p.message}`;

/** Policy files directly in `dir` (not in sub-folders such as presets/), sorted by name. */
export function policyFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new PolicyError([{ file: dir, line: 0, col: 0, message: `cannot read policy directory: ${(err as NodeJS.ErrnoException).code ?? 'error'}` }]);
  }
  return names
    .filter((n) => /\.ya?ml$/.test(n) && !n.startsWith('.'))
    .map((n) => join(dir, n))
    .filter((p) => statSync(p).isFile())
    .sort();
}

export function loadPolicyDir(dir: string, displayBase = process.cwd()): Policy {
  const files = policyFiles(dir);
  const sources = files.map((path) => ({ path, display: relative(displayBase, path) || path, text: readFileSync(path, 'utf8') }));
  return compilePolicy(sources, { presets: presetFinder([dir, BUILTIN_POLICY_DIR], displayBase) });
}

export interface CompileOptions {
  /** Where `extends:` looks presets up; the built-in presets by default. */
  presets?: PresetFinder;
}

/** Validates and compiles policy sources; throws PolicyError listing every problem. */
export function compilePolicy(sources: { display: string; text: string }[], options: CompileOptions = {}): Policy {
  const presets = new Presets(options.presets ?? presetFinder([BUILTIN_POLICY_DIR]));
  const problems: PolicyProblem[] = [];
  const clients = new Map<string, Client>();
  const defined = new Map<string, string>();
  const hash = createHash('sha256');
  for (const src of sources) {
    hash.update(src.display).update('\0').update(src.text).update('\0');
    const before = problems.length;
    loadFile(src.display, src.text, clients, defined, problems, presets);
    problems.splice(before, problems.length - before, ...problems.slice(before).sort((a, b) => a.line - b.line || a.col - b.col));
  }
  problems.push(...presets.problems);
  for (const d of duplicateClientIds(clients.values())) problems.push({ file: d.source.replace(/:[0-9]+$/, ''), line: Number(/[0-9]+$/.exec(d.source)?.[0] ?? 0), col: 1, message: d.message });
  // A preset is part of the policy: editing it is a change a reload must see.
  for (const p of presets.sources) hash.update(p.display).update('\0').update(p.text).update('\0');
  const checksum = hash.digest('hex');
  if (problems.length > 0) throw Object.assign(new PolicyError(problems), { checksum });
  return { clients, checksum, files: sources.map((s) => s.display), presets: presets.sources.map((p) => p.display) };
}

function loadFile(file: string, text: string, clients: Map<string, Client>, defined: Map<string, string>, problems: PolicyProblem[], presets: Presets): void {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const at = (offset: number | undefined, message: string): void => {
    const pos = lineCounter.linePos(offset ?? 0);
    problems.push({ file, line: pos.line, col: pos.col, message });
  };
  const lineOf = (path: readonly PropertyKey[]): number => lineCounter.linePos(nodeOffset(doc, path) ?? 0).line;
  const report = (base: readonly PropertyKey[], schema: z.ZodType, issues: readonly z.core.$ZodIssue[]): void => {
    for (const issue of issues) {
      const path = [...base, ...issue.path];
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) at(keyOffset(doc, [...path, key]), unknownKeyMessage(key, keysAt(schema, issue.path)));
      } else if (path.length === 1 && path[0] === 'clients' && issue.code === 'invalid_type') {
        at(nodeOffset(doc, path), doc.contents === null
          ? 'the file is empty: a policy file is a "clients:" map with one entry per client (docs/policy.md)'
          : 'clients: missing or not a map: a policy file is a "clients:" map with one entry per client (docs/policy.md)');
      } else {
        at(nodeOffset(doc, path), `${path.slice(1).join('.')}: ${issue.message}`);
      }
    }
  };
  for (const e of [...doc.errors, ...doc.warnings]) at(e.pos[0], e.message.split('\n')[0] ?? 'YAML error');
  if (doc.errors.length > 0) return;

  const top = PolicyFileShape.safeParse(doc.toJS({ maxAliasCount: 100 }) ?? {});
  if (!top.success) {
    report([], PolicyFileShape, top.error.issues);
    return;
  }
  // Each client's `allow:` sequence, found once: looking each rule up from the root (getIn)
  // scans the `clients:` map from its start, quadratic in the number of clients.
  const allowNodes = allowSequences(doc);
  for (const [name, raw] of Object.entries(top.data.clients)) {
    const nameOffset = keyOffset(doc, ['clients', name]);
    const where = `${file}:${lineCounter.linePos(nameOffset ?? 0).line}`;
    const first = defined.get(name);
    if (first !== undefined) {
      at(nameOffset, `client "${name}" is already defined in ${first}`);
      continue;
    }
    defined.set(name, where);
    if (!CLIENT_NAME.test(name)) at(nameOffset, `client name "${name}" must be lower case letters, digits, ".", "_" or "-"`);
    if (name === 'system') at(nameOffset, 'client name "system" is reserved for the proxy\'s own audit lines');
    const parsed = ClientSchema.safeParse(raw);
    if (!parsed.success) report(['clients', name], ClientSchema, parsed.error.issues);
    // Rules are checked even when other keys are wrong, so every problem shows at once.
    const spec = (parsed.success ? parsed.data : raw) as ClientDoc;
    const client = buildClient(name, spec, where,
      (i, msg, keyPath) => at(nodeOffset(doc, ['clients', name, 'allow', i, ...keyPath]), msg),
      (msg) => at(nodeOffset(doc, ['clients', name, 'tokens_issued_after']), msg),
      (i) => `${file}:${lineCounter.linePos(allowNodes.get(name)?.items[i]?.range?.[0] ?? nodeOffset(doc, ['clients', name, 'allow', i]) ?? 0).line}`);
    // upstream token and rate limit (src/ops/client-settings.ts): problems at their keys.
    if (client && parsed.success) Object.assign(client, clientOpsSettings(parsed.data, (key, msg) => at(nodeOffset(doc, ['clients', name, key]), msg)));
    // graphql: (src/graphql/policy.ts): compiled here, problems at the key.
    if (client && parsed.success && parsed.data.graphql) {
      for (const msg of graphqlPolicyProblems(parsed.data.graphql)) at(nodeOffset(doc, ['clients', name, 'graphql', 'fields']), msg);
      client.graphql = compileGraphqlPolicy(parsed.data.graphql);
    }
    // oauth: (src/policy/oauth-registration.ts): problems at their keys.
    if (client && parsed.success) Object.assign(client, clientOAuthSettings(parsed.data.oauth, `${file}:${lineOf(['clients', name, 'oauth'])}`, (key, msg) => at(nodeOffset(doc, ['clients', name, 'oauth', ...key]), msg)));
    const located = (path: readonly PropertyKey[]) => ({ file, ...lineCounter.linePos(nodeOffset(doc, ['clients', name, ...path]) ?? 0) });
    const complete = completeClient(client, spec, parsed.success, presets, located, problems);
    // projects:, groups:, scopes: (src/scope/client-scope.ts): problems at their entries.
    const scoped = applyClientScope(client, raw, (path, msg) => at(nodeOffset(doc, ['clients', name, ...path]), msg), () => `${file}:${lineOf(['clients', name, 'scopes'])}`);
    if (client && complete && scoped && parsed.success && CLIENT_NAME.test(name)) clients.set(name, client);
  }
}

function buildClient(
  name: string,
  spec: ClientDoc,
  source: string,
  ruleProblem: (index: number, message: string, keyPath: readonly PropertyKey[]) => void,
  timeProblem: (message: string) => void,
  ruleSource: (index: number) => string,
): Client | undefined {
  let ok = true;
  const rules: Rule[] = [];
  const allow: unknown[] = Array.isArray(spec.allow) ? spec.allow : [];
  allow.forEach((text, i) => {
    if (typeof text !== 'string' && (text === null || typeof text !== 'object' || Array.isArray(text))) return;
    try {
      // A map is an object rule (method, path, constraints: src/policy/constraints.ts).
      rules.push(typeof text === 'string' ? parseRule(text, ruleSource(i)) : parseObjectRule(text, ruleSource(i)));
    } catch (err) {
      if (!(err instanceof RuleSyntaxError)) throw err;
      ruleProblem(i, err.message, err instanceof RuleKeyError ? err.keyPath : []);
      ok = false;
    }
  });
  const tokensIssuedAfter = ['string', 'number'].includes(typeof spec.tokens_issued_after) || spec.tokens_issued_after instanceof Date
    ? toUnixSeconds(spec.tokens_issued_after)
    : undefined;
  if (tokensIssuedAfter === null) {
    timeProblem('tokens_issued_after must be an ISO 8601 timestamp or Unix seconds');
    ok = false;
  }
  if (!ok) return undefined;
  return {
    name,
    description: spec.description,
    disabled: spec.disabled ?? false,
    revokedJti: new Set(spec.revoked_jti ?? []),
    tokensIssuedAfter: tokensIssuedAfter ?? undefined,
    allowTokenSelfRead: spec.allow_token_self_read ?? false,
    admin: spec.admin === true,
    rules,
    matcher: new Matcher(rules),
    source,
    preset: undefined,
    mode: 'enforce',
    tests: [],
    projects: undefined,
    groups: undefined,
    scopes: new Set(),
  };
}

function toUnixSeconds(value: string | number | Date | undefined): number | undefined | null {
  if (value === undefined) return undefined;
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : null;
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
}

/** Each client's `allow:` sequence node, by client name. */
function allowSequences(doc: Document): Map<string, YAMLSeq<{ range?: [number, number, number] | null }>> {
  const out = new Map<string, YAMLSeq<{ range?: [number, number, number] | null }>>();
  const clients = doc.get('clients', true);
  if (!isMap(clients)) return out;
  for (const pair of clients.items) {
    if (!isScalar(pair.key) || typeof pair.key.value !== 'string' || !isMap(pair.value)) continue;
    const allow = pair.value.get('allow', true);
    if (isSeq(allow)) out.set(pair.key.value, allow as YAMLSeq<{ range?: [number, number, number] | null }>);
  }
  return out;
}
