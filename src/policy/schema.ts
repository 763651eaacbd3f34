// The policy file's shape, defined once: the loader validates with it and the JSON Schema
// shipped for editors is generated from it, so the two cannot drift apart.
import { z } from 'zod';
import { GraphqlPolicySchema } from './graphql-policy.ts';
import { OAuthRegistrationSchema } from './oauth-registration.ts';
import { TOKEN_SCOPES } from './token-scopes.ts';

export const CLIENT_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** A preset's name, which is also its file name without ".yaml". */
export const PRESET_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** How a client names a preset: a path relative to a policy folder, without ".yaml", never
 *  absolute and never with ".." (every part starts with a letter or digit). */
export const PRESET_REF = /^(?:[a-z0-9][a-z0-9_-]{0,63}\/){0,4}[a-z0-9][a-z0-9._-]{0,63}$/;
/** A preset setting's name: `${webhook_url}` in the preset's rules. */
export const SETTING_NAME = /^[a-z][a-z0-9_]{0,63}$/;
/** A policy test's request: "METHOD TARGET", the target a path with an optional query. */
export const TEST_REQUEST = /^[A-Z]+ \/\S*$/;

const testRequest = (expect: string, example: string) =>
  z.string().regex(TEST_REQUEST, 'a test is "METHOD /api/v4/..." (upper-case method, one space, a path)')
    .describe(`A request the rules must ${expect}: "METHOD /api/v4/..." with real ids, e.g. "${example}".`);

export const PolicyTestSchema = z.union(
  [
    z.strictObject({ allow: testRequest('allow', 'GET /api/v4/projects/5') }),
    z.strictObject({ deny: testRequest('deny', 'DELETE /api/v4/projects/5') }),
  ],
  { error: 'a test is "- allow: METHOD PATH" or "- deny: METHOD PATH"' },
);

const ScopeListSchema = (what: string) =>
  z.array(z.union([z.string(), z.number().int().min(1)]), { error: `a list of ${what} full paths or numeric ids` }).optional();

/** An object rule, for the JSON Schema only: the loader reads it with src/policy/constraints.ts,
 *  which reports each mistake at its own key. */
const ConstraintSchema = z.union([
  z.union([z.string(), z.number(), z.boolean(), z.null()]).describe('Exactly this value.'),
  z.array(z.union([z.string(), z.number(), z.boolean(), z.null()])).min(1).describe('One of these values.'),
  z.strictObject({ pattern: z.string().describe('A regular expression (JavaScript, unicode); anchor it with ^ and $.') }),
  z.strictObject({ under: z.string().describe('A URL the value must equal or lie below, compared as text: "https://hooks.vendor.example/gitlab/". In a preset, "${setting}" names a value the client sets.') }),
]);
export const RuleObjectSchema = z.strictObject({
  method: z.union([z.string(), z.array(z.string()).min(1)]).describe('A method, a list or a comma string: POST, [GET, POST], "GET,POST", *.'),
  path: z.string().describe('The path, as in "METHODS PATH" rules: /api/v4/projects/:id/hooks.'),
  body: z.record(z.string(), ConstraintSchema).optional().describe('Body fields the request must carry, each matching its constraint.'),
  query: z.record(z.string(), ConstraintSchema).optional().describe('Query parameters the request must carry, each matching its constraint.'),
  deny_fields: z.array(z.string()).optional().describe('Keys that refuse the request when present in its body or query.'),
  projects: ScopeListSchema('project').describe('Narrow this rule to these projects (on top of the client\'s projects:).'),
  groups: ScopeListSchema('group').describe('Narrow this rule to these groups (on top of the client\'s groups:).'),
  quick_actions: z.array(z.string()).optional().describe('Quick actions a note or issue/merge request/epic description sent through this rule may run, without "/": [label, assign]. Others are refused (docs/policy.md).'),
  target: z.record(z.string(), ConstraintSchema).optional().describe('Fields the object the request acts on must have now (read from GitLab before forwarding), e.g. { url: { pattern: "^https://hooks\\.example\\.com/" } } on PUT/DELETE .../hooks/:hook_id.'),
});

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
  admin: z
    .boolean()
    .optional()
    .describe('Let this client\'s rules reach instance administration routes (admin class, src/catalogue/classes.ts). Credential routes stay refused.'),
  upstream_token_file: z
    .string()
    .min(1)
    .optional()
    .describe('Absolute path of a file holding this client\'s own GitLab token (its own service account), used instead of GITLAB_TOKEN. Re-read on reload.'),
  upstream_token_env: z
    .string()
    .min(1)
    .optional()
    .describe('Name of an environment variable holding this client\'s own GitLab token, used instead of GITLAB_TOKEN.'),
  rate_limit: z
    .string()
    .regex(/^[1-9][0-9]{0,8}\/(second|minute|hour)$/, 'rate_limit is "N/second", "N/minute" or "N/hour", e.g. "600/minute"')
    .optional()
    .describe('Sustained request rate for this client, per proxy replica: "600/minute", "10/second", "5000/hour". Over it: 429 with Retry-After.'),
  burst: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe('Requests allowed at once after a quiet spell (the token bucket\'s size); defaults to the N of rate_limit.'),
  source_ips: z
    .array(z.string())
    .optional()
    .describe('Addresses or CIDRs this client\'s tokens are accepted from (the client address behind TRUSTED_PROXIES); from anywhere else 401.'),
  allow: z
    .array(z.union([z.string(), z.record(z.string(), z.unknown())]))
    .optional()
    .describe('Rules "METHODS PATH": e.g. "GET,POST /api/v4/projects/:id/merge_requests/:iid/notes", or maps with method:, path: and constraints (docs/policy.md).'),
  projects: ScopeListSchema('project')
    .describe('Projects this client may name: full paths ("acme/docs"), "*" for one path segment ("acme/platform/*"), "**" for any depth, or numeric ids. Without it: no project scope.'),
  groups: ScopeListSchema('group')
    .describe('Groups this client may name, written like projects:. Groups and projects are separate lists: a group here does not put its projects in scope.'),
  scopes: z
    .array(z.enum(TOKEN_SCOPES, { error: `unknown scope name: use ${TOKEN_SCOPES.join(', ')}` }))
    .optional()
    .describe('Shorthands mirroring GitLab token scopes: read_api (every GET/HEAD under /api/v4), read_user (/user, /users reads), read_repository and write_repository (git over HTTP).'),
  graphql: GraphqlPolicySchema.optional(),
  oauth: OAuthRegistrationSchema.optional()
    .describe('An OAuth application for vendors that only speak OAuth: they sign in at /oauth/authorize and get this client\'s rules (docs/oauth.md).'),
  settings: z
    .record(z.string().regex(SETTING_NAME), z.string())
    .optional()
    .describe('Values the preset named in extends asks for (its settings:), e.g. { webhook_url: "https://hooks.vendor.example/gitlab/" }.'),
  extends: z
    .string()
    .regex(PRESET_REF, 'extends names a preset such as "presets/glean-readonly" (no ".yaml", no "..")')
    .optional()
    .describe('Start from a preset\'s rules: "presets/glean-readonly" is POLICY_DIR/presets/glean-readonly.yaml, else the built-in preset of that name.'),
  remove: z
    .array(z.string())
    .optional()
    .describe('Rules of the preset named in extends to leave out, each written exactly as in the preset.'),
  mode: z
    .enum(['enforce', 'report'])
    .optional()
    .describe('enforce (default): refuse what the rules do not allow. report: forward requests that only lack a rule, and audit them as decision "would-deny".'),
  tests: z
    .array(PolicyTestSchema)
    .optional()
    .describe('Requests `check` evaluates against the rules: "- allow: GET /api/v4/projects/5" or "- deny: DELETE /api/v4/projects/5".'),
});

