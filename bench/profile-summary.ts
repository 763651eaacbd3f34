// Summarizes a V8 .cpuprofile (from BENCH_PROFILE=1, which runs the proxies under test with
// --cpu-prof): where the CPU time went, by function and by package, self and inclusive.
//   node bench/profile-summary.ts bench/out/profiles/proxy-<pid>.cpuprofile [top]
//   node bench/profile-summary.ts --diff BASE.cpuprofile BASE_US PROXY.cpuprofile PROXY_US [top]
// --diff: where one process spends more CPU per request than another (e.g. the proxy against
// the hono+HPM passthrough), by function, in microseconds per request: each profile's busy
// time is spread over its CPU microseconds per request as `npm run bench` printed them.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fmt, table } from './lib/stats.ts';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Where a frame's code lives: a package, a file of this project, Node's internals, or V8. */
export function area(frame: CallFrame): string {
  const url = frame.url;
  if (!url) return frame.functionName.startsWith('(') ? frame.functionName : '(native/V8)';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const nm = path.lastIndexOf('/node_modules/');
  if (nm !== -1) {
    const rest = path.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  return path.startsWith(ROOT) ? path.slice(ROOT.length) : path;
}

/** The file a frame is in: "src/app.ts", "yaml/dist/nodes/Collection.js", "node:_http_client". */
function where(frame: CallFrame): string {
  const url = frame.url;
  if (!url || url.startsWith('node:')) return area(frame);
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const nm = path.lastIndexOf('/node_modules/');
  if (nm !== -1) return path.slice(nm + '/node_modules/'.length);
  return path.startsWith(ROOT) ? path.slice(ROOT.length) : path;
}

const label = (f: CallFrame): string => `${f.functionName || '(anonymous)'}  ${where(f)}${f.url ? `:${f.lineNumber + 1}` : ''}`;

export function summarize(profile: CpuProfile, top = 25): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const selfFn = new Map<string, number>();
  const selfArea = new Map<string, number>();
  const inclFn = new Map<string, number>();
  const inclArea = new Map<string, number>();
  let total = 0;
  let idle = 0;
  profile.samples.forEach((id, i) => {
    const dt = Math.max(0, profile.timeDeltas[i] ?? 0);
    const node = byId.get(id);
    if (!node) return;
    if (node.callFrame.functionName === '(idle)') {
      idle += dt;
      return;
    }
    total += dt;
    const add = (m: Map<string, number>, k: string): void => void m.set(k, (m.get(k) ?? 0) + dt);
    add(selfFn, label(node.callFrame));
    add(selfArea, area(node.callFrame));
    const seenFn = new Set<string>();
    const seenArea = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!.callFrame;
      if (f.functionName === '(root)') break;
      const k = label(f);
      if (!seenFn.has(k)) {
        seenFn.add(k);
        add(inclFn, k);
      }
      const a = area(f);
      if (!seenArea.has(a)) {
        seenArea.add(a);
        add(inclArea, a);
      }
    }
  });

  const pct = (v: number): string => `${fmt((100 * v) / total, 1)}%`;
  const ms = (v: number): string => fmt(v / 1000, 0);
  const rows = (m: Map<string, number>, n: number, filter: (k: string) => boolean = () => true): string[][] =>
    [...m].filter(([k]) => filter(k)).sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => [k, ms(v), pct(v)]);

  return [
    `busy ${ms(total)} ms, idle ${ms(idle)} ms (percentages are of busy time)`,
    '',
    'self time by area',
    table(['area', 'ms', '%'], rows(selfArea, top)),
    '',
    'inclusive time by area (time with that area anywhere on the stack)',
    table(['area', 'ms', '%'], rows(inclArea, top)),
    '',
    'self time by function',
    table(['function  where', 'ms', '%'], rows(selfFn, top)),
    '',
    "inclusive time, this project's functions",
    table(['function  where', 'ms', '%'], rows(inclFn, top, (k) => / (src|bench)\//.test(k))),
  ].join('\n');
}

/** Busy time per function, scaled so that the whole profile is `usPerRequest`. */
function perRequest(profile: CpuProfile, usPerRequest: number): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    if (!node || node.callFrame.functionName === '(idle)') return;
    const dt = Math.max(0, profile.timeDeltas[i] ?? 0);
    total += dt;
    const k = `${node.callFrame.functionName || '(anonymous)'}  ${area(node.callFrame)}`;
    self.set(k, (self.get(k) ?? 0) + dt);
  });
  for (const [k, v] of self) self.set(k, (v / total) * usPerRequest);
  return self;
}

export function diff(base: CpuProfile, baseUs: number, other: CpuProfile, otherUs: number, top = 30): string {
  const a = perRequest(base, baseUs);
  const b = perRequest(other, otherUs);
  const rows = [...new Set([...a.keys(), ...b.keys()])]
    .map((k) => ({ k, a: a.get(k) ?? 0, b: b.get(k) ?? 0 }))
    .sort((x, y) => y.b - y.a - (x.b - x.a))
    .slice(0, top)
    .map((r) => [r.k, fmt(r.a, 1), fmt(r.b, 1), fmt(r.b - r.a, 1)]);
  return table(['function  area (self time)', 'base us/req', 'other us/req', 'difference'], rows);
}

if (import.meta.url === `file://${process.argv[1]}` && process.argv[2] === '--diff') {
  const [baseFile, baseUs, otherFile, otherUs, top] = process.argv.slice(3);
  if (!baseFile || !baseUs || !otherFile || !otherUs) {
    console.error('usage: node bench/profile-summary.ts --diff BASE.cpuprofile BASE_US OTHER.cpuprofile OTHER_US [top]');
    process.exit(2);
  }
  const read = (f: string): CpuProfile => JSON.parse(readFileSync(f, 'utf8')) as CpuProfile;
  console.log(diff(read(baseFile), Number(baseUs), read(otherFile), Number(otherUs), Number(top ?? 30)));
} else if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node bench/profile-summary.ts <file.cpuprofile> [top]');
    process.exit(2);
  }
  const top = Number(process.argv[3] ?? 25);
  console.log(summarize(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, top));
}
