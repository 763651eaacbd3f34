// Project and group scope: which GitLab projects and groups a client may name at all.
//
// A client's `projects:` / `groups:` lists hold patterns: a full path ("acme/docs"), a path
// with `*` (exactly one path segment) or `**` (any number of segments, including none), or a
// numeric id (42). A request naming a project or group by numeric id or by encoded full path
// is resolved through GitLab (with the proxy's own token) to the project's id and current
// full path, so a renamed project's old path (GitLab keeps it as a redirect route and answers
// with the current project: app/models/route.rb, RedirectRoute; lib/api/helpers.rb
// find_project -> Project.find_by_full_path(follow_redirects: true)) is judged by its
// current path, and an id is judged by the path it has now.
import type { Client, ScopeKind, ScopePattern, ScopeResolver, ScopeTarget } from '../types.ts';

export type { ScopeKind, ScopePattern, ScopeResolver, ScopeTarget };

/** GitLab's path segment characters (app/models/namespace.rb, lib/gitlab/path_regex.rb). */
const PATH_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const NUMERIC = /^[1-9][0-9]{0,15}$/;



/** True when any pattern names the target (paths compared case-insensitively). */
export function matchesScope(patterns: readonly ScopePattern[], target: ScopeTarget): boolean {
  let segs: string[] | undefined;
  for (const p of patterns) {
    if (p.kind === 'id') {
      if (p.id === target.id) return true;
      continue;
    }
    segs ??= target.fullPath.toLowerCase().split('/');
    if (globMatch(p.parts, 0, segs, 0)) return true;
  }
  return false;
}

function globMatch(pat: readonly string[], i: number, segs: readonly string[], j: number): boolean {
  for (; i < pat.length; i++, j++) {
    const p = pat[i]!;
    if (p === '**') {
      for (let k = j; k <= segs.length; k++) if (globMatch(pat, i + 1, segs, k)) return true;
      return false;
    }
    if (j >= segs.length) return false;
    if (p !== '*' && p !== segs[j]) return false;
  }
  return j === segs.length;
}

/** The client's list for `kind`, if it has one. */
export function scopeList(client: Pick<Client, 'projects' | 'groups'>, kind: ScopeKind): readonly ScopePattern[] | undefined {
  return kind === 'project' ? client.projects : client.groups;
}

/** How the resolver asks GitLab: GET `path` (e.g. "/api/v4/projects/5") with the proxy's
 *  token; the status and, for 200, the parsed JSON body. Throws when GitLab cannot be reached. */
export type ScopeLookup = (path: string) => Promise<{ status: number; body: unknown; location?: string | undefined }>;

export interface ScopeResolverOptions {
  lookup: ScopeLookup;
  /** How long an answer (found or not found) is kept; SCOPE_CACHE_TTL_MS. */
  ttlMs: number;
  /** How many answers are kept at most (least recently used go first); SCOPE_CACHE_SIZE. */
  maxEntries: number;
  now?: () => number;
}

interface CacheEntry {
  value: ScopeTarget | null;
  expires: number;
}

/**
 * Resolves a project or group, named by numeric id or decoded full path, to its id and
 * current full path by asking GitLab (GET /api/v4/projects/:id, /api/v4/groups/:id; an
 * encoded path is accepted in place of :id: docs "REST API", "Namespaced paths").
 * Answers are cached in a bounded LRU with a TTL; concurrent asks for the same key share one
 * request. Null when GitLab does not know it (or the proxy's token cannot see it); a failure
 * to reach GitLab is null as well and is not cached.
 */
export class GitLabScopeResolver implements ScopeResolver {
  readonly #opts: ScopeResolverOptions;
  readonly #now: () => number;
  /** Map iteration order is insertion order: re-inserting on use makes it an LRU. */
  readonly #cache = new Map<string, CacheEntry>();
  readonly #pending = new Map<string, Promise<ScopeTarget | null>>();

  constructor(opts: ScopeResolverOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.#cache.size;
  }

  clear(): void {
    this.#cache.clear();
  }

  /** The object at `path` ("/api/v4/projects/5/hooks/7") as GitLab answers a GET now, with
   *  the proxy's token; never cached (a `target:` constraint checks its current state).
   *  Undefined when GitLab does not answer 200 with JSON. */
  async current(path: string): Promise<unknown> {
    try {
      const answer = await this.#opts.lookup(path);
      return answer.status === 200 ? answer.body : undefined;
    } catch {
      return undefined;
    }
  }

