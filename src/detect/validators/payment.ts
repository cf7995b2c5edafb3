// Payment card numbers (PANs): Luhn, brand by IIN range with per-brand lengths, and documented test numbers.
// A 16-digit run passes Luhn one time in ten, so the IIN/length pairing is what keeps random numbers out.

import { luhnValid } from './checksum.js';
import { scoreConfidence, DEFAULT_DAMP_WORDS } from './context.js';
import { reject, type ValidationResult, type Validator, type ValidatorContext } from './types.js';

export { luhnValid } from './checksum.js';

export type CardBrand = 'visa' | 'mastercard' | 'amex' | 'discover' | 'jcb' | 'diners' | 'unionpay';

interface IinRange {
  brand: CardBrand;
  /** Inclusive bounds, compared on the first `low.length` digits. */
  low: string;
  high: string;
  lengths: readonly number[];
}

const range = (lo: number, hi: number) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);

const IIN_RANGES: readonly IinRange[] = [
  { brand: 'visa', low: '4', high: '4', lengths: [13, 16, 19] },
  { brand: 'mastercard', low: '51', high: '55', lengths: [16] },
  { brand: 'mastercard', low: '2221', high: '2720', lengths: [16] },
  { brand: 'amex', low: '34', high: '34', lengths: [15] },
  { brand: 'amex', low: '37', high: '37', lengths: [15] },
  { brand: 'discover', low: '6011', high: '6011', lengths: range(16, 19) },
  { brand: 'discover', low: '644', high: '649', lengths: range(16, 19) },
  { brand: 'discover', low: '65', high: '65', lengths: range(16, 19) },
  { brand: 'discover', low: '622126', high: '622925', lengths: range(16, 19) },
  { brand: 'jcb', low: '3528', high: '3589', lengths: range(16, 19) },
  { brand: 'diners', low: '300', high: '305', lengths: range(14, 19) },
  { brand: 'diners', low: '36', high: '36', lengths: range(14, 19) },
  { brand: 'diners', low: '38', high: '39', lengths: range(14, 19) },
  { brand: 'unionpay', low: '62', high: '62', lengths: range(16, 19) },
];

/**
 * Brand of a digit string by IIN, ignoring length. The longest matching prefix wins, so the
 * Discover/UnionPay co-branded block 622126–622925 reads as Discover rather than UnionPay's 62.
 */
export function cardBrand(digits: string): CardBrand | null {
  let best: IinRange | null = null;
  for (const r of IIN_RANGES) {
    const n = r.low.length;
    if (digits.length < n) continue;
    const p = digits.slice(0, n);
    if (p >= r.low && p <= r.high && (!best || n > best.low.length)) best = r;
  }
  return best?.brand ?? null;
}

export function cardLengthOk(brand: CardBrand, length: number): boolean {
  return IIN_RANGES.some((r) => r.brand === brand && r.lengths.includes(length));
}

/**
 * Documented processor/gateway test numbers (Stripe, Braintree, PayPal, Adyen docs). They pass every check,
 * appear in code and docs everywhere, and are never real cards.
 */
export const TEST_CARD_NUMBERS: readonly string[] = [
  '4111111111111111',
  '4012888888881881',
  '4222222222222',
  '4242424242424242',
  '4000056655665556',
  '5555555555554444',
  '5105105105105100',
  '2223003122003222',
  '5200828282828210',
  '378282246310005',
  '371449635398431',
  '378734493671000',
  '6011111111111117',
  '6011000990139424',
  '30569309025904',
  '38520000023237',
  '3530111333300000',
  '3566002020360505',
  '3566111111111113',
  '6200000000000005',
];
const TEST_CARD_SET = new Set(TEST_CARD_NUMBERS);

/**
 * Group shapes cards are printed in: 4-4-4-4 and its 13–19 digit variants (last group 1–4), Amex 4-6-5 and
 * Diners 4-6-4. Anything else ("4111 11 111111 1111") is digits that happen to sit near each other.
 */
function groupingOk(groups: number[]): boolean {
  if (groups.length === 3 && groups[0] === 4 && groups[1] === 6 && (groups[2] === 5 || groups[2] === 4)) return true;
  if (groups.length < 3) return false;
  const last = groups[groups.length - 1]!;
  return groups.slice(0, -1).every((g) => g === 4) && last >= 1 && last <= 4;
}

/** Digits of a card candidate, or null when separators are mixed, doubled, or in an unprinted grouping. */
export function normalizeCardNumber(match: string): string | null {
  if (/^\d+$/.test(match)) return match;
  const sep = /[ -]/.exec(match)?.[0];
  if (!sep) return null;
  const parts = match.split(sep);
  if (!parts.every((p) => /^\d+$/.test(p))) return null; // also rejects the other separator, "--", edges
  if (!groupingOk(parts.map((p) => p.length))) return null;
  return parts.join('');
}

export interface CardOptions {
  /** Off by default: documented test numbers are not leaks. Turn on to exercise the pipeline with them. */
  allowTestNumbers?: boolean;
}

const CARD_WORDS = {
  boost: ['card', 'credit', 'debit', 'visa', 'mastercard', 'amex', 'american express', 'discover', 'jcb', 'diners', 'unionpay', 'cc', 'pan', 'cvv', 'cvc', 'expiry', 'exp'],
  damp: DEFAULT_DAMP_WORDS,
};

export function validateCard(match: string, context: ValidatorContext, options: CardOptions = {}): ValidationResult {
  const digits = normalizeCardNumber(match);
  if (digits === null) return reject('bad format');
  if (digits.length < 13 || digits.length > 19) return reject('bad length');
  const brand = cardBrand(digits);
  if (!brand) return reject('unknown IIN');
  if (!cardLengthOk(brand, digits.length)) return reject(`bad length for ${brand}`);
  if (!luhnValid(digits)) return reject('luhn');
  if (TEST_CARD_SET.has(digits) && !options.allowTestNumbers) return reject('test card');
  return { valid: true, confidence: scoreConfidence(0.7, context, CARD_WORDS), reason: brand };
}

export function cardValidator(options: CardOptions = {}): Validator {
  return (match, context) => validateCard(match, context, options);
}
