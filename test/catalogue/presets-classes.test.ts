// Every preset states what it reaches in GitLab's route table, by risk class, in its header,
// and reaches no credential or admin route.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { classSummary } from '../../src/catalogue/coverage.ts';
import { compilePreset, presetFiles, readPreset } from '../../src/policy/extends.ts';
import type { PolicyProblem } from '../../src/policy/load.ts';

const DIR = join(import.meta.dirname, '..', '..', 'policies', 'presets');

describe.each(presetFiles(DIR))('%s', (file) => {
  const problems: PolicyProblem[] = [];
  const source = readPreset(file, file);
  const preset = compilePreset(source, problems)!;
  const summary = classSummary(preset.rules);

  it('reaches no credential or admin route', () => {
    expect(problems).toEqual([]);
    expect(summary).toMatch(/; credential 0, admin 0$/);
  });

  it('states its class summary in its header comment', () => {
    expect(source.text).toContain(`# Class summary (GitLab routes reached, \`check\`): ${summary}\n`);
  });
});