  async resolve(kind: ScopeKind, idOrPath: string): Promise<ScopeTarget | null> {
    const numeric = NUMERIC.test(idOrPath);
    if (!numeric && !isFullPath(idOrPath)) return null;
    const key = `${kind}:${numeric ? idOrPath : idOrPath.toLowerCase()}`;
    const hit = this.#cache.get(key);
    if (hit) {
      this.#cache.delete(key);
      if (hit.expires > this.#now()) {
        this.#cache.set(key, hit);
        return hit.value;
      }
    }
    let pending = this.#pending.get(key);
    if (!pending) {
      pending = this.#fetch(kind, idOrPath, key).finally(() => this.#pending.delete(key));
      this.#pending.set(key, pending);
    }
    return pending;
  }

  async #fetch(kind: ScopeKind, idOrPath: string, key: string): Promise<ScopeTarget | null> {
    const area = `/api/v4/${kind === 'project' ? 'projects' : 'groups'}/`;
    let ref = NUMERIC.test(idOrPath) ? idOrPath : encodeURIComponent(idOrPath);
    let answer: { status: number; body: unknown; location?: string | undefined };
    try {
      answer = await this.#opts.lookup(area + ref);
      // A renamed or moved project named by its old path: GitLab answers GET with 301 to the
      // project by id or current path (gitlab!128642, lib/api/helpers.rb find_project!).
      // Followed once, and only to the same kind of resource.
      const moved = answer.status >= 301 && answer.status <= 308 ? movedRef(answer.location, area) : undefined;
      if (moved !== undefined) {
        ref = moved;
        answer = await this.#opts.lookup(area + ref);
      }
    } catch {
      return null;
    }
    let value: ScopeTarget | null = null;
    if (answer.status === 200) value = targetOf(kind, answer.body);
    else if (answer.status >= 500 || answer.status === 429) return null; // transient: not cached
    this.#remember(key, value);
    // A found target is also known by its id and its current path.
    if (value) {
      this.#remember(`${kind}:${value.id}`, value);
      this.#remember(`${kind}:${value.fullPath.toLowerCase()}`, value);
    }
    return value;
  }

  #remember(key: string, value: ScopeTarget | null): void {
    if (this.#opts.maxEntries <= 0) return;
    this.#cache.delete(key);
    this.#cache.set(key, { value, expires: this.#now() + this.#opts.ttlMs });
    while (this.#cache.size > this.#opts.maxEntries) {
      const oldest = this.#cache.keys().next().value;
      if (oldest === undefined) break;
      this.#cache.delete(oldest);
    }
  }
}

/** The :id of a redirect to `area` (".../api/v4/projects/"), still encoded, when it is a
 *  numeric id or an encoded full path. */
function movedRef(location: string | undefined, area: string): string | undefined {
  if (!location) return undefined;
  let path: string;
  try {
    path = new URL(location, 'http://gitlab.invalid').pathname;
  } catch {
    return undefined;
  }
  const at = path.indexOf(area);
  if (at === -1) return undefined;
  const raw = path.slice(at + area.length).split('/')[0] ?? '';
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    return undefined;
  }
  if (NUMERIC.test(decoded)) return decoded;
  return isFullPath(decoded) ? encodeURIComponent(decoded) : undefined;
}

function isFullPath(value: string): boolean {
  const parts = value.split('/');
  return parts.length <= 32 && parts.every((p) => PATH_SEGMENT.test(p));
}

/** A project answer carries path_with_namespace, a group answer full_path (docs "Projects
 *  API" / "Groups API"). */
export function targetOf(kind: ScopeKind, body: unknown): ScopeTarget | null {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return null;
  const o = body as Record<string, unknown>;
  const fullPath = kind === 'project' ? o.path_with_namespace : o.full_path;
  if (typeof o.id !== 'number' || !Number.isSafeInteger(o.id) || typeof fullPath !== 'string') return null;
  return { id: o.id, fullPath };
}

/**
 * Whether the client may name this project or group. True when the client has no list for
 * `kind`; otherwise `idOrPath` (a numeric id string or a decoded full path) is resolved
 * through GitLab and matched against the list; an unresolvable one is out of scope.
 */
export async function inScope(client: Pick<Client, 'projects' | 'groups'>, kind: ScopeKind, idOrPath: string, resolver: ScopeResolver): Promise<boolean> {
  const list = scopeList(client, kind);
  if (!list) return true;
  const target = await resolver.resolve(kind, idOrPath);
  return target !== null && matchesScope(list, target);
}
