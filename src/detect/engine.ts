// Detection engine interface and factory: Hyperscan when the native addon loads, RE2 otherwise.
// Both engines return identical matches: Hyperscan only pre-filters, and RE2 always decides the exact spans.

import { SluiceError } from '../errors';
import { HS_FLAGS, HyperscanError, compile, deserialize, expressionInfo, hyperscanAvailable, hyperscanLoadError, hyperscanVersion, type HyperscanDatabase } from './hyperscan';
import { Re2Engine, Spans, collectSpans, compileRe2, nextChar, toMatches, type ByteMatch } from './re2';
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
  /** Capture group 1 of the match, when the pattern has one and it took part. */
  group?: string;
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
  /** Per pattern index: the maximum match width in bytes, or -1 when unbounded (see HyperscanEngine). */
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
 * Normalisation choice: Hyperscan without start-of-match, RE2 confirming around the reported ends.
 * Hyperscan reports every end offset a pattern matches at, which is not RE2's leftmost-first span, and rebuilding
 * RE2 semantics from reports (alternation order, lazy/greedy ends) is not possible in general. So Hyperscan says
 * which patterns hit and where matches end, and RE2 decides the spans, searching only where Hyperscan saw a match:
 *  - a pattern whose matches are at most W bytes (hs_expression_info) is searched in a window per end
 *    (#confirmEnds), so RE2 work is proportional to what is found, not to the size of the text;
 *  - an unbounded pattern is searched from the start of the text up to its last reported end (#confirmUpTo).
 * Start-of-match tracking (HS_FLAG_SOM_LEFTMOST) would give starts directly, but it made Hyperscan 10-40x slower
 * on patterns with a leading repeat (an email's local part, a secret's value) and the database several times
 * larger; bench/scan.ts keeps the SOM variant as a comparison. Output is identical to Re2Engine because:
 *  - no HS_FLAGS.UCP: RE2's \w \d \s \b are ASCII-only, and Hyperscan rejects \b under UCP anyway;
 *    without UCP both engines agree (UTF8 still makes `.` and classes consume whole characters);
 *  - patterns Hyperscan cannot compile (empty-matching ones, unsupported syntax) but RE2 accepts are not an
 *    error: they skip the pre-filter and RE2 runs them on every scan;
 *  - a scan with more than MAX_REPORTS reports (hostile or degenerate input) is answered by the RE2 engine whole,
 *    so memory stays bounded and the answer stays the same.
 */
const MAX_REPORTS = 1 << 16;
/** Wider bounded patterns are treated as unbounded: a window search per end would cost more than one pass. */
const MAX_BOUNDED_WIDTH = 4096;
/** Bytes past a view's end that keep \b and $ correct there (one UTF-8 character). */
const CONTEXT_BYTES = 4;

class HyperscanEngine implements Engine {
  readonly name = 'hyperscan' as const;
  readonly #ids: number[];
  readonly #res: RE2[];
  readonly #patterns: readonly DetectorPattern[];
  #fallback: Re2Engine | undefined;
  readonly #db: HyperscanDatabase | undefined;
  /** Pattern indices Hyperscan rejected; RE2 scans them unconditionally. */
  readonly #always: number[] = [];
  /** Per pattern: max match width in bytes, or -1 when unbounded (or wider than MAX_BOUNDED_WIDTH). */
  readonly #widths: number[];

  constructor(patterns: readonly DetectorPattern[], prebuilt?: Prebuilt) {
    this.#patterns = patterns;
    this.#res = patterns.map((p) => compileRe2(p));
    this.#ids = patterns.map((p) => p.id);
    if (prebuilt) {
      this.#db = prebuilt.database ? deserialize(prebuilt.database) : undefined;
      this.#always = [...prebuilt.always];
      this.#widths = [...prebuilt.widths];
      return;
    }
    this.#widths = patterns.map((p) => {
      try {
        const w = expressionInfo(p.pattern, HS_FLAGS.UTF8 | (p.caseless ? HS_FLAGS.CASELESS : 0)).maxWidth;
        return w !== undefined && w <= MAX_BOUNDED_WIDTH ? w : -1;
      } catch {
        return -1;
      }
    });
    // Hyperscan ids are pattern indices, so repeated rule ids still map back to the right RE2.
    let entries = patterns.map((p, i) => ({ id: i, pattern: p.pattern, flags: HS_FLAGS.UTF8 | (p.caseless ? HS_FLAGS.CASELESS : 0) }));
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

  prebuilt(): Prebuilt {
    return { database: this.#db?.serialize(), always: [...this.#always], widths: [...this.#widths] };
  }

  scan(text: string): EngineMatch[] {
    const bytes = Buffer.from(text, 'utf8');
    const out = new Spans();
    if (this.#db) {
      const { triples, truncated } = this.#db.scanTriples(bytes, { maxMatches: MAX_REPORTS });
      if (truncated) return (this.#fallback ??= new Re2Engine(this.#patterns)).scan(text);
      // Reported end offsets grouped by pattern, ascending (Hyperscan reports in end order; sorted to be sure).
      const groups = new Map<number, number[]>();
      for (let r = 0; r < triples.length; r += 3) {
        const g = groups.get(triples[r]!);
        if (g) g.push(triples[r + 2]!);
        else groups.set(triples[r]!, [triples[r + 2]!]);
      }
      for (const [i, ends] of groups) {
        for (let k = 1; k < ends.length; k++) {
          if (ends[k]! < ends[k - 1]!) {
            ends.sort((a, b) => a - b);
            break;
          }
        }
        const width = this.#widths[i]!;
        if (width >= 0) this.#confirmEnds(i, width, ends, bytes, out);
        else this.#confirmUpTo(i, ends[ends.length - 1]!, bytes, out);
      }
    }
    for (const i of this.#always) collectSpans(this.#res[i]!, i, bytes, 0, out);
    return toMatches(text, bytes, out, this.#ids);
  }

  /**
   * RE2 spans for a pattern whose matches are at most `width` bytes. For each reported end e (ascending), a
   * match ending there starts at or after e - width, so an RE2 search from max(pos, e - width) over the bytes up
   * to e + width (+ context) finds the leftmost start at or before e, if any. No earlier start can be missed: a
   * match starting before e - width ends before e, so its own, earlier end found it. The match found lies wholly
   * inside the view, so it is the one RE2 finds on the whole text.
   */
  #confirmEnds(i: number, width: number, ends: number[], bytes: Buffer, out: Spans): void {
    const re = this.#res[i]!;
    let pos = 0;
    let searched = -1;
    for (const e of ends) {
      if (e <= pos || e === searched) continue;
      searched = e;
      const viewEnd = e + width + CONTEXT_BYTES;
      re.lastIndex = Math.max(pos, e - width);
      const m = re.exec(viewEnd >= bytes.length ? bytes : bytes.subarray(0, viewEnd)) as ByteMatch | null;
      if (m === null || m.index > e) continue;
      const end = out.add(i, m);
      pos = end > m.index ? end : nextChar(bytes, end);
    }
  }

  /**
   * RE2 spans for an unbounded pattern: the usual exec loop, over a view ending just after the last reported end
   * (no match ends later), so RE2 does not scan the rest of the text. A match the view's end could have created
   * (ending past `last`) is retried on the whole text.
   */
  #confirmUpTo(i: number, last: number, bytes: Buffer, out: Spans): void {
    const re = this.#res[i]!;
    const viewEnd = last + CONTEXT_BYTES;
    const view = viewEnd >= bytes.length ? bytes : bytes.subarray(0, viewEnd);
    re.lastIndex = 0;
    while (re.lastIndex <= last) {
      let m = re.exec(view) as ByteMatch | null;
      if (m !== null && m.index + m[0].length > last && view !== bytes) {
        re.lastIndex = m.index;
        m = re.exec(bytes) as ByteMatch | null;
      }
      if (m === null || m.index + m[0].length > last) return;
      const end = out.add(i, m);
      re.lastIndex = end > m.index ? end : nextChar(bytes, end);
    }
  }
}
