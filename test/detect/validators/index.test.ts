// Tests for the VALIDATORS table: every detector id is wired, and each entry behaves as its family function does.
// One valid and one invalid sample per id, so a mis-wired entry fails.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VALIDATORS, NO_CONTEXT } from '../../../src/detect/validators/index.js';

const SAMPLES: Record<string, [valid: string, invalid: string]> = {
  'credit-card': ['4539148803436467', '4111111111111111'],
  iban: ['DE89370400440532013000', 'DE89370400440532013001'],
  'aba-routing': ['021000021', '021000022'],
  'us-ssn': ['123-45-6789', '666-45-6789'],
  'uk-nino': ['AB123456C', 'GB123456C'],
  'ca-sin': ['130 692 544', '046 454 286'],
  npi: ['1234567893', '1234567890'],
  'dea-number': ['AB1234563', 'AB1234564'],
  email: ['jane.doe@acme.io', 'jane@example.com'],
  ipv4: ['8.8.8.8', '08.8.8.8'],
  ipv6: ['2001:db8::1', '2001:db8::1::2'],
  'phone-e164': ['+442079460958', '+0442079460958'],
  'phone-nanp': ['(415) 555-2671', '(911) 555-2671'],
  jwt: ['eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJl', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9'],
  'pem-private-key': [`-----BEGIN PRIVATE KEY-----\n${Buffer.alloc(90, 3).toString('base64')}\n-----END PRIVATE KEY-----`, '-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----'],
  'generic-secret': ['Zr3kQ9vLm2Xp7Wn4Bt6Yh8Jd1Fs5Gc0A', 'AKIAIOSFODNN7EXAMPLE'],
};

test('table has exactly the documented ids', () => {
  assert.deepEqual(Object.keys(VALIDATORS).sort(), Object.keys(SAMPLES).sort());
  assert.equal(Object.isFrozen(VALIDATORS), true);
});

test('each entry accepts its valid sample and rejects its near miss', () => {
  for (const [id, [good, bad]] of Object.entries(SAMPLES)) {
    const v = VALIDATORS[id]!;
    assert.equal(v(good, NO_CONTEXT).valid, true, `${id} valid`);
    assert.equal(v(bad, NO_CONTEXT).valid, false, `${id} invalid`);
  }
});
