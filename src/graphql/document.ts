// Reads one GraphQL request (query text, operationName, variables) the way GitLab's
// graphql-ruby would, checks it against a client's GraphQL policy, and returns the parsed
// document and its root fields (scope is checked on the document by scope-walk.ts).
// Pure: no I/O. Every refusal is a GraphQL refusal (src/graphql/errors.ts) naming the first thing refused.
import {
  Kind,
  parse,
  type DocumentNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import { graphqlDenied, graphqlMalformed, graphqlSyntaxError } from './errors.ts';
import { readingDifference } from './gitlab-text.ts';
import type { FieldTree, GraphqlPolicy } from '../policy/graphql-policy.ts';

export type OperationType = 'query' | 'mutation';

/** One GraphQL request: an object body, or one entry of a batch. */
export interface GraphqlEntry {
  query: string;
  operationName: string | null;
  variables: Readonly<Record<string, unknown>>;
  /** True for a non-batch request: GitLab rewrites its text first (see gitlab-text.ts). */
  preprocessed: boolean;
}

export interface EntryAnalysis {
  /** The parsed document, as checked: what the proxy forwards (printed). */
  document: DocumentNode;
  /** Every root field of every operation, fragments expanded: "project", "mutation.createIssue". */
  roots: { operation: OperationType; field: string }[];
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
    throw graphqlSyntaxError(err instanceof Error ? err.message : 'cannot parse the query');
  }
  const difference = readingDifference(entry.query, entry.preprocessed);
  if (difference) throw graphqlMalformed(`ambiguous-text: ${difference}`);

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
    const walker = new Walker(type, policy, fragments, roots);
    walker.walk(op.selectionSet, [], 0, []);
  }
  return { document: doc, roots };
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

/**
 * Fields refused for every client, at any depth, in queries and mutations: the ones that
 * return or create secrets. GitLab's GraphQL reference lists CI/CD variable values
 * (Query/Project/Group.ciVariables, CiVariable.value; PipelineSchedule.variables), runner and
 * agent tokens (Runner.ephemeralAuthenticationToken, ClusterAgentTokenCreatePayload.secret),
 * and token mutations (personalAccessTokenCreate, ...). Matched by name, broadly: a field
 * whose name speaks of a token, secret, password, private key or variables is refused, so a
 * new one is refused too (REST: the credential class, src/catalogue/classes.ts).
 */
const CREDENTIAL_FIELD = /token|secret|password|private_?key|variables?$/i;

class Walker {
  #visits = 0;
  readonly #type: OperationType;
  readonly #policy: GraphqlPolicy;
  readonly #fragments: ReadonlyMap<string, FragmentDefinitionNode>;
  readonly #roots: EntryAnalysis['roots'];

  constructor(
    type: OperationType,
    policy: GraphqlPolicy,
    fragments: ReadonlyMap<string, FragmentDefinitionNode>,
    roots: EntryAnalysis['roots'],
  ) {
    this.#type = type;
    this.#policy = policy;
    this.#fragments = fragments;
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
        // The floor, as for REST's credential routes: no policy reads or makes a credential.
        if (CREDENTIAL_FIELD.test(name)) throw graphqlDenied(`field ${this.#label(fieldPath)} names a credential (the GraphQL floor: no policy allows it)`);
        if (!this.#allowed(fieldPath)) throw graphqlDenied(`field ${this.#label(fieldPath)} not allowed`);
        if (path.length === 0) this.#roots.push({ operation: this.#type, field: name });
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
}
