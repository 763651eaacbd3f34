// Presets: named rule lists (policies/presets/*.yaml) that a client starts from with
// `extends:` and trims with `remove:`. A preset's rules keep the file and line they were
// written on, so the audit log and `explain` name the preset line that allowed a request.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, isAbsolute, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client, PolicyProblem } from '../types.ts';
import { Matcher } from './matcher.ts';
import { parseTests } from './policy-tests.ts';
import { parseObjectRule, RuleKeyError } from './constraints.ts';
import { parseRule, RuleSyntaxError, type Rule } from './rule.ts';
import { pinProblem } from './url-under.ts';
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
  /** What each client must set (name -> description), used in rules as { under: "${name}" }. */
  settings: ReadonlyMap<string, string>;
  /** The rules, with a stand-in value for each setting (for summaries of the preset itself). */
  rules: readonly Rule[];
  /** The rules with a client's values for the settings (all of them, each a valid pin). */
  rulesFor: (values: Readonly<Record<string, string>>) => Rule[];
  source: PresetSource;
}

/** `${name}`: a preset setting, the whole of an `under:` value. */
const SETTING_REF = /^\$\{([a-z][a-z0-9_]{0,63})\}$/;
/** What a setting stands for while the preset itself is checked and summarised. */
const STAND_IN_PIN = 'https://setting.invalid/';

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
  const settings = new Map(Object.entries(spec.settings ?? {}).map(([name, s]) => [name, s.description]));
  const standIns = Object.fromEntries([...settings.keys()].map((name) => [name, STAND_IN_PIN]));
  const entries: { spec: unknown; source: string }[] = [];
  const rules: Rule[] = [];
  const texts = new Map<string, number>();
  const used = new Set<string>();
  spec.allow.forEach((raw, i) => {
    const where = yaml.at(['allow', i]);
    const ruleSource = `${source.display}:${where.line}`;
    try {
      // A map is an object rule (method, path, constraints: src/policy/constraints.ts); its
      // `under:` values may name settings, checked here with a stand-in URL.
      const rule = typeof raw === 'string' ? parseRule(raw, ruleSource)
        : parseObjectRule(fillSettings(raw, standIns, (name) => (settings.has(name) ? used.add(name) : undefined)), ruleSource);
      const first = texts.get(rule.text);
      if (first !== undefined && typeof raw === 'string') problem(where, `rule is already listed on line ${first}`);
      texts.set(rule.text, where.line);
      rules.push(rule);
      entries.push({ spec: raw, source: ruleSource });
    } catch (err) {
      if (!(err instanceof RuleSyntaxError)) throw err;
      problem(err instanceof RuleKeyError ? yaml.at(['allow', i, ...err.keyPath]) : where, err.message);
    }
  });
  for (const name of settings.keys()) if (!used.has(name)) problem(yaml.at(['settings', name]), `setting "${name}" is used by no rule: use it as { under: "\${${name}}" } or remove it`);
  if (found.length > 0) {
    problems.push(...found.sort(byPosition));
    return undefined;
  }
  const rulesFor = (values: Readonly<Record<string, string>>): Rule[] =>
    entries.map((e) => (typeof e.spec === 'string' ? parseRule(e.spec, e.source) : parseObjectRule(fillSettings(e.spec, values), e.source)));
  return { name: spec.preset, description: spec.description, settings, rules, rulesFor, source };
}

/**
 * A copy of an object rule with each `under: "${name}"` replaced by the setting's value. A
 * setting anywhere else (inside a pattern, a path) is refused: only `under:` compares the
 * operator's URL as text, where a regular expression would read its dots as wildcards.
 */
function fillSettings(spec: unknown, values: Readonly<Record<string, string>>, seen?: (name: string) => void, key?: string): unknown {
  if (typeof spec === 'string') {
    if (!spec.includes('${')) return spec;
    const m = SETTING_REF.exec(spec);
    if (key !== 'under' || !m) throw new RuleSyntaxError(`"${spec}": a setting is the whole value of under:, e.g. { under: "\${webhook_url}" }`);
    seen?.(m[1]!);
    const value = values[m[1]!];
    if (value === undefined) throw new RuleSyntaxError(`"${spec}" names no setting of this preset (declare it under settings:)`);
    return value;
  }
  if (Array.isArray(spec)) return spec.map((v) => fillSettings(v, values, seen));
  if (spec !== null && typeof spec === 'object') return Object.fromEntries(Object.entries(spec).map(([k, v]) => [k, fillSettings(v, values, seen, k)]));
  return spec;
}

/** The client's values for the preset's settings, each a valid pin; undefined (with problems)
 *  when one is missing, unknown or not a URL the pin can be. */
function settingValues(preset: Preset, given: unknown, problem: (path: readonly PropertyKey[], message: string) => void): Record<string, string> | undefined {
  const values: Record<string, string> = {};
  let ok = true;
  const fail = (path: readonly PropertyKey[], message: string): void => {
    problem(path, message);
    ok = false;
  };
  const record = given !== null && typeof given === 'object' && !Array.isArray(given) ? (given as Record<string, unknown>) : {};
  for (const [name, description] of preset.settings) {
    const value = record[name];
    if (value === undefined) fail(['extends'], `preset ${preset.name} needs settings.${name}: ${description}`);
    else if (typeof value !== 'string') fail(['settings', name], `settings.${name} is a URL (a string)`);
    else {
      const bad = pinProblem(value);
      if (bad) fail(['settings', name], `settings.${name}: ${bad}`);
      else values[name] = value;
    }
  }
  for (const name of Object.keys(record)) {
    if (!preset.settings.has(name)) fail(['settings', name], `preset ${preset.name} has no setting "${name}"${preset.settings.size ? ` (it has ${[...preset.settings.keys()].join(', ')})` : ''}`);
  }
  return ok ? values : undefined;
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
      const values = settingValues(preset, spec.settings, problem);
      remove.forEach((text, i) => {
        if (typeof text !== 'string' || preset.rules.some((r) => r.text === text)) return;
        // The closest rule: the same path with other methods first, else the nearest text.
        const path = text.slice(text.indexOf(' ') + 1);
        const near = preset.rules.find((r) => r.text.endsWith(` ${path}`))?.text ?? nearest(text, preset.rules.map((r) => r.text), 0.25);
        problem(['remove', i], `"${text}" is not a rule of preset ${ref} (${preset.source.display})${near ? `; the closest rule is "${near}"` : ''}`);
      });
      const removed = new Set<unknown>(remove);
      if (values) inherited = preset.rulesFor(values).filter((r) => !removed.has(r.text));
    }
  } else if (spec.extends === undefined) {
    if (spec.remove !== undefined) problem(['remove'], 'remove takes rules out of a preset: it needs extends');
    if (spec.settings !== undefined) problem(['settings'], 'settings gives values a preset asks for: it needs extends');
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
