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

function startsWithBase(url: string, base: string): boolean {
  if (!url.startsWith(base)) return false;
  const next = url[base.length];
  return next === undefined || next === '/' || next === '?';
}
