// Detection engine interface and factory: Hyperscan when the native addon loads, RE2 otherwise.
// Both engines return identical matches: Hyperscan only pre-filters, and RE2 always decides the exact spans.

import { SluiceError } from '../errors';
import { HS_FLAGS, HyperscanError, compile, deserialize, hyperscanAvailable, hyperscanLoadError, hyperscanVersion, type HyperscanDatabase } from './hyperscan';
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
  /** What another thread needs to rebuild this engine without compiling (Hyperscan only; see Prebuilt). */
  prebuilt?(): Prebuilt;
}

/**
 * A compiled Hyperscan database, serialised, plus the pattern indices it left out. Workers deserialise it instead
 * of compiling the rule set again (bench/scan.ts measures both; deserialising is the cheaper way to start a worker).
 */
export interface Prebuilt {
  database: Uint8Array | undefined;
  always: number[];
}

/**
 * Builds the engine for a rule set. Every pattern is compiled with RE2 first, so an invalid rule throws
 * SluiceError SLUICE_RULE_INVALID naming its id whichever engine is picked.
 */
export function createEngine(patterns: readonly DetectorPattern[], prefer?: EngineName, prebuilt?: Prebuilt): Engine {
  return (prefer ?? chooseEngine().name) === 'hyperscan' ? new HyperscanEngine(patterns, prebuilt) : new Re2Engine(patterns);
}

export type EngineName = 'hyperscan' | 're2';

/**
 * The engine a detector gets by default, and why, for the startup line. SLUICE_ENGINE=re2 disables the native
 * engine (CI runs the detection tests that way too); SLUICE_ENGINE=hyperscan makes its absence an error.
 */
export function chooseEngine(): { name: EngineName; why: string } {
  const want = process.env.SLUICE_ENGINE ?? '';
  if (want !== '' && want !== 're2' && want !== 'hyperscan') {
    throw new SluiceError('SLUICE_CONFIG_INVALID', `SLUICE_ENGINE="${want}" is not one of re2, hyperscan (or unset for automatic)`);
  }
  if (want === 're2') return { name: 're2', why: 'SLUICE_ENGINE=re2' };
  if (hyperscanAvailable()) return { name: 'hyperscan', why: `Hyperscan ${hyperscanVersion()}` };
  const error = hyperscanLoadError() ?? 'unavailable';
  if (want === 'hyperscan') throw new SluiceError('SLUICE_ENGINE_ERROR', `SLUICE_ENGINE=hyperscan but Hyperscan is unavailable: ${error}`);
  return { name: 're2', why: `Hyperscan unavailable: ${error}` };
}

/*
 * Normalisation choice: an RE2 confirm pass at each hit. Hyperscan reports every end offset (with the leftmost
 * start of a match ending there), which is not RE2's leftmost-first span, and rebuilding RE2 semantics from those
 * reports (alternation order, lazy/greedy ends) is not possible in general. So Hyperscan says where matches start,
 * and RE2, anchored there (sticky), says which span RE2 semantics pick. For each pattern, with pos the end of the
 * previous match, the next match RE2's unanchored search would find starts at the smallest reported start >= pos,
 * unless some report straddles pos (starts before it, ends after it): then a match may start inside the straddle
 * without its own report, and an unanchored RE2 search from pos settles it. Output is therefore identical to
 * Re2Engine, which is why:
 *  - no HS_FLAGS.UCP: RE2's \w \d \s \b are ASCII-only, and Hyperscan rejects \b under UCP anyway;
 *    without UCP both engines agree (UTF8 still makes `.` and classes consume whole characters);
 *  - patterns Hyperscan cannot compile (empty-matching ones with SOM, SOM too complex, unsupported syntax) but
 *    RE2 accepts are not an error: they skip the pre-filter and RE2 runs them on every scan;
 *  - a scan with more than MAX_REPORTS reports (hostile or degenerate input) is answered by the RE2 engine whole,
 *    so memory stays bounded and the answer stays the same.
 * The anchored confirm costs only the match length, so RE2 work is proportional to what is found, not to the
 * size of the text (bench/scan.ts compares this against confirming with unanchored searches).
 */
const MAX_REPORTS = 1 << 16;

class HyperscanEngine implements Engine {
  readonly name = 'hyperscan' as const;
  readonly #ids: number[];
  readonly #res: RE2[];
  /** The same patterns with the sticky flag: RE2 anchored at a start Hyperscan reported. */
  readonly #sticky: RE2[];
  readonly #patterns: readonly DetectorPattern[];
  #fallback: Re2Engine | undefined;
  readonly #db: HyperscanDatabase | undefined;
  /** Pattern indices Hyperscan rejected; RE2 scans them unconditionally. */
  readonly #always: number[] = [];

  prebuilt(): Prebuilt {
    return { database: this.#db?.serialize(), always: [...this.#always] };
  }

  constructor(patterns: readonly DetectorPattern[], prebuilt?: Prebuilt) {
    this.#patterns = patterns;
    this.#res = patterns.map((p) => compileRe2(p));
    this.#sticky = patterns.map((p) => compileRe2(p, true));
    this.#ids = patterns.map((p) => p.id);
    if (prebuilt) {
      this.#db = prebuilt.database ? deserialize(prebuilt.database) : undefined;
      this.#always = [...prebuilt.always];
      return;
    }
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
    const out: EngineMatch[] = [];
    if (this.#db) {
      const { triples, truncated } = this.#db.scanTriples(text, { maxMatches: MAX_REPORTS });
      if (truncated) return (this.#fallback ??= new Re2Engine(this.#patterns)).scan(text);
      // Report indices grouped by pattern, each group in start order (ties keep Hyperscan's end order).
      const groups = new Map<number, number[]>();
      for (let r = 0; r < triples.length; r += 3) {
        const g = groups.get(triples[r]!);
        if (g) g.push(r);
        else groups.set(triples[r]!, [r]);
      }
      for (const [i, reports] of groups) {
        if (reports.length > 1) reports.sort((a, b) => triples[a + 1]! - triples[b + 1]! || a - b);
        this.#confirm(i, reports, triples, text, out);
      }
    }
    for (const i of this.#always) collectSpans(this.#res[i]!, this.#ids[i]!, text, 0, out);
    return sortMatches(out);
  }

  /** RE2 spans for pattern `i` from its Hyperscan reports (indices into `triples`, sorted by start). */
  #confirm(i: number, reports: number[], triples: Uint32Array, text: string, out: EngineMatch[]): void {
    const sticky = this.#sticky[i]!;
    const re = this.#res[i]!;
    const id = this.#ids[i]!;
    let pos = 0;
    let j = 0;
    let straddle = 0;
    for (;;) {
      while (j < reports.length && triples[reports[j]! + 1]! < pos) {
        straddle = Math.max(straddle, triples[reports[j]! + 2]!);
        j++;
      }
      let m: RegExpExecArray | null = null;
      if (straddle <= pos) {
        if (j >= reports.length) return;
        sticky.lastIndex = triples[reports[j]! + 1]!;
        m = sticky.exec(text);
      }
      // A straddling report, or (never expected) RE2 disagreeing with Hyperscan at a start: search unanchored.
      if (m === null) {
        re.lastIndex = pos;
        m = re.exec(text);
        if (m === null) return;
      }
      const end = m.index + m[0].length;
      out.push({ id, start: m.index, end });
      // Empty matches only come from patterns on the always list; step anyway so a surprise cannot loop.
      pos = end > m.index ? end : end + ((text.codePointAt(end) ?? 0) > 0xffff ? 2 : 1);
      if (pos > text.length) return;
    }
  }
}
