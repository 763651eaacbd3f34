// Presets: named rule lists (policies/presets/*.yaml) that a client starts from with
// `extends:` and trims with `remove:`. A preset's rules keep the file and line they were
// written on, so the audit log and `explain` name the preset line that allowed a request.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, isAbsolute, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client, PolicyProblem } from '../types.ts';
import { Matcher } from './matcher.ts';
import { parseTests } from './policy-tests.ts';
import { parseRule, RuleSyntaxError, type Rule } from './rule.ts';
import { PRESET_REF, PresetFileSchema, type ClientDoc } from './schema.ts';
import { keysAt, nearest, unknownKeyMessage } from './suggest.ts';
import { parseYaml, type Located } from './yaml-locate.ts';

/** The package's own policies/ folder; its presets/ sub-folder holds the built-in presets. */
export const BUILTIN_POLICY_DIR = fileURLToPath(new URL('../../policies/', import.meta.url));

export interface PresetSource {
  ref: string;
  path: string;
  /** How problems and rule sources name the file: "policies/presets/glean.yaml". */
  display: string;
  text: string;
}

export interface PresetFinder {
  find: (ref: string) => PresetSource | undefined;
  /** The folders searched, in order, for messages. */
  dirs: readonly string[];
}

export interface Preset {
  name: string;
  description: string | undefined;
  rules: readonly Rule[];
  source: PresetSource;
}

/** Looks a reference such as "presets/glean" up as DIR/presets/glean.yaml (or .yml) in each
 *  folder in turn: POLICY_DIR first, then the built-in policies. */
export function presetFinder(dirs: readonly string[], displayBase = process.cwd()): PresetFinder {
  return {
    dirs,
    find: (ref) => {
      for (const dir of dirs) {
        for (const ext of ['.yaml', '.yml']) {
          const path = join(dir, ref + ext);
          if (isFile(path)) return readPreset(path, ref, displayBase);
        }
      }
      return undefined;
    },
  };
}

export function readPreset(path: string, ref: string, displayBase = process.cwd()): PresetSource {
  const rel = relative(displayBase, path);
  const display = rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
  return { ref, path, display, text: readFileSync(path, 'utf8') };
}

/** Preset files directly in `dir` (dir/presets/ for a policy directory), sorted by name. */
export function presetFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => /\.ya?ml$/.test(n) && !n.startsWith('.')).map((n) => join(dir, n)).filter(isFile).sort();
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The presets one policy load uses: each is read and compiled once, and its problems are
 *  reported once, at the preset's own lines. */
export class Presets {
  readonly #finder: PresetFinder;
  readonly #cache = new Map<string, Preset | string>();
  readonly problems: PolicyProblem[] = [];
  readonly sources: PresetSource[] = [];

  constructor(finder: PresetFinder) {
    this.#finder = finder;
  }

  /** The preset, or why it cannot be used. */
  get(ref: string): Preset | string {
    let hit = this.#cache.get(ref);
    if (hit === undefined) {
      const source = this.#finder.find(ref);
      if (source) {
        this.sources.push(source);
        hit = compilePreset(source, this.problems) ?? `preset "${ref}" has problems (${source.display})`;
      } else {
        hit = `unknown preset "${ref}": no ${ref}.yaml in ${this.#finder.dirs.join(' or ')}`;
      }
      this.#cache.set(ref, hit);
    }
    return hit;
  }
}

