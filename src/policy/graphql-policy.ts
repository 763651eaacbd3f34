// The `graphql:` key of a client: which GraphQL operations and fields it may send to
// /api/graphql. Defined once here (zod), used by the policy schema and compiled by the loader.
import { z } from 'zod';
import type { FieldTree, GraphqlPolicy } from '../types.ts';

export type { FieldTree, GraphqlPolicy };

/** A field entry: a root field ("project"), a dotted path ("group.descendantGroups"), and
 *  for mutations the same behind "mutation." ("mutation.createIssue"). Each part is a
 *  GraphQL name: a letter or "_", then letters, digits, "_" (GraphQL spec, "Names"). */
export const FIELD_ENTRY = /^(?:mutation\.)?[_A-Za-z][_0-9A-Za-z]*(?:\.[_A-Za-z][_0-9A-Za-z]*)*$/;
const NAME = /^[_A-Za-z][_0-9A-Za-z]*$/;

/** GitLab refuses query texts longer than 10,000 characters (app/controllers/graphql_controller.rb
 *  MAX_QUERY_SIZE, summed over a batch); GitlabSchema's own depth limit is 15 for anonymous users. */
export const GITLAB_MAX_QUERY_SIZE = 10_000;
export const DEFAULT_MAX_DEPTH = 15;

export const GraphqlPolicySchema = z
  .strictObject({
    operations: z
      .array(z.enum(['query', 'mutation']))
      .optional()
      .describe('Operation types the client may send: query, mutation (default [query]). Subscriptions are never forwarded.'),
    fields: z
      .array(z.string().regex(FIELD_ENTRY, 'a field is "name", "parent.child" or "mutation.name"'))
      .describe('Allowed fields: "project" allows the root field and everything below it; "group.descendantGroups" allows root group but below it only descendantGroups (and all below that); "mutation.createIssue" names a mutation.'),
    operation_names: z
      .array(z.string().regex(NAME, 'an operation name is a GraphQL name'))
      .optional()
      .describe('When set, every operation must be named and its name must be listed.'),
    introspection: z
      .boolean()
      .optional()
      .describe('Allow the introspection fields __schema and __type (default false). __typename is always allowed.'),
    max_depth: z.number().int().min(1).max(100).optional().describe('Deepest field nesting allowed, fragments expanded (default 15).'),
    max_length: z
      .number()
      .int()
      .min(1)
      .max(GITLAB_MAX_QUERY_SIZE)
      .optional()
      .describe('Longest query text in characters, summed over a batch (default and maximum 10000, GitLab\'s own limit).'),
  })
  .describe('GraphQL on POST /api/graphql (docs/policy.md, "GraphQL").');

export type GraphqlPolicyDoc = z.infer<typeof GraphqlPolicySchema>;



const tree = (all = false): FieldTree => ({ all, children: new Map() });

/** Problems a valid-shaped `graphql:` section can still have (reported by the loader). */
export function graphqlPolicyProblems(doc: GraphqlPolicyDoc): string[] {
  const ops = new Set(doc.operations ?? ['query']);
  const problems: string[] = [];
  for (const f of doc.fields) {
    if (f.startsWith('mutation.') && !ops.has('mutation')) problems.push(`graphql.fields: "${f}" names a mutation but operations does not include mutation`);
  }
  return problems;
}

export function compileGraphqlPolicy(doc: GraphqlPolicyDoc): GraphqlPolicy {
  const query = tree();
  const mutation = tree();
  for (const entry of doc.fields) {
    const parts = entry.split('.');
    let node = query;
    if (parts[0] === 'mutation' && parts.length > 1) {
      node = mutation;
      parts.shift();
    }
    for (const name of parts) {
      let child = node.children.get(name);
      if (!child) node.children.set(name, (child = tree()));
      node = child;
    }
    node.all = true;
  }
  return {
    operations: new Set(doc.operations ?? ['query']),
    query,
    mutation,
    operationNames: doc.operation_names ? new Set(doc.operation_names) : undefined,
    introspection: doc.introspection ?? false,
    maxDepth: doc.max_depth ?? DEFAULT_MAX_DEPTH,
    maxLength: doc.max_length ?? GITLAB_MAX_QUERY_SIZE,
    source: 'graphql',
  };
}

/** `scopes: [read_api]` without a `graphql:` section: queries with any field (introspection
 *  included, as GitLab allows it for read_api tokens), never mutations. */
export const READ_API_GRAPHQL: GraphqlPolicy = {
  operations: new Set(['query']),
  query: tree(true),
  mutation: tree(),
  operationNames: undefined,
  introspection: true,
  maxDepth: DEFAULT_MAX_DEPTH,
  maxLength: GITLAB_MAX_QUERY_SIZE,
  source: 'scopes: read_api',
};
