// GitLab's route table as data: every route of routes.json (generated from GitLab's OpenAPI
// description, src/catalogue/generate.ts) and extra-routes.ts (what the spec leaves out),
// each with its risk class from classes.ts. Built once at import; pure lookups afterwards.
//
// routeOf(method, segments): the GitLab route a request reaches, as GitLab's router would
// pick it (literal segments before parameters before splats). classesOf(method, segments):
// the classes of EVERY route the request could reach, as a bit mask, for the hard floor,
// which must not depend on which of two overlapping routes GitLab tries first.
import data from './routes.json' with { type: 'json' };
import { classify, type RiskClass } from './classes.ts';
import { EXTRA_ROUTES } from './extra-routes.ts';

export type { RiskClass } from './classes.ts';

export type TemplateSegment =
  | { kind: 'literal'; value: string }
  | { kind: 'param'; name: string }
  /** One segment with fixed text around the parameter: "binary-:architecture", ":file_name.tgz". */
  | { kind: 'affix'; name: string; prefix: string; suffix: string }
  /** One or more segments (Mustermann's "*name"). */
  | { kind: 'splat'; name: string };

export interface Route {
  method: string;
  /** "/api/v4/projects/:id/access_tokens/self/rotate" */
  template: string;
  /** The spec's first tag ("Access tokens"), or the area of a hand-added route. */
  tag: string;
  query: readonly string[];
  body: readonly string[];
  class: RiskClass;
  /** Why this class: the reason of the classes.ts rule that matched. */
  reason: string;
  /** Hand-added routes only: where GitLab defines it. */
  source?: string | undefined;
  segments: readonly TemplateSegment[];
}

export const CATALOGUE_SOURCE = { source: data.source, gitlab: data.gitlab };

export const CLASS_BITS: Readonly<Record<RiskClass, number>> = {
  credential: 1, admin: 2, membership: 4, destructive: 8, exfiltration: 16, write: 32, read: 64,
};

export function parseTemplate(template: string): TemplateSegment[] {
  return template.slice(1).split('/').map((seg): TemplateSegment => {
    if (/^\*[A-Za-z0-9_]+$/.test(seg)) return { kind: 'splat', name: seg.slice(1) };
    // A parameter (":name", or "*name" inside a segment) anywhere in the segment; with several,
    // the text before the first and after the last is what must match.
    const params = [...seg.matchAll(/[:*]([A-Za-z0-9_]+)/g)];
    if (params.length === 0) return { kind: 'literal', value: seg };
    const first = params[0]!;
    const last = params[params.length - 1]!;
    const prefix = seg.slice(0, first.index);
    const suffix = seg.slice(last.index + last[0].length);
    if (params.length === 1 && prefix === '' && suffix === '' && seg.startsWith(':')) return { kind: 'param', name: first[1]! };
    return { kind: 'affix', name: first[1]!, prefix, suffix };
  });
}

interface Node {
  literals: Map<string, Node>;
  affixes: { prefix: string; suffix: string; node: Node }[];
  param: Node | undefined;
  splat: Node | undefined;
  /** Method -> route ending here (the first one added wins). */
  end: Map<string, Route>;
  /** Method -> OR of the class bits of every route ending here with that method. */
  endMask: Map<string, number>;
}

const ALL_CLASSES = 127;
const PATH_CACHE_SIZE = 10_000;
/** A route not looked up yet (undefined is "no route"). */
const UNKNOWN = Symbol('unknown');

interface PathInfo {
  mask: number | undefined;
  route: Route | undefined | typeof UNKNOWN;
}

const newNode = (): Node => ({ literals: new Map(), affixes: [], param: undefined, splat: undefined, end: new Map(), endMask: new Map() });

/** A compiled route table. The module's default one is `catalogue`. */
export class Catalogue {
  readonly routes: readonly Route[];
  readonly #root = newNode();
  /** Per "METHOD path": the class mask and the route, each found on first use. */
  readonly #paths = new Map<string, PathInfo>();
  /** The key of the segments asked about last: a request asks for its route and its classes
   *  with the same segments, one after the other. */
  #lastSegments: readonly string[] | undefined;
  #lastMethod = '';
  #lastKey = '';

  constructor(routes: readonly Route[]) {
    this.routes = routes;
    for (const r of routes) this.#insert(r);
  }

