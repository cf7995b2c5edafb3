// National identifiers: US Social Security Number, UK National Insurance number, Canadian Social Insurance Number.
// SSNs carry no checksum, so the SSA's never-issued ranges and famous misused numbers are all there is to check.

import { luhnValid } from './checksum.js';
import { DEFAULT_DAMP_WORDS, scoreConfidence } from './context.js';
import { reject, type ValidationResult, type ValidatorContext } from './types.js';

/** Split "AAA?GG?SSSS"-style input on one consistent separator; null when the groups don't line up. */
function splitDigitGroups(match: string, sizes: readonly number[], seps: string): string[] | null {
  const total = sizes.reduce((a, b) => a + b, 0);
  if (match.length === total && /^\d+$/.test(match)) {
    const out: string[] = [];
    let at = 0;
    for (const n of sizes) {
      out.push(match.slice(at, at + n));
      at += n;
    }
    return out;
  }
  const sep = match[sizes[0]!];
  if (sep === undefined || !seps.includes(sep)) return null;
  const parts = match.split(sep);
  if (parts.length !== sizes.length) return null;
  return parts.every((p, i) => p.length === sizes[i] && /^\d+$/.test(p)) ? parts : null;
}

/** Numbers the SSA lists as misused in ads and wallets; they pass the range rules but are nobody's. */
export const INVALID_SSNS: readonly string[] = ['078051120', '219099999'];

const SSN_WORDS = {
  boost: ['ssn', 'social security', 'social', 'ss#', 'taxpayer', 'tin', 'itin'],
  damp: DEFAULT_DAMP_WORDS,
};

export function validateSsn(match: string, context: ValidatorContext): ValidationResult {
  const g = splitDigitGroups(match, [3, 2, 4], '- ');
  if (!g) return reject('bad format');
  const [area, group, serial] = g as [string, string, string];
  if (area === '000' || area === '666' || area[0] === '9') return reject('invalid area');
  if (group === '00') return reject('invalid group');
  if (serial === '0000') return reject('invalid serial');
  if (INVALID_SSNS.includes(area + group + serial)) return reject('known invalid');
  // Bare nine digits are everywhere; the dashed form is how SSNs are written, so it starts higher.
  const base = match.length === 11 ? 0.6 : 0.35;
  return { valid: true, confidence: scoreConfidence(base, context, SSN_WORDS) };
}

const NINO_BAD_FIRST = 'DFIQUV';
const NINO_BAD_SECOND = 'DFIOQUV';
/** Never issued (BG, GB, NK, KN, NT, ZZ) or used only for temporary numbers (TN). */
export const NINO_BAD_PREFIXES: readonly string[] = ['BG', 'GB', 'KN', 'NK', 'NT', 'TN', 'ZZ'];

const NINO_WORDS = {
  boost: ['nino', 'national insurance', 'ni number', 'ni no', 'nin', 'hmrc'],
  damp: DEFAULT_DAMP_WORDS,
};

/** "AB123456C" or printed "AB 12 34 56 C"; case-insensitive because forms get typed in lower case. */
export function validateNino(match: string, context: ValidatorContext): ValidationResult {
  const s = match.toUpperCase();
  const m = /^([A-Z]{2})(\d{6})([A-Z])$/.exec(s) ?? /^([A-Z]{2}) (\d{2} \d{2} \d{2}) ([A-Z])$/.exec(s);
  if (!m) return reject('bad format');
  const prefix = m[1]!;
  const suffix = m[3]!;
  if (NINO_BAD_FIRST.includes(prefix[0]!)) return reject('invalid first letter');
  if (NINO_BAD_SECOND.includes(prefix[1]!)) return reject('invalid second letter');
  if (NINO_BAD_PREFIXES.includes(prefix)) return reject('invalid prefix');
  if (!'ABCD'.includes(suffix)) return reject('invalid suffix');
  return { valid: true, confidence: scoreConfidence(0.6, context, NINO_WORDS) };
}

const SIN_WORDS = {
  boost: ['sin', 'social insurance', 'nas', 'assurance sociale'],
  damp: DEFAULT_DAMP_WORDS,
};

/** 9 digits as "123 456 789", "123-456-789" or bare; Luhn-checked. */
export function validateSin(match: string, context: ValidatorContext): ValidationResult {
  const g = splitDigitGroups(match, [3, 3, 3], '- ');
  if (!g) return reject('bad format');
  const digits = g.join('');
  // 0 is reserved for fictitious numbers (the government's own sample is 046 454 286); 8 is unassigned.
  if (digits[0] === '0' || digits[0] === '8') return reject('invalid first digit');
  if (!luhnValid(digits)) return reject('luhn');
  const base = match.length === 11 ? 0.5 : 0.3;
  return { valid: true, confidence: scoreConfidence(base, context, SIN_WORDS) };
}
