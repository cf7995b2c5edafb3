// Differential test: the Hyperscan and RE2 engines must return identical matches for realistic detector rules.
// Without the addon this skips, except under CI or SLUICE_REQUIRE_HYPERSCAN, where a missing engine is a failure.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEngine, type DetectorPattern } from '../../src/detect/engine.js';
import { requireHyperscan } from '../fixtures/hyperscan.js';

const RULES: DetectorPattern[] = [
  { id: 1, pattern: '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}' },
  { id: 2, pattern: '\\b\\d{3}-\\d{2}-\\d{4}\\b' },
  { id: 3, pattern: '\\b(?:\\d{4}[ -]?){3}\\d{4}\\b' },
  { id: 4, pattern: 'AKIA[0-9A-Z]{16}' },
  { id: 5, pattern: '\\b[A-Z]{2}\\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\\b' },
  { id: 6, pattern: 'eyJ[\\w-]+\\.[\\w-]+\\.[\\w-]+' },
  { id: 7, pattern: '-----BEGIN (?:RSA |EC |OPENSSH )?PRIVATE KEY-----' },
  { id: 8, pattern: '(?:\\+1[ .-]?)?\\(?\\d{3}\\)?[ .-]?\\d{3}[ .-]\\d{4}\\b' },
  { id: 9, pattern: '\\b(?:(?:25[0-5]|2[0-4]\\d|1?\\d?\\d)\\.){3}(?:25[0-5]|2[0-4]\\d|1?\\d?\\d)\\b' },
  { id: 10, pattern: 'password\\s*[:=]\\s*\\S+', caseless: true },
  { id: 11, pattern: 'sk-[A-Za-z0-9]{20,}' },
  { id: 12, pattern: 'gh[pousr]_[A-Za-z0-9]{36}' },
  { id: 13, pattern: 'xox[baprs]-[0-9A-Za-z-]{10,}' },
  { id: 14, pattern: 'secret|secretive', caseless: true }, // leftmost-first picks "secret" even before "ive"
  { id: 15, pattern: 'a+?b|ab+' }, // lazy + alternation: Hyperscan's raw ends differ from RE2's span
  { id: 16, pattern: '\\d*' }, // matches empty: Hyperscan rejects it with SOM, so RE2 must cover it
  { id: 17, pattern: '機密|Geheimnis', caseless: true },
];

const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';

const CORPUS = [
  '',
  'no secrets here, just prose.',
  'contact alice@example.com or bob.smith+tag@mail.example.co.uk',
  '123-45-6789',
  'ssn:123-45-6789,987-65-4321 and 123-45-67890 (too long)',
  'card 4111 1111 1111 1111 and 5500-0000-0000-0004 and 4111111111111111',
  'AKIAIOSFODNN7EXAMPLE',
  'keys AKIAIOSFODNN7EXAMPLEAKIAIOSFODNN7EXAMPLE adjacent',
  'iban GB82 WEST 1234 5698 7654 32 and DE89370400440532013000',
  `Authorization: Bearer ${JWT}`,
  '-----BEGIN RSA PRIVATE KEY-----\nMIIEow...\n-----END RSA PRIVATE KEY-----',
  '-----BEGIN PRIVATE KEY----------BEGIN EC PRIVATE KEY-----',
  'call +1 (555) 123-4567 or 555.987.6543 or 5551234567',
  'hosts 10.0.0.1, 192.168.1.255 and 256.1.1.1 and 1.2.3.4.5',
  'PASSWORD = hunter2\npassword:   correct-horse Password:x',
  'sk-abcdefghijklmnopqrstuvwxyz012345',
  'ghp_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ tail',
  'xoxb-1234567890-abcdefghij',
  'SECRETIVE Secret secretsecret',
  'aaab abbb aab b a',
  '😀 alice@example.com 😀 123-45-6789 😀',
  '密码是 123-45-6789，邮件 张伟@例子.中国 或 zhang@example.cn 機密',
  'café 10.0.0.1 naïve José jose@exámple.com résumé',
  'é123-45-6789 and ١٢٣-٤٥-٦٧٨٩ (Arabic-Indic digits are not \\d in RE2)',
  'Ｇｅｈｅｉｍｎｉｓ fullwidth vs GEHEIMNIS vs geheimnis',
  '𝟏𝟐𝟑-𝟒𝟓-𝟔𝟕𝟖𝟗 math digits and 🇺🇸 flags 👨‍👩‍👧 zwj',
  'line1\n123-45-6789\r\nline3\tAKIAIOSFODNN7EXAMPLE',
  `${JWT}.extra`,
  'x'.repeat(500) + ' 123-45-6789 ' + '😀'.repeat(200) + 'AKIAIOSFODNN7EXAMPLE',
  'a@b.co a@b.co a@b.co',
  '4111-1111-1111-1111-1111-1111',
];

