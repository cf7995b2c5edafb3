// Context-word scoring: nudges a validator's confidence by labels ("SSN:", "iban") or disclaimers ("example") near a match.
// Checksums say a string *could* be an identifier; nearby words say whether someone meant it as one.

import type { ValidatorContext } from './types.js';

export const DEFAULT_BOOST_WORDS: readonly string[] = ['ssn', 'social security', 'card', 'iban', 'account', 'password', 'secret', 'token'];
export const DEFAULT_DAMP_WORDS: readonly string[] = ['example', 'test', 'dummy', 'sample', 'fake', 'lorem', 'ipsum', 'placeholder', 'mock'];

/** Labels sit right next to values ("card: …", `"ssn": "…"`); a wider window starts picking up neighbouring fields. */
export const DEFAULT_WINDOW = 40;
export const BOOST_DELTA = 0.25;
/** Damping outweighs boosting: "test card number" has both and should end up lower than a bare number. */
export const DAMP_DELTA = -0.35;

export interface ContextWords {
  boost?: readonly string[];
  damp?: readonly string[];
  /** Characters of `before` (its tail) and `after` (its head) to look at. */
  window?: number;
}

const patternCache = new Map<string, RegExp>();

/**
 * Whole-word, case-insensitive, tolerant of plural -s and of the separators identifiers use, so "api key"
 * also finds api_key / api-key / apiKey (camelCase is split before matching).
 */
function wordPattern(phrase: string): RegExp {
  let re = patternCache.get(phrase);
  if (!re) {
    const body = phrase
      .toLowerCase()
      .split(/\s+/)
      .filter(Boolean)
      .map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('[\\s_.-]*');
    re = new RegExp(`(?<![a-z0-9])${body}s?(?![a-z0-9])`);
    patternCache.set(phrase, re);
  }
  return re;
}

/** Splits camelCase and lowercases, so labels written as identifiers match plain words. */
function normalise(text: string): string {
  return text.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
}

/** Tail of `before` / head of `after`, dropping a word cut in half by the window ("latest" must not read as "test"). */
export function contextWindow(ctx: ValidatorContext, window = DEFAULT_WINDOW): string {
  let before = ctx.before;
  if (before.length > window) {
    const cut = before.length - window;
    before = before.slice(cut);
    if (/[A-Za-z0-9]/.test(ctx.before[cut - 1]!)) before = before.replace(/^[A-Za-z0-9]+/, '');
  }
  let after = ctx.after;
  if (after.length > window) {
    after = after.slice(0, window);
    if (/[A-Za-z0-9]/.test(ctx.after[window]!)) after = after.replace(/[A-Za-z0-9]+$/, '');
  }
  // The separator keeps a word ending `before` from fusing with one starting `after`.
  return normalise(before) + ' \u0000 ' + normalise(after);
}

export function hasWord(text: string, words: readonly string[]): boolean {
  return words.some((w) => wordPattern(w).test(text));
}

/** Confidence delta: +BOOST_DELTA if any boost word is near, DAMP_DELTA if any damp word is, both may apply. */
export function contextDelta(ctx: ValidatorContext, words: ContextWords = {}): number {
  const text = contextWindow(ctx, words.window ?? DEFAULT_WINDOW);
  let delta = 0;
  if (hasWord(text, words.boost ?? DEFAULT_BOOST_WORDS)) delta += BOOST_DELTA;
  if (hasWord(text, words.damp ?? DEFAULT_DAMP_WORDS)) delta += DAMP_DELTA;
  return delta;
}

/** base + context delta, clamped to 0..1 and rounded to 2 places so callers compare exact values. */
export function scoreConfidence(base: number, ctx: ValidatorContext, words: ContextWords = {}): number {
  const v = base + contextDelta(ctx, words);
  return Math.round(Math.min(1, Math.max(0, v)) * 100) / 100;
}
