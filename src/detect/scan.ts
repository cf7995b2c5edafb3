// Detector: one engine over every loaded rule, then each rule's validator on its candidates.
// Also runRuleExamples, the check behind every rule's `examples:` (used by tests and `rules test`).

import RE2 from 're2';
import { createEngine, type Engine, type Prebuilt } from './engine';
import { digestValue, maskValue } from './findings';
import { BUILTIN_RULES_DIR, isAllowPattern, loadRulePacks, type Category, type Rule, type RuleSet, type Severity } from './rules';
import { VALIDATORS, scoreConfidence, type Validator } from './validators/index.js';

export interface Finding {
  rule: string;
  category: Category;
  severity: Severity;
  /** 0..1: the validator's, else the rule's, adjusted by the rule's context words. */
  confidence: number;
  /** UTF-16 offsets into the scanned text, `end` exclusive. */
  start: number;
  end: number;
  /** The value with its middle masked (see maskValue). */
  masked: string;
  /** HMAC-SHA256 of the value under the data_dir key, when the detector has one (not on score findings). */
  digest?: string;
  /** Score rules (min_count): how many matches this one finding stands for, from `start` to `end`, within the first SCORE_SAMPLE_CHARS. */
  count?: number;
  /** The raw value: only when the scan was asked for values. */
  value?: string;
}

export interface DetectorOptions {
  prefer?: 'hyperscan' | 're2';
  /** Key for Finding.digest; without one, findings carry no digest. */
  digestKey?: Buffer;
  /** Another detector's compiled engines for the same rule set (from prebuilt()), to skip compiling. */
  prebuilt?: DetectorPrebuilt;
}

/** Characters of context each side handed to validators. */
export const CONTEXT_CHARS = 64;

interface Compiled {
  rule: Rule;
  validator?: Validator;
  /** Set when the validator (and allowlist, mask, digest) judge capture group 1 rather than the whole match. */
  useGroup: boolean;
  allowExact?: Set<string>;
  allowPatterns?: RE2[];
}

/**
 * Score rules (min_count: code languages) judge only the first this-many characters of a segment. Telling that a
 * segment carries Python needs a sample, not a megabyte, and these rules match so often that scanning all of a
 * large source file costs more than every other rule together (bench/scan.ts, source_1mb).
 */
export const SCORE_SAMPLE_CHARS = 64 * 1024;

/** Compiled engines of a detector, for another thread to rebuild it without compiling (see Detector.prebuilt). */
export interface DetectorPrebuilt {
  main: Prebuilt;
  score?: Prebuilt;
}

export class Detector {
  readonly #engine: Engine;
  readonly #scoreEngine: Engine | undefined;
  readonly #rules: Compiled[];
  readonly #digestKey: Buffer | undefined;
  readonly ruleSet: RuleSet;

