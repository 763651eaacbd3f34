// Refusals of GraphQL requests, answered the way GitLab's GraphqlController answers its own
// errors: {"errors":[{"message":"..."}]} (app/controllers/graphql_controller.rb render_error),
// so GraphQL clients report them as they would report GitLab's. The message names what was
// refused ("graphql: field x not allowed"); it never holds a token.
import { ProxyError, type ErrorCode, type Reason } from '../errors.ts';

/** `what` is the audit line's detail; the client reads it as "graphql: <what>". */
const graphqlRefusal = (code: ErrorCode, reason: Reason, what: string): ProxyError =>
  new ProxyError(code, reason, { message: `graphql: ${what}`, detail: what, format: 'graphql' });

/** The policy does not allow this request: 403. */
export const graphqlDenied = (what: string): ProxyError => graphqlRefusal('forbidden', 'graphql-denied', what);

/** The request cannot be read one way only: 400. */
export const graphqlMalformed = (what: string, detail?: string): ProxyError =>
  graphqlRefusal('malformed', 'graphql-malformed', detail === undefined ? what : `${what}: ${detail}`);

/** A GraphQL request whose body is not JSON: 415. */
export const graphqlUnsupportedMedia = (what: string): ProxyError => graphqlRefusal('unsupported-media', 'content-type', what);

/** The query does not parse: 400. graphql-js's message quotes the query text, which the client
 *  may read but the audit line, which never holds request values, does not get. */
export const graphqlSyntaxError = (parserMessage: string): ProxyError =>
  new ProxyError('malformed', 'graphql-malformed', { message: `graphql: syntax-error: ${parserMessage}`, detail: 'syntax-error', format: 'graphql' });