  #insert(route: Route): void {
    let node = this.#root;
    for (const seg of route.segments) {
      if (seg.kind === 'literal') {
        let next = node.literals.get(seg.value);
        if (!next) node.literals.set(seg.value, (next = newNode()));
        node = next;
      } else if (seg.kind === 'affix') {
        let entry = node.affixes.find((a) => a.prefix === seg.prefix && a.suffix === seg.suffix);
        if (!entry) node.affixes.push((entry = { prefix: seg.prefix, suffix: seg.suffix, node: newNode() }));
        node = entry.node;
      } else if (seg.kind === 'param') {
        node = node.param ??= newNode();
      } else {
        node = node.splat ??= newNode();
      }
    }
    if (!node.end.has(route.method)) node.end.set(route.method, route);
    node.endMask.set(route.method, (node.endMask.get(route.method) ?? 0) | CLASS_BITS[route.class]);
  }

  /** The route GitLab reaches for `method` on raw `segments` ("api", "v4", ...), or
   *  undefined. HEAD reaches GET routes (Grape adds one per GET route). */
  routeOf(method: string, segments: readonly string[]): Route | undefined {
    const info = this.#info(method, segments);
    if (info.route === UNKNOWN) info.route = this.routeWith(method, segments, ALL_CLASSES);
    return info.route;
  }

  /** As routeOf, among the routes whose class bit is in `classes` only. */
  routeWith(method: string, segments: readonly string[], classes: number): Route | undefined {
    return this.#first(this.#root, segments, 0, method, classes) ?? (method === 'HEAD' ? this.#first(this.#root, segments, 0, 'GET', classes) : undefined);
  }

  /** OR of CLASS_BITS over every route `method` on `segments` could reach (0: none). Asked
   *  for every request (the floor, report mode, the .json reading), so remembered per path:
   *  the walk tries every literal, parameter and splat branch. */
  classesOf(method: string, segments: readonly string[]): number {
    const info = this.#info(method, segments);
    if (info.mask === undefined) {
      info.mask = this.#mask(this.#root, segments, 0, method);
      if (method === 'HEAD') info.mask |= this.#mask(this.#root, segments, 0, 'GET');
    }
    return info.mask;
  }

  #info(method: string, segments: readonly string[]): PathInfo {
    if (segments !== this.#lastSegments || method !== this.#lastMethod) {
      this.#lastSegments = segments;
      this.#lastMethod = method;
      this.#lastKey = `${method} ${segments.join('/')}`;
    }
    let info = this.#paths.get(this.#lastKey);
    if (info === undefined) {
      // Bounded: a vendor walking many ids fills it; starting again costs one walk per path.
      if (this.#paths.size >= PATH_CACHE_SIZE) this.#paths.clear();
      this.#paths.set(this.#lastKey, (info = { mask: undefined, route: UNKNOWN }));
    }
    return info;
  }

  #first(node: Node, segs: readonly string[], i: number, method: string, classes: number): Route | undefined {
    if (i === segs.length) {
      const route = node.end.get(method);
      return route && (CLASS_BITS[route.class] & classes) !== 0 ? route : undefined;
    }
    const seg = segs[i]!;
    const lit = node.literals.get(seg) ?? (seg.includes('%') ? node.literals.get(decoded(seg)) : undefined);
    if (lit) {
      const hit = this.#first(lit, segs, i + 1, method, classes);
      if (hit) return hit;
    }
    for (const a of node.affixes) {
      if (fitsAffix(seg, a.prefix, a.suffix)) {
        const hit = this.#first(a.node, segs, i + 1, method, classes);
        if (hit) return hit;
      }
    }
    if (node.param) {
      const hit = this.#first(node.param, segs, i + 1, method, classes);
      if (hit) return hit;
    }
    if (node.splat) {
      // Longest first: a splat is greedy, as in Mustermann.
      for (let j = segs.length; j > i; j--) {
        const hit = this.#first(node.splat, segs, j, method, classes);
        if (hit) return hit;
      }
    }
    return undefined;
  }

  #mask(node: Node, segs: readonly string[], i: number, method: string): number {
    if (i === segs.length) return node.endMask.get(method) ?? 0;
    const seg = segs[i]!;
    let mask = 0;
    const lit = node.literals.get(seg) ?? (seg.includes('%') ? node.literals.get(decoded(seg)) : undefined);
    if (lit) mask |= this.#mask(lit, segs, i + 1, method);
    for (const a of node.affixes) if (fitsAffix(seg, a.prefix, a.suffix)) mask |= this.#mask(a.node, segs, i + 1, method);
    if (node.param) mask |= this.#mask(node.param, segs, i + 1, method);
    if (node.splat) for (let j = i + 1; j <= segs.length; j++) mask |= this.#mask(node.splat, segs, j, method);
    return mask;
  }
}

const fitsAffix = (seg: string, prefix: string, suffix: string): boolean =>
  seg.length > prefix.length + suffix.length && seg.startsWith(prefix) && seg.endsWith(suffix);

/** Mustermann matches a literal character also percent-encoded ("config%2Ejson"). */
function decoded(seg: string): string {
  try {
    return decodeURIComponent(seg);
  } catch {
    return seg;
  }
}

function buildRoutes(): Route[] {
  const rows = (data.routes as unknown as [string, string, string, string[], string[]][]).map(([method, template, tag, query, body]) => ({ method, template, tag, query, body, source: undefined as string | undefined }));
  for (const extra of EXTRA_ROUTES) {
    for (const method of extra.methods) rows.push({ method, template: extra.template, tag: extra.tag, query: [], body: [], source: extra.source });
  }
  return rows.map((r) => {
    const c = classify(r.method, r.template);
    return { ...r, class: c.class, reason: c.reason, segments: parseTemplate(r.template) };
  });
}

let shipped: Catalogue | undefined;

/** The shipped catalogue: GitLab's routes, each with its class. Built on first use (about
 *  0.1 s), so commands that never look a route up do not pay for it; the server builds it
 *  at start (app.ts). */
export function getCatalogue(): Catalogue {
  return (shipped ??= new Catalogue(buildRoutes()));
}

export const routeOf = (method: string, segments: readonly string[]): Route | undefined => getCatalogue().routeOf(method, segments);
