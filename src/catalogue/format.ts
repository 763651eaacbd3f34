// Which readings of a path ending in ".json" GitLab can make, from its route table. Grape
// appends an optional "(.json)" to every route (grape lib/grape/path.rb), so
// ".../notes.json" is ".../notes", while ".../packages/cargo/config.json" is a route of its
// own (the only literal ".json" in GitLab's OpenAPI description), and
// ".../files/package.json" may be either the file "package.json" or "package" as JSON.
import { getCatalogue } from './catalogue.ts';

/** written: only the path as written names a GitLab route; alias: only the path without
 *  ".json" does; both: both do, or neither (then both must be allowed, as before). */
export type FormatReading = 'written' | 'alias' | 'both';

export function formatReading(method: string, written: readonly string[], alias: readonly string[]): FormatReading {
  const w = getCatalogue().classesOf(method, written) !== 0;
  const a = getCatalogue().classesOf(method, alias) !== 0;
  return w && !a ? 'written' : a && !w ? 'alias' : 'both';
}
