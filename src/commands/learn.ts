// `learn`: from what a client did (audit lines it was allowed, or would have been denied in
// report mode), the smallest policy that allows exactly that, with ids, numbers, shas and
// file paths as parameters; or, with --diff, how that compares with its current rules.
import type { Readable } from 'node:stream';
import { generalizeToRoute } from '../catalogue/generalize.ts';
import { generalizePath } from '../policy/generalize.ts';
import type { Client } from '../types.ts';
import { decideDescribed, offlineResolver } from '../decision/offline.ts';
import { METHODS, parseRule, RuleSyntaxError, type Method } from '../policy/rule.ts';
import { readAudit, type AuditEntry, type ReadStats } from './audit-lines.ts';

export interface LearnOptions {
  client: string;
  inputs: readonly string[];
  /** The client's current definition, for --diff. */
  current?: Client | undefined;
  out?: (text: string) => void;
  warn?: (text: string) => void;
  /** Read for "-" or no input; default process.stdin. */
  stdin?: Readable | undefined;
}

interface Call {
  method: Method;
  path: string;
  count: number;
  wouldDeny: number;
}

interface Learned {
  /** Rule path -> method -> calls. */
  rules: Map<string, Map<Method, { count: number; wouldDeny: number }>>;
  selfRead: number;
  /** Requests no rule can express (e.g. GET /api/v4), with counts. */
  inexpressible: Map<string, number>;
  /** Rule path -> risk class of the GitLab route it names (src/catalogue/classes.ts). */
  classes: Map<string, string>;
  /** Floor routes ("POST /api/v4/user/keys") the calls reached, never proposed, with counts. */
  floor: Map<string, number>;
  calls: Call[];
  first: string | undefined;
  last: string | undefined;
  used: number;
}

/** Exit codes: 0 done (with --diff: nothing to change), 1 --diff found differences or the
 *  client made no calls to learn from. */
export async function learn(opts: LearnOptions): Promise<number> {
  const out = opts.out ?? ((t) => process.stdout.write(t));
  const warn = opts.warn ?? ((t) => process.stderr.write(t));
  const stats: ReadStats = { lines: 0, skipped: 0, errors: [] };
  const learned = await collect(readAudit(opts.inputs, stats, opts.stdin), opts.client);
  for (const e of stats.errors) warn(`warning: ${e}\n`);
  if (stats.skipped > 0) warn(`warning: ${stats.skipped} line${stats.skipped === 1 ? ' is' : 's are'} not audit records and were skipped\n`);
  if (learned.used === 0) {
    warn(`no allowed or would-deny calls of client "${opts.client}" in ${stats.lines} audit lines\n`);
    return 1;
  }
  if (opts.current) return await diff(learned, opts.current, out);
  out(policyText(learned, opts.client));
  return 0;
}

async function collect(records: AsyncIterable<AuditEntry>, client: string): Promise<Learned> {
  const learned: Learned = { rules: new Map(), selfRead: 0, inexpressible: new Map(), classes: new Map(), floor: new Map(), calls: [], first: undefined, last: undefined, used: 0 };
  const calls = new Map<string, Call>();
  for await (const r of records) {
    if (r.client !== client || (r.decision !== 'allow' && r.decision !== 'would-deny')) continue;
    if (!(METHODS as readonly string[]).includes(r.method)) continue;
    learned.used++;
    if (learned.first === undefined || r.time < learned.first) learned.first = r.time;
    if (learned.last === undefined || r.time > learned.last) learned.last = r.time;
    const method = r.method as Method;
    const would = r.decision === 'would-deny' ? 1 : 0;
    const key = `${method} ${r.path}`;
    const call = calls.get(key) ?? { method, path: r.path, count: 0, wouldDeny: 0 };
    call.count++;
    call.wouldDeny += would;
    calls.set(key, call);
    if (r.rule === 'allow_token_self_read') {
      learned.selfRead++;
      continue;
    }
    const path = rulePath(method, r.path, learned);
    if (path === undefined) continue;
    try {
      parseRule(`${method} ${path}`, 'learn');
    } catch (err) {
      if (!(err instanceof RuleSyntaxError)) throw err;
      learned.inexpressible.set(key, (learned.inexpressible.get(key) ?? 0) + 1);
      continue;
    }
    let methods = learned.rules.get(path);
    if (!methods) learned.rules.set(path, (methods = new Map()));
    const hit = methods.get(method) ?? { count: 0, wouldDeny: 0 };
    hit.count++;
    hit.wouldDeny += would;
    methods.set(method, hit);
  }
  learned.calls = [...calls.values()];
  return learned;
}

