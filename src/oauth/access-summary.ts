// What a vendor will be able to reach, in words a person approving it can read on a phone:
// first GitLab's routes its rules reach by risk class (the route catalogue,
// src/catalogue/coverage.ts, as `check` reports it), then its rules by method and path, reads
// apart from writes, its scope shorthands, GraphQL and project/group scope.
import { reachOf } from '../catalogue/coverage.ts';
import type { Client } from '../types.ts';

export interface AccessSection {
  heading: string;
  items: string[];
}

const READ = new Set(['GET', 'HEAD']);
const PREFIX = '/api/v4';

export function accessSummary(client: Client): AccessSection[] {
  const reads = new Map<string, Set<string>>();
  const writes = new Map<string, Set<string>>();
  for (const rule of client.rules) {
    const path = pathOf(rule.text);
    for (const method of rule.methods) {
      const into = READ.has(method) ? reads : writes;
      if (READ.has(method) && method === 'HEAD' && rule.methods.has('GET')) continue;
      into.set(path, (into.get(path) ?? new Set()).add(method));
    }
  }
  const sections: AccessSection[] = [];
  const classes = reachOf(client.rules, client.admin).filter((k) => k.routes.length > 0).map((k) =>
    `${k.class}: ${k.routes.length} route${k.routes.length === 1 ? '' : 's'}, e.g. ${k.routes.slice(0, 2).map((r) => `${r.method} ${r.template.slice(PREFIX.length)}`).join(', ')}`);
  if (classes.length > 0) sections.push({ heading: 'GitLab routes it reaches, by risk', items: classes });
  const list = (m: Map<string, Set<string>>): string[] => [...m].sort(([a], [b]) => a.localeCompare(b)).map(([path, methods]) => `${[...methods].sort().join(', ')} ${path}`);
  if (client.scopes.size > 0) sections.push({ heading: 'GitLab token scopes', items: [...client.scopes].map(scopeText) });
  if (writes.size > 0) sections.push({ heading: 'Can change', items: list(writes) });
  if (reads.size > 0) sections.push({ heading: 'Can read', items: list(reads) });
  if (client.graphql) sections.push({ heading: 'GraphQL', items: [...client.graphql.operations].map((op) => `${op}: ${fieldNames(op === 'query' ? client.graphql!.query : client.graphql!.mutation)}`) });
  const where: string[] = [];
  if (client.projects) where.push(`projects: ${client.projects.map((p) => p.text).join(', ')}`);
  if (client.groups) where.push(`groups: ${client.groups.map((g) => g.text).join(', ')}`);
  sections.push({ heading: 'Where', items: where.length > 0 ? where : ['every project and group the proxy\'s GitLab account can reach'] });
  if (sections.length === 1) sections.unshift({ heading: 'Can read', items: ['nothing: this client has no rules'] });
  return sections;
}

function fieldNames(tree: { all: boolean; children: Map<string, unknown> }): string {
  return tree.all ? 'every field' : [...tree.children.keys()].join(', ') || 'none';
}

function pathOf(ruleText: string): string {
  const space = ruleText.indexOf(' ');
  const path = space === -1 ? ruleText : ruleText.slice(space + 1);
  return path.startsWith(`${PREFIX}/`) ? path.slice(PREFIX.length) : path;
}

function scopeText(scope: string): string {
  switch (scope) {
    case 'read_api': return 'read_api: read everything the API shows';
    case 'read_user': return 'read_user: read user profiles';
    case 'read_repository': return 'read_repository: clone its projects';
    case 'write_repository': return 'write_repository: push to its projects';
    default: return scope;
  }
}
