// Tests for payment card validation: Luhn, IIN brand ranges and lengths, separator groupings, test-number allowlist.
// Near misses change one digit or one length from a valid case so each rule is shown to bite.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NO_CONTEXT, TEST_CARD_NUMBERS, cardBrand, cardValidator, luhnValid, normalizeCardNumber, validateCard } from '../../../src/detect/validators/index.js';
import { accepts, rejects } from './helpers.js';

const allow = { allowTestNumbers: true };
const card = (m: string) => validateCard(m, NO_CONTEXT, allow);

test('luhn', () => {
  assert.equal(luhnValid('79927398713'), true);
  assert.equal(luhnValid('79927398710'), false);
  assert.equal(luhnValid('4111111111111111'), true);
  assert.equal(luhnValid('4111111111111112'), false);
  assert.equal(luhnValid('0'), false);
  assert.equal(luhnValid('41111a1111111111'), false);
});

test('brand by IIN, longest prefix wins', () => {
  const cases: Array<[string, string | null]> = [
    ['4111111111111111', 'visa'],
    ['5100000000000000', 'mastercard'],
    ['5500000000000000', 'mastercard'],
    ['5600000000000000', null],
    ['5000000000000000', null],
    ['2221000000000000', 'mastercard'],
    ['2720990000000000', 'mastercard'],
    ['2220990000000000', null],
    ['2721000000000000', null],
    ['340000000000000', 'amex'],
    ['370000000000000', 'amex'],
    ['350000000000000', null],
    ['6011000000000000', 'discover'],
    ['6440000000000000', 'discover'],
    ['6490000000000000', 'discover'],
    ['6430000000000000', null],
    ['6500000000000000', 'discover'],
    ['6221260000000000', 'discover'],
    ['6229250000000000', 'discover'],
    ['6221250000000000', 'unionpay'],
    ['6229260000000000', 'unionpay'],
    ['3528000000000000', 'jcb'],
    ['3589000000000000', 'jcb'],
    ['3527000000000000', null],
    ['3590000000000000', null],
    ['30000000000000', 'diners'],
    ['30500000000000', 'diners'],
    ['30600000000000', null],
    ['36000000000000', 'diners'],
    ['38000000000000', 'diners'],
    ['39000000000000', 'diners'],
    ['6200000000000000', 'unionpay'],
    ['1234567890123456', null],
  ];
  for (const [n, brand] of cases) assert.equal(cardBrand(n), brand, n);
});

test('documented numbers of every brand are accepted when test numbers are allowed', () => {
  const expected: Record<string, string> = {
    '4111111111111111': 'visa',
    '4222222222222': 'visa',
    '5555555555554444': 'mastercard',
    '2223003122003222': 'mastercard',
    '378282246310005': 'amex',
    '6011111111111117': 'discover',
    '3530111333300000': 'jcb',
    '30569309025904': 'diners',
    '6200000000000005': 'unionpay',
  };
  for (const [n, brand] of Object.entries(expected)) {
    const r = card(n);
    accepts(r, n);
    assert.equal(r.reason, brand, n);
  }
  for (const n of TEST_CARD_NUMBERS) accepts(card(n), n);
});

test('test numbers are rejected by default and through the table', () => {
  for (const n of TEST_CARD_NUMBERS) rejects(validateCard(n, NO_CONTEXT), n, 'test card');
  rejects(cardValidator()('4242424242424242', NO_CONTEXT), 'factory default', 'test card');
  accepts(cardValidator(allow)('4242424242424242', NO_CONTEXT), 'factory allow');
  assert.ok(TEST_CARD_NUMBERS.includes('4111111111111111'));
  assert.ok(TEST_CARD_NUMBERS.includes('378282246310005'));
});

test('a non-test card is accepted by default', () => {
  // 4539 1488 0343 6467: Luhn-valid Visa not on any published test list.
  const r = validateCard('4539148803436467', NO_CONTEXT);
  accepts(r, 'visa');
  assert.equal(r.reason, 'visa');
  assert.equal(r.confidence, 0.7);
});

test('one digit changed fails Luhn', () => {
  rejects(card('4111111111111112'), 'visa', 'luhn');
  rejects(card('5555555555554445'), 'mc', 'luhn');
  rejects(card('378282246310006'), 'amex', 'luhn');
  rejects(card('6011111111111118'), 'discover', 'luhn');
});

test('brand lengths', () => {
  // Each is Luhn-valid, so only the brand's length table can reject it.
  const wrongLength: Array<[string, string]> = [
    ['41111111111114', 'visa'],
    ['411111111111116', 'visa'],
    ['55555555555546', 'mastercard'],
    ['3782822463100003', 'amex'],
  ];
  for (const [n, brand] of wrongLength) {
    assert.equal(luhnValid(n), true, n);
    rejects(card(n), n, `bad length for ${brand}`);
  }
  rejects(card('411111111111'), 'too short', 'bad length');
  rejects(card('41111111111111111111'), 'too long', 'bad length');
  rejects(card('1234567812345670'), 'unknown IIN', 'unknown IIN');
});

test('separators only in printed groupings', () => {
  accepts(card('4111 1111 1111 1111'), 'spaces 4-4-4-4');
  accepts(card('4111-1111-1111-1111'), 'dashes 4-4-4-4');
  accepts(card('3782 822463 10005'), 'amex 4-6-5');
  accepts(card('3056 930902 5904'), 'diners 4-6-4');
  accepts(card('4222 2222 2222 2'), 'visa 13 as 4-4-4-1');
  rejects(card('4111 1111-1111 1111'), 'mixed', 'bad format');
  rejects(card('4111  1111 1111 1111'), 'double space', 'bad format');
  rejects(card('41 11 1111 1111 1111'), 'odd grouping', 'bad format');
  rejects(card('411111111111 1111'), 'two groups', 'bad format');
  rejects(card(' 4111 1111 1111 1111'), 'leading space', 'bad format');
  rejects(card('4111.1111.1111.1111'), 'dots', 'bad format');
  assert.equal(normalizeCardNumber('4111-1111-1111-1111'), '4111111111111111');
  assert.equal(normalizeCardNumber('4111-1111-1111-111-1'), null);
});

test('context moves confidence', () => {
  const n = '4539148803436467';
  assert.equal(validateCard(n, { before: 'Card number: ', after: '' }).confidence, 0.95);
  assert.equal(validateCard(n, { before: 'sample: ', after: '' }).confidence, 0.35);
});
