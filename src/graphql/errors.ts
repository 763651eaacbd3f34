// Refusals of GraphQL requests, answered the way GitLab's GraphqlController answers its own
// errors: {"errors":[{"message":"..."}]} (app/controllers/graphql_controller.rb render_error),
// so GraphQL clients report them as they would report GitLab's.
import { ProxyError, type ErrorCode } from '../errors.ts';

export class GraphqlRefusal extends ProxyError {
  constructor(code: ErrorCode, reason: string, detail?: string) {
    super(code, reason, { detail: detail ?? reason });
    this.name = 'GraphqlRefusal';
  }

  /** Status and body in GraphQL's error format. */
  response(): { status: number; body: string } {
    return { status: this.status, body: JSON.stringify({ errors: [{ message: this.detail ?? this.reason }] }) };
  }
}

/** The policy does not allow this request: 403, reason "graphql: <what>". */
export const graphqlDenied = (what: string): GraphqlRefusal => new GraphqlRefusal('forbidden', `graphql: ${what}`);

/** The request cannot be read one way only: 400, reason "graphql: <what>". */
export const graphqlMalformed = (what: string, detail?: string): GraphqlRefusal =>
  new GraphqlRefusal('malformed', `graphql: ${what}`, detail === undefined ? undefined : `graphql: ${what}: ${detail}`);
