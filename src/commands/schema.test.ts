import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClientSchema, PresetFileSchema } from '../policy/schema.ts';
import { SCHEMA_FILE, schemaText } from './schema.ts';

const CLI = join(import.meta.dirname, '..', 'cli.ts');

describe('policy JSON Schema', () => {
  it('is up to date in policies/policy.schema.json (run "npm run schema" when this fails)', () => {
    expect(readFileSync(SCHEMA_FILE, 'utf8')).toBe(schemaText());
    const r = spawnSync(process.execPath, [CLI, 'schema', '--check'], { encoding: 'utf8', timeout: 15_000 });
    expect(r.status).toBe(0);
  });

  it('names every key of a client and of a preset, as the loader knows them', () => {
    const schema = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as { anyOf: { properties: Record<string, { additionalProperties?: { properties: object } }> }[] };
    const [policy, preset] = schema.anyOf;
    expect(Object.keys(policy!.properties.clients!.additionalProperties!.properties).sort()).toEqual(Object.keys(ClientSchema.shape).sort());
    expect(Object.keys(preset!.properties).sort()).toEqual(Object.keys(PresetFileSchema.shape).sort());
    expect(Object.keys(ClientSchema.shape)).toEqual(expect.arrayContaining(['extends', 'remove', 'mode', 'tests']));
  });

  it('--check exits 1 for a stale file, and "--out -" prints the schema', () => {
    const stale = spawnSync(process.execPath, [CLI, 'schema', '--check', '--out', join(import.meta.dirname, 'schema.ts')], { encoding: 'utf8', timeout: 15_000 });
    expect(stale.status).toBe(1);
    expect(stale.stdout).toMatch(/is out of date: run "npm run schema"/);
    const out = spawnSync(process.execPath, [CLI, 'schema', '--out', '-'], { encoding: 'utf8', timeout: 15_000 });
    expect(out.stdout).toBe(schemaText());
  });
});
