// RE2 detection engine: one RE2.Set pass finds which patterns hit, then per-pattern exec loops give the spans.
// Also the span logic the Hyperscan engine reuses, so both engines produce identical matches by construction.

import RE2 from 're2';
import { SluiceError } from '../errors';
import type { DetectorPattern, Engine, EngineMatch } from './engine';
import { utf8ToUtf16Offsets } from './hyperscan';

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

/*
 * Both engines match on the UTF-8 bytes of the text, not the JS string: RE2 converts a string to UTF-8 on every
 * new (regex, string) pair, which costs ~3 ms per MB for each rule that hits, and maps offsets back by walking the
 * string. Encoding once and working in byte offsets makes that cost once per scan; toMatches() converts the final
 * spans to UTF-16 offsets in one pass.
 */

/** RE2 exec result on a Buffer: offsets in bytes, groups as Buffers. */
export type ByteMatch = { index: number; 0: Buffer; 1?: Buffer };

/**
 * Matches found so far in byte offsets: [pattern index, start, end] triples, plus capture group 1 of each match
 * (decoded), which is what validators and allowlists judge for a rule like `password=(…)`; keeping it here spares
 * the detector a second RE2 run per finding.
 */
export class Spans {
  readonly triples: number[] = [];
  readonly groups: Array<string | undefined> = [];

  add(index: number, m: ByteMatch): number {
    const end = m.index + m[0].length;
    this.triples.push(index, m.index, end);
    this.groups.push(m[1] === undefined ? undefined : m[1].toString('utf8'));
    return end;
  }
}

/**
 * Adds `re`'s non-overlapping matches in `bytes`, searching from byte `from`. RE2 sees the whole buffer, so \b
 * and ^ still look at the bytes before `from`. An empty match leaves lastIndex where it was, so step one
 * character to make progress.
 */
export function collectSpans(re: RE2, index: number, bytes: Buffer, from: number, out: Spans): void {
  re.lastIndex = from;
  while (re.lastIndex <= bytes.length) {
    const m = re.exec(bytes) as ByteMatch | null;
    if (m === null) break;
    const end = out.add(index, m);
    if (end === m.index) re.lastIndex = nextChar(bytes, end);
  }
}

/** Byte offset of the character after the one starting at `at` (UTF-8 continuation bytes are 10xxxxxx). */
export function nextChar(bytes: Uint8Array, at: number): number {
  let i = at + 1;
  while (i < bytes.length && (bytes[i]! & 0xc0) === 0x80) i++;
  return i;
}

/** Byte spans → matches in UTF-16 offsets into `text` (which `bytes` encodes), with rule ids, sorted. */
export function toMatches(text: string, bytes: Uint8Array, spans: Spans, ids: readonly number[]): EngineMatch[] {
  const raw = Uint32Array.from(spans.triples);
  // ASCII-only text: byte offsets already are UTF-16 offsets.
  if (bytes.length !== text.length) utf8ToUtf16Offsets(bytes, raw);
  const out = new Array<EngineMatch>(raw.length / 3);
  for (let r = 0, k = 0; r < raw.length; r += 3, k++) {
    const m: EngineMatch = { id: ids[raw[r]!]!, start: raw[r + 1]!, end: raw[r + 2]! };
    const g = spans.groups[k];
    if (g !== undefined) m.group = g;
    out[k] = m;
  }
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
    const bytes = Buffer.from(text, 'utf8');
    const spans = new Spans();
    for (const { set, index } of this.#sets) {
      for (const k of set.match(bytes)) collectSpans(this.#res[index[k]!]!, index[k]!, bytes, 0, spans);
    }
    return toMatches(text, bytes, spans, this.#ids);
  }
}
