// Reads one GraphQL request (query text, operationName, variables) the way GitLab's
// graphql-ruby would, checks it against a client's GraphQL policy, and returns the root
// fields that name a project or group so that the caller can check their scope.
// Pure: no I/O. Every refusal is a GraphqlRefusal naming the first thing refused.
import {
  Kind,
  parse,
  type DocumentNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValueNode,
} from 'graphql';
import { graphqlDenied, graphqlMalformed } from './errors.ts';
import type { FieldTree, GraphqlPolicy } from '../policy/graphql-policy.ts';

export type OperationType = 'query' | 'mutation';

/** One GraphQL request: an object body, or one entry of a batch. */
export interface GraphqlEntry {
  query: string;
  operationName: string | null;
  variables: Readonly<Record<string, unknown>>;
}

export interface EntryAnalysis {
  /** Every root field of every operation, fragments expanded: "project", "mutation.createIssue". */
  roots: { operation: OperationType; field: string; fullPath: string | null | undefined }[];
}

const INTROSPECTION = new Set(['__schema', '__type']);
/** Fields visited after expanding fragments: fragment spreads can multiply a 10,000-character
 *  query into billions of fields ("fragment bombs"); GitLab would refuse those too. */
const MAX_VISITS = 20_000;
/** graphql-js stops lexing after this many tokens (a 10,000-character query has fewer). */
const MAX_TOKENS = 10_000;

export function analyzeEntry(entry: GraphqlEntry, policy: GraphqlPolicy): EntryAnalysis {
  let doc: DocumentNode;
  try {
    doc = parse(entry.query, { noLocation: true, maxTokens: MAX_TOKENS });
  } catch (err) {
    // graphql-ruby and graphql-js disagree on some texts GitLab would still run (a raw newline
    // inside "..." is escaped first: graphql_controller.rb escape_single_quoted_newlines);
    // refusing every text graphql-js cannot read keeps one reading.
    throw graphqlMalformed('syntax-error', err instanceof Error ? err.message : 'cannot parse the query');
  }

  const operations: OperationDefinitionNode[] = [];
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const def of doc.definitions) {
    if (def.kind === Kind.OPERATION_DEFINITION) {
      operations.push(def);
    } else if (def.kind === Kind.FRAGMENT_DEFINITION) {
      if (fragments.has(def.name.value)) throw graphqlMalformed(`fragment ${def.name.value} is defined twice`);
      fragments.set(def.name.value, def);
    } else {
      throw graphqlMalformed('only operations and fragments may be sent');
    }
  }
  selectOperation(operations, entry.operationName);

  const roots: EntryAnalysis['roots'] = [];
  for (const op of operations) {
    // Every operation of the document is checked, not only the one operationName selects:
    // the result then does not depend on which one GitLab runs.
    const type = op.operation;
    if (type !== 'query' && type !== 'mutation') throw graphqlDenied(`operation ${type} not allowed`);
    if (!policy.operations.has(type)) throw graphqlDenied(`operation ${type} not allowed`);
    if (policy.operationNames && !policy.operationNames.has(op.name?.value ?? '')) {
      throw graphqlDenied(op.name ? `operation name ${op.name.value} not allowed` : 'anonymous operation not allowed (operation_names is set)');
    }
    const walker = new Walker(type, policy, fragments, op, entry.variables, roots);
    walker.walk(op.selectionSet, [], 0, []);
  }
  return { roots };
}

/** GitLab runs the operation named by operationName, or the only one (graphql-ruby
 *  Query#selected_operation); anything else is an error there and refused here. */
function selectOperation(operations: readonly OperationDefinitionNode[], operationName: string | null): void {
  if (operations.length === 0) throw graphqlMalformed('the document has no operation');
  const names = new Set<string>();
  for (const op of operations) {
    if (!op.name) {
      if (operations.length > 1) throw graphqlMalformed('an anonymous operation must be the only one');
      continue;
    }
    if (names.has(op.name.value)) throw graphqlMalformed(`operation ${op.name.value} is defined twice`);
    names.add(op.name.value);
  }
  if (operationName === null) {
    if (operations.length > 1) throw graphqlMalformed('several operations need an operationName');
    return;
  }
  if (!names.has(operationName)) throw graphqlMalformed(`no operation named ${operationName}`);
}

class Walker {
  #visits = 0;
  readonly #type: OperationType;
  readonly #policy: GraphqlPolicy;
  readonly #fragments: ReadonlyMap<string, FragmentDefinitionNode>;
  readonly #op: OperationDefinitionNode;
  readonly #variables: Readonly<Record<string, unknown>>;
  readonly #roots: EntryAnalysis['roots'];

