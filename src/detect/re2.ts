// RE2 detection engine: one RE2.Set pass finds which patterns hit, then per-pattern exec loops give the spans.
// Also the span logic the Hyperscan engine reuses, so both engines produce identical matches by construction.

import RE2 from 're2';
import { SluiceError } from '../errors';
import type { DetectorPattern, Engine, EngineMatch } from './engine';

/** Compiles one rule for span extraction ('g' for lastIndex, 'u' for code-point semantics; 'y' anchors at lastIndex). */
export function compileRe2(p: DetectorPattern, sticky = false): RE2 {
  try {
    return new RE2(p.pattern, (p.caseless ? 'giu' : 'gu') + (sticky ? 'y' : ''));
  } catch (err) {
    throw new SluiceError('SLUICE_RULE_INVALID', `rule ${p.id}: invalid pattern: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/**
 * Appends `re`'s non-overlapping matches in `text`, searching from UTF-16 offset `from`. RE2 sees the whole
 * string, so \b and ^ still look at the text before `from`. An empty match leaves lastIndex where it was, so
 * step one code point (never into a surrogate pair) to make progress.
 */
export function collectSpans(re: RE2, id: number, text: string, from: number, out: EngineMatch[]): void {
  re.lastIndex = from;
  while (re.lastIndex <= text.length) {
    const m = re.exec(text);
    if (m === null) break;
    const end = m.index + m[0].length;
    out.push({ id, start: m.index, end });
    if (end === m.index) re.lastIndex = end + ((text.codePointAt(end) ?? 0) > 0xffff ? 2 : 1);
  }
}

/** Sorts by start, then id, then end, so output order never depends on which engine found what first. */
export function sortMatches(out: EngineMatch[]): EngineMatch[] {
  return out.sort((a, b) => a.start - b.start || a.id - b.id || a.end - b.end);
}

export class Re2Engine implements Engine {
  readonly name = 're2' as const;
  readonly #ids: number[];
  readonly #res: RE2[];
  // RE2.Set takes one flag string, so caseless and case-sensitive rules go in separate sets.
  readonly #sets: Array<{ set: InstanceType<typeof RE2.Set>; index: number[] }> = [];

  constructor(patterns: readonly DetectorPattern[]) {
    // Compiling each rule alone first gives an error that names the bad rule; a Set error would not.
    this.#res = patterns.map((p) => compileRe2(p));
    this.#ids = patterns.map((p) => p.id);
    for (const caseless of [false, true]) {
      const index = patterns.flatMap((p, i) => (Boolean(p.caseless) === caseless ? [i] : []));
      if (index.length === 0) continue;
      const set = new RE2.Set(index.map((i) => patterns[i]!.pattern), caseless ? 'iu' : 'u');
      this.#sets.push({ set, index });
    }
  }

  scan(text: string): EngineMatch[] {
    const out: EngineMatch[] = [];
    for (const { set, index } of this.#sets) {
      for (const k of set.match(text)) {
        const i = index[k]!;
        collectSpans(this.#res[i]!, this.#ids[i]!, text, 0, out);
      }
    }
    return sortMatches(out);
  }
}
