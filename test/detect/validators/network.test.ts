// Tests for email, IPv4/IPv6 and phone (E.164, NANP) validation, including length limits and reserved names.
// Near misses are the usual typos: doubled dots, leading zeros, N11 codes, too few digits.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NO_CONTEXT, parseIpv4, parseNanp, validateE164, validateEmail, validateIpv4, validateIpv6, validateNanpPhone } from '../../../src/detect/validators/index.js';
import { accepts, rejects } from './helpers.js';

const email = (m: string) => validateEmail(m, NO_CONTEXT);
const v4 = (m: string) => validateIpv4(m, NO_CONTEXT);
const v6 = (m: string) => validateIpv6(m, NO_CONTEXT);
const e164 = (m: string) => validateE164(m, NO_CONTEXT);
const nanp = (m: string) => validateNanpPhone(m, NO_CONTEXT);

test('email valid', () => {
  for (const e of ['jane.doe@acme.io', 'j+tag@mail.acme.co.uk', "o'brien@corp.ie", 'a@b.cd', 'x_y-z@sub-domain.acme.com', 'user@xn--80ak6aa92e.xn--p1ai']) accepts(email(e), e);
});

test('email near misses', () => {
  rejects(email('jane..doe@acme.io'), 'double dot local', 'bad local part');
  rejects(email('.jane@acme.io'), 'leading dot', 'bad local part');
  rejects(email('jane.@acme.io'), 'trailing dot', 'bad local part');
  rejects(email('jane@acme..io'), 'double dot domain', 'bad domain');
  rejects(email('jane@-acme.io'), 'label starts with hyphen', 'bad domain');
  rejects(email('jane@acme'), 'no tld', 'no tld');
  rejects(email('jane@acme.c'), 'one-letter tld', 'bad tld');
  rejects(email('jane@acme.123'), 'numeric tld', 'bad tld');
  rejects(email('@acme.io'), 'empty local', 'bad format');
  rejects(email('jane.acme.io'), 'no at', 'bad format');
  rejects(email('ja ne@acme.io'), 'space', 'bad local part');
});

test('email length limits', () => {
  accepts(email(`${'a'.repeat(64)}@acme.io`), '64-char local');
  rejects(email(`${'a'.repeat(65)}@acme.io`), '65-char local', 'local part too long');
  accepts(email(`j@${'a'.repeat(63)}.io`), '63-char label');
  rejects(email(`j@${'a'.repeat(64)}.io`), '64-char label', 'bad domain');
  const label = 'a'.repeat(60);
  const long = `j@${[label, label, label, label].join('.')}.io`; // 2 + 4*60 + 3 + 3 = 248
  accepts(email(long), 'long but legal');
  accepts(email(`jjjjjj${long}`), '254 chars');
  rejects(email(`jjjjjjj${long}`), '255 chars', 'too long');
});

test('email reserved domains', () => {
  for (const e of ['jane@example.com', 'jane@mail.example.org', 'a@b.example', 'a@host.test', 'a@x.invalid', 'a@EXAMPLE.NET']) rejects(email(e), e, 'reserved domain');
  accepts(email('jane@examples.com'), 'not reserved');
  accepts(email('jane@myexample.com'), 'suffix only');
});

test('IPv4', () => {
  for (const ip of ['8.8.8.8', '0.0.0.0', '255.255.255.255', '192.168.1.10', '100.64.0.1']) accepts(v4(ip), ip);
  rejects(v4('256.1.1.1'), 'octet 256', 'bad format');
  rejects(v4('1.2.3'), 'three octets', 'bad format');
  rejects(v4('1.2.3.4.5'), 'five octets', 'bad format');
  rejects(v4('01.2.3.4'), 'leading zero', 'bad format');
  rejects(v4('1.2.3.00'), 'double zero', 'bad format');
  rejects(v4('1..3.4'), 'empty octet', 'bad format');
  rejects(v4('1.2.3.-4'), 'negative', 'bad format');
  assert.deepEqual(parseIpv4('10.0.0.1'), [10, 0, 0, 1]);
  assert.equal(v4('8.8.8.8').confidence, 0.5);
  assert.equal(v4('10.0.0.1').confidence, 0.25);
  assert.equal(v4('172.31.0.1').confidence, 0.25);
  assert.equal(v4('172.32.0.1').confidence, 0.5);
  assert.equal(validateIpv4('1.2.3.4', { before: 'version ', after: '' }).confidence, 0.15);
});