/** Validates a preset file; undefined (with problems) if it cannot be used. */
export function compilePreset(source: PresetSource, problems: PolicyProblem[]): Preset | undefined {
  const yaml = parseYaml(source.display, source.text);
  const found: PolicyProblem[] = [];
  const problem = (where: Located, message: string): void => void found.push({ ...where, message });
  for (const e of [...yaml.doc.errors, ...yaml.doc.warnings]) problem(yaml.offset(e.pos[0]), e.message.split('\n')[0] ?? 'YAML error');
  if (yaml.doc.errors.length > 0) {
    problems.push(...found);
    return undefined;
  }
  const parsed = PresetFileSchema.safeParse(yaml.doc.toJS({ maxAliasCount: 100 }) ?? {});
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) problem(yaml.keyAt([...issue.path, key]), unknownKeyMessage(key, keysAt(PresetFileSchema, issue.path), key === 'clients' ? ' (a preset has preset:, description: and allow:)' : ''));
      } else {
        problem(yaml.at(issue.path), `${issue.path.join('.') || 'preset'}: ${issue.message}`);
      }
    }
    problems.push(...found.sort(byPosition));
    return undefined;
  }
  const spec = parsed.data;
  const fileName = basename(source.path).replace(/\.ya?ml$/, '');
  if (spec.preset !== fileName) problem(yaml.at(['preset']), `preset "${spec.preset}" must be named after its file ("${fileName}")`);
  const rules: Rule[] = [];
  const texts = new Map<string, number>();
  spec.allow.forEach((text, i) => {
    const where = yaml.at(['allow', i]);
    const first = texts.get(text);
    if (first !== undefined) problem(where, `rule is already listed on line ${first}`);
    texts.set(text, where.line);
    try {
      rules.push(parseRule(text, `${source.display}:${where.line}`));
    } catch (err) {
      if (!(err instanceof RuleSyntaxError)) throw err;
      problem(where, err.message);
    }
  });
  if (found.length > 0) {
    problems.push(...found.sort(byPosition));
    return undefined;
  }
  return { name: spec.preset, description: spec.description, rules, source };
}

const byPosition = (a: PolicyProblem, b: PolicyProblem): number => a.line - b.line || a.col - b.col;

/**
 * Completes a client built from its own `allow:` with what v1 did not have: the rules of the
 * preset it extends (minus `remove:`, ahead of its own), its mode and its tests. False if
 * the client cannot be used; `problems` says why.
 */
export function completeClient(
  client: Client | undefined,
  spec: ClientDoc,
  valid: boolean,
  presets: Presets,
  at: (path: readonly PropertyKey[]) => Located,
  problems: PolicyProblem[],
): boolean {
  let ok = true;
  const problem = (path: readonly PropertyKey[], message: string): void => {
    problems.push({ ...at(path), message });
    ok = false;
  };
  // When other keys are wrong (`valid` false, `spec` unchecked), extends and remove are still
  // checked if they have the right shape, so every problem shows at once.
  const ref = typeof spec.extends === 'string' && PRESET_REF.test(spec.extends) ? spec.extends : undefined;
  const remove = Array.isArray(spec.remove) ? spec.remove : [];
  let inherited: readonly Rule[] = [];
  if (ref !== undefined) {
    const preset = presets.get(ref);
    if (typeof preset === 'string') {
      problem(['extends'], preset);
    } else {
      remove.forEach((text, i) => {
        if (typeof text !== 'string' || preset.rules.some((r) => r.text === text)) return;
        // The closest rule: the same path with other methods first, else the nearest text.
        const path = text.slice(text.indexOf(' ') + 1);
        const near = preset.rules.find((r) => r.text.endsWith(` ${path}`))?.text ?? nearest(text, preset.rules.map((r) => r.text), 0.25);
        problem(['remove', i], `"${text}" is not a rule of preset ${ref} (${preset.source.display})${near ? `; the closest rule is "${near}"` : ''}`);
      });
      const removed = new Set<unknown>(remove);
      inherited = preset.rules.filter((r) => !removed.has(r.text));
    }
  } else if (spec.extends === undefined && spec.remove !== undefined) {
    problem(['remove'], 'remove takes rules out of a preset: it needs extends');
  }
  if (!client || !valid) return false;
  client.preset = ref;
  client.mode = spec.mode ?? 'enforce';
  client.tests = parseTests(spec.tests ?? [], (i) => at(['tests', i]));
  if (inherited.length > 0) {
    client.rules = [...inherited, ...client.rules];
    client.matcher = new Matcher(client.rules);
  }
  return ok;
}
