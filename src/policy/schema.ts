// The policy file's shape, defined once: the loader validates with it and the JSON Schema
// shipped for editors is generated from it, so the two cannot drift apart.
import { z } from 'zod';

export const CLIENT_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export const ClientSchema = z.strictObject({
  description: z.string().optional().describe('What this client is, for people reading the policy.'),
  disabled: z.boolean().optional().describe('Refuse every token of this client with 401.'),
  revoked_jti: z.array(z.string().min(1)).optional().describe('Token ids (jti) refused with 401.'),
  tokens_issued_after: z
    .union([z.string(), z.number(), z.date()])
    .optional()
    .describe('Refuse tokens issued (iat) before this time: an ISO 8601 timestamp or Unix seconds.'),
  allow_token_self_read: z
    .boolean()
    .optional()
    .describe('Allow GET /api/v4/personal_access_tokens/self (read the real token\'s metadata). Rotation is never allowed.'),
  allow: z
    .array(z.string())
    .optional()
    .describe('Rules "METHODS PATH": e.g. "GET,POST /api/v4/projects/:id/merge_requests/:iid/notes".'),
});

export const PolicyFileSchema = z.strictObject({
  clients: z.record(z.string().regex(CLIENT_NAME, 'client names are lower case letters, digits, . _ -'), ClientSchema),
});

/** The file's outer shape; each client is then checked on its own so one bad client does not
 *  hide the problems of the others. */
export const PolicyFileShape = z.strictObject({ clients: z.record(z.string(), z.unknown()) });

export type ClientDoc = z.infer<typeof ClientSchema>;
export type PolicyFileDoc = z.infer<typeof PolicyFileSchema>;

export function policyJsonSchema(): unknown {
  return z.toJSONSchema(PolicyFileSchema, { target: 'draft-7', io: 'input', unrepresentable: 'any' });
}
