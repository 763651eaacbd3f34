// Project/group scope of a GraphQL document at every depth, for a client with projects: or
// groups:. No schema is available at run time, so the document is typed with one table taken
// from GitLab's GraphQL reference (scope-fields.json): starting from Query, every field must be
// in the table for the type it is selected on, and its return type says how to go on. Pure: the
// project and group paths it finds are returned for the caller to resolve through GitLab.
//
// The safe reading, decided here and documented in docs/security.md:
//  - A field missing from the table is refused (deny by default), mutations included.
//  - A project, group or namespace may be reached only through the root fields project(fullPath:),
//    group(fullPath:) and namespace(fullPath:), whose path is checked. Any other field returning
//    one (a connection or list of them, Group.parent, Query.projects, ...) is refused, because
//    which projects it returns is known only to GitLab.
//  - Below the root, an argument whose name speaks of a project, group or namespace
//    (projectId, groupPath, includeSubgroups, fullPath, ...) is refused: it may point elsewhere.
//  - Fragments and inline fragments must be on the type they are spread in; @include/@skip are
//    ignored (the selection is treated as present); aliases do not matter, names do.
import {
  Kind,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValueNode,
} from 'graphql';
import { graphqlDenied, graphqlMalformed } from './errors.ts';
import table from './scope-fields.json' with { type: 'json' };

export type ScopeKind = 'project' | 'group';

/** A project or group the document names by full path, for the caller to check. */
export interface ScopeReference {
  kind: ScopeKind;
  /** The root field that names it: "project", "group", "namespace". */
  field: string;
  fullPath: string;
}

interface RootSpec {
  type: string;
  kind: ScopeKind;
  argument: string;
}

const TYPES: Readonly<Record<string, Readonly<Record<string, string>>>> = table.types;
const SCOPE_TYPES: Readonly<Record<string, string>> = table.scopeTypes;
const ROOTS: Readonly<Record<string, RootSpec>> = table.roots as Record<string, RootSpec>;
const LEAVES: ReadonlySet<string> = new Set(table.leafTypes);
/** Argument names that may designate another project, group or namespace. */
const SCOPE_ARGUMENT = /project|group|namespace|fullpath/i;

export function scopeReferences(doc: DocumentNode, variables: Readonly<Record<string, unknown>>): ScopeReference[] {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const def of doc.definitions) if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
  const found: ScopeReference[] = [];
  for (const def of doc.definitions) {
    if (def.kind !== Kind.OPERATION_DEFINITION) continue;
    if (def.operation !== 'query') throw graphqlDenied(`operation ${def.operation} cannot be scope-checked (the client has projects:/groups:)`);
    walk(def.selectionSet, 'Query', [], { op: def, fragments, variables, found });
  }
  return found;
}

interface Context {
  op: OperationDefinitionNode;
  fragments: ReadonlyMap<string, FragmentDefinitionNode>;
  variables: Readonly<Record<string, unknown>>;
  found: ScopeReference[];
}

function walk(set: SelectionSetNode, type: string, path: readonly string[], ctx: Context): void {
  for (const sel of set.selections) {
    if (sel.kind === Kind.FIELD) {
      field(sel, type, path, ctx);
    } else {
      const on = sel.kind === Kind.INLINE_FRAGMENT ? sel.typeCondition?.name.value : ctx.fragments.get(sel.name.value)?.typeCondition.name.value;
      const body = sel.kind === Kind.INLINE_FRAGMENT ? sel.selectionSet : ctx.fragments.get(sel.name.value)?.selectionSet;
      if (!body) throw graphqlMalformed(`unknown fragment ${sel.kind === Kind.FRAGMENT_SPREAD ? sel.name.value : ''}`);
      // The table has no interfaces or unions: a fragment must be on the very type it is
      // spread in (GitLab's validation refuses the others anyway).
      if (on !== undefined && on !== type) throw graphqlDenied(`fragment on ${on} at ${label(path) || type} cannot be scope-checked`);
      walk(body, type, path, ctx);
    }
  }
}

function field(node: FieldNode, type: string, path: readonly string[], ctx: Context): void {
  const name = node.name.value;
  const here = [...path, name];
  if (name === '__typename') return;
  // Introspection describes the schema, not data (the policy decides whether it is allowed).
  if (type === 'Query' && (name === '__schema' || name === '__type')) return;
  const returns = TYPES[type]?.[name];
  if (returns === undefined) throw graphqlDenied(`field ${label(here)} cannot be scope-checked (not in the scope table)`);
  const root = type === 'Query' ? ROOTS[name] : undefined;
  if (root) {
    ctx.found.push({ kind: root.kind, field: name, fullPath: fullPathOf(node, root, ctx) });
  } else {
    for (const arg of node.arguments ?? []) {
      if (SCOPE_ARGUMENT.test(arg.name.value)) throw graphqlDenied(`argument ${arg.name.value} of ${label(here)} may name another project or group`);
    }
    if (SCOPE_TYPES[returns]) throw graphqlDenied(`field ${label(here)} returns a ${SCOPE_TYPES[returns]} not named by its full path`);
  }
  if (LEAVES.has(returns)) return;
  if (!TYPES[returns]) throw graphqlDenied(`field ${label(here)} cannot be scope-checked (type ${returns} not in the scope table)`);
  if (node.selectionSet) walk(node.selectionSet, returns, here, ctx);
}

const label = (path: readonly string[]): string => path.join('.');

/** The full path a root field looks up, as GitLab will read it (literal, variable or default). */
function fullPathOf(node: FieldNode, root: RootSpec, ctx: Context): string {
  const args = node.arguments ?? [];
  for (const arg of args) if (arg.name.value !== root.argument) throw graphqlDenied(`argument ${arg.name.value} of ${node.name.value} cannot be scope-checked`);
  if (args.length > 1) throw graphqlMalformed(`${node.name.value}: ${root.argument} given twice`);
  const value = args[0] ? stringValue(node.name.value, args[0].value, ctx) : null;
  // fullPath is required (ID!): without one GitLab refuses the query; refused here as well.
  if (value === null) throw graphqlDenied(`${node.name.value} without a ${root.argument}`);
  // A numeric string would be resolved as an id by the scope resolver, but looked up as a path
  // by GitLab (Query.project(fullPath:)); only path-shaped values are checked.
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*(?:\/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$/.test(value) || /^[0-9]+$/.test(value)) {
    throw graphqlDenied(`${root.kind} "${value}" is not a full path`);
  }
  return value;
}

function stringValue(field: string, value: ValueNode, ctx: Context): string | null {
  if (value.kind === Kind.STRING) return value.value;
  if (value.kind === Kind.NULL) return null;
  if (value.kind === Kind.VARIABLE) {
    const name = value.name.value;
    const def = ctx.op.variableDefinitions?.find((d) => d.variable.name.value === name);
    if (!def) throw graphqlMalformed(`variable $${name} is not defined`);
    if (Object.hasOwn(ctx.variables, name)) {
      const v = ctx.variables[name];
      if (typeof v === 'string' || v === null) return v;
      throw graphqlDenied(`${field}: fullPath must be a string`);
    }
    // Not provided: graphql-ruby uses the variable's default value, else null.
    return def.defaultValue ? stringValue(field, def.defaultValue, ctx) : null;
  }
  // Numbers and lists would be coerced by the ID type to something else than was checked.
  throw graphqlDenied(`${field}: fullPath must be a string`);
}
