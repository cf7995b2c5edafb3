// Detector: one engine over every loaded rule, then each rule's validator on its candidates.
// Also runRuleExamples, the check behind every rule's `examples:` (used by tests and `rules test`).

import RE2 from 're2';
import { createEngine, type Engine } from './engine';
import { BUILTIN_RULES_DIR, loadRulePacks, type Category, type Rule, type RuleSet, type Severity } from './rules';
import { VALIDATORS, type Validator } from './validators/index.js';

export interface Finding {
  rule: string;
  category: Category;
  severity: Severity;
  /** UTF-16 offsets into the scanned text, `end` exclusive. */
  start: number;
  end: number;
  confidence?: number;
}

/** Characters of context each side handed to validators. */
export const CONTEXT_CHARS = 64;

interface Compiled {
  rule: Rule;
  validator?: Validator;
  /** Set when the validator judges capture group 1 rather than the whole match. */
  group?: RE2;
}

export class Detector {
  readonly #engine: Engine;
  readonly #rules: Compiled[];

  private constructor(ruleSet: RuleSet, prefer?: 'hyperscan' | 're2') {
    this.#rules = ruleSet.rules.map((rule) => {
      const c: Compiled = { rule };
      if (rule.validator) {
        c.validator = VALIDATORS[rule.validator];
        if (captureGroups(rule.pattern, rule.caseless) === 1) c.group = new RE2(rule.pattern, rule.caseless ? 'iu' : 'u');
      }
      return c;
    });
    this.#engine = createEngine(
      ruleSet.rules.map((r, id) => ({ id, pattern: r.pattern, caseless: r.caseless })),
      prefer,
    );
  }

  /** Loads the packs in `dirs` (the built-ins when none are given) and builds one engine over them. */
  static async create(dirs: readonly string[] = [BUILTIN_RULES_DIR], prefer?: 'hyperscan' | 're2'): Promise<Detector> {
    return new Detector(await loadRulePacks(dirs), prefer);
  }

  static fromRuleSet(ruleSet: RuleSet, prefer?: 'hyperscan' | 're2'): Detector {
    return new Detector(ruleSet, prefer);
  }

  get engineName(): 'hyperscan' | 're2' {
    return this.#engine.name;
  }

  /** Findings sorted by start, then rule order; candidates a validator rejects are dropped. */
  scan(text: string): Finding[] {
    const out: Finding[] = [];
    for (const m of this.#engine.scan(text)) {
      const c = this.#rules[m.id]!;
      const f: Finding = { rule: c.rule.id, category: c.rule.category, severity: c.rule.severity, start: m.start, end: m.end };
      if (c.validator) {
        const r = c.validator(this.#candidate(c, text.slice(m.start, m.end)), {
          before: text.slice(Math.max(0, m.start - CONTEXT_CHARS), m.start),
          after: text.slice(m.end, m.end + CONTEXT_CHARS),
        });
        if (!r.valid) continue;
        if (r.confidence !== undefined) f.confidence = r.confidence;
      }
      out.push(f);
    }
    return out;
  }

  /** What the validator sees: capture group 1 when the rule has one (e.g. the value after `password=`), else the match. */
  #candidate(c: Compiled, matched: string): string {
    if (!c.group) return matched;
    c.group.lastIndex = 0;
    const g = c.group.exec(matched);
    return g !== null && g.index === 0 && g[0].length === matched.length && typeof g[1] === 'string' ? g[1] : matched;
  }
}

/** Number of capturing groups in an RE2 pattern. */
function captureGroups(pattern: string, caseless: boolean): number {
  const m = new RE2(`(?:${pattern})|`, caseless ? 'iu' : 'u').exec('');
  return m === null ? 0 : m.length - 1;
}

export interface ExampleFailure {
  rule: string;
  file: string;
  kind: 'match' | 'no_match';
  example: string;
  /** What the detector found for this rule in the example. */
  found: Array<{ start: number; end: number; text: string }>;
}

/**
 * Checks every rule's examples with one detector over the whole set: each `match` string must yield at least
 * one finding of that rule, each `no_match` string none. Returns the failures (empty when all hold).
 */
export function runRuleExamples(ruleSet: RuleSet, prefer?: 'hyperscan' | 're2'): ExampleFailure[] {
  const detector = Detector.fromRuleSet(ruleSet, prefer);
  const failures: ExampleFailure[] = [];
  for (const rule of ruleSet.rules) {
    for (const kind of ['match', 'no_match'] as const) {
      for (const example of rule.examples[kind]) {
        const found = detector
          .scan(example)
          .filter((f) => f.rule === rule.id)
          .map((f) => ({ start: f.start, end: f.end, text: example.slice(f.start, f.end) }));
        if ((kind === 'match') !== found.length > 0) failures.push({ rule: rule.id, file: rule.file, kind, example, found });
      }
    }
  }
  return failures;
}
