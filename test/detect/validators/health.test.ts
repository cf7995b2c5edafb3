// Tests for NPI (Luhn with the 80840 prefix, leading 1/2) and DEA numbers (registrant letters, weighted checksum).
// 1234567893 is CMS's own worked example; DEA cases are built from the published checksum formula.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEA_REGISTRANT_LETTERS, NO_CONTEXT, luhnValid, validateDea, validateNpi } from '../../../src/detect/validators/index.js';
import { accepts, rejects } from './helpers.js';

const npi = (m: string) => validateNpi(m, NO_CONTEXT);
const dea = (m: string) => validateDea(m, NO_CONTEXT);

test('NPI valid', () => {
  accepts(npi('1234567893'), 'CMS example');
  accepts(npi('1245678903'), 'individual');
  accepts(npi('2000000002'), 'organisation');
});

test('NPI near misses', () => {
  rejects(npi('1234567890'), 'check digit changed', 'luhn');
  rejects(npi('1234567883'), 'one digit changed', 'luhn');
  rejects(npi('123456789'), 'nine digits', 'bad format');
  rejects(npi('12345678930'), 'eleven digits', 'bad format');
  rejects(npi('12345-67893'), 'punctuation', 'bad format');
  // Luhn without the 80840 prefix is a different check: this passes plain Luhn but is not an NPI.
  assert.equal(luhnValid('1234567897'), true);
  rejects(npi('1234567897'), 'plain-Luhn only', 'luhn');
  // Leading digit outside 1/2, with a valid prefixed Luhn so only the first-digit rule can reject.
  for (let c = 0; c < 10; c++) {
    const n = `323456789${c}`;
    if (luhnValid('80840' + n)) rejects(npi(n), n, 'invalid first digit');
  }
});

test('DEA valid', () => {
  // 1+3+5 + 2*(2+4+6) = 33 → check 3.
  accepts(dea('AB1234563'), 'AB');
  accepts(dea('F91234563'), 'business name starting with a digit');
  accepts(dea('ab1234563'), 'lower case');
  for (const l of DEA_REGISTRANT_LETTERS) accepts(dea(`${l}J1234563`), `registrant ${l}`);
  // 0+0+0 + 2*(0+0+0) = 0 → check 0.
  accepts(dea('BS0000000'), 'zero checksum');
  // 9+9+9 + 2*(9+9+9) = 81 → check 1.
  accepts(dea('MZ9999991'), 'carry');
});

test('DEA near misses', () => {
  rejects(dea('AB1234564'), 'check digit changed', 'checksum');
  rejects(dea('AB1234663'), 'body digit changed', 'checksum');
  rejects(dea('MZ9999999'), 'sum not mod 10', 'checksum');
  for (const l of 'INOQVWYZ') rejects(dea(`${l}B1234563`), `registrant ${l}`, 'invalid registrant type');
  rejects(dea('A11234563'), 'digit other than 9 as second char', 'bad format');
  rejects(dea('AB123456'), 'six digits', 'bad format');
  rejects(dea('AB12345631'), 'eight digits', 'bad format');
  rejects(dea('9B1234563'), 'digit first', 'bad format');
  assert.equal(DEA_REGISTRANT_LETTERS, 'ABCDEFGHJKLMPRSTUX');
});

test('healthcare confidence with context', () => {
  assert.equal(npi('1234567893').confidence, 0.45);
  assert.equal(validateNpi('1234567893', { before: 'Provider NPI: ', after: '' }).confidence, 0.7);
  assert.equal(validateDea('AB1234563', { before: 'DEA# ', after: '' }).confidence, 0.95);
});
