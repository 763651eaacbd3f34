// Finds, in GitLab's generated OpenAPI description (doc/api/openapi/openapi_v3.yaml; a copy
// in ../shared/data/), every parameter whose name says it names a project, a group or a
// namespace, per route. src/scope/reference-params.json is the reviewed list; the test
// (test/security/reference-params.test.ts) fails when the spec has a candidate the list has
// not reviewed, so a newer spec's `*_project_id` is not forwarded unchecked.
//
//   npx node src/scope/reference-candidates.ts SPEC           prints the candidates not yet reviewed
//   npx node src/scope/reference-candidates.ts SPEC --write GITLAB_VERSION
//                                                              also rewrites src/scope/spec-extract.json
//
// spec-extract.json is the part of the spec the tests compare the reviewed lists with (every
// candidate parameter, and every body/note/description field of a write, with its GitLab
// version), so that the tests need no copy of the 3.5 MB spec; regenerate it with --write
// from a newer spec and the tests name what is new.
// The spec is read with a line scanner made for this generated file's fixed layout (a YAML
// parser takes ~12 s for its 104,000 lines): paths at two spaces, methods at four, parameters
// as "- name:" items with "in:", request bodies inline with top-level "properties:".
import { readFileSync, writeFileSync } from 'node:fs';

export interface SpecParam {
  method: string;
  /** The spec's path template: "/api/v4/projects/{id}/issues/{issue_iid}/move". */
  path: string;
  name: string;
  /** path, query, json or form-data (a request body's media type). */
  in: string;
}

/** Every parameter of every operation: path and query parameters, and the top-level
 *  properties of request bodies. */
export function specParams(text: string): SpecParam[] {
  const out: SpecParam[] = [];
  let inPaths = false;
  let path: string | undefined;
  let method: string | undefined;
  let pendingName: string | undefined;
  let body: string | undefined; // media type of the request body being read
  let inProps = false;
  for (const line of text.split('\n')) {
    if (/^\S/.test(line)) {
      inPaths = line === 'paths:';
      continue;
    }
    if (!inPaths) continue;
    let m: RegExpExecArray | null;
    if ((m = /^ {2}"?(\/[^"]*?)"?:$/.exec(line))) {
      path = m[1]!.replace(/\\\\/g, '\\'); // a YAML double-quoted "\\(" is "\("
      method = undefined;
      continue;
    }
    if ((m = /^ {4}(get|post|put|patch|delete|head):$/.exec(line))) {
      method = m[1]!.toUpperCase();
      body = undefined;
      inProps = false;
      continue;
    }
    if (!path || !method) continue;
    if (/^ {6}\S/.test(line)) {
      body = undefined;
      inProps = false;
    }
    if ((m = /^ {6}- name: "?([^"]+?)"?$/.exec(line))) {
      pendingName = m[1];
      continue;
    }
    if ((m = /^ {8}in: (\w+)$/.exec(line)) && pendingName !== undefined) {
      out.push({ method, path, name: pendingName, in: m[1]! });
      pendingName = undefined;
      continue;
    }
    if ((m = /^ {10}([a-z]+\/[a-z0-9.+-]+):$/.exec(line))) {
      body = m[1]!.split('/')[1]!;
      inProps = false;
      continue;
    }
    if (body && /^ {14}properties:$/.test(line)) {
      inProps = true;
      continue;
    }
    if (body && inProps && /^ {14}\S/.test(line)) inProps = false;
    if (body && inProps && (m = /^ {16}"?([^\s":]+?)"?:$/.exec(line))) out.push({ method, path, name: m[1]!, in: body });
  }
  return out;
}

/** Names that say they name a project, a group or a namespace (or an import source). */
export const CANDIDATE_NAME = /(?:^|_)(?:project|group|namespace)(?:_id|_ids|_path|_full_path)?$|^namespace|project_id|group_id|^forked_from_id$|^parent_id$|^import_url$|remote_url$/;

export function referenceCandidates(params: readonly SpecParam[]): SpecParam[] {
  // The route's own :id is the path's target (src/scope/enforce.ts namedTargets).
  return params.filter((p) => CANDIDATE_NAME.test(p.name) && !(p.in === 'path' && p.name === 'id'));
}

export const candidateKey = (p: { method: string; path: string; name: string }): string => `${p.method} ${p.path} ${p.name}`;

/** The rows of spec-extract.json: reference candidates and the text fields quick actions may
 *  be read from (src/request/quick-actions.json). */
export function specExtract(params: readonly SpecParam[]): SpecParam[] {
  const text = params.filter((p) => ['POST', 'PUT', 'PATCH'].includes(p.method) && ['body', 'note', 'description'].includes(p.name) && p.in !== 'path' && p.in !== 'query');
  return [...referenceCandidates(params), ...text];
}

if (import.meta.main) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node src/scope/reference-candidates.ts SPEC [--write GITLAB_VERSION]');
    process.exit(2);
  }
  const all = specParams(readFileSync(file, 'utf8'));
  const write = process.argv.indexOf('--write');
  if (write !== -1) {
    const version = process.argv[write + 1];
    if (!version) {
      console.error('--write needs the GitLab version of the spec (its VERSION file), e.g. 18.9.0');
      process.exit(2);
    }
    const rows = specExtract(all).map((p) => `    ${JSON.stringify([p.method, p.path, p.name, p.in])}`);
    const head = { source: 'GitLab doc/api/openapi/openapi_v3.yaml, extracted by src/scope/reference-candidates.ts', gitlab: version };
    writeFileSync(new URL('./spec-extract.json', import.meta.url), `${JSON.stringify(head, null, 2).slice(0, -2)},\n  "params": [\n${rows.join(',\n')}\n  ]\n}\n`);
  }
  type Entry = { method: string; path: string; param: string };
  const data = JSON.parse(readFileSync(new URL('./reference-params.json', import.meta.url), 'utf8')) as { references: Entry[]; ignored: Entry[] };
  const reviewed = new Set([...data.references, ...data.ignored].map((e) => candidateKey({ ...e, name: e.param })));
  const fresh = referenceCandidates(all).filter((p) => !reviewed.has(candidateKey(p)));
  for (const p of fresh) console.log(`${candidateKey(p)} (${p.in})`);
  console.error(`${fresh.length} candidate(s) not in src/scope/reference-params.json`);
}
