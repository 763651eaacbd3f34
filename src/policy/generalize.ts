// From a concrete request path to the rule path that names it: ids, numbers, shas, refs and
// file paths become parameters, everything else stays literal. `learn` builds policies from
// these and `audit` groups its endpoint counts by them.
//
//   /api/v4/projects/acme%2Fapp/merge_requests/3/notes  ->  /api/v4/projects/:id/merge_requests/:iid/notes
//
// A parameter is only used where the rule's check accepts the value (evaluate.ts): ":id"
// for a numeric id or an encoded full path, ":iid" for a number. "/groups/acme" stays
// literal, because ":id" does not accept a bare top-level name.

const NUMERIC = /^[1-9][0-9]{0,18}$/;
const ENCODED_FULL_PATH = /^[A-Za-z0-9_][A-Za-z0-9_.-]*(?:%2[Ff][A-Za-z0-9_][A-Za-z0-9_.-]*)+$/;
/** An abbreviated or full commit sha (lower-case hex, 7 to 40 digits). */
const SHA = /^[0-9a-f]{7,40}$/;
/** A segment that looks like an id or name value rather than a route word. */
const VALUE = /^[A-Za-z0-9_.~!$&'()+,;=@%-]+$/;

/** After these, any value is a parameter of this name. */
const NAMED: Record<string, string> = {
  branches: 'branch',
  wikis: 'slug',
  labels: 'label_id',
  discussions: 'discussion_id',
  users: 'user_id',
};

export function generalizePath(path: string): string {
  const raw = path.split('/').slice(1);
  if (raw[0] !== 'api' || raw[1] !== 'v4') return path;
  const out = ['', 'api', 'v4'];
  const used = new Set<string>();
  const param = (name: string): string => {
    let unique = name;
    for (let n = 2; used.has(unique); n++) unique = `${name}_${n}`;
    used.add(unique);
    return `:${unique}`;
  };
  for (let i = 2; i < raw.length; i++) {
    const seg = raw[i]!;
    // Only a literal route word before a value tells what the value is.
    const prev = i > 2 && !out[i]!.startsWith(':') ? raw[i - 1]! : '';
    out.push(generalizeSegment(seg, prev, i > 3 ? raw[i - 2]! : '', param) ?? seg);
  }
  return out.join('/');
}

function generalizeSegment(seg: string, prev: string, prevPrev: string, param: (name: string) => string): string | undefined {
  if (prev === 'projects' || prev === 'groups') {
    if (!NUMERIC.test(seg) && !ENCODED_FULL_PATH.test(seg)) return undefined;
    return param(prevPrev === '' ? 'id' : prev === 'projects' ? 'project_id' : 'group_id');
  }
  if (prev === 'merge_requests' || prev === 'issues') {
    return NUMERIC.test(seg) ? param('iid') : undefined;
  }
  if (prev === 'files' && prevPrev === 'repository') return param('file_path');
  if (prev === 'tags' && prevPrev === 'repository') return param('tag_name');
  if (prev === 'releases' && seg !== 'permalink') return param('tag_name');
  if (prev === 'commits' || prev === 'statuses' || prev === 'blobs') return SHA.test(seg) ? param('sha') : undefined;
  const named = NAMED[prev];
  if (named && VALUE.test(seg)) return param(named);
  if (SHA.test(seg) && /[a-f]/.test(seg)) return param('sha');
  if (NUMERIC.test(seg)) return param(/^[a-z][a-z_]*$/.test(prev) ? `${prev.replace(/s$/, '')}_id` : 'n');
  return undefined;
}
