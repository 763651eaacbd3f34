// `schema`: the JSON Schema editors use for policy and preset files, generated from the zod
// definition the loader validates with (src/policy/schema.ts). `npm run schema` writes it to
// policies/policy.schema.json; a test fails when that file is out of date.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { policyJsonSchema } from '../policy/schema.ts';

/** Where the package ships it; policy files point at it with a yaml-language-server line. */
export const SCHEMA_FILE = fileURLToPath(new URL('../../policies/policy.schema.json', import.meta.url));

export function schemaText(): string {
  const generated = policyJsonSchema() as Record<string, unknown>;
  const schema = { $schema: generated.$schema, title: 'gitlab-scope-proxy policy or preset file', ...generated };
  return JSON.stringify(schema, null, 2) + '\n';
}

/** Writes the schema to `file` ("-": standard output). With `check`, only compares: exit 1
 *  when the file differs from what the zod definition generates. */
export function writeSchema(file: string, check: boolean, out: (t: string) => void = (t) => process.stdout.write(t)): number {
  const text = schemaText();
  if (check) {
    let current = '';
    try {
      current = readFileSync(file, 'utf8');
    } catch {
      // missing: out of date
    }
    if (current === text) return 0;
    out(`${file} is out of date: run "npm run schema"\n`);
    return 1;
  }
  if (file === '-') out(text);
  else writeFileSync(file, text);
  return 0;
}
