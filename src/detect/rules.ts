// Rule packs: YAML files under rules/ (built in) or operator directories, each `pack: name` plus `rules:`.
// Loading checks every rule (field types, validator names, RE2 syntax, duplicate ids) and reports all problems
// at once, each as `file:line: rules[i].field: problem`, like config errors.

import { readFile, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import RE2 from 're2';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Node as YamlNode, type YAMLMap } from 'yaml';
import { SluiceError } from '../errors';
import { VALIDATORS } from './validators/index.js';

export const CATEGORIES = ['pii', 'phi', 'financial', 'credential', 'source_code', 'other'] as const;
export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Category = (typeof CATEGORIES)[number];
export type Severity = (typeof SEVERITIES)[number];

export interface Rule {
  id: string;
  category: Category;
  severity: Severity;
  /** RE2 syntax. */
  pattern: string;
  caseless: boolean;
  /** A VALIDATORS key; the validator sees capture group 1 when the pattern has exactly one group. */
  validator?: string;
  examples: { match: string[]; no_match: string[] };
  /** Where the rule came from, for messages. */
  pack: string;
  file: string;
  line: number;
  /** Position in its pack's `rules:` list. */
  index: number;
}

export interface RuleSet {
  packs: Array<{ name: string; file: string }>;
  rules: Rule[];
}

export interface RuleProblem {
  file: string;
  line: number;
  key: string;
  message: string;
}

/** The built-in packs: <repo>/rules, from dist/src/detect. */
export const BUILTIN_RULES_DIR = resolve(__dirname, '..', '..', '..', 'rules');

const ID_RE = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const RULE_KEYS = ['id', 'category', 'severity', 'pattern', 'caseless', 'validator', 'examples'];

/** Loads every *.yaml / *.yml in `dirs` (in order, files sorted by name); throws SLUICE_RULE_INVALID listing every problem. */
export async function loadRulePacks(dirs: readonly string[]): Promise<RuleSet> {
  const problems: RuleProblem[] = [];
  const set: RuleSet = { packs: [], rules: [] };
  for (const dir of dirs) {
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => /\.ya?ml$/i.test(n)).sort();
    } catch (err) {
      throw new SluiceError('SLUICE_RULE_INVALID', `cannot read rules directory ${dir}: ${(err as Error).message}`, { cause: err });
    }
    for (const name of names) {
      const file = join(dir, name);
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        problems.push({ file, line: 0, key: '(file)', message: `cannot read: ${(err as Error).message}` });
        continue;
      }
      parsePack(text, file, set, problems);
    }
  }
  // Duplicate ids, across and within packs: the id is what findings and policies name.
  const seen = new Map<string, Rule>();
  set.rules.forEach((r) => {
    const first = seen.get(r.id);
    if (first) {
      problems.push({ file: r.file, line: r.line, key: `rules[${r.index}].id`, message: `duplicate rule id "${r.id}" (first defined at ${first.file}:${first.line})` });
    } else seen.set(r.id, r);
  });
  if (problems.length > 0) {
    // Per file in load order, then by line, so an operator fixes each file top to bottom.
    const order = new Map<string, number>();
    for (const p of [...set.packs.map((x) => x.file), ...problems.map((x) => x.file)]) if (!order.has(p)) order.set(p, order.size);
    problems.sort((a, b) => order.get(a.file)! - order.get(b.file)! || a.line - b.line);
    throw ruleError(problems);
  }
  return set;
}

/** Parses one pack's text, appending its rules to `set` and its problems to `problems`. */
export function parsePack(text: string, file: string, set: RuleSet, problems: RuleProblem[]): void {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const push = (node: YamlNode | null | undefined, key: string, message: string) => problems.push({ file, line: lineOf(node, lc), key, message });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) problems.push({ file, line: lc.linePos(e.pos[0]).line, key: '(yaml)', message: e.message.split('\n')[0] ?? e.message });
    return;
  }
  const root = doc.contents as YamlNode | null;
  if (!isMap(root)) {
    push(root, '(root)', 'expected a mapping with keys pack, rules');
    return;
  }
  let packName = '';
  let rulesNode: YamlNode | null = null;
  let sawRules = false;
  for (const pair of root.items) {
    const k = isScalar(pair.key) ? String(pair.key.value) : '';
    const v = pair.value as YamlNode | null;
    if (k === 'pack') {
      if (isScalar(v) && typeof v.value === 'string' && v.value.trim() !== '') packName = v.value;
      else push(v ?? (pair.key as YamlNode), 'pack', 'expected a non-empty name');
    } else if (k === 'rules') {
      sawRules = true;
      rulesNode = v;
    } else push(pair.key as YamlNode, k, 'unknown key; expected one of pack, rules');
  }
  if (!packName && !problems.some((p) => p.file === file && p.key === 'pack')) push(root, 'pack', 'is required');
  if (!sawRules) push(root, 'rules', 'is required');
  else if (!isSeq(rulesNode)) push(rulesNode ?? root, 'rules', 'expected a list of rules');
  set.packs.push({ name: packName, file });
  if (!isSeq(rulesNode)) return;
  rulesNode.items.forEach((item, i) => {
    const rule = parseRule(item as YamlNode | null, `rules[${i}]`, push, lc);
    if (rule) set.rules.push({ ...rule, pack: packName, file, index: i });
  });
}

