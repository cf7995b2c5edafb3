// Detection engine interface and factory: Hyperscan when the native addon loads, RE2 otherwise.
// Both engines return identical matches: Hyperscan only pre-filters, and RE2 always decides the exact spans.

import { HS_FLAGS, HyperscanError, compile, hyperscanAvailable, type HyperscanDatabase } from './hyperscan';
import { Re2Engine, collectSpans, compileRe2, sortMatches } from './re2';
import type RE2 from 're2';

export interface DetectorPattern {
  /** Rule id reported with each match; may repeat across patterns. */
  id: number;
  /** RE2 syntax (a subset Hyperscan also accepts for most rules; see createEngine). */
  pattern: string;
  caseless?: boolean;
}

/**
 * One match, in UTF-16 offsets into the scanned string (`end` exclusive). Per pattern, matches are
 * non-overlapping, left to right, each being RE2's leftmost-first match: exactly what a `RE2(pattern, 'gu')`
 * exec loop yields (an empty match advances one code point). Results are sorted by start, then id, then end.
 */
export interface EngineMatch {
  id: number;
  start: number;
  end: number;
}

export interface Engine {
  readonly name: 'hyperscan' | 're2';
  scan(text: string): EngineMatch[];
}

/**
 * Builds the engine for a rule set. Every pattern is compiled with RE2 first, so an invalid rule throws
 * SluiceError SLUICE_RULE_INVALID naming its id whichever engine is picked.
 */
export function createEngine(patterns: readonly DetectorPattern[], prefer?: 'hyperscan' | 're2'): Engine {
  if (prefer !== 're2' && hyperscanAvailable()) return new HyperscanEngine(patterns);
  return new Re2Engine(patterns);
}

/*
 * Normalisation choice: the RE2 confirm pass. Hyperscan reports every end offset (with its leftmost start),
 * which is not RE2's leftmost-first span, and rebuilding RE2 semantics from those reports (alternation order,
 * lazy/greedy ends) is not possible in general. So Hyperscan answers only "which patterns hit, and where is the
 * leftmost start", and the same RE2 exec loop as Re2Engine produces the spans, starting at that leftmost start.
 * Output is therefore identical to Re2Engine whenever Hyperscan's match set is a superset of RE2's, which is why:
 *  - no HS_FLAGS.UCP: RE2's \w \d \s \b are ASCII-only, and Hyperscan rejects \b under UCP anyway;
 *    without UCP both engines agree (UTF8 still makes `.` and classes consume whole characters);
 *  - patterns Hyperscan cannot compile (empty-matching ones with SOM, SOM too complex, unsupported syntax) but
 *    RE2 accepts are not an error: they skip the pre-filter and RE2 runs them on every scan.
 * The win is that on typical traffic most patterns never hit, so RE2 runs only for the few that do.
 */
class HyperscanEngine implements Engine {
  readonly name = 'hyperscan' as const;
  readonly #ids: number[];
  readonly #res: RE2[];
  readonly #db: HyperscanDatabase | undefined;
  /** Pattern indices Hyperscan rejected; RE2 scans them unconditionally. */
  readonly #always: number[] = [];

  constructor(patterns: readonly DetectorPattern[]) {
    this.#res = patterns.map(compileRe2);
    this.#ids = patterns.map((p) => p.id);
    // Hyperscan ids are pattern indices, so repeated rule ids still map back to the right RE2.
    let entries = patterns.map((p, i) => ({
      id: i,
      pattern: p.pattern,
      flags: HS_FLAGS.UTF8 | HS_FLAGS.SOM_LEFTMOST | (p.caseless ? HS_FLAGS.CASELESS : 0),
    }));
    let db: HyperscanDatabase | undefined;
    while (entries.length > 0) {
      try {
        db = compile(entries);
        break;
      } catch (err) {
        // Hyperscan names the rejected pattern; drop it to the always-run list and retry without it.
        const bad = err instanceof HyperscanError && err.code === 'SLUICE_RULE_INVALID' ? err.ruleId : undefined;
        if (bad === undefined || !entries.some((e) => e.id === bad)) throw err;
        this.#always.push(bad);
        entries = entries.filter((e) => e.id !== bad);
      }
    }
    this.#db = db;
  }

  scan(text: string): EngineMatch[] {
    const leftmost = new Map<number, number>();
    if (this.#db) {
      for (const m of this.#db.scan(text)) {
        const prev = leftmost.get(m.id);
        if (prev === undefined || m.start < prev) leftmost.set(m.id, m.start);
      }
    }
    for (const i of this.#always) leftmost.set(i, 0);
    const out: EngineMatch[] = [];
    for (const [i, from] of leftmost) collectSpans(this.#res[i]!, this.#ids[i]!, text, from, out);
    return sortMatches(out);
  }
}
