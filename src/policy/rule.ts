// Parses one allowlist rule, "METHODS PATH", into a compiled form. Pure: no I/O, no HTTP.
//
// PATH grammar (policy format v1): literal segments compared raw and case-sensitively;
// `:name` is exactly one non-empty raw segment (an encoded slash stays inside it);
// `*` is one segment; `**` is zero or more trailing segments, last position only.

import { METHODS, type Method, type Rule, type Segment } from '../types.ts';

export { METHODS };
export type { Method, Rule, Segment };



export class RuleSyntaxError extends Error {
  override name = 'RuleSyntaxError';
}

const LITERAL = /^(?:[A-Za-z0-9._~!$&'()+,;=@-]|%[0-9A-Fa-f]{2})+$/;
const PARAM = /^:[a-z_][a-z0-9_]*$/;
const API_PREFIX = ['api', 'v4'];

export function parseRule(text: string, source: string): Rule {
  const match = /^(\S+) (\/\S*)$/.exec(text);
  if (!match) throw new RuleSyntaxError(`rule must be "METHODS PATH", got ${JSON.stringify(text)}`);
  const methods = parseMethods(match[1]!);
  const segments = parsePath(match[2]!);
  return { text, methods, segments, source };
}

function parseMethods(list: string): Set<Method> {
  if (list === '*') return new Set(METHODS);
  const methods = new Set<Method>();
  for (const m of list.split(',')) {
    if (!(METHODS as readonly string[]).includes(m)) {
      throw new RuleSyntaxError(`unknown method ${JSON.stringify(m)} (use ${METHODS.join(', ')} or *, upper case)`);
    }
    methods.add(m as Method);
  }
  // GitLab's Grape adds a HEAD route for every GET route, and read_api honours both
  // (lib/api/api.rb), so GET admits HEAD.
  if (methods.has('GET')) methods.add('HEAD');
  return methods;
}

function parsePath(path: string): Segment[] {
  const raw = path.slice(1).split('/');
  if (raw.some((s) => s === '')) throw new RuleSyntaxError('path has an empty segment (// or a trailing /)');
  if (raw[0] !== API_PREFIX[0] || raw[1] !== API_PREFIX[1]) {
    throw new RuleSyntaxError('path must start with /api/v4/');
  }
  if (raw.length < 3) throw new RuleSyntaxError('path must name something under /api/v4/');
  if (raw[2] === 'internal') throw new RuleSyntaxError('/api/v4/internal is never forwarded');
  return raw.map((seg, i): Segment => {
    if (seg === '**') {
      if (i !== raw.length - 1) throw new RuleSyntaxError('** may only be the last segment');
      return { kind: 'globstar' };
    }
    if (seg === '*') return { kind: 'star' };
    if (seg.startsWith(':')) {
      if (!PARAM.test(seg)) throw new RuleSyntaxError(`bad parameter ${JSON.stringify(seg)} (use :lower_snake_case)`);
      return { kind: 'param', name: seg.slice(1) };
    }
    if (seg === '.' || seg === '..') throw new RuleSyntaxError('path may not contain . or .. segments');
    if (!LITERAL.test(seg) || seg.includes('*')) {
      throw new RuleSyntaxError(`bad literal segment ${JSON.stringify(seg)}`);
    }
    return { kind: 'literal', value: seg };
  });
}