  constructor(
    type: OperationType,
    policy: GraphqlPolicy,
    fragments: ReadonlyMap<string, FragmentDefinitionNode>,
    op: OperationDefinitionNode,
    variables: Readonly<Record<string, unknown>>,
    roots: EntryAnalysis['roots'],
  ) {
    this.#type = type;
    this.#policy = policy;
    this.#fragments = fragments;
    this.#op = op;
    this.#variables = variables;
    this.#roots = roots;
  }

  /** Fields are checked by name, never by alias, with fragments and inline fragments expanded
   *  in place (their type conditions do not change the path). */
  walk(set: SelectionSetNode, path: readonly string[], depth: number, fragmentStack: readonly string[]): void {
    for (const sel of set.selections) {
      if (sel.kind === Kind.INLINE_FRAGMENT) {
        this.walk(sel.selectionSet, path, depth, fragmentStack);
      } else if (sel.kind === Kind.FRAGMENT_SPREAD) {
        const name = sel.name.value;
        const fragment = this.#fragments.get(name);
        if (!fragment) throw graphqlMalformed(`unknown fragment ${name}`);
        if (fragmentStack.includes(name)) throw graphqlMalformed(`fragment ${name} spreads itself`);
        this.walk(fragment.selectionSet, path, depth, [...fragmentStack, name]);
      } else {
        if (++this.#visits > MAX_VISITS) throw graphqlDenied('query too complex (too many fields once fragments are expanded)');
        const name = sel.name.value;
        const fieldPath = [...path, name];
        if (depth + 1 > this.#policy.maxDepth) throw graphqlDenied(`query deeper than max_depth ${this.#policy.maxDepth} at ${this.#label(fieldPath)}`);
        if (!this.#allowed(fieldPath)) throw graphqlDenied(`field ${this.#label(fieldPath)} not allowed`);
        if (path.length === 0) this.#roots.push({ operation: this.#type, field: name, fullPath: this.#fullPath(name, sel.arguments ?? []) });
        if (sel.selectionSet) this.walk(sel.selectionSet, fieldPath, depth + 1, fragmentStack);
      }
    }
  }

  #label(path: readonly string[]): string {
    return (this.#type === 'mutation' ? 'mutation.' : '') + path.join('.');
  }

  #allowed(path: readonly string[]): boolean {
    const name = path[path.length - 1]!;
    if (name === '__typename') return true;
    // __schema and __type exist only on the query root (GraphQL spec, "Schema Introspection").
    if (path.slice(1).some((p) => INTROSPECTION.has(p))) return false;
    if (INTROSPECTION.has(path[0]!)) {
      if (this.#type !== 'query') return false;
      if (this.#policy.introspection) return true;
    }
    let node: FieldTree = this.#type === 'query' ? this.#policy.query : this.#policy.mutation;
    for (const part of path) {
      if (node.all) return true;
      const child = node.children.get(part);
      if (!child) return false;
      node = child;
    }
    return true;
  }

  /** The `fullPath` argument of a root field: undefined when it has none, null when it is
   *  null or not given, else the string GitLab will look up. */
  #fullPath(field: string, args: readonly { name: { value: string }; value: ValueNode }[]): string | null | undefined {
    const given = args.filter((a) => a.name.value === 'fullPath');
    if (given.length === 0) return undefined;
    if (given.length > 1) throw graphqlMalformed(`${field}: fullPath given twice`);
    return this.#string(field, given[0]!.value);
  }

  #string(field: string, value: ValueNode): string | null {
    if (value.kind === Kind.STRING) return value.value;
    if (value.kind === Kind.NULL) return null;
    if (value.kind === Kind.VARIABLE) {
      const name = value.name.value;
      const def = this.#op.variableDefinitions?.find((d) => d.variable.name.value === name);
      if (!def) throw graphqlMalformed(`variable $${name} is not defined`);
      if (Object.hasOwn(this.#variables, name)) {
        const v = this.#variables[name];
        if (typeof v === 'string' || v === null) return v;
        throw graphqlDenied(`${field}: fullPath must be a string`);
      }
      // Not provided: graphql-ruby uses the variable's default value, else null.
      return def.defaultValue ? this.#string(field, def.defaultValue) : null;
    }
    // Numbers and lists would be coerced by the ID type to something else than was checked.
    throw graphqlDenied(`${field}: fullPath must be a string`);
  }
}
