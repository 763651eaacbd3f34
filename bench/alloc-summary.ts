// Summarizes an allocation profile from BENCH_PROFILE=alloc (V8's sampling heap profiler,
// freed objects included): bytes allocated per request, by function, each allocation counted
// under the nearest frame of this project's code that led to it (a library's or Node's
// allocation on the proxy's behalf is the proxy's), then by the allocating function itself.
//   node bench/alloc-summary.ts bench/out/profiles/proxy-<pid>.heapprofile REQUESTS [top]
// REQUESTS: how many requests the process answered while sampling (its audit line count).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const [file, requestsArg, topArg = '30'] = process.argv.slice(2);
const requests = Number(requestsArg);
if (!file || !(requests > 0)) {
  console.error('usage: node bench/alloc-summary.ts PROFILE.heapprofile REQUESTS [top]');
  process.exit(2);
}
const head = (JSON.parse(readFileSync(file, 'utf8')) as { head: HeapNode }).head;

const name = (f: HeapNode['callFrame']): string => {
  const url = f.url.startsWith('file://') ? fileURLToPath(f.url) : f.url;
  return `${f.functionName || '(anonymous)'}  ${url.startsWith(ROOT) ? url.slice(ROOT.length) : url}:${f.lineNumber + 1}`;
};
const ours = (label: string): boolean => / {2}(src|dist)\//.test(label);
const underOwn = new Map<string, number>();
const self = new Map<string, number>();
let total = 0;
const walk = (node: HeapNode, own: string | undefined): void => {
  const label = name(node.callFrame);
  const nearest = ours(label) ? label : own;
  total += node.selfSize;
  self.set(label, (self.get(label) ?? 0) + node.selfSize);
  const key = nearest ?? '(not under this project\'s code)';
  underOwn.set(key, (underOwn.get(key) ?? 0) + node.selfSize);
  for (const child of node.children) walk(child, nearest);
};
walk(head, undefined);

const top = Number(topArg);
const print = (title: string, m: Map<string, number>): void => {
  console.log(`\n${title}`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${(v / requests).toFixed(0).padStart(8)} B  ${k}`);
};
console.log(`${(total / requests).toFixed(0)} bytes allocated per request (${requests} requests)`);
print('by the nearest frame of this project (what its code caused):', underOwn);
print('by allocating function:', self);
