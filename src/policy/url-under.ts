// `under:`: a constraint that a value is a URL at or below a pinned one (a webhook that must
// point at the vendor's own endpoint). Checked on the text GitLab stores, so the pin must be
// written canonically and the value must start with it literally: no parser's reading of
// the value decides where a hook points.

/** Why `text` cannot be a pin, or undefined when it can. */
export function pinProblem(text: string): string | undefined {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return `"${text}" is not an absolute URL`;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return `"${text}" is not an http(s) URL`;
  if (u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '') return `"${text}" has a user, a query or a fragment: pin a scheme, host and path`;
  // The pin is compared as text: a spelling the URL parser would rewrite (upper-case host,
  // default port, dot segments) would never match what GitLab stores.
  if (u.href !== text && u.href !== `${text}/`) return `"${text}" is not written canonically: use "${u.href}"`;
  return undefined;
}

// Whitespace, controls and backslashes are read differently by different URL parsers, and
// `{name}` is GitLab's masked-variable syntax (url_variables are substituted into the URL
// when the hook runs): a pinned value is plain text.
const UNSAFE = /[\s\\{}\p{Cc}]/u;

/** True when `value` is `pin` or a URL below it: what follows the pin starts a path, query or
 *  fragment (so "https://hooks.example" does not admit "https://hooks.example.evil/"). */
export function isUnder(value: unknown, pin: string): boolean {
  if (typeof value !== 'string' || UNSAFE.test(value) || !value.startsWith(pin)) return false;
  if (value.length === pin.length || pin.endsWith('/')) return true;
  const next = value[pin.length]!;
  return next === '/' || next === '?' || next === '#';
}
