// Bank account identifiers: IBAN (ISO 13616, mod 97 with per-country lengths) and US ABA routing numbers.
// The length table is what rejects most random mod-97 passes (about 1 in 97 of any alphanumeric run).

import { mod97 } from './checksum.js';
import { DEFAULT_DAMP_WORDS, scoreConfidence } from './context.js';
import { reject, type ValidationResult, type ValidatorContext } from './types.js';

/** Total IBAN length by country (SWIFT IBAN registry): all SEPA members plus other registry countries. */
export const IBAN_LENGTHS: Readonly<Record<string, number>> = Object.freeze({
  // SEPA
  AD: 24, AT: 20, BE: 16, BG: 22, CH: 21, CY: 28, CZ: 24, DE: 22, DK: 18, EE: 20, ES: 24, FI: 18, FR: 27,
  GB: 22, GI: 23, GR: 27, HR: 21, HU: 28, IE: 22, IS: 26, IT: 27, LI: 21, LT: 20, LU: 20, LV: 21, MC: 27,
  MT: 31, NL: 18, NO: 15, PL: 28, PT: 25, RO: 24, SE: 24, SI: 19, SK: 24, SM: 27, VA: 22,
  // Others
  AE: 23, AL: 28, AZ: 28, BA: 20, BH: 22, BI: 27, BR: 29, BY: 28, CR: 22, DJ: 27, DO: 28, EG: 29, FK: 18,
  FO: 18, GE: 22, GL: 18, GT: 28, IL: 23, IQ: 23, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LY: 25, MD: 24,
  ME: 22, MK: 19, MN: 20, MR: 27, MU: 30, NI: 28, PK: 24, PS: 29, QA: 29, RS: 22, RU: 33, SA: 24, SC: 31,
  SD: 18, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26, UA: 29, VG: 24, XK: 20,
});

/**
 * Electronic form (no spaces) or print form (groups of four, last group 1–4, single spaces).
 * Uppercased because people type IBANs in lower case and the checksum maps letters case-free.
 */
export function normalizeIban(match: string): string | null {
  const s = match.toUpperCase();
  if (/^[A-Z0-9]+$/.test(s)) return s;
  const groups = s.split(' ');
  if (groups.length < 2 || !groups.every((g) => /^[A-Z0-9]{1,4}$/.test(g))) return null;
  if (!groups.slice(0, -1).every((g) => g.length === 4)) return null;
  return groups.join('');
}

const IBAN_WORDS = {
  boost: ['iban', 'account', 'bank', 'bic', 'swift', 'transfer', 'wire', 'payee', 'beneficiary', 'konto', 'rib'],
  damp: DEFAULT_DAMP_WORDS,
};

export function validateIban(match: string, context: ValidatorContext): ValidationResult {
  const iban = normalizeIban(match);
  if (iban === null) return reject('bad format');
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]+$/.test(iban)) return reject('bad format');
  const country = iban.slice(0, 2);
  const expected = IBAN_LENGTHS[country];
  if (expected === undefined) return reject('unknown country');
  if (iban.length !== expected) return reject('bad length');
  // 00, 01 and 99 can never be produced by the check-digit algorithm (98 - r, r in 0..96) yet pass mod 97
  // because they are congruent to 97, 98 and 02.
  const check = iban.slice(2, 4);
  if (check === '00' || check === '01' || check === '99') return reject('bad check digits');
  if (mod97(iban.slice(4) + iban.slice(0, 4)) !== 1) return reject('mod97');
  return { valid: true, confidence: scoreConfidence(0.8, context, IBAN_WORDS), reason: country };
}

/** First two digits: 00 government, 01–12 Federal Reserve districts, 21–32 thrifts, 61–72 electronic, 80 travellers cheques. */
function abaPrefixOk(p: number): boolean {
  return (p >= 0 && p <= 12) || (p >= 21 && p <= 32) || (p >= 61 && p <= 72) || p === 80;
}

const ABA_WORDS = {
  boost: ['routing', 'aba', 'rtn', 'transit', 'ach', 'bank', 'account', 'wire'],
  damp: DEFAULT_DAMP_WORDS,
};

export function abaChecksumOk(digits: string): boolean {
  const d = Array.from(digits, (c) => c.charCodeAt(0) - 48);
  const sum = 3 * (d[0]! + d[3]! + d[6]!) + 7 * (d[1]! + d[4]! + d[7]!) + (d[2]! + d[5]! + d[8]!);
  return sum % 10 === 0;
}

export function validateAbaRouting(match: string, context: ValidatorContext): ValidationResult {
  if (!/^\d{9}$/.test(match)) return reject('bad format');
  if (!abaPrefixOk(Number(match.slice(0, 2)))) return reject('bad prefix');
  // 000000000 satisfies the weights trivially and is a filler value, not a bank.
  if (/^(\d)\1{8}$/.test(match)) return reject('repeated digit');
  if (!abaChecksumOk(match)) return reject('checksum');
  // Nine digits are common (order numbers, zip+4); without a label this stays a weak signal.
  return { valid: true, confidence: scoreConfidence(0.4, context, ABA_WORDS) };
}
