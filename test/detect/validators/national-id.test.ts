// Tests for US SSN range rules, UK NINO prefix/suffix rules and Canadian SIN (Luhn, first digit).
// Every forbidden area, group, serial, letter and prefix gets a case next to an allowed neighbour.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { INVALID_SSNS, NINO_BAD_PREFIXES, NO_CONTEXT, validateNino, validateSin, validateSsn } from '../../../src/detect/validators/index.js';
import { accepts, rejects } from './helpers.js';

const ssn = (m: string) => validateSsn(m, NO_CONTEXT);
const nino = (m: string) => validateNino(m, NO_CONTEXT);
const sin = (m: string) => validateSin(m, NO_CONTEXT);

test('SSN formats', () => {
  accepts(ssn('123-45-6789'), 'dashed');
  accepts(ssn('123 45 6789'), 'spaced');
  accepts(ssn('123456789'), 'bare');
  rejects(ssn('123-45 6789'), 'mixed separators', 'bad format');
  rejects(ssn('12-345-6789'), 'wrong grouping', 'bad format');
  rejects(ssn('123-456-789'), 'SIN grouping', 'bad format');
  rejects(ssn('12345678'), 'eight digits', 'bad format');
  rejects(ssn('1234567890'), 'ten digits', 'bad format');
  rejects(ssn('123.45.6789'), 'dots', 'bad format');
});

test('SSN area rules', () => {
  rejects(ssn('000-12-3456'), '000', 'invalid area');
  rejects(ssn('666-12-3456'), '666', 'invalid area');
  rejects(ssn('900-12-3456'), '900', 'invalid area');
  rejects(ssn('999-12-3456'), '999', 'invalid area');
  accepts(ssn('001-12-3456'), '001');
  accepts(ssn('665-12-3456'), '665');
  accepts(ssn('667-12-3456'), '667');
  accepts(ssn('899-12-3456'), '899');
});

test('SSN group and serial rules', () => {
  rejects(ssn('123-00-4567'), 'group 00', 'invalid group');
  accepts(ssn('123-01-4567'), 'group 01');
  rejects(ssn('123-45-0000'), 'serial 0000', 'invalid serial');
  accepts(ssn('123-45-0001'), 'serial 0001');
});

test('SSN well-known invalid numbers', () => {
  assert.deepEqual([...INVALID_SSNS], ['078051120', '219099999']);
  rejects(ssn('078-05-1120'), 'Woolworth', 'known invalid');
  rejects(ssn('078051120'), 'Woolworth bare', 'known invalid');
  rejects(ssn('219-09-9999'), 'ad', 'known invalid');
  accepts(ssn('078-05-1121'), 'neighbour');
});

test('SSN confidence: dashed beats bare, labels boost', () => {
  assert.equal(ssn('123-45-6789').confidence, 0.6);
  assert.equal(ssn('123456789').confidence, 0.35);
  assert.equal(validateSsn('123-45-6789', { before: 'SSN: ', after: '' }).confidence, 0.85);
  assert.equal(validateSsn('123-45-6789', { before: '"social_security_number": "', after: '"' }).confidence, 0.85);
});

test('NINO valid forms', () => {
  accepts(nino('AB123456C'), 'compact');
  accepts(nino('AB 12 34 56 C'), 'printed');
  accepts(nino('ab123456c'), 'lower case');
  for (const s of 'ABCD') accepts(nino(`JG103759${s}`), `suffix ${s}`);
  accepts(nino('OA123456A'), 'O allowed first');
});

test('NINO letter rules', () => {
  for (const l of 'DFIQUV') rejects(nino(`${l}A123456A`), `first ${l}`, 'invalid first letter');
  for (const l of 'DFIOQUV') rejects(nino(`A${l}123456A`), `second ${l}`, 'invalid second letter');
  assert.deepEqual([...NINO_BAD_PREFIXES].sort(), ['BG', 'GB', 'KN', 'NK', 'NT', 'TN', 'ZZ']);
  for (const p of NINO_BAD_PREFIXES) rejects(nino(`${p}123456A`), p, 'invalid prefix');
  accepts(nino('BH123456A'), 'BH neighbour of BG');
  rejects(nino('AB123456E'), 'suffix E', 'invalid suffix');
  rejects(nino('AB123456'), 'no suffix', 'bad format');
  rejects(nino('AB12345C'), 'five digits', 'bad format');
  rejects(nino('AB 123456 C'), 'odd spacing', 'bad format');
  rejects(nino('A1123456C'), 'digit in prefix', 'bad format');
});

test('SIN', () => {
  accepts(sin('130 692 544'), 'spaced');
  accepts(sin('130-692-544'), 'dashed');
  accepts(sin('130692544'), 'bare');
  accepts(sin('987 654 324'), 'temporary resident 9');
  rejects(sin('130 692 545'), 'one digit changed', 'luhn');
  rejects(sin('046 454 286'), 'government sample starts with 0', 'invalid first digit');
  rejects(sin('812 345 675'), 'first digit 8', 'invalid first digit');
  rejects(sin('130 692-544'), 'mixed', 'bad format');
  rejects(sin('130 69 2544'), 'wrong grouping', 'bad format');
  rejects(sin('13069254'), 'eight digits', 'bad format');
  assert.equal(validateSin('130 692 544', { before: 'SIN: ', after: '' }).confidence, 0.75);
});