export const PolicyFileSchema = z.strictObject({
  clients: z.record(z.string().regex(CLIENT_NAME, 'client names are lower case letters, digits, . _ -'), ClientSchema),
});

/** The file's outer shape; each client is then checked on its own so one bad client does not
 *  hide the problems of the others. */
export const PolicyFileShape = z.strictObject({ clients: z.record(z.string(), z.unknown()) });

export type ClientDoc = z.infer<typeof ClientSchema>;
export type PolicyFileDoc = z.infer<typeof PolicyFileSchema>;

/** A preset file (policies/presets/*.yaml): named rules clients take with `extends`. */
export const PresetFileSchema = z.strictObject({
  preset: z.string().regex(PRESET_NAME, 'preset names are lower case letters, digits, . _ -')
    .describe('The preset\'s name: its file name without ".yaml".'),
  description: z.string().optional().describe('What the preset is for, for people reading the policy.'),
  settings: z
    .record(z.string().regex(SETTING_NAME, 'setting names are lower case letters, digits and _'), z.strictObject({
      description: z.string().describe('What the operator must set, and where the vendor documents it.'),
    }))
    .optional()
    .describe('Values every client extending this preset must set (its settings:), used in rules as { under: "${name}" }: e.g. the vendor\'s webhook URL.'),
  allow: z.array(z.union([z.string(), z.record(z.string(), z.unknown())])).describe('Rules "METHODS PATH" or maps with method:, path: and constraints, as in a client\'s allow.'),
});

export type PresetFileDoc = z.infer<typeof PresetFileSchema>;
export type PolicyTestDoc = z.infer<typeof PolicyTestSchema>;

/** JSON Schema (draft-07) for editors: a policy file or a preset file. */
export function policyJsonSchema(): unknown {
  // Object rules are read by src/policy/constraints.ts; editors get their exact shape.
  const client = ClientSchema.extend({ allow: z.array(z.union([z.string(), RuleObjectSchema])).optional().describe(ClientSchema.shape.allow.description ?? '') });
  const policyFile = z.strictObject({ clients: z.record(z.string().regex(CLIENT_NAME, 'client names are lower case letters, digits, . _ -'), client) });
  const preset = PresetFileSchema.extend({ allow: z.array(z.union([z.string(), RuleObjectSchema])).describe(PresetFileSchema.shape.allow.description ?? '') });
  const file = z.union([policyFile, preset]).describe('A gitlab-scope-proxy policy file (clients:) or preset file (preset:).');
  return z.toJSONSchema(file, { target: 'draft-7', io: 'input', unrepresentable: 'any' });
}
