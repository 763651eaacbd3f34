// Where a value sits in a YAML document, as "line:col", so every policy problem points at
// the text the operator has to change.
import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import type { Located } from '../types.ts';

export type { Located };
export interface ParsedYaml {
  doc: Document;
  /** Position of the node at `path` (or of its nearest existing ancestor). */
  at: (path: readonly PropertyKey[]) => Located;
  /** Position of a map key rather than its value. */
  keyAt: (path: readonly PropertyKey[]) => Located;
  /** Position of a byte offset (YAML errors carry one). */
  offset: (offset: number) => Located;
}

export function parseYaml(file: string, text: string): ParsedYaml {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const offset = (o: number): Located => ({ file, ...lineCounter.linePos(o) });
  return {
    doc,
    at: (path) => offset(nodeOffset(doc, path) ?? 0),
    keyAt: (path) => offset(keyOffset(doc, path) ?? 0),
    offset,
  };
}

/** Offset of the node at `path` (or of its nearest existing ancestor). */
export function nodeOffset(doc: Document, path: readonly PropertyKey[]): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n) as unknown[], true) as { range?: [number, number, number] } | undefined;
    if (node && typeof node === 'object' && node.range) return node.range[0];
  }
  return undefined;
}

/** Offset of a map key (not its value): where a duplicate client name is written. */
export function keyOffset(doc: Document, path: readonly PropertyKey[]): number | undefined {
  const parent = doc.getIn(path.slice(0, -1), true);
  if (isMap(parent)) {
    for (const pair of parent.items) {
      if (isScalar(pair.key) && pair.key.value === path[path.length - 1]) return pair.key.range?.[0];
    }
  }
  return nodeOffset(doc, path);
}
