// Rule packs: YAML files under rules/ (built in) or operator directories, each `pack: name` plus `rules:`.
// Loading checks every rule (field types, validator names, RE2 syntax, duplicate ids) and reports all problems
// at once, each as `file:line: rules[i].field: problem`, like config errors.

import { readFile, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import RE2 from 're2';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Node as YamlNode, type YAMLMap } from 'yaml';
import { SluiceError } from '../errors';
import { VALIDATORS } from './validators/index.js';

export { CATEGORIES, SEVERITIES, type Category, type Severity } from './categories';
import { CATEGORIES, SEVERITIES, type Category, type Severity } from './categories';

export interface Rule {
  id: string;
  category: Category;
  severity: Severity;
  /** RE2 syntax. */
  pattern: string;
  caseless: boolean;
  /** A VALIDATORS key; the validator sees capture group 1 when the pattern has exactly one group. */
  validator?: string;
  /** 0..1, the finding's confidence when the validator gives none. */
  confidence: number;
  /** Lower-cased; when set, the rule reports only if one of them occurs in the scanned segment (any case). */
  keywords?: string[];
  /** Words near a match that raise or lower its confidence. */
  context?: { boost: string[]; damp: string[]; window?: number };
  /** Matched values (or capture group 1) never reported: exact strings, or RE2 patterns written /like this/. */
  allowlist?: string[];
  /** Score-style rules (code languages): only report when at least this many matches occur in the segment, as one finding. */
  minCount?: number;
  description?: string;
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
  /** Built-in (or earlier) rules replaced by a later directory's rule of the same id. */
  overridden: Array<{ id: string; file: string; by: string }>;
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
const RULE_KEYS = ['id', 'description', 'category', 'severity', 'confidence', 'pattern', 'caseless', 'validator', 'keywords', 'context', 'allowlist', 'min_count', 'examples'];
export const DEFAULT_CONFIDENCE = 0.8;

/**
 * Loads every *.yaml / *.yml in `dirs` (in order, files sorted by name); throws SLUICE_RULE_INVALID listing every
 * problem. A rule in a later directory replaces the earlier rule with the same id, in place (that is how operators
 * tune a built-in); the same id twice within one directory is an error.
 */
export async function loadRulePacks(dirs: readonly string[]): Promise<RuleSet> {
  const problems: RuleProblem[] = [];
  const set: RuleSet = { packs: [], rules: [], overridden: [] };
  const byId = new Map<string, { rule: Rule; dir: number; at: number }>();
  for (const [d, dir] of dirs.entries()) {
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
      const pack: RuleSet = { packs: [], rules: [], overridden: [] };
      parsePack(text, file, pack, problems);
      set.packs.push(...pack.packs);
      for (const r of pack.rules) {
        const prev = byId.get(r.id);
        if (!prev) {
          byId.set(r.id, { rule: r, dir: d, at: set.rules.length });
          set.rules.push(r);
        } else if (prev.dir === d) {
          problems.push({ file: r.file, line: r.line, key: `rules[${r.index}](${r.id}).id`, message: `duplicate rule id "${r.id}" (first defined at ${prev.rule.file}:${prev.rule.line})` });
        } else {
          set.overridden.push({ id: r.id, file: prev.rule.file, by: r.file });
          set.rules[prev.at] = r;
          byId.set(r.id, { rule: r, dir: d, at: prev.at });
        }
      }
    }
  }
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
  // Problems name the rule by id as well as position, so a message reads on its own.
  const rawId = map.get('id');
  if (typeof rawId === 'string' && rawId !== '') path = `${path}(${rawId})`;
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
    const unsupported = unsupportedSyntax(pattern);
    if (unsupported) fail(fields.get('pattern')!.value, `${path}.pattern`, unsupported);
    else {
      try {
        new RE2(pattern, caseless ? 'iu' : 'u');
      } catch (err) {
        fail(fields.get('pattern')!.value, `${path}.pattern`, `invalid RE2 pattern: ${(err as Error).message}`);
      }
    }
  }
  const validator = str('validator', false);
  if (validator !== undefined && !Object.hasOwn(VALIDATORS, validator)) {
    fail(fields.get('validator')!.value, `${path}.validator`, `unknown validator "${validator}"; expected one of ${Object.keys(VALIDATORS).join(', ')}`);
  }
  const description = str('description', false);
  const num = (k: string, ok: (n: number) => boolean, want: string): number | undefined => {
    const f = fields.get(k);
    if (!f) return undefined;
    if (isScalar(f.value) && typeof f.value.value === 'number' && ok(f.value.value)) return f.value.value;
    fail(f.value ?? f.key, `${path}.${k}`, `expected ${want}`);
    return undefined;
  };
  const confidence = num('confidence', (n) => n >= 0 && n <= 1, 'a number from 0 to 1') ?? DEFAULT_CONFIDENCE;
  const minCount = num('min_count', (n) => Number.isInteger(n) && n >= 1, 'an integer >= 1');
  const strings = (n: YamlNode | null, k: string): string[] | undefined => {
    if (!isSeq(n) || n.items.length === 0) {
      fail(n, `${path}.${k}`, 'expected a non-empty list of strings');
      return undefined;
    }
    const out: string[] = [];
    n.items.forEach((s, j) => {
      if (isScalar(s) && typeof s.value === 'string' && s.value !== '') out.push(s.value);
      else fail(s as YamlNode, `${path}.${k}[${j}]`, 'expected a non-empty string');
    });
    return out;
  };
  const kf = fields.get('keywords');
  const keywords = kf ? strings(kf.value, 'keywords')?.map((w) => w.toLowerCase()) : undefined;
  const af = fields.get('allowlist');
  const allowlist = af ? strings(af.value, 'allowlist') : undefined;
  allowlist?.forEach((entry, j) => {
    if (!isAllowPattern(entry)) return;
    try {
      new RE2(entry.slice(1, -1), 'u');
    } catch (err) {
      fail(af!.value, `${path}.allowlist[${j}]`, `invalid RE2 pattern: ${(err as Error).message}`);
    }
  });
  let context: Rule['context'];
  const cxf = fields.get('context');
  if (cxf) {
    if (!isMap(cxf.value)) fail(cxf.value ?? cxf.key, `${path}.context`, 'expected a mapping with keys boost, damp, window');
    else {
      context = { boost: [], damp: [] };
      for (const pair of cxf.value.items) {
        const k = isScalar(pair.key) ? String(pair.key.value) : '';
        const v = pair.value as YamlNode | null;
        if (k === 'boost' || k === 'damp') context[k] = strings(v, `context.${k}`) ?? [];
        else if (k === 'window') {
          if (isScalar(v) && typeof v.value === 'number' && Number.isInteger(v.value) && v.value > 0 && v.value <= CONTEXT_WINDOW_MAX) context.window = v.value;
          else fail(v ?? (pair.key as YamlNode), `${path}.context.window`, `expected an integer from 1 to ${CONTEXT_WINDOW_MAX}`);
        } else fail(pair.key as YamlNode, `${path}.context.${k}`, 'unknown key; expected one of boost, damp, window');
      }
    }
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
  return {
    id,
    category,
    severity,
    pattern,
    caseless,
    confidence,
    ...(validator !== undefined ? { validator } : {}),
    ...(description !== undefined ? { description } : {}),
    ...(keywords ? { keywords } : {}),
    ...(context ? { context } : {}),
    ...(allowlist ? { allowlist } : {}),
    ...(minCount !== undefined ? { minCount } : {}),
    examples,
    line: lineOf(node, lc),
  };
}