/** The rule path for a call: the GitLab route's template (generalizeToRoute), else the
 *  guess from the path's shape; undefined for a floor route, which is counted, not proposed. */
function rulePath(method: Method, path: string, learned: Pick<Learned, 'classes' | 'floor'>): string | undefined {
  const g = generalizeToRoute(method, path);
  if (g.kind === 'floor') {
    const key = `${g.route.method} ${g.route.template} (${g.route.class})`;
    learned.floor.set(key, (learned.floor.get(key) ?? 0) + 1);
    return undefined;
  }
  if (g.kind === 'rule') {
    learned.classes.set(g.path, g.class);
    return g.path;
  }
  return generalizePath(path);
}

interface RuleLine {
  text: string;
  count: number;
  comment: string;
}

/** One rule per path, its methods merged ("GET,POST"); HEAD folds into GET, which admits it. */
function ruleLines(rules: Learned['rules'], classes: Learned['classes']): RuleLine[] {
  const lines: RuleLine[] = [];
  for (const [path, methods] of rules) {
    const names = METHODS.filter((m) => methods.has(m) && !(m === 'HEAD' && methods.has('GET')));
    let count = 0;
    let wouldDeny = 0;
    const parts: string[] = [];
    for (const m of METHODS) {
      const hit = methods.get(m);
      if (!hit) continue;
      count += hit.count;
      wouldDeny += hit.wouldDeny;
      parts.push(`${m} ${hit.count}`);
    }
    const cls = classes.get(path);
    const comment = `${count} call${count === 1 ? '' : 's'}${parts.length > 1 ? ` (${parts.join(', ')})` : ''}${wouldDeny ? `, ${wouldDeny} would-deny` : ''}${cls ? ` [${cls}]` : ' [not a known GitLab route]'}`;
    lines.push({ text: `${names.join(',')} ${path}`, count, comment });
  }
  return lines.sort((a, b) => pathOf(a.text).localeCompare(pathOf(b.text)) || a.text.localeCompare(b.text));
}

const pathOf = (rule: string): string => rule.slice(rule.indexOf(' ') + 1);

function policyText(learned: Learned, client: string): string {
  const lines = ruleLines(learned.rules, learned.classes);
  const width = Math.min(90, Math.max(...lines.map((l) => l.text.length)));
  const out = [
    `# Learned by "gitlab-scope-proxy learn" from ${learned.used} call${learned.used === 1 ? '' : 's'} of client ${client},`,
    `# ${learned.first} to ${learned.last}: the smallest allowlist that covers them.`,
    '# The comment on each rule says how often it was used. Review the rules, then save this file',
    '# in POLICY_DIR; the client runs in enforce mode unless you add "mode: report".',
  ];
  for (const [request, n] of learned.inexpressible) out.push(`# Not covered (no rule can name it): ${request} (${n})`);
  for (const [route, n] of learned.floor) out.push(`# Not proposed (the proxy's floor refuses it): ${route} (${n})`);
  out.push('clients:', `  ${client}:`);
  if (learned.selfRead > 0) out.push(`    allow_token_self_read: true  # ${learned.selfRead} call${learned.selfRead === 1 ? '' : 's'}`);
  out.push(lines.length > 0 ? '    allow:' : '    allow: []');
  for (const l of lines) out.push(`      - ${l.text.padEnd(width)}  # ${l.comment}`);
  return out.join('\n') + '\n';
}

