// Loads every policy file in a directory, validates all of it, and reports every problem
// at once with its location, so an operator fixes a policy in one pass.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { Matcher } from './matcher.ts';
import { parseRule, RuleSyntaxError, type Rule } from './rule.ts';
import type { z } from 'zod';
import { CLIENT_NAME, ClientSchema, PolicyFileShape, type ClientDoc } from './schema.ts';

export interface Client {
  name: string;
  description: string | undefined;
  disabled: boolean;
  revokedJti: ReadonlySet<string>;
  /** Unix seconds; tokens with an earlier iat are refused. */
  tokensIssuedAfter: number | undefined;
  allowTokenSelfRead: boolean;
  rules: readonly Rule[];
  matcher: Matcher;
  source: string;
}

export interface Policy {
  clients: ReadonlyMap<string, Client>;
  /** sha256 over the files' names and contents: what a reload changed. */
  checksum: string;
  files: readonly string[];
}

export interface PolicyProblem {
  file: string;
  line: number;
  col: number;
  message: string;
}

export class PolicyError extends Error {
  override name = 'PolicyError';
  readonly problems: readonly PolicyProblem[];
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
  return compilePolicy(sources);
}

/** Validates and compiles policy sources; throws PolicyError listing every problem. */
export function compilePolicy(sources: { display: string; text: string }[]): Policy {
  const problems: PolicyProblem[] = [];
  const clients = new Map<string, Client>();
  const defined = new Map<string, string>();
  const hash = createHash('sha256');
  for (const src of sources) {
    hash.update(src.display).update('\0').update(src.text).update('\0');
    const before = problems.length;
    loadFile(src.display, src.text, clients, defined, problems);
    problems.splice(before, problems.length - before, ...problems.slice(before).sort((a, b) => a.line - b.line || a.col - b.col));
  }
  if (problems.length > 0) throw new PolicyError(problems);
  return { clients, checksum: hash.digest('hex'), files: sources.map((s) => s.display) };
}

function loadFile(file: string, text: string, clients: Map<string, Client>, defined: Map<string, string>, problems: PolicyProblem[]): void {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const at = (offset: number | undefined, message: string): void => {
    const pos = lineCounter.linePos(offset ?? 0);
    problems.push({ file, line: pos.line, col: pos.col, message });
  };
  const lineOf = (path: readonly PropertyKey[]): number => lineCounter.linePos(offsetOf(doc, path) ?? 0).line;
  const report = (base: readonly PropertyKey[], issues: readonly z.core.$ZodIssue[]): void => {
    for (const issue of issues) {
      const path = [...base, ...issue.path];
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) at(keyOffset(doc, [...path, key]), `unknown key "${key}"`);
      } else {
        at(offsetOf(doc, path), `${path.slice(1).join('.')}: ${issue.message}`);
      }
    }
  };
  for (const e of [...doc.errors, ...doc.warnings]) at(e.pos[0], e.message.split('\n')[0] ?? 'YAML error');
  if (doc.errors.length > 0) return;

  const top = PolicyFileShape.safeParse(doc.toJS({ maxAliasCount: 100 }) ?? {});
  if (!top.success) {
    report([], top.error.issues);
    return;
  }
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
    const parsed = ClientSchema.safeParse(raw);
    if (!parsed.success) report(['clients', name], parsed.error.issues);
    // Rules are checked even when other keys are wrong, so every problem shows at once.
    const spec = (parsed.success ? parsed.data : raw) as ClientDoc;
    const client = buildClient(name, spec, where,
      (i, msg) => at(offsetOf(doc, ['clients', name, 'allow', i]), msg),
      (msg) => at(offsetOf(doc, ['clients', name, 'tokens_issued_after']), msg),
      (i) => `${file}:${lineOf(['clients', name, 'allow', i])}`);
    if (client && parsed.success && CLIENT_NAME.test(name)) clients.set(name, client);
  }
}

function buildClient(
  name: string,
  spec: ClientDoc,
  source: string,
  ruleProblem: (index: number, message: string) => void,
  timeProblem: (message: string) => void,
  ruleSource: (index: number) => string,
): Client | undefined {
  let ok = true;
  const rules: Rule[] = [];
  const allow: unknown[] = Array.isArray(spec.allow) ? spec.allow : [];
  allow.forEach((text, i) => {
    if (typeof text !== 'string') return;
    try {
      rules.push(parseRule(text, ruleSource(i)));
    } catch (err) {
      if (!(err instanceof RuleSyntaxError)) throw err;
      ruleProblem(i, err.message);
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
    rules,
    matcher: new Matcher(rules),
    source,
  };
}

function toUnixSeconds(value: string | number | Date | undefined): number | undefined | null {
  if (value === undefined) return undefined;
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : null;
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
}

/** Offset of the node at `path` (or of its nearest existing ancestor). */
function offsetOf(doc: Document, path: readonly PropertyKey[]): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n) as unknown[], true) as { range?: [number, number, number] } | undefined;
    if (node && typeof node === 'object' && node.range) return node.range[0];
  }
  return undefined;
}

/** Offset of a map key (not its value): where a duplicate client name is written. */
function keyOffset(doc: Document, path: readonly PropertyKey[]): number | undefined {
  const parent = doc.getIn(path.slice(0, -1), true);
  if (isMap(parent)) {
    for (const pair of parent.items) {
      if (isScalar(pair.key) && pair.key.value === path[path.length - 1]) return pair.key.range?.[0];
    }
  }
  return offsetOf(doc, path);
}
