// US healthcare identifiers: National Provider Identifier (NPI) and DEA registration number.
// Both are public-register numbers, but in prompts they tie a record to a prescriber, so they are worth flagging.

import { luhnValid } from './checksum.js';
import { DEFAULT_DAMP_WORDS, scoreConfidence } from './context.js';
import { reject, type ValidationResult, type ValidatorContext } from './types.js';

const NPI_WORDS = {
  boost: ['npi', 'provider', 'prescriber', 'physician', 'practitioner', 'nppes', 'billing'],
  damp: DEFAULT_DAMP_WORDS,
};

/**
 * 10 digits; the check digit is Luhn over the NPI prefixed with the card-issuer prefix 80840, which is
 * how CMS folds the NPI into the ISO 7812 health-card namespace.
 */
export function validateNpi(match: string, context: ValidatorContext): ValidationResult {
  if (!/^\d{10}$/.test(match)) return reject('bad format');
  // CMS issues NPIs starting with 1 (individuals) or 2 (organisations); other leads are not allocated.
  if (match[0] !== '1' && match[0] !== '2') return reject('invalid first digit');
  if (!luhnValid('80840' + match)) return reject('luhn');
  return { valid: true, confidence: scoreConfidence(0.45, context, NPI_WORDS) };
}

/** Registrant-type first letters (A/B/F/G practitioners, M mid-level, P/R distributors, X suboxone…). */
export const DEA_REGISTRANT_LETTERS = 'ABCDEFGHJKLMPRSTUX';

const DEA_WORDS = {
  boost: ['dea', 'prescriber', 'physician', 'registration', 'controlled', 'schedule'],
  damp: DEFAULT_DAMP_WORDS,
};

/** Two letters (registrant type; then registrant surname initial, or 9 for a business name starting with a digit) and 7 digits. */
export function validateDea(match: string, context: ValidatorContext): ValidationResult {
  const m = /^([A-Z])([A-Z9])(\d{7})$/.exec(match.toUpperCase());
  if (!m) return reject('bad format');
  if (!DEA_REGISTRANT_LETTERS.includes(m[1]!)) return reject('invalid registrant type');
  const d = Array.from(m[3]!, (c) => c.charCodeAt(0) - 48);
  const sum = d[0]! + d[2]! + d[4]! + 2 * (d[1]! + d[3]! + d[5]!);
  if (sum % 10 !== d[6]) return reject('checksum');
  return { valid: true, confidence: scoreConfidence(0.7, context, DEA_WORDS) };
}