type Push = (node: YamlNode | null | undefined, key: string, message: string) => void;

function parseRule(node: YamlNode | null, path: string, push: Push, lc: LineCounter): Omit<Rule, 'pack' | 'file' | 'index'> | undefined {
  if (!isMap(node)) {
    push(node, path, 'expected a mapping');
    return undefined;
  }
  const map = node as YAMLMap<unknown, unknown>;
  let bad = false;
  const fail: Push = (n, k, m) => {
    bad = true;
    push(n, k, m);
  };
  const fields = new Map<string, { key: YamlNode; value: YamlNode | null }>();
  for (const pair of map.items) {
    const k = isScalar(pair.key) ? String(pair.key.value) : '';
    if (!RULE_KEYS.includes(k)) fail(pair.key as YamlNode, `${path}.${k}`, `unknown key; expected one of ${RULE_KEYS.join(', ')}`);
    else fields.set(k, { key: pair.key as YamlNode, value: pair.value as YamlNode | null });
  }
  const str = (k: string, required: boolean): string | undefined => {
    const f = fields.get(k);
    if (!f) {
      if (required) fail(node, `${path}.${k}`, 'is required');
      return undefined;
    }
    if (!isScalar(f.value) || typeof f.value.value !== 'string' || f.value.value === '') {
      fail(f.value ?? f.key, `${path}.${k}`, 'expected a non-empty string');
      return undefined;
    }
    return f.value.value;
  };
  const oneOf = <T extends string>(k: string, allowed: readonly T[]): T | undefined => {
    const v = str(k, true);
    if (v === undefined) return undefined;
    if (!(allowed as readonly string[]).includes(v)) {
      fail(fields.get(k)!.value, `${path}.${k}`, `"${v}" is not one of ${allowed.join(', ')}`);
      return undefined;
    }
    return v as T;
  };

  const id = str('id', true);
  if (id !== undefined && !ID_RE.test(id)) fail(fields.get('id')!.value, `${path}.id`, `"${id}" is not kebab-case (lower-case letters, digits, single hyphens)`);
  const category = oneOf('category', CATEGORIES);
  const severity = oneOf('severity', SEVERITIES);
  const pattern = str('pattern', true);
  let caseless = false;
  const cf = fields.get('caseless');
  if (cf) {
    if (isScalar(cf.value) && typeof cf.value.value === 'boolean') caseless = cf.value.value;
    else fail(cf.value ?? cf.key, `${path}.caseless`, 'expected true or false');
  }
  if (pattern !== undefined) {
    try {
      new RE2(pattern, caseless ? 'iu' : 'u');
    } catch (err) {
      fail(fields.get('pattern')!.value, `${path}.pattern`, `invalid RE2 pattern: ${(err as Error).message}`);
    }
  }
  const validator = str('validator', false);
  if (validator !== undefined && !Object.hasOwn(VALIDATORS, validator)) {
    fail(fields.get('validator')!.value, `${path}.validator`, `unknown validator "${validator}"; expected one of ${Object.keys(VALIDATORS).join(', ')}`);
  }
  const examples = { match: [] as string[], no_match: [] as string[] };
  const ef = fields.get('examples');
  if (ef) {
    if (!isMap(ef.value)) fail(ef.value ?? ef.key, `${path}.examples`, 'expected a mapping with keys match, no_match');
    else {
      for (const pair of ef.value.items) {
        const k = isScalar(pair.key) ? String(pair.key.value) : '';
        const v = pair.value as YamlNode | null;
        if (k !== 'match' && k !== 'no_match') {
          fail(pair.key as YamlNode, `${path}.examples.${k}`, 'unknown key; expected match or no_match');
          continue;
        }
        if (!isSeq(v)) {
          fail(v ?? (pair.key as YamlNode), `${path}.examples.${k}`, 'expected a list of strings');
          continue;
        }
        v.items.forEach((s, j) => {
          if (isScalar(s) && typeof s.value === 'string') examples[k].push(s.value);
          else fail(s as YamlNode, `${path}.examples.${k}[${j}]`, 'expected a string');
        });
      }
    }
  }
  if (bad || id === undefined || category === undefined || severity === undefined || pattern === undefined) return undefined;
  return { id, category, severity, pattern, caseless, ...(validator !== undefined ? { validator } : {}), examples, line: lineOf(node, lc) };
}

function lineOf(node: YamlNode | null | undefined, lc: LineCounter): number {
  const start = node?.range?.[0];
  return start == null ? 0 : lc.linePos(start).line;
}

function ruleError(problems: RuleProblem[]): SluiceError {
  const lines = problems.map((p) => `  ${p.file}:${p.line}: ${p.key}: ${p.message}`);
  const err = new SluiceError('SLUICE_RULE_INVALID', `invalid rule pack (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n${lines.join('\n')}`);
  (err as SluiceError & { problems: RuleProblem[] }).problems = problems;
  return err;
}