/** What the client did against its current rules: rules used (" "), never used ("-"), and
 *  learned rules for calls the current rules do not allow ("+"). */
async function diff(learned: Learned, client: Client, out: (text: string) => void): Promise<number> {
  const used = new Map<string, number>();
  const missing: Learned['rules'] = new Map();
  let selfReadMissing = 0;
  for (const call of learned.calls) {
    // Decided as served, offline: the audit line kept no body, and paths stand for themselves.
    const decision = await decideDescribed(client, { method: call.method, target: call.path }, offlineResolver);
    // A rule whose body or target: constraints refused only because the line kept no body and
    // GitLab is not asked offline still named the call: it is used, not missing.
    const unknowable = decision.rule !== undefined && (decision.reason === 'body-constraint' || decision.reason === 'target-unresolved');
    if (decision.verdict === 'allow' || unknowable) {
      const key = decision.rule ? ruleKey(decision.rule.text, decision.rule.source) : (decision.ruleLabel ?? '');
      used.set(key, (used.get(key) ?? 0) + call.count);
      continue;
    }
    if (call.path.split('/')[3] === 'personal_access_tokens') {
      selfReadMissing += call.count;
      continue;
    }
    const path = rulePath(call.method, call.path, learned);
    if (path === undefined) continue;
    try {
      parseRule(`${call.method} ${path}`, 'learn');
    } catch {
      continue; // listed by the policy output as not covered; nothing a rule could add
    }
    let methods = missing.get(path);
    if (!methods) missing.set(path, (methods = new Map()));
    const hit = methods.get(call.method) ?? { count: 0, wouldDeny: 0 };
    hit.count += call.count;
    hit.wouldDeny += call.wouldDeny;
    methods.set(call.method, hit);
  }
  const lines: string[] = [
    `# learn --diff: client ${client.name} (${client.source}${client.preset ? `, extends ${client.preset}` : ''}) against ${learned.used} call${learned.used === 1 ? '' : 's'}, ${learned.first} to ${learned.last}`,
    '#   " " rule used   "-" rule never used: a candidate for remove:   "+" rule the calls needed but the policy lacks',
  ];
  const rows: { sign: string; text: string; note: string }[] = [];
  for (const rule of client.rules) {
    const n = used.get(ruleKey(rule.text, rule.source)) ?? 0;
    rows.push({ sign: n > 0 ? ' ' : '-', text: rule.text, note: `${n > 0 ? `${n} call${n === 1 ? '' : 's'}` : 'never used'} (${rule.source})` });
  }
  for (const l of ruleLines(missing, learned.classes)) rows.push({ sign: '+', text: l.text, note: l.comment });
  const selfRead = used.get('allow_token_self_read') ?? 0;
  if (selfRead > 0) rows.push({ sign: ' ', text: 'allow_token_self_read: true', note: calls(selfRead) });
  else if (client.allowTokenSelfRead) rows.push({ sign: '-', text: 'allow_token_self_read: true', note: 'never used' });
  if (selfReadMissing > 0) rows.push({ sign: '+', text: 'allow_token_self_read: true', note: calls(selfReadMissing) });
  const width = Math.min(90, Math.max(...rows.map((r) => r.text.length)));
  for (const r of rows) lines.push(`${r.sign} ${r.text.padEnd(width)}  # ${r.note}`);
  out(lines.join('\n') + '\n');
  return rows.some((r) => r.sign !== ' ') ? 1 : 0;
}

const calls = (n: number): string => `${n} call${n === 1 ? '' : 's'}`;

const ruleKey = (text: string, source: string): string => `${text}\0${source}`;
