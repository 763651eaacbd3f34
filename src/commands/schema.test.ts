import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../cli.ts';
import { ClientSchema, PresetFileSchema } from '../policy/schema.ts';
import { SCHEMA_FILE, schemaText } from './schema.ts';

/** The `schema` command in-process, as the binary runs it: exit code and standard output. */
async function schema(...args: string[]): Promise<{ status: number; stdout: string }> {
  let stdout = '';
  const status = await main(['schema', ...args], { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: () => true }, env: {} });
  return { status, stdout };
}

describe('policy JSON Schema', () => {
  it('is up to date in policies/policy.schema.json (run "npm run schema" when this fails)', async () => {
    expect(readFileSync(SCHEMA_FILE, 'utf8')).toBe(schemaText());
    const r = await schema('--check');
    expect(r.status).toBe(0);
  });

  it('names every key of a client and of a preset, as the loader knows them', () => {
    const schema = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as { anyOf: { properties: Record<string, { additionalProperties?: { properties: object } }> }[] };
    const [policy, preset] = schema.anyOf;
    expect(Object.keys(policy!.properties.clients!.additionalProperties!.properties).sort()).toEqual(Object.keys(ClientSchema.shape).sort());
    expect(Object.keys(preset!.properties).sort()).toEqual(Object.keys(PresetFileSchema.shape).sort());
    expect(Object.keys(ClientSchema.shape)).toEqual(expect.arrayContaining(['extends', 'remove', 'mode', 'tests']));
  });

  it('--check exits 1 for a stale file, and "--out -" prints the schema', async () => {
    const stale = await schema('--check', '--out', join(import.meta.dirname, 'schema.ts'));
    expect(stale.status).toBe(1);
    expect(stale.stdout).toMatch(/is out of date: run "npm run schema"/);
    const out = await schema('--out', '-');
    expect(out.stdout).toBe(schemaText());
  });
});