test('Hyperscan and RE2 engines agree on every corpus string', (t) => {
  if (!requireHyperscan(t)) return;
  const hs = createEngine(RULES, 'hyperscan');
  const re2 = createEngine(RULES, 're2');
  assert.equal(hs.name, 'hyperscan');
  assert.equal(re2.name, 're2');
  let total = 0;
  for (const text of CORPUS) {
    const expected = re2.scan(text);
    assert.deepEqual(hs.scan(text), expected, `mismatch on ${JSON.stringify(text.slice(0, 80))}`);
    total += expected.filter((m) => m.id !== 16).length;
  }
  assert.ok(total > 50, `the corpus should exercise the rules (got ${total} non-empty-rule matches)`);
});

test('spans are RE2 leftmost-first, not Hyperscan end offsets', (t) => {
  if (!requireHyperscan(t)) return;
  const rules: DetectorPattern[] = [{ id: 14, pattern: 'secret|secretive', caseless: true }, { id: 15, pattern: 'a+?b|ab+' }];
  const text = 'SECRETIVE aaabbb';
  const ms = createEngine(rules, 'hyperscan').scan(text);
  assert.deepEqual(ms.map((m) => text.slice(m.start, m.end)), ['SECRET', 'aaab']);
  assert.deepEqual(ms, createEngine(rules, 're2').scan(text));
});

test('an invalid rule fails the same way under Hyperscan', (t) => {
  if (!requireHyperscan(t)) return;
  assert.throws(() => createEngine([{ id: 3, pattern: 'a{2,1}' }], 'hyperscan'), { code: 'SLUICE_RULE_INVALID' });
});

/** Small deterministic PRNG (mulberry32) so a failing fuzz case can be replayed from its seed. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

test('engines agree on random text, including overlapping and straddling candidates', (t) => {
  if (!requireHyperscan(t)) return;
  // Patterns whose matches overlap or chain, where a Hyperscan report can start before the previous RE2 match ends.
  const rules: DetectorPattern[] = [
    ...RULES,
    { id: 20, pattern: '[a-c0-9]{6}' },
    { id: 21, pattern: 'a[ab]*b' },
    { id: 22, pattern: '(?:ab|b)c+' },
    { id: 23, pattern: '[0-9]{3}-?[0-9]{2}' },
    { id: 24, pattern: 'b+|abc', caseless: true },
  ];
  const hs = createEngine(rules, 'hyperscan');
  const re2 = createEngine(rules, 're2');
  const alphabet = ['a', 'b', 'c', 'A', 'B', '0', '1', '5', '-', '.', '@', ' ', '\n', 'é', '😀', 'x', 'K', '_'];
  for (let seed = 1; seed <= 300; seed++) {
    const r = rng(seed);
    let text = '';
    const len = 1 + Math.floor(r() * 400);
    for (let i = 0; i < len; i++) text += alphabet[Math.floor(r() * alphabet.length)];
    assert.deepEqual(hs.scan(text), re2.scan(text), `seed ${seed}: ${JSON.stringify(text)}`);
  }
});

test('a scan with more reports than the engine buffers still gives RE2\'s answer', (t) => {
  if (!requireHyperscan(t)) return;
  // Every position of a long run ends a match of [a-c0-9]{6}: >65,536 Hyperscan reports.
  const rules: DetectorPattern[] = [{ id: 1, pattern: '[a-c0-9]{6}' }, { id: 2, pattern: '\\b\\d{3}-\\d{2}-\\d{4}\\b' }];
  const text = 'ab'.repeat(50_000) + ' 536-22-1987';
  const got = createEngine(rules, 'hyperscan').scan(text);
  assert.deepEqual(got, createEngine(rules, 're2').scan(text));
  assert.equal(got.length, Math.floor(100_000 / 6) + 1);
});
