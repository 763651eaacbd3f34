// The layout of src/ (issue 12): no import cycles, type imports included. The graph is read
// from the TypeScript sources with the compiler's own parser: every `import ... from`,
// `import type`, `export ... from` and `import('...')` of a relative module. A cycle is
// reported as the circle of files it runs through, one per strongly connected component,
// so the failure message lists what to untangle. The folders of src/ (policy/, scope/, ...)
// are checked the same way: two folders that import each other are one module in disguise.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '..', 'src');

/** Every non-test TypeScript module under `dir`. */
function modules(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return modules(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** The relative module specifiers `file` imports or re-exports, type-only ones included. */
function importsOf(file: string, text = readFileSync(file, 'utf8')): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      found.push(node.moduleSpecifier.text);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference) && ts.isStringLiteral(node.moduleReference.expression)) {
      found.push(node.moduleReference.expression.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])) {
      found.push(node.arguments[0].text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      found.push(node.argument.literal.text); // type X = import('./y.ts').Z
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found.filter((s) => s.startsWith('.'));
}

/** file -> the files it imports, for the modules under src/. */
function importGraph(files: string[]): Map<string, string[]> {
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const targets = importsOf(file)
      .map((s) => resolve(dirname(file), s.endsWith('.js') ? s.replace(/\.js$/, '.ts') : s))
      .map((p) => (known.has(p) ? p : known.has(`${p}.ts`) ? `${p}.ts` : known.has(join(p, 'index.ts')) ? join(p, 'index.ts') : p));
    graph.set(file, [...new Set(targets.filter((t) => known.has(t)))]);
  }
  return graph;
}

/** The strongly connected components with more than one module, or a module importing itself
 *  (Tarjan's algorithm). */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const connect = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) connect(v);
  return found;
}

/** One circle through a component, as "a.ts -> b.ts -> a.ts" (a shortest path back to the start). */
function circle(component: string[], graph: Map<string, string[]>): string {
  const inside = new Set(component);
  const start = component[0]!;
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!inside.has(w)) continue;
      if (w === start) {
        const path = [v];
        while (path[0] !== start) path.unshift(previous.get(path[0]!)!);
        return [...path, start].map((p) => relative(SRC, p)).join(' -> ');
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return component.map((p) => relative(SRC, p)).join(', ');
}

describe('src/ layout', () => {
  it('reads value, type-only, re-export and dynamic imports alike', () => {
    const text = [
      "import { a } from './a.ts';",
      "import type { B } from '../b.ts';",
      "import { type C, d } from './c.ts';",
      "export { e } from './e.ts';",
      "export type * from './f.ts';",
      "type G = import('./g.ts').G;",
      "const h = await import('./h.ts');",
      "import { readFileSync } from 'node:fs';",
    ].join('\n');
    expect(importsOf('/x/y.ts', text)).toEqual(['./a.ts', '../b.ts', './c.ts', './e.ts', './f.ts', './g.ts', './h.ts']);
  });

  it('finds a cycle through type imports, and none in a chain', () => {
    const graph = new Map([['/a', ['/b']], ['/b', ['/c']], ['/c', ['/a']], ['/d', ['/a']], ['/e', ['/e']]]);
    expect(cycles(graph)).toEqual([['/a', '/b', '/c'], ['/e']]);
    expect(cycles(new Map([['/a', ['/b']], ['/b', ['/c']], ['/c', []]]))).toEqual([]);
  });

  it('has no import cycles in src/ (type imports included)', () => {
    const graph = importGraph(modules(SRC));
    expect(graph.size).toBeGreaterThan(20);
    const found = cycles(graph).map((c) => `${c.length} modules: ${circle(c, graph)}\n    (${c.map((p) => relative(SRC, p)).join(', ')})`);
    expect(found, `import cycles in src/:\n  ${found.join('\n  ')}`).toEqual([]);
  });

  it('has no import cycles between the folders of src/', () => {
    // A folder is one node (src/policy/*.ts -> "policy/"); a file at the top is its own node.
    const folderOf = (file: string): string => {
      const rel = relative(SRC, file);
      return rel.includes('/') ? `${rel.split('/')[0]!}/` : rel;
    };
    const folders = new Map<string, string[]>();
    const via = new Map<string, string>();
    for (const [file, targets] of importGraph(modules(SRC))) {
      const from = folderOf(file);
      const edges = folders.get(from) ?? [];
      for (const target of targets) {
        const to = folderOf(target);
        if (to === from) continue;
        if (!edges.includes(to)) edges.push(to);
        if (!via.has(`${from} ${to}`)) via.set(`${from} ${to}`, `${relative(SRC, file)} imports ${relative(SRC, target)}`);
      }
      folders.set(from, edges);
    }
    const found = cycles(folders).map((c) => {
      const path = circle(c.map((f) => join(SRC, f)), new Map([...folders].map(([k, v]) => [join(SRC, k), v.map((t) => join(SRC, t))])));
      const steps = path.split(' -> ').map((f) => (f.endsWith('.ts') ? f : `${f}/`));
      const why = steps.slice(1).map((to, i) => via.get(`${steps[i]} ${to}`)).join('; ');
      return `${c.length} folders: ${steps.join(' -> ')}\n    (${why})\n    (all of: ${c.join(', ')})`;
    });
    // Two folders importing each other directly are the first thing to untangle: name them.
    for (const [from, targets] of [...folders].sort()) {
      for (const to of targets) {
        if (from < to && folders.get(to)?.includes(from)) found.push(`${from} <-> ${to}: ${via.get(`${from} ${to}`)}; ${via.get(`${to} ${from}`)}`);
      }
    }
    expect(found, `import cycles between folders of src/:\n  ${found.join('\n  ')}`).toEqual([]);
  });
});