/** Context windows are bounded by what the detector hands validators (CONTEXT_CHARS in scan.ts). */
export const CONTEXT_WINDOW_MAX = 64;

/** `/…/` entries in an allowlist are RE2 patterns matched against the whole value. */
export function isAllowPattern(entry: string): boolean {
  return entry.length > 2 && entry.startsWith('/') && entry.endsWith('/');
}

/**
 * Names the constructs outside the RE2/Hyperscan common subset that authors reach for most (lookaround and
 * backreferences, from PCRE habits), so the error says why rather than RE2's terse "invalid perl operator".
 */
export function unsupportedSyntax(pattern: string): string | undefined {
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      const n = pattern[i + 1] ?? '';
      if (!inClass && /[1-9]/.test(n)) return `backreference \\${n} is not supported (RE2 and Hyperscan match in linear time, without backreferences)`;
      if (!inClass && n === 'k' && pattern[i + 2] === '<') return 'named backreference \\k<…> is not supported (RE2 and Hyperscan have no backreferences)';
      i++;
    } else if (inClass) {
      if (c === ']') inClass = false;
    } else if (c === '[') {
      inClass = true;
      if (pattern[i + 1] === '^') i++;
      if (pattern[i + 1] === ']') i++;
    } else if (c === '(' && pattern[i + 1] === '?') {
      const rest = pattern.slice(i + 2, i + 4);
      if (rest.startsWith('=') || rest.startsWith('!')) return `lookahead (?${rest[0]}…) is not supported (RE2 and Hyperscan have no lookaround); match the context in the pattern or use keywords/context`;
      if (rest === '<=' || rest === '<!') return `lookbehind (?${rest}…) is not supported (RE2 and Hyperscan have no lookaround); match the context in the pattern or use keywords/context`;
    }
  }
  return undefined;
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
