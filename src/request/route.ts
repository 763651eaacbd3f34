// The route readings of a path: every list of segments GitLab's router may route it as.
// Computed once by canonicalize(); rules, fixed denials, project/group scope, reference
// parameters, quick actions and list filtering all read only these, so a spelling GitLab
// accepts for a path (a format suffix, "%2E" for its dot) reaches the same checks as the
// plain path by construction.
//
// Grape appends a format suffix to every route. With one content type it is "(.json)", with
// several "(.:format)" (grape lib/grape/path.rb `suffix`, `uses_specific_format?`), and
// GitLab's API declares two (`format :json` and `content_type :txt, "text/plain"` in
// lib/api/api.rb), so any ".ext" may follow a route **[inf]**. Mustermann matches a literal
// "." also as "%2E"/"%2e". Grape's Formatter then answers JSON for an unknown extension
// (middleware/formatter.rb `format_from_extension` ignores it): "/api/v4/projects.xml" is the
// project list. Whether a route's last parameter keeps the suffix depends on its
// requirements (":id" takes "[^/]+" and keeps it; a default capture stops at the dot), which
// the proxy does not know per route, so every reading is kept and every step must accept all.

/** A "." or an encoded one, where a format suffix may start. */
const DOT = /\.|%2[Ee]/g;

/**
 * [segments] plus, when the last segment holds a "." (or "%2E"), that segment cut at each
 * one with a non-empty part on both sides: "projects.json" is also "projects",
 * "README.md.json" also "README" and "README.md".
 */
export function routeReadings(segments: readonly string[]): readonly (readonly string[])[] {
  const last = segments[segments.length - 1];
  // Most paths end in a segment without a dot: one reading, and no regular expression run.
  if (last === undefined || (!last.includes('.') && !last.includes('%'))) return [segments];
  const readings: (readonly string[])[] = [segments];
  for (const m of last.matchAll(DOT)) {
    const cut = m.index;
    if (cut === 0 || cut + m[0].length >= last.length) continue;
    readings.push([...segments.slice(0, -1), last.slice(0, cut)]);
  }
  return readings;
}

/**
 * A path template of GitLab's OpenAPI description ("/api/v4/projects/{id}/notes") as a
 * regular expression over a reading's raw path ("/" + segments joined): {name} is one segment, *name
 * the rest, "(...)" an optional part (Grape's "(-/)"), "\" escapes; a literal "." also
 * matches "%2E" as Mustermann matches it.
 */
export function specTemplate(template: string): { regex: RegExp; captures: string[] } {
  const captures: string[] = [];
  let re = '^';
  for (let i = 0; i < template.length; i++) {
    const c = template[i]!;
    if (c === '{') {
      const end = template.indexOf('}', i);
      captures.push(template.slice(i + 1, end));
      re += '([^/]+)';
      i = end;
    } else if (c === '*') {
      const name = /^\w+/.exec(template.slice(i + 1))?.[0] ?? '';
      captures.push(name);
      re += '(.+)';
      i += name.length;
    } else if (c === '(') re += '(?:';
    else if (c === ')') re += ')?';
    else if (c === '\\') re += `\\${template[++i] ?? ''}`;
    else if (c === '.') re += '(?:\\.|%2[Ee])';
    else re += c.replace(/[$^+?|[\]]/g, '\\$&');
  }
  return { regex: new RegExp(`${re}$`), captures };
}