test('IPv6', () => {
  for (const ip of ['2001:0db8:85a3:0000:0000:8a2e:0370:7334', '2001:db8::1', 'fe80::1ff:fe23:4567:890a', '::1', '::', '::ffff:192.0.2.128', '64:ff9b::198.51.100.7']) accepts(v6(ip), ip);
  rejects(v6('2001:db8::1::2'), 'two ::', 'bad format');
  rejects(v6('2001:db8:85a3:0:0:8a2e:370:7334:1'), 'nine groups', 'bad format');
  rejects(v6('2001:db8:85a3:0:0:8a2e:370'), 'seven groups, no ::', 'bad format');
  rejects(v6('2001:db8::g1'), 'non-hex', 'bad format');
  rejects(v6('12345::1'), 'five-digit group', 'bad format');
  rejects(v6('::ffff:01.2.3.4'), 'leading zero in embedded v4', 'bad embedded ipv4');
  rejects(v6('::ffff:256.2.3.4'), 'bad embedded v4', 'bad embedded ipv4');
  rejects(v6('fe80::1%eth0'), 'zone id', 'bad format');
  rejects(v6('1.2.3.4'), 'plain v4', 'bad format');
  assert.equal(v6('2001:0db8:85a3:0000:0000:8a2e:0370:7334').confidence, 0.6);
  assert.equal(v6('2001:db8::1').confidence, 0.5);
  assert.equal(v6('a::b').confidence, 0.2);
});

test('NANP formats', () => {
  for (const p of ['(415) 555-2671', '(415)555-2671', '415-555-2671', '415.555.2671', '415 555 2671', '4155552671', '1-415-555-2671', '+1 415 555 2671', '+1 (415) 555-2671']) accepts(nanp(p), p);
  assert.deepEqual(parseNanp('+1 (415) 555-2671'), { area: '415', exchange: '555', line: '2671' });
  rejects(nanp('415-555.2671'), 'mixed separators', 'bad format');
  rejects(nanp('415-5552-671'), 'bad grouping', 'bad format');
  rejects(nanp('415555267'), 'nine digits', 'bad format');
  rejects(nanp('2-415-555-2671'), 'country 2', 'bad format');
  assert.equal(nanp('4155552671').confidence, 0.3);
  assert.equal(nanp('(415) 555-2671').confidence, 0.6);
});

test('NANP numbering rules', () => {
  rejects(nanp('015-555-2671'), 'area starts 0', 'invalid area code');
  rejects(nanp('115-555-2671'), 'area starts 1', 'invalid area code');
  rejects(nanp('411-555-2671'), 'N11 area', 'N11 area code');
  rejects(nanp('911-555-2671'), '911 area', 'N11 area code');
  accepts(nanp('410-555-2671'), 'N10 area');
  rejects(nanp('415-055-2671'), 'exchange starts 0', 'invalid exchange');
  rejects(nanp('415-155-2671'), 'exchange starts 1', 'invalid exchange');
  rejects(nanp('415-211-2671'), 'N11 exchange', 'N11 exchange');
  accepts(nanp('415-212-2671'), 'N12 exchange');
  rejects(nanp('415-555-0123'), 'fictional 555-01xx', 'fictional');
  accepts(nanp('415-555-0200'), '555-0200 is real');
});

test('E.164', () => {
  for (const p of ['+14155552671', '+442079460958', '+44 20 7946 0958', '+44 (0)20 7946 0958', '+49-30-1234567', '+1 (415) 555-2671', '+61.2.9876.5432', '+8613912345678']) accepts(e164(p), p);
  rejects(e164('+1234567'), '7 digits', 'bad length');
  accepts(e164('+33123456'), '8 digits');
  accepts(e164('+861391234567890'), '15 digits');
  rejects(e164('+8613912345678901'), '16 digits', 'bad length');
  rejects(e164('+0441234567890'), 'country code 0', 'invalid country code');
  rejects(e164('14155552671'), 'no plus', 'bad format');
  rejects(e164('+44  20 7946 0958'), 'double space', 'bad format');
  rejects(e164('+44 20 7946 0958 '), 'trailing space', 'bad format');
  rejects(e164('+1 (415) (555) 2671'), 'two paren groups', 'bad format');
  rejects(e164('+44 20 7946 O958'), 'letter O', 'bad format');
  // Country code 1 gets the NANP rules.
  rejects(e164('+14115552671'), 'N11 area', 'N11 area code');
  rejects(e164('+1415555267'), 'NANP too short', 'bad length');
  rejects(e164('+14155550123'), 'fictional', 'fictional');
  assert.equal(validateE164('+442079460958', { before: 'Mobile: ', after: '' }).confidence, 0.85);
});
