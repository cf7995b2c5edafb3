// Detection engine interface and factory: Hyperscan when the native addon loads, RE2 otherwise.
// Both engines return identical matches: Hyperscan only pre-filters, and RE2 always decides the exact spans.

import { SluiceError } from '../errors';
import { HS_FLAGS, HyperscanError, compile, deserialize, expressionInfo, hyperscanAvailable, hyperscanLoadError, hyperscanVersion, type HyperscanDatabase } from './hyperscan';
import { Re2Engine, collectSpans, compileRe2, nextChar, toMatches } from './re2';
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
  /** Per pattern index: the maximum match width in bytes when compiled without start-of-match, else -1. */
  widths: number[];
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
/** Widths above this use start-of-match instead: the bounded search per end would cost more than SOM saves. */
const MAX_BOUNDED_WIDTH = 4096;

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
  /** Per pattern: max match width in bytes (compiled without SOM, end-only reports), or -1 (compiled with SOM). */
  readonly #widths: number[];

  prebuilt(): Prebuilt {
    return { database: this.#db?.serialize(), always: [...this.#always], widths: [...this.#widths] };
  }

  constructor(patterns: readonly DetectorPattern[], prebuilt?: Prebuilt) {
    this.#patterns = patterns;
    this.#res = patterns.map((p) => compileRe2(p));
    this.#sticky = patterns.map((p) => compileRe2(p, true));
    this.#ids = patterns.map((p) => p.id);
    if (prebuilt) {
      this.#db = prebuilt.database ? deserialize(prebuilt.database) : undefined;
      this.#always = [...prebuilt.always];
      this.#widths = [...prebuilt.widths];
      return;
    }
    // Start-of-match tracking makes Hyperscan 10-40x slower on patterns with a leading repeat (an email's local
    // part, a secret's value), so it is used only where a pattern's matches have no width bound.
    this.#widths = patterns.map((p) => {
      try {
        const w = expressionInfo(p.pattern, HS_FLAGS.UTF8 | (p.caseless ? HS_FLAGS.CASELESS : 0)).maxWidth;
        return w !== undefined && w <= MAX_BOUNDED_WIDTH ? w : -1;
      } catch {
        return -1;
      }
    });
    // Hyperscan ids are pattern indices, so repeated rule ids still map back to the right RE2.
    let entries = patterns.map((p, i) => ({
      id: i,
      pattern: p.pattern,
      flags: HS_FLAGS.UTF8 | (this.#widths[i]! < 0 ? HS_FLAGS.SOM_LEFTMOST : 0) | (p.caseless ? HS_FLAGS.CASELESS : 0),
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
    const bytes = Buffer.from(text, 'utf8');
    const out: number[] = [];
    if (this.#db) {
      const { triples, truncated } = this.#db.scanTriples(bytes, { maxMatches: MAX_REPORTS });
      if (truncated) return (this.#fallback ??= new Re2Engine(this.#patterns)).scan(text);
      // Report indices grouped by pattern, each group in start order (ties keep Hyperscan's end order).
      const groups = new Map<number, number[]>();
      for (let r = 0; r < triples.length; r += 3) {
        const g = groups.get(triples[r]!);
        if (g) g.push(r);
        else groups.set(triples[r]!, [r]);
      }
      for (const [i, reports] of groups) {
        const width = this.#widths[i]!;
        if (width >= 0) this.#confirmEnds(i, width, reports, triples, bytes, out);
        else {
          if (reports.length > 1) reports.sort((a, b) => triples[a + 1]! - triples[b + 1]! || a - b);
          this.#confirm(i, reports, triples, bytes, out);
        }
      }
    }
    for (const i of this.#always) collectSpans(this.#res[i]!, i, bytes, 0, out);
    return toMatches(text, bytes, out, this.#ids);
  }

  /**
   * RE2 spans for a pattern whose matches are at most `width` bytes, from end-only reports. Ends are taken in
   * ascending order; for end e, a match ending there starts at or after e - width, so an RE2 search from
   * max(pos, e - width) over the bytes up to e + width (+4 so \b and $ still see the next character) finds the
   * leftmost start at or before e, if any. No earlier start can be missed: a match starting before e - width ends
   * before e, so its own (earlier) end found it first. The match found lies wholly inside that view, so it is the
   * one RE2 finds on the whole text.
   */
  #confirmEnds(i: number, width: number, reports: number[], triples: Uint32Array, bytes: Buffer, out: number[]): void {
    const re = this.#res[i]!;
    // Hyperscan reports in end order; sort only if a pattern's reports ever arrive otherwise.
    for (let k = 1; k < reports.length; k++) {
      if (triples[reports[k]! + 2]! < triples[reports[k - 1]! + 2]!) {
        reports.sort((a, b) => triples[a + 2]! - triples[b + 2]!);
        break;
      }
    }
    let pos = 0;
    let searchedTo = -1;
    for (const r of reports) {
      const e = triples[r + 2]!;
      if (e <= pos || e <= searchedTo) continue;
      const viewEnd = e + width + 4;
      const view = viewEnd >= bytes.length ? bytes : bytes.subarray(0, viewEnd);
      re.lastIndex = Math.max(pos, e - width);
      const m = re.exec(view) as { index: number; 0: Buffer } | null;
      if (m === null || m.index > e) {
        // Nothing starts in [from, e]; a later end needs its own window, but not this one again.
        searchedTo = e;
        continue;
      }
      const end = m.index + m[0].length;
      out.push(i, m.index, end);
      pos = end > m.index ? end : nextChar(bytes, end);
    }
  }

  /** RE2 spans (byte triples) for pattern `i` from its Hyperscan reports (indices into `triples`, sorted by start). */
  #confirm(i: number, reports: number[], triples: Uint32Array, bytes: Buffer, out: number[]): void {
    const sticky = this.#sticky[i]!;
    const re = this.#res[i]!;
    let pos = 0;
    let j = 0;
    let straddle = 0;
    for (;;) {
      while (j < reports.length && triples[reports[j]! + 1]! < pos) {
        straddle = Math.max(straddle, triples[reports[j]! + 2]!);
        j++;
      }
      let m: { index: number; 0: Buffer } | null = null;
      if (straddle <= pos) {
        if (j >= reports.length) return;
        sticky.lastIndex = triples[reports[j]! + 1]!;
        m = sticky.exec(bytes) as { index: number; 0: Buffer } | null;
      }
      // A straddling report, or (never expected) RE2 disagreeing with Hyperscan at a start: search unanchored.
      if (m === null) {
        re.lastIndex = pos;
        m = re.exec(bytes) as { index: number; 0: Buffer } | null;
        if (m === null) return;
      }
      const end = m.index + m[0].length;
      out.push(i, m.index, end);
      // Empty matches only come from patterns on the always list; step anyway so a surprise cannot loop.
      pos = end > m.index ? end : nextChar(bytes, end);
      if (pos > bytes.length) return;
    }
  }
}
