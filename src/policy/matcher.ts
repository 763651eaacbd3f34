// Matches a raw path against a client's rules with a segment trie, so a client with
// thousands of rules costs a walk over the path's segments, not a scan over the rules.
import type { Match, Method, Rule, RuleIndex } from '../types.ts';

export type { Match };

interface Node {
  literals: Map<string, Node>;
  params: Map<string, Node>; // ":name" -> node; "*" is stored under the name "*"
  globstar: Rule[];
  end: Rule[];
}


const newNode = (): Node => ({ literals: new Map(), params: new Map(), globstar: [], end: [] });

export class Matcher implements RuleIndex {
  readonly #root = newNode();

  constructor(rules: readonly Rule[]) {
    for (const rule of rules) this.#insert(rule);
  }

  #insert(rule: Rule): void {
    let node = this.#root;
    for (const seg of rule.segments) {
      if (seg.kind === 'globstar') {
        node.globstar.push(rule);
        return;
      }
      const [map, key] =
        seg.kind === 'literal' ? [node.literals, seg.value] : [node.params, seg.kind === 'param' ? seg.name : '*'];
      let next = map.get(key);
      if (!next) map.set(key, (next = newNode()));
      node = next;
    }
    node.end.push(rule);
  }

  /**
   * The most specific rule that allows `method` on `segments`: literal segments win over
   * parameters, which win over `**`. Undefined when nothing allows it (deny by default).
   */
  match(method: Method, segments: readonly string[]): Match | undefined {
    const params: Record<string, string> = {};
    const rule = this.#walk(this.#root, segments, 0, method, params);
    return rule ? { rule, params } : undefined;
  }

  /**
   * Every rule that allows `method` on `segments`, most specific first (the order `match`
   * tries them in), each with its own parameters: object rules with constraints are tried
   * in this order until one passes (src/scope/enforce.ts).
   */
  matchAll(method: Method, segments: readonly string[]): Match[] {
    const out: Match[] = [];
    const walk = (node: Node, i: number, params: Record<string, string>): void => {
      if (i === segments.length) {
        for (const rule of node.end) if (rule.methods.has(method)) out.push({ rule, params });
      } else {
        const seg = segments[i]!;
        const lit = node.literals.get(seg);
        if (lit) walk(lit, i + 1, params);
        for (const [name, child] of node.params) walk(child, i + 1, name === '*' ? params : { ...params, [name]: seg });
      }
      for (const rule of node.globstar) if (rule.methods.has(method)) out.push({ rule, params });
    };
    walk(this.#root, 0, {});
    return out;
  }

  /** Every rule whose path matches, whatever its methods (for explaining a denial). */
  pathMatches(segments: readonly string[]): Rule[] {
    const found: Rule[] = [];
    const collect = (node: Node, i: number): void => {
      found.push(...node.globstar);
      if (i === segments.length) {
        found.push(...node.end);
        return;
      }
      const lit = node.literals.get(segments[i]!);
      if (lit) collect(lit, i + 1);
      for (const child of node.params.values()) collect(child, i + 1);
    };
    collect(this.#root, 0);
    return found;
  }

  #walk(node: Node, segs: readonly string[], i: number, method: Method, params: Record<string, string>): Rule | undefined {
    if (i === segs.length) {
      const hit = node.end.find((r) => r.methods.has(method));
      if (hit) return hit;
    } else {
      const seg = segs[i]!;
      const lit = node.literals.get(seg);
      if (lit) {
        const hit = this.#walk(lit, segs, i + 1, method, params);
        if (hit) return hit;
      }
      for (const [name, child] of node.params) {
        const hit = this.#walk(child, segs, i + 1, method, params);
        if (hit) {
          if (name !== '*') params[name] = seg;
          return hit;
        }
      }
    }
    return node.globstar.find((r) => r.methods.has(method));
  }
}
