// Response headers that name GitLab's own origin are rewritten to the proxy's public base:
// vendors follow pagination links (Renovate ignores Link URLs of another origin), and
// GitLab builds them from its configured host (lib/gitlab/pagination/offset_header_builder.rb).

/** Rewrites every `<url>` in a Link header that starts with `from` to start with `to`. */
export function rewriteLink(value: string, from: string, to: string): string {
  return value.replace(/<([^>]*)>/g, (whole, url: string) => (startsWithBase(url, from) ? `<${to}${url.slice(from.length)}>` : whole));
}

/** The Location rewritten to the proxy, or undefined when it does not point into GitLab. */
export function rewriteLocation(value: string, from: string, to: string): string | undefined {
  return startsWithBase(value, from) ? to + value.slice(from.length) : undefined;
}

/**
 * Where a Location from GitLab leads, seen from the client: the proxy URL it maps to
 * (absolute, or origin-relative "/gitlab/api/..." under GitLab's root); null for a path on
 * GitLab's origin outside its root, which the proxy never serves; undefined for anything
 * else (another origin, such as signed object-storage URLs), which is left as it is.
 */
export function localLocation(value: string, gitlabOrigin: string, gitlabRoot: string, publicBase: string): string | null | undefined {
  const absolute = rewriteLocation(value, gitlabOrigin + gitlabRoot, publicBase);
  if (absolute !== undefined) return absolute;
  if (startsWithBase(value, gitlabOrigin)) return null;
  if (!value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return undefined;
  return rewriteLocation(value, gitlabRoot, publicBase) ?? (gitlabRoot === '' ? publicBase + value : null);
}

function startsWithBase(url: string, base: string): boolean {
  if (!url.startsWith(base)) return false;
  const next = url[base.length];
  return next === undefined || next === '/' || next === '?';
}

/** The media type before any parameters, around optional whitespace, in any case: asked of
 *  every response, so one regular expression rather than split, trim and lowercase. */
const LFS_JSON = /^\s*application\/vnd\.git-lfs\+json\s*(?:;|$)/i;

/** application/vnd.git-lfs+json, whatever its parameters. */
export function isLfsJson(contentType: string | undefined): boolean {
  return contentType !== undefined && LFS_JSON.test(contentType);
}

/**
 * Removes every Authorization entry (any case) from the `header` maps of an LFS batch
 * answer (objects[].actions.{download,upload,verify}.header, and anywhere else a `header`
 * object appears). Throws when the body is not JSON.
 */
export function stripLfsAuthorization(body: Buffer): Buffer {
  const doc: unknown = JSON.parse(body.toString('utf8'));
  const clean = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(clean);
    } else if (node !== null && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if (key.toLowerCase() === 'header' && value !== null && typeof value === 'object' && !Array.isArray(value)) {
          for (const name of Object.keys(value)) if (name.toLowerCase() === 'authorization') delete (value as Record<string, unknown>)[name];
        }
        clean(value);
      }
    }
  };
  clean(doc);
  return Buffer.from(JSON.stringify(doc));
}