  private constructor(ruleSet: RuleSet, options: DetectorOptions) {
    this.ruleSet = ruleSet;
    this.#digestKey = options.digestKey;
    this.#rules = ruleSet.rules.map((rule) => {
      const c: Compiled = { rule, useGroup: captureGroups(rule.pattern, rule.caseless) === 1 };
      if (rule.validator) c.validator = VALIDATORS[rule.validator];
      if (rule.allowlist) {
        c.allowExact = new Set(rule.allowlist.filter((e) => !isAllowPattern(e)));
        c.allowPatterns = rule.allowlist.filter(isAllowPattern).map((e) => new RE2(`^(?:${e.slice(1, -1)})$`, 'u'));
      }
      return c;
    });
    // Engine ids are indices into ruleSet.rules, split between the full-text engine and the sampled score engine.
    const patterns = ruleSet.rules.map((r, id) => ({ id, pattern: r.pattern, caseless: r.caseless, score: r.minCount !== undefined }));
    this.#engine = createEngine(patterns.filter((p) => !p.score), options.prefer, options.prebuilt?.main);
    const score = patterns.filter((p) => p.score);
    this.#scoreEngine = score.length > 0 ? createEngine(score, options.prefer, options.prebuilt?.score) : undefined;
  }

  /** The compiled engines, for workers to rebuild this detector cheaply; undefined for RE2 (nothing to share). */
  prebuilt(): DetectorPrebuilt | undefined {
    const main = this.#engine.prebuilt?.();
    if (!main) return undefined;
    const score = this.#scoreEngine?.prebuilt?.();
    return score ? { main, score } : { main };
  }

  /** Loads the packs in `dirs` (the built-ins when none are given) and builds one engine over them. */
  static async create(dirs: readonly string[] = [BUILTIN_RULES_DIR], options: DetectorOptions = {}): Promise<Detector> {
    return new Detector(await loadRulePacks(dirs), options);
  }

  static fromRuleSet(ruleSet: RuleSet, options: DetectorOptions = {}): Detector {
    return new Detector(ruleSet, options);
  }

  get engineName(): 'hyperscan' | 're2' {
    return this.#engine.name;
  }

  /**
   * Findings sorted by start, then rule order. Candidates a validator rejects, allowlisted values, and rules whose
   * keywords are absent from `text` are dropped; min_count rules below their count report nothing.
   */
  scan(text: string, options: { values?: boolean } = {}): Finding[] {
    const out: Finding[] = [];
    let lower: string | undefined;
    /** Per rule index: keyword verdict for this text (computed once), and score-style accumulators. */
    let keywordOk: Map<number, boolean> | undefined;
    let scored: Map<number, Finding> | undefined;
    let matches = this.#engine.scan(text);
    if (this.#scoreEngine) {
      let sample = text;
      if (text.length > SCORE_SAMPLE_CHARS) {
        // Never cut a surrogate pair in half.
        const cut = (text.charCodeAt(SCORE_SAMPLE_CHARS - 1) & 0xfc00) === 0xd800 ? SCORE_SAMPLE_CHARS - 1 : SCORE_SAMPLE_CHARS;
        sample = text.slice(0, cut);
      }
      const more = this.#scoreEngine.scan(sample);
      if (more.length > 0) matches = matches.concat(more).sort((a, b) => a.start - b.start || a.id - b.id || a.end - b.end);
    }
    for (const m of matches) {
      const c = this.#rules[m.id]!;
      const rule = c.rule;
      if (rule.keywords) {
        keywordOk ??= new Map();
        let ok = keywordOk.get(m.id);
        if (ok === undefined) {
          lower ??= text.toLowerCase();
          ok = rule.keywords.some((k) => lower!.includes(k));
          keywordOk.set(m.id, ok);
        }
        if (!ok) continue;
      }
      const value = c.useGroup && m.group !== undefined ? m.group : text.slice(m.start, m.end);
      if (c.allowExact?.has(value) || c.allowPatterns?.some((re) => re.test(value))) continue;
      let confidence = rule.confidence;
      if (c.validator || rule.context) {
        const ctx = {
          before: text.slice(Math.max(0, m.start - CONTEXT_CHARS), m.start),
          after: text.slice(m.end, m.end + CONTEXT_CHARS),
        };
        if (c.validator) {
          const r = c.validator(value, ctx);
          if (!r.valid) continue;
          if (r.confidence !== undefined) confidence = r.confidence;
        }
        if (rule.context) confidence = scoreConfidence(confidence, ctx, rule.context);
      }
      if (rule.minCount !== undefined) {
        scored ??= new Map();
        const agg = scored.get(m.id);
        if (agg) {
          agg.end = Math.max(agg.end, m.end);
          agg.count! += 1;
          continue;
        }
        const f: Finding = { rule: rule.id, category: rule.category, severity: rule.severity, confidence, start: m.start, end: m.end, masked: '', count: 1 };
        scored.set(m.id, f);
        out.push(f);
        continue;
      }
      out.push(this.#finding(rule, confidence, m.start, m.end, value, options.values));
    }
    if (!scored) return out;
    // Score-style findings: drop those under their count, then describe the whole span they cover.
    const dropped = new Set<Finding>();
    for (const [id, f] of scored) {
      const rule = this.#rules[id]!.rule;
      if (f.count! < rule.minCount!) {
        dropped.add(f);
        continue;
      }
      // Confidence grows with evidence beyond the threshold, a little per extra match.
      const conf = Math.round(Math.min(1, f.confidence + 0.02 * (f.count! - rule.minCount!)) * 100) / 100;
      // A score finding stands for a region, not an identifier: masked for display, no digest to correlate.
      const region = text.slice(f.start, f.end);
      f.confidence = conf;
      f.masked = maskValue(region);
      if (options.values) f.value = region;
    }
    return dropped.size === 0 ? out : out.filter((f) => !dropped.has(f));
  }

  #finding(rule: Rule, confidence: number, start: number, end: number, value: string, withValue: boolean | undefined): Finding {
    const f: Finding = { rule: rule.id, category: rule.category, severity: rule.severity, confidence, start, end, masked: maskValue(value) };
    if (this.#digestKey) f.digest = digestValue(this.#digestKey, value);
    if (withValue) f.value = value;
    return f;
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
export function runRuleExamples(ruleSet: RuleSet, using?: 'hyperscan' | 're2' | Detector): ExampleFailure[] {
  const detector = using instanceof Detector ? using : Detector.fromRuleSet(ruleSet, using ? { prefer: using } : {});
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
